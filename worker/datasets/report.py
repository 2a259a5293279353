"""The data-quality report of a fine-tuning file, built in one streaming pass.

The file is cut into blocks of whole lines (worker/datasets/source.py); helper processes and
this one analyse blocks (worker/datasets/analysis.py) while this process merges their results
in file order, so memory stays bounded: a few blocks in flight, per-process caches of bounded
size, plus ~40 bytes per valid row of arrays (line numbers, digests, token counts) and 72 bytes
of LSH keys; signatures wait on disk.

    report = build_report(path, ReportOptions(tokenizer_dir=...)).to_dict()
"""

import hashlib
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from worker.datasets.advice import readiness_advice
from worker.datasets.analysis import (
    AnalysisOptions,
    BlockAnalyzer,
    BlockResult,
    LineList,
    merge_pii,
)
from worker.datasets.balance import LabelCounter
from worker.datasets.chat_template import TokenizerFiles
from worker.datasets.contamination import DEFAULT_THRESHOLD, index_of, summarize
from worker.datasets.duplicates import DuplicateFinder
from worker.datasets.estimate import DEFAULT_MAX_SEQ_LENGTH, DEFAULT_N_EPOCHS, training_estimate
from worker.datasets.memory import release_free_memory
from worker.datasets.sampling import Reservoir
from worker.datasets.source import (
    DEFAULT_BLOCK_BYTES,
    LineBlock,
    OversizedLine,
    ReadFailure,
    is_gzip,
    iter_pieces,
)
from worker.datasets.tokens import CountingStats
from worker.datasets.validate import (
    RowError,
    ValidationReport,
    add_empty_file_error,
    add_oversized_line,
    iter_lines,
    sniff_format,
)

REPORT_VERSION = 2
# Half the reader's default: a block's temporaries (parsed rows, n-gram arrays) set each
# process's peak memory, and per-block costs are small at this size already.
REPORT_BLOCK_BYTES = DEFAULT_BLOCK_BYTES // 2


def default_workers() -> int:
    """One process per core; none of its own inside a daemonic process (a Celery prefork
    child), which may not have children."""
    if multiprocessing.current_process().daemon:
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), 8))


@dataclass(frozen=True)
class ReportOptions:
    tokenizer_dir: Path | None = None
    tokenizer_name: str | None = None  # the catalog model id the tokenizer belongs to
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH
    n_epochs: int = DEFAULT_N_EPOCHS
    sample_size: int = 20
    seed: int = 0
    workers: int = field(default_factory=default_workers)
    block_bytes: int = REPORT_BLOCK_BYTES
    fast_tokens: bool = True
    compare_with: Path | None = None  # a validation/eval file to check for contamination


