import json
import random

from worker.datasets.contamination import contamination_report
from worker.datasets.report import ReportOptions, build_report

WORDS = "the a river mountain blue quickly seven table runs under over bright".split()


def text(seed: int, n: int = 60) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) + str(rng.randrange(100)) for _ in range(n))


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def files(tmp_path):
    train = write(
        tmp_path / "train.jsonl",
        [{"prompt": f"question {i}", "completion": text(i)} for i in range(10)],
    )
    validation = write(
        tmp_path / "val.jsonl",
        [
            {"prompt": "something new", "completion": text(1000)},
            {"prompt": "question 7", "completion": text(7)},  # copied from training line 8
            {"prompt": "also new", "completion": text(2000)},
        ],
    )
    return train, validation


def test_copied_validation_row_is_listed_with_both_lines(tmp_path):
    train, validation = files(tmp_path)
    report = contamination_report(train, validation)
    assert report["contaminated_rows"] == 1
    (found,) = report["rows"]
    assert found["line"] == 2
    assert found["training_line"] == 8
    assert found["overlap"] == 1.0


def test_unrelated_validation_file_is_clean(tmp_path):
    train, _ = files(tmp_path)
    clean = write(
        tmp_path / "clean.jsonl", [{"prompt": "x", "completion": text(5000 + i)} for i in range(3)]
    )
    assert contamination_report(train, clean)["contaminated_rows"] == 0


def test_full_report_agrees_with_standalone(tmp_path):
    train, validation = files(tmp_path)
    report = build_report(train, ReportOptions(workers=1, compare_with=validation)).to_dict()
    assert report["contamination"] == contamination_report(train, validation)


def test_filtered_lookup_finds_exactly_the_shared_ngrams():
    import numpy as np

    from worker.datasets.contamination import NgramIndex

    index = NgramIndex([(i + 1, text(i, 200)) for i in range(50)])
    rng = np.random.default_rng(0)
    present = rng.choice(index.grams, 500)
    absent = rng.integers(0, 2**63, 5000, dtype=np.int64).view(np.uint64)
    training = rng.permutation(np.concatenate([present, absent]))
    positions, found = index.find(training)
    expected = np.flatnonzero(np.isin(training, index.grams))
    assert np.array_equal(found, expected)
    assert np.array_equal(index.grams[positions], training[expected])
