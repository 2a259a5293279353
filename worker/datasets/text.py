"""Words of a conversation and stable 64-bit hashes of words and word n-grams, shared by the
near-duplicate and contamination analyses. Hashes must agree across processes, so they come
from blake2b, not Python's salted `hash()`."""

from hashlib import blake2b
from typing import Any

import numpy as np
import numpy.typing as npt

Hashes = npt.NDArray[np.uint64]
# Odd multipliers for folding n word hashes into one n-gram hash (polynomial, mod 2^64).
_FOLD_BASE = np.uint64(0x9E3779B97F4A7C15)
# A miss costs one blake2b of a word (~0.5 us), so a small cache is nearly as good as a big one.
_WORD_CACHE_LIMIT = 100_000


def conversation_text(messages: list[dict[str, Any]]) -> str:
    """The message contents of a conversation, one per line."""
    return "\n".join(m["content"] for m in messages if isinstance(m.get("content"), str))


def words(text: str) -> list[str]:
    return text.lower().split()


class WordHasher(dict[str, int]):
    """word -> 64-bit hash, computed once per process and cached (bounded)."""

    def __missing__(self, word: str) -> int:
        if len(self) >= _WORD_CACHE_LIMIT:
            self.clear()
        # Signed, so numpy converts it without the slow path for ints above 2**63.
        value = int.from_bytes(
            blake2b(word.encode(), digest_size=8).digest(), "little", signed=True
        )
        self[word] = value
        return value

    def hashes(self, tokens: list[str]) -> Hashes:
        """Word hashes of a text, in order (uint64)."""
        signed = np.fromiter(map(self.__getitem__, tokens), dtype=np.int64, count=len(tokens))
        return signed.view(np.uint64)


def ngram_hashes(word_hashes: Hashes, n: int) -> Hashes:
    """One hash per window of n consecutive words; a text shorter than n words is one window."""
    count = len(word_hashes) - n + 1
    if count <= 0:
        return fold(word_hashes, len(word_hashes))[:1] if len(word_hashes) else word_hashes
    return fold(word_hashes, n)


def rows_ngram_hashes(rows: list[Hashes], n: int) -> tuple[Hashes, npt.NDArray[np.int64]]:
    """`ngram_hashes(row, n)` of every row, concatenated, and how many each row has: the
    whole block folded at once, keeping the windows that lie inside one row."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    counts = np.where(lengths >= n, lengths - n + 1, np.minimum(lengths, 1))
    out = np.empty(int(counts.sum()), dtype=np.uint64)
    if not len(out):
        return out, counts
    words = np.concatenate(rows)
    out_starts = np.cumsum(counts) - counts
    whole = lengths >= n
    if whole.any() and len(words) >= n:
        windows = counts[whole]
        # Window j of row i is window (row start + j) of the block.
        shift = np.repeat((np.cumsum(lengths) - lengths)[whole] - out_starts[whole], windows)
        inside = np.repeat(out_starts[whole], windows) + _ranges(windows)
        out[inside] = fold(words, n)[inside + shift]
    for row in np.flatnonzero(~whole & (lengths > 0)):
        out[out_starts[row]] = fold(rows[row], int(lengths[row]))[0]
    return out, counts


def _ranges(sizes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """0..size-1 for each size, concatenated."""
    total = int(sizes.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)


def fold(word_hashes: Hashes, n: int) -> Hashes:
    count = len(word_hashes) - n + 1
    with np.errstate(over="ignore"):
        out = word_hashes[:count].copy()
        for offset in range(1, n):
            out *= _FOLD_BASE
            out += word_hashes[offset : offset + count]
    return out


def row_digest(canonical: bytes) -> int:
    """64-bit digest of a row's canonical JSON, for exact-duplicate detection."""
    return int.from_bytes(blake2b(canonical, digest_size=8).digest(), "little")