@dataclass
class DatasetReport:
    options: ReportOptions
    validation: ValidationReport
    compression: str
    file_bytes: int
    duplicates: dict[str, Any]
    token_lines: np.ndarray
    token_totals: np.ndarray
    token_trainable: np.ndarray
    counting: CountingStats
    token_method: str | None
    unrenderable: LineList
    pii: dict[str, LineList]
    labels: LabelCounter
    refusal_rows: int
    sample: Reservoir
    contamination: dict[str, Any] | None = None

    @property
    def error_count(self) -> int:
        return self.validation.error_count

    def to_dict(self) -> dict[str, Any]:
        report = self.validation.to_dict()
        report.update(
            {
                "report_version": REPORT_VERSION,
                "compression": self.compression,
                "file_bytes": self.file_bytes,
                "tokens": self._tokens(),
                "duplicates": self.duplicates,
                "balance": self.labels.report(),
                "pii": {
                    "rows": sum(found.count for found in self.pii.values()),
                    "by_kind": {kind: found.to_dict() for kind, found in sorted(self.pii.items())},
                },
                "refusal_rows": self.refusal_rows,
                "sample": self.sample.rows(),
                "contamination": self.contamination,
            }
        )
        tokens = report["tokens"]
        report["estimate"] = (
            training_estimate(
                tokens["tokens_after_truncation"], tokens["trainable"], self.options.n_epochs
            )
            if tokens and "tokens_after_truncation" in tokens  # no row counted: no estimate
            else None
        )
        report["advice"] = readiness_advice(report)
        return report

    def _tokens(self) -> dict[str, Any] | None:
        if self.options.tokenizer_dir is None:
            return None
        totals = np.sort(self.token_totals)
        max_len = self.options.max_seq_length
        truncated = self.token_totals > max_len
        files = TokenizerFiles(self.options.tokenizer_dir)
        result: dict[str, Any] = {
            "tokenizer": self.options.tokenizer_name or files.name,
            "tokenizer_path": str(self.options.tokenizer_dir),
            "chat_template_sha256": hashlib.sha256(
                files.chat_template().source.encode()
            ).hexdigest(),
            "counted_rows": len(totals),
            "method": self.token_method,
            "fast_rows": self.counting.fast_rows,
            "exact_rows": self.counting.exact_rows,
            "verified_rows": self.counting.verified_rows,
            "mismatched_rows": self.counting.mismatched_rows,
            "unrenderable": self.unrenderable.to_dict(),
            "max_seq_length": max_len,
        }
        if not len(totals):
            return result
        trainable = int(self.token_trainable.sum())
        total = int(totals.sum())
        result.update(
            {
                "min": int(totals[0]),
                "p50": int(np.percentile(totals, 50, method="inverted_cdf")),
                "p95": int(np.percentile(totals, 95, method="inverted_cdf")),
                "max": int(totals[-1]),
                "mean": round(float(totals.mean()), 1),
                "total": total,
                "trainable": trainable,
                "prompt": total - trainable,
                "histogram": histogram(totals, max_len),
                "truncated_rows": int(truncated.sum()),
                "truncated_lines": [int(n) for n in self.token_lines[truncated][:100]],
                "tokens_after_truncation": int(np.minimum(totals, max_len).sum()),
            }
        )
        return result


def histogram(sorted_totals: np.ndarray, max_seq_length: int) -> list[dict[str, int]]:
    """Rows per length bin: powers of two, plus a bin edge at max_seq_length."""
    top = int(sorted_totals[-1]) + 1
    edges = {0, max_seq_length, top}
    edge = 32
    while edge < top:
        edges.add(edge)
        edge *= 2
    bounds = sorted(e for e in edges if e <= top)
    counts, _ = np.histogram(sorted_totals, bins=bounds)
    return [
        {"from": lo, "to": hi, "rows": int(n)}
        for lo, hi, n in zip(bounds[:-1], bounds[1:], counts, strict=True)
    ]


def build_report(path: Path, options: ReportOptions | None = None) -> DatasetReport:
    options = options or ReportOptions()
    file_format = sniff_format(iter_lines(path))
    index = index_of(options.compare_with) if options.compare_with else None
    analysis = AnalysisOptions(
        file_format=file_format,
        tokenizer_dir=options.tokenizer_dir,
        fast_tokens=options.fast_tokens,
        sample_size=options.sample_size,
        seed=options.seed,
        contamination_index=index,
    )
    validation = ValidationReport(format=file_format.value)
    duplicates = DuplicateFinder()
    token_lines, token_totals, token_trainable = [], [], []
    counting = CountingStats()
    unrenderable = LineList()
    pii: dict[str, LineList] = {}
    labels = LabelCounter()
    refusal_rows = 0
    sample = Reservoir(options.sample_size, options.seed)
    token_method: str | None = "fast" if options.fast_tokens else "exact"

    for item in _analysed_pieces(path, analysis, options):
        if isinstance(item, OversizedLine):
            add_oversized_line(validation, item)
            continue
        if isinstance(item, ReadFailure):
            validation.add_error(RowError(item.line, item.code, item.message))
            continue
        validation.merge(item.validation)
        duplicates.add(item.lines, item.digests, item.signatures)
        token_lines.append(item.token_lines)
        token_totals.append(item.token_totals)
        token_trainable.append(item.token_trainable)
        counting.merge(item.counting)
        if item.counting.mismatched_rows:
            token_method = "exact"
        unrenderable.merge(item.unrenderable)
        merge_pii(pii, item.pii)
        labels.merge(item.labels)
        refusal_rows += item.refusal_rows
        sample.merge(item.sample)
        if index is not None:
            index.record(item.contamination_positions, item.contamination_lines)

    if validation.rows == 0 and not validation.error_count:  # an unreadable file says why
        add_empty_file_error(validation)
    if options.tokenizer_dir is None:
        token_method = None
    elif counting.fast_rows == 0:
        token_method = "exact"
    return DatasetReport(
        options=options,
        validation=validation,
        compression="gzip" if is_gzip(path) else "none",
        file_bytes=path.stat().st_size,
        duplicates=duplicates.result(),
        token_lines=_concat(token_lines),
        token_totals=_concat(token_totals),
        token_trainable=_concat(token_trainable),
        counting=counting,
        token_method=token_method,
        unrenderable=unrenderable,
        pii=pii,
        labels=labels,
        refusal_rows=refusal_rows,
        sample=sample,
        contamination=(
            summarize(index.contaminated(DEFAULT_THRESHOLD), DEFAULT_THRESHOLD)
            if index is not None
            else None
        ),
    )


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


