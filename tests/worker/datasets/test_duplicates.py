import json
import random

import numpy as np

from worker.datasets.report import ReportOptions, build_report

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()


def long_text(seed: int, n: int = 200) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) + str(rng.randrange(50)) for _ in range(n))


def duplicates(tmp_path, rows):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return build_report(path, ReportOptions(workers=1)).to_dict()["duplicates"]


def row(text: str) -> dict:
    return {"prompt": "Summarise this text.", "completion": text}


def test_exact_duplicates_listed_as_line_pairs(tmp_path):
    rows = [row(long_text(i)) for i in range(5)]
    rows.insert(3, rows[1])  # line 4 copies line 2
    rows.append(rows[0])  # line 7 copies line 1
    result = duplicates(tmp_path, rows)
    assert result["exact"] == {"rows": 2, "examples": [[2, 4], [1, 7]]}
    assert result["near"]["rows"] == 0


def test_key_order_does_not_hide_exact_duplicate(tmp_path):
    a = {"prompt": "p " + long_text(1), "completion": "c"}
    b = {"completion": "c", "prompt": "p " + long_text(1)}
    assert duplicates(tmp_path, [a, b])["exact"]["examples"] == [[1, 2]]


def test_one_word_changed_is_a_near_duplicate(tmp_path):
    text = long_text(42, 300)
    words = text.split()
    words[150] = "CHANGED"
    rows = [row(long_text(100 + i)) for i in range(6)]
    rows[1] = row(text)
    rows[4] = row(" ".join(words))
    result = duplicates(tmp_path, rows)
    assert result["exact"]["rows"] == 0
    assert result["near"]["rows"] == 1
    assert result["near"]["examples"] == [[2, 5]]


def test_unrelated_rows_are_not_near_duplicates(tmp_path):
    result = duplicates(tmp_path, [row(long_text(i)) for i in range(30)])
    assert result["exact"]["rows"] == 0
    assert result["near"] == {**result["near"], "rows": 0, "pairs": 0, "examples": []}


def test_block_signatures_equal_datasketch_row_by_row():
    from worker.datasets.duplicates import Signer
    from worker.datasets.text import WordHasher

    hasher = WordHasher()
    rows = [hasher.hashes(long_text(i, n).split()) for i, n in enumerate([0, 1, 4, 5, 6, 300])]
    rows += [hasher.hashes(long_text(100 + i, 2000).split()) for i in range(3)]  # > a chunk
    rows += [hasher.hashes(long_text(200 + i, 40).split()) for i in range(200)]
    signer = Signer()
    expected = np.stack([signer.signature(row) for row in rows])
    assert np.array_equal(signer.signatures(rows), expected)
    assert signer.signatures([]).shape == (0, 128)


def test_fixed_banding_is_datasketchs_choice():
    from worker.datasets.duplicates import BANDING, NEAR_DUPLICATE_THRESHOLD, NUM_PERM, Banding

    assert Banding.for_threshold(NEAR_DUPLICATE_THRESHOLD, NUM_PERM) == BANDING
