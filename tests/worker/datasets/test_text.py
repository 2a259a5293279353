import numpy as np

from worker.datasets.text import ngram_hashes, rows_ngram_hashes


def test_block_ngrams_equal_row_by_row():
    rng = np.random.default_rng(0)
    for _ in range(200):
        rows = [
            rng.integers(0, 2**63, rng.integers(0, 30), dtype=np.int64).view(np.uint64)
            for _ in range(rng.integers(0, 12))
        ]
        for n in (1, 5, 13):
            grams, counts = rows_ngram_hashes(rows, n)
            expected = [ngram_hashes(row, n) for row in rows]
            assert list(counts) == [len(g) for g in expected]
            assert np.array_equal(
                grams, np.concatenate(expected) if expected else np.empty(0, np.uint64)
            )
