"""Per-block analysis: one worker process turns a block of lines into a compact `BlockResult`
(counts, small arrays, capped lists) that the report merges. Everything that needs the whole
file (percentiles, duplicates across blocks) is left to the merge."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from worker.datasets.advice import is_refusal
from worker.datasets.balance import LabelCounter
from worker.datasets.chat_template import ChatTemplateError, TokenizerFiles
from worker.datasets.contamination import NGRAM_WORDS, NgramIndex
from worker.datasets.duplicates import Signer
from worker.datasets.formats import RowFormat, conversation_for_stats
from worker.datasets.pii import find_pii
from worker.datasets.sampling import Reservoir
from worker.datasets.source import LineBlock
from worker.datasets.text import (
    WordHasher,
    conversation_text,
    row_digest,
    rows_ngram_hashes,
    words,
)
from worker.datasets.tokens import CountingStats, TokenCounter
from worker.datasets.validate import (
    MAX_LISTED_ERRORS,
    RowError,
    ValidationReport,
    checked_row,
)

SAMPLE_TEXT_CHARS = 2000


@dataclass(frozen=True)
class AnalysisOptions:
    file_format: RowFormat
    tokenizer_dir: Path | None = None
    fast_tokens: bool = True
    sample_size: int = 20
    seed: int = 0
    contamination_index: NgramIndex | None = None  # the validation file's 13-grams


@dataclass
class LineList:
    """A count of rows with some property and the first lines that have it."""

    count: int = 0
    lines: list[int] = field(default_factory=list)

    def add(self, line: int) -> None:
        self.count += 1
        if len(self.lines) < MAX_LISTED_ERRORS:
            self.lines.append(line)

    def merge(self, other: "LineList") -> None:
        self.count += other.count
        self.lines.extend(other.lines[: MAX_LISTED_ERRORS - len(self.lines)])

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.count, "lines": self.lines}


@dataclass
class BlockResult:
    validation: ValidationReport
    lines: npt.NDArray[np.int64]  # of valid rows, in order
    digests: npt.NDArray[np.uint64]
    signatures: npt.NDArray[np.uint32]
    token_lines: npt.NDArray[np.int64]  # of the rows whose tokens were counted
    token_totals: npt.NDArray[np.int64]
    token_trainable: npt.NDArray[np.int64]
    counting: CountingStats
    unrenderable: LineList
    pii: dict[str, LineList]
    labels: LabelCounter
    refusal_rows: int
    sample: Reservoir
    # Validation n-grams seen in this block: their index positions and the training lines.
    contamination_positions: npt.NDArray[np.int64]
    contamination_lines: npt.NDArray[np.int64]


class BlockAnalyzer:
    """Lives for a whole file in one process: the tokenizer and caches are built once."""

    def __init__(self, options: AnalysisOptions):
        self.options = options
        self.tokens = (
            TokenCounter(TokenizerFiles(options.tokenizer_dir), fast=options.fast_tokens)
            if options.tokenizer_dir is not None
            else None
        )
        self.signer = Signer()
        self.hasher = WordHasher()

    def analyze(self, block: LineBlock) -> BlockResult:
        fmt = self.options.file_format
        validation = ValidationReport(format=fmt.value)
        lines: list[int] = []
        digests: list[int] = []
        word_hashes: list[npt.NDArray[np.uint64]] = []
        token_lines: list[int] = []
        totals: list[int] = []
        trainable: list[int] = []
        counting_before = _copy_stats(self.tokens.stats) if self.tokens else CountingStats()
        unrenderable = LineList()
        pii: dict[str, LineList] = {}
        labels = LabelCounter()
        refusal_rows = 0
        sample = Reservoir(self.options.sample_size, self.options.seed)
        index = self.options.contamination_index

        for number, raw in block.lines():
            validation.bytes += len(raw)
            if not raw.strip():
                continue
            validation.rows += 1
            row, problem = checked_row(raw, fmt)
            if problem:
                validation.add_error(RowError(number, *problem))
                continue
            validation.valid_rows += 1
            conversation = conversation_for_stats(row, fmt)
            text = conversation_text(conversation)
            lines.append(number)
            digests.append(row_digest(orjson.dumps(row, option=orjson.OPT_SORT_KEYS)))
            word_hashes.append(self.hasher.hashes(words(text)))

            if self.tokens is not None:
                try:
                    counted = self.tokens.count(conversation, number, tools=row.get("tools"))
                except ChatTemplateError:
                    unrenderable.add(number)
                else:
                    token_lines.append(number)
                    totals.append(counted.total)
                    trainable.append(counted.trainable)

            for kind in find_pii(text):
                pii.setdefault(kind, LineList()).add(number)
            replies = [
                m["content"]
                for m in conversation
                if m.get("role") == "assistant" and isinstance(m.get("content"), str)
            ]
            if replies:
                labels.add(replies[-1])
            refusal_rows += any(is_refusal(reply) for reply in replies)
            if sample.wants(number):
                sample.offer(number, _shortened(row))

        line_numbers = np.array(lines, dtype=np.int64)
        overlap_positions, overlap_lines = (
            _overlaps(index, word_hashes, line_numbers)
            if index is not None
            else (_concat([]), _concat([]))
        )
        return BlockResult(
            validation=validation,
            lines=line_numbers,
            digests=np.array(digests, dtype=np.uint64),
            signatures=self.signer.signatures(word_hashes),
            token_lines=np.array(token_lines, dtype=np.int64),
            token_totals=np.array(totals, dtype=np.int64),
            token_trainable=np.array(trainable, dtype=np.int64),
            counting=_stats_since(counting_before, self.tokens.stats)
            if self.tokens
            else CountingStats(),
            unrenderable=unrenderable,
            pii=pii,
            labels=labels,
            refusal_rows=refusal_rows,
            sample=sample,
            contamination_positions=overlap_positions,
            contamination_lines=overlap_lines,
        )

    @property
    def token_method(self) -> str | None:
        return self.tokens.method if self.tokens else None


def _overlaps(
    index: NgramIndex, word_hashes: list[npt.NDArray[np.uint64]], lines: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The validation n-grams found in a block's rows (index positions) and the line of the
    row each was found in, looked up for the whole block at once."""
    grams, counts = rows_ngram_hashes(word_hashes, NGRAM_WORDS)
    positions, found = index.find(grams)
    return positions, np.repeat(lines, counts)[found]


def _concat(parts: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.int64]:
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _shortened(value: Any) -> Any:
    """A row small enough to show in a report: long strings are cut."""
    if isinstance(value, str):
        return value if len(value) <= SAMPLE_TEXT_CHARS else value[:SAMPLE_TEXT_CHARS] + "…"
    if isinstance(value, list):
        return [_shortened(item) for item in value]
    if isinstance(value, dict):
        return {key: _shortened(item) for key, item in value.items()}
    return value


def _copy_stats(stats: CountingStats) -> CountingStats:
    return CountingStats(**stats.__dict__)


def _stats_since(before: CountingStats, now: CountingStats) -> CountingStats:
    return CountingStats(
        fast_rows=now.fast_rows - before.fast_rows,
        exact_rows=now.exact_rows - before.exact_rows,
        verified_rows=now.verified_rows - before.verified_rows,
        mismatched_rows=now.mismatched_rows - before.mismatched_rows,
        first_mismatch_line=(
            now.first_mismatch_line if before.first_mismatch_line is None else None
        ),
    )


def merge_pii(into: dict[str, LineList], other: dict[str, LineList]) -> None:
    for kind, found in other.items():
        into.setdefault(kind, LineList()).merge(found)
