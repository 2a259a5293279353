"""Contamination: rows of a validation or eval file whose text also appears in the training
file, measured as the share of the row's word 13-grams found anywhere in the training rows.

The other file's 13-grams are held in memory (it is the small one); the training file is
streamed once and each of its 13-grams is looked up, so memory does not grow with the
training file. The full report does the lookups in its own pass when given the other file
(`ReportOptions.compare_with`), at the cost of one hash fold and a binary search per row.
Rows shorter than 13 words count as one n-gram of all their words.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from worker.datasets.formats import RowFormat, conversation_for_stats
from worker.datasets.memory import release_free_memory
from worker.datasets.rows import check_row
from worker.datasets.source import LineBlock, iter_pieces
from worker.datasets.text import WordHasher, conversation_text, ngram_hashes, words
from worker.datasets.validate import LineProblem, iter_lines, parse_line, sniff_format

NGRAM_WORDS = 13
DEFAULT_THRESHOLD = 0.5
MAX_LISTED_ROWS = 100
_NOT_FOUND = np.iinfo(np.int64).max
_MAX_FILTER_SLOTS = 1 << 23


@dataclass(frozen=True)
class ContaminatedRow:
    line: int
    overlap: float  # share of the row's 13-grams that occur in the training file
    training_line: int  # a training row that shares one of them


def _usable_rows(path: Path) -> tuple[RowFormat, list[tuple[int, str]]]:
    fmt = sniff_format(iter_lines(path))
    rows: list[tuple[int, str]] = []
    for piece in iter_pieces(path):
        if isinstance(piece, LineBlock):
            rows.extend(_block_texts(piece, fmt))
    return fmt, rows


def _block_texts(block: LineBlock, fmt: RowFormat) -> list[tuple[int, str]]:
    texts = []
    for number, raw in block.lines():
        if not raw.strip():
            continue
        try:
            row = parse_line(raw)
        except LineProblem:
            continue
        if check_row(row, fmt) is None:
            texts.append((number, conversation_text(conversation_for_stats(row, fmt))))
    return texts


class NgramIndex:
    """The other file's distinct n-grams (sorted), which of its rows hold each, and for each
    the first training line found to contain it. It pickles as its lookup half (`grams` and
    the filter): what analysis processes need, while the process that merges keeps the rest."""

    def __init__(self, rows: list[tuple[int, str]]):
        hasher = WordHasher()
        per_row = [np.unique(ngram_hashes(hasher.hashes(words(t)), NGRAM_WORDS)) for _, t in rows]
        self.lines = np.array([line for line, _ in rows], dtype=np.int64)
        self.grams_per_row = np.array([len(g) for g in per_row], dtype=np.int64)
        occurrences = np.concatenate(per_row) if per_row else np.empty(0, np.uint64)
        self.owners = np.repeat(np.arange(len(rows), dtype=np.int32), self.grams_per_row)
        self.grams, inverse = np.unique(occurrences, return_inverse=True)
        self.gram_of_occurrence = inverse.astype(np.int32)
        del occurrences, inverse
        self.first_training_line = np.full(len(self.grams), _NOT_FOUND, dtype=np.int64)
        # A one-hash Bloom filter over the low bits: most training n-grams are absent, and
        # one lookup in this small table is far cheaper than a binary search in `grams`.
        slots = min(max(len(self.grams) * 16, 1 << 16), _MAX_FILTER_SLOTS)
        bits = (slots - 1).bit_length()
        self._filter_mask = np.uint64((1 << bits) - 1)
        self._filter = np.zeros(1 << bits, dtype=bool)
        self._filter[(self.grams & self._filter_mask).astype(np.intp)] = True

    def __getstate__(self) -> dict[str, Any]:
        lookup = ("grams", "_filter", "_filter_mask")
        return {key: value for key, value in self.__dict__.items() if key in lookup}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def lookup(self, training_grams: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """Positions in `grams` of the training n-grams that the other file has."""
        return self.find(training_grams)[0]

    def find(
        self, training_grams: npt.NDArray[np.uint64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
        """Positions in `grams` of the training n-grams that the other file has, and the
        indices in `training_grams` of those n-grams."""
        if not len(self.grams) or not len(training_grams):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.intp)
        maybe = np.flatnonzero(self._filter[(training_grams & self._filter_mask).astype(np.intp)])
        candidates = training_grams[maybe]
        positions = np.searchsorted(self.grams, candidates)
        inside = positions < len(self.grams)
        hit = inside.copy()
        hit[inside] = self.grams[positions[inside]] == candidates[inside]
        return positions[hit].astype(np.int64), maybe[hit]

    def record(self, positions: npt.NDArray[np.int64], lines: npt.NDArray[np.int64]) -> None:
        np.minimum.at(self.first_training_line, positions, lines)

    def contaminated(self, threshold: float) -> list[ContaminatedRow]:
        found_line = self.first_training_line[self.gram_of_occurrence]
        matched = found_line != _NOT_FOUND
        per_row = np.bincount(self.owners[matched], minlength=len(self.lines))
        share = np.divide(
            per_row,
            self.grams_per_row,
            out=np.zeros(len(self.lines)),
            where=self.grams_per_row > 0,
        )
        rows = []
        for index in np.flatnonzero(share >= threshold):
            example = found_line[matched & (self.owners == index)].min()
            rows.append(
                ContaminatedRow(int(self.lines[index]), round(float(share[index]), 4), int(example))
            )
        return rows


def index_of(path: Path) -> NgramIndex:
    _, rows = _usable_rows(path)
    index = NgramIndex(rows)
    del rows
    release_free_memory()  # the texts and temporaries: ~50 MB for a 10 MB file
    return index


def training_ngrams(text: str, hasher: WordHasher) -> npt.NDArray[np.uint64]:
    return ngram_hashes(hasher.hashes(words(text)), NGRAM_WORDS)


def contamination(
    train_path: Path, other_path: Path, threshold: float = DEFAULT_THRESHOLD
) -> list[ContaminatedRow]:
    """Rows of `other_path` (validation or eval) whose 13-gram overlap with the training rows
    of `train_path` is at least `threshold`, in line order."""
    index = index_of(other_path)
    train_format = sniff_format(iter_lines(train_path))
    hasher = WordHasher()
    for piece in iter_pieces(train_path):
        if isinstance(piece, LineBlock):
            for line, text in _block_texts(piece, train_format):
                positions = index.lookup(training_ngrams(text, hasher))
                index.record(positions, np.full(len(positions), line, dtype=np.int64))
    return index.contaminated(threshold)


def contamination_report(
    train_file_path: Path, validation_file_path: Path, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, Any]:
    """JSON-ready summary of `contamination`, for a job's events or error."""
    rows = contamination(Path(train_file_path), Path(validation_file_path), threshold)
    return summarize(rows, threshold)


def summarize(rows: list[ContaminatedRow], threshold: float) -> dict[str, Any]:
    return {
        "ngram_words": NGRAM_WORDS,
        "threshold": threshold,
        "contaminated_rows": len(rows),
        "rows": [row.__dict__ for row in rows[:MAX_LISTED_ROWS]],
    }
