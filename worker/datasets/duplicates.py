"""Exact and near duplicates.

Near duplicates are pairs of rows whose word 5-gram shingle sets have a Jaccard similarity of at
least 0.8, found with MinHash LSH. The signatures are datasketch's (`MinHash`, affine32 scheme,
128 permutations), computed for a whole block of rows at once with numpy; the banding (b bands
of r values) is the one `datasketch.MinHashLSH` chooses for the threshold. Tests check both
against datasketch, which the analysis itself does not import: it pulls in scipy, ~55 MB in
every process. The bands are kept as one 64-bit key per band in numpy arrays rather than in a
`MinHashLSH` index, whose per-key Python dicts and sets cost ~3 KB a row (1 GB for a 1 GB
dataset); the signatures wait in a temporary file. Candidate pairs (same key in some band) are
then confirmed with datasketch's Jaccard estimate (the share of equal signature values).
"""

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from worker.datasets.text import Hashes, ngram_hashes, rows_ngram_hashes

SHINGLE_WORDS = 5
NEAR_DUPLICATE_THRESHOLD = 0.8
NUM_PERM = 128
MAX_EXAMPLES = 20
_VERIFY_BATCH = 20_000
# Shingles permuted at once: a (128 x 4096) uint32 array, 2 MB, stays in cache.
_SIGN_CHUNK = 4096
_BAND_FOLD = np.uint64(0xD6E8FEB86659FD93)

Signatures = npt.NDArray[np.uint32]


@dataclass(frozen=True)
class Banding:
    bands: int
    rows_per_band: int

    @classmethod
    def for_threshold(cls, threshold: float, num_perm: int) -> "Banding":
        """datasketch's choice (weighing false positives and negatives equally)."""
        from datasketch import MinHashLSH

        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        return cls(bands=lsh.b, rows_per_band=lsh.r)


# Banding.for_threshold(NEAR_DUPLICATE_THRESHOLD, NUM_PERM), fixed here (a test checks it).
BANDING = Banding(bands=9, rows_per_band=13)


class Signer:
    """MinHash signatures of word-shingle sets, with one set of permutations per process.

    `signatures` computes a whole block's at once with numpy, the same values as datasketch's
    `MinHash(scheme="affine32").update_batch` (each 32-bit shingle hash is mixed with the
    MurmurHash3 finalizer, then permuted as a * h + b mod 2^32): the permutations are applied
    as one (permutations x shingles) array per few thousand shingles and each row's minimum
    is taken with `np.minimum.reduceat`."""

    def __init__(self, num_perm: int = NUM_PERM, seed: int = 1):
        self.num_perm = num_perm
        self.seed = seed
        # As datasketch draws them: odd multipliers a, offsets b, from RandomState(seed).
        generator = np.random.RandomState(seed)
        a = generator.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        b = generator.randint(0, 1 << 32, num_perm, dtype=np.uint32)
        self.permutations = np.array([a, b])
        self._a = a[:, None]
        self._b = b[:, None]

    def signature(self, word_hashes: Hashes) -> Signatures:
        """One row's signature with datasketch itself (the reference for `signatures`)."""
        from datasketch import MinHash

        minhash = MinHash(
            num_perm=self.num_perm,
            seed=self.seed,
            hashfunc=_identity,
            permutations=self.permutations,
            scheme="affine32",
        )
        minhash.update_batch(shingle_hashes(word_hashes).tolist())
        return minhash.hashvalues.astype(np.uint32)

    def signatures(self, rows: list[Hashes]) -> Signatures:
        """The signatures of many rows' word hashes, shape (rows, num_perm)."""
        out = np.empty((len(rows), self.num_perm), dtype=np.uint32)
        shingles, counts = rows_ngram_hashes(rows, SHINGLE_WORDS)
        values = _fmix32((shingles >> np.uint64(32)).astype(np.uint32))
        ends = np.cumsum(counts)
        buffer = np.empty((self.num_perm, max(_SIGN_CHUNK, int(counts.max(initial=0)))), np.uint32)
        first = 0
        while first < len(rows):
            start = ends[first] - counts[first]
            # Whole rows, at least one, up to _SIGN_CHUNK shingles.
            last = max(first + 1, int(np.searchsorted(ends, start + _SIGN_CHUNK, side="right")))
            stop = ends[last - 1]
            chunk = slice(first, last)
            filled = counts[chunk] > 0
            if stop > start:
                permuted = buffer[:, : stop - start]
                np.multiply(self._a, values[start:stop], out=permuted)
                permuted += self._b
                offsets = (ends[chunk] - counts[chunk] - start)[filled]
                out[first:last][filled] = np.minimum.reduceat(permuted, offsets, axis=1).T
            out[first:last][~filled] = np.iinfo(np.uint32).max  # no shingles: the empty set
            first = last
        return out


def shingle_hashes(word_hashes: Hashes) -> npt.NDArray[np.uint32]:
    """32-bit hashes of a row's word 5-grams (datasketch's affine32 scheme takes 32 bits)."""
    return (ngram_hashes(word_hashes, SHINGLE_WORDS) >> np.uint64(32)).astype(np.uint32)