# ---------------------------------------------------------------- running blocks in processes

_analyzer: BlockAnalyzer | None = None


def _init_process(options: AnalysisOptions) -> None:
    global _analyzer
    # Each process is one core's worth; the tokenizer's own thread pool would only contend.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _analyzer = BlockAnalyzer(options)


def _analyse_block(block: LineBlock) -> BlockResult:
    assert _analyzer is not None
    return _analyzed(_analyzer, block)


def _analyzed(analyzer: BlockAnalyzer, block: LineBlock) -> BlockResult:
    result = analyzer.analyze(block)
    release_free_memory()
    return result


def _analysed_pieces(
    path: Path, analysis: AnalysisOptions, options: ReportOptions
) -> Iterator[BlockResult | OversizedLine | ReadFailure]:
    """Block results and the pieces that need no analysis, in file order.

    With n workers, n - 1 helper processes take blocks while this process, between merges,
    analyses a block itself whenever the helpers have two each queued: one process fewer
    holding a tokenizer, caches and libraries (~100 MB each), the same cores kept busy.
    Helpers are spawned, not forked: a forked one would hold a copy of everything this
    process has (the contamination index's merge half, freed but unreturned heap)."""
    pieces = iter_pieces(path, options.block_bytes)
    if options.workers <= 1:
        analyzer = BlockAnalyzer(analysis)
        for piece in pieces:
            yield _analyzed(analyzer, piece) if isinstance(piece, LineBlock) else piece
        return
    context = multiprocessing.get_context("spawn")
    helpers = options.workers - 1
    in_flight: deque[Future[BlockResult] | BlockResult | OversizedLine | ReadFailure] = deque()
    local: BlockAnalyzer | None = None
    with ProcessPoolExecutor(
        helpers, mp_context=context, initializer=_init_process, initargs=(analysis,)
    ) as pool:
        for piece in pieces:
            if not isinstance(piece, LineBlock):
                in_flight.append(piece)
            elif sum(isinstance(item, Future) for item in in_flight) < 2 * helpers:
                in_flight.append(pool.submit(_analyse_block, piece))
            else:
                local = local or BlockAnalyzer(analysis)
                in_flight.append(_analyzed(local, piece))
            while in_flight and _ready(in_flight[0]):
                yield _resolved(in_flight.popleft())
        while in_flight:
            yield _resolved(in_flight.popleft())


def _ready(item: "Future[BlockResult] | BlockResult | OversizedLine | ReadFailure") -> bool:
    return not isinstance(item, Future) or item.done()


def _resolved(
    item: "Future[BlockResult] | BlockResult | OversizedLine | ReadFailure",
) -> BlockResult | OversizedLine | ReadFailure:
    return item.result() if isinstance(item, Future) else item