def _fmix32(values: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """The MurmurHash3 32-bit finalizer, which datasketch applies to every input hash."""
    with np.errstate(over="ignore"):
        values = values ^ (values >> np.uint32(16))
        values = values * np.uint32(0x85EBCA6B)
        values ^= values >> np.uint32(13)
        values *= np.uint32(0xC2B2AE35)
        values ^= values >> np.uint32(16)
    return values


def band_keys(signatures: Signatures, banding: Banding) -> npt.NDArray[np.uint64]:
    """One 64-bit key per (row, band): equal keys mean equal signature values in that band."""
    rows = signatures.shape[0]
    keys = np.empty((rows, banding.bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(banding.bands):
            start = band * banding.rows_per_band
            key = np.full(rows, band + 1, dtype=np.uint64)
            for column in range(start, start + banding.rows_per_band):
                key = key * _BAND_FOLD + signatures[:, column].astype(np.uint64)
            keys[:, band] = key
    return keys


@dataclass
class DuplicateFinder:
    """Collects, row by row in file order, what duplicate detection needs; `result()` at the
    end. Memory: ~12 bytes + 8 per band a row; signatures go to a temporary file."""

    banding: Banding = BANDING
    threshold: float = NEAR_DUPLICATE_THRESHOLD
    _lines: list[npt.NDArray[np.int64]] = field(default_factory=list)
    _digests: list[npt.NDArray[np.uint64]] = field(default_factory=list)
    _keys: list[npt.NDArray[np.uint64]] = field(default_factory=list)
    _rows: int = 0

    def __post_init__(self) -> None:
        handle, name = tempfile.mkstemp(prefix="loraplex-minhash-", suffix=".u32")
        self._signature_file = Path(name)
        self._signature_out = os.fdopen(handle, "wb")

    def add(
        self,
        lines: npt.NDArray[np.int64],
        digests: npt.NDArray[np.uint64],
        signatures: Signatures,
    ) -> None:
        if not len(lines):
            return
        self._lines.append(lines)
        self._digests.append(digests)
        self._keys.append(band_keys(signatures, self.banding))
        self._signature_out.write(np.ascontiguousarray(signatures, dtype=np.uint32).tobytes())
        self._rows += len(lines)

    def result(self) -> dict[str, Any]:
        self._signature_out.close()
        try:
            return self._result()
        finally:
            self._signature_file.unlink(missing_ok=True)

    def _result(self) -> dict[str, Any]:
        lines = _concat(self._lines, np.int64)
        digests = _concat(self._digests, np.uint64)
        exact_pairs = exact_duplicate_pairs(digests)
        is_exact_copy = np.zeros(len(lines), dtype=bool)
        is_exact_copy[exact_pairs[:, 1]] = True
        keys = (
            np.concatenate(self._keys)
            if self._keys
            else np.empty((0, self.banding.bands), np.uint64)
        )
        self._keys.clear()
        candidates = candidate_pairs(keys)
        # Copies of a row are exact duplicates, not near ones.
        candidates = candidates[digests[candidates[:, 0]] != digests[candidates[:, 1]]]
        near = self._confirm(candidates)
        near_rows = np.unique(near[:, 1]) if len(near) else near[:, 1]
        near_rows = near_rows[~is_exact_copy[near_rows]]
        return {
            "exact": {
                "rows": int(is_exact_copy.sum()),
                "examples": _line_pairs(exact_pairs, lines),
            },
            "near": {
                "rows": len(near_rows),
                "pairs": len(near),
                "examples": _line_pairs(near, lines),
                "method": (
                    f"MinHash LSH over word {SHINGLE_WORDS}-grams, {NUM_PERM} permutations, "
                    f"{self.banding.bands} bands x {self.banding.rows_per_band}, "
                    f"Jaccard >= {self.threshold}"
                ),
            },
        }

    def _confirm(self, candidates: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        if not len(candidates):
            return candidates
        confirmed = []
        shape = (self._rows, NUM_PERM)
        for start in range(0, len(candidates), _VERIFY_BATCH):
            batch = candidates[start : start + _VERIFY_BATCH]
            # Mapped afresh for each batch, so the pages read are dropped again.
            signatures = np.memmap(self._signature_file, dtype=np.uint32, mode="r", shape=shape)
            same = (signatures[batch[:, 0]] == signatures[batch[:, 1]]).mean(axis=1)
            del signatures
            confirmed.append(batch[same >= self.threshold])
        return np.concatenate(confirmed)


def exact_duplicate_pairs(digests: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """(first index, later index) for every row equal to an earlier one."""
    order = np.argsort(digests, kind="stable")
    ordered = digests[order]
    repeats = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1
    if not len(repeats):
        return np.empty((0, 2), dtype=np.int64)
    run_start = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    first_of_run = run_start[np.searchsorted(run_start, repeats, side="right") - 1]
    pairs = np.stack([order[first_of_run], order[repeats]], axis=1).astype(np.int64)
    return pairs[np.argsort(pairs[:, 1], kind="stable")]


def candidate_pairs(keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Pairs (earlier, later) sharing a band key. Each row is paired with the first row of its
    bucket and with its predecessor there, not with every member, so a bucket of k copies
    costs O(k) rather than O(k^2)."""
    found = []
    for band in range(keys.shape[1]):
        column = keys[:, band]
        order = np.argsort(column, kind="stable")
        ordered = column[order]
        same = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1
        if not len(same):
            continue
        run_start = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        first = run_start[np.searchsorted(run_start, same, side="right") - 1]
        found.append(np.stack([order[first], order[same]], axis=1))
        found.append(np.stack([order[same - 1], order[same]], axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.unique(np.concatenate(found).astype(np.int64), axis=0)
    return pairs[pairs[:, 0] != pairs[:, 1]]


def _line_pairs(pairs: npt.NDArray[np.int64], lines: npt.NDArray[np.int64]) -> list[list[int]]:
    if not len(pairs):
        return []
    ordered = pairs[np.lexsort((pairs[:, 0], pairs[:, 1]))][:MAX_EXAMPLES]
    return [[int(lines[a]), int(lines[b])] for a, b in ordered]


def _concat(parts: list[Any], dtype: type) -> Any:
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def _identity(value: Any) -> Any:
    return value
