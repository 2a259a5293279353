import json

from worker.datasets.report import ReportOptions, build_report
from worker.datasets.sampling import Reservoir


def test_sample_is_seeded_deterministic_and_split_independent():
    whole = Reservoir(20, seed=3)
    parts = [Reservoir(20, seed=3) for _ in range(3)]
    for line in range(1, 1001):
        whole.offer(line, {"n": line})
        parts[line % 3].offer(line, {"n": line})
    merged = Reservoir(20, seed=3)
    for part in parts:
        merged.merge(part)
    rows = whole.rows()
    assert len(rows) == 20
    assert rows == merged.rows()
    assert [r["line"] for r in rows] == sorted(r["line"] for r in rows)
    other = Reservoir(20, seed=4)
    for line in range(1, 1001):
        other.offer(line, {"n": line})
    assert other.rows() != rows


def test_report_sample_is_at_most_twenty_and_constant(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": f"q {i}", "completion": f"a {i}"}) + "\n" for i in range(300))
    )
    first = build_report(path, ReportOptions(workers=1, block_bytes=2048)).to_dict()["sample"]
    second = build_report(path, ReportOptions(workers=1)).to_dict()["sample"]
    assert len(first) == 20
    assert first == second
    assert all(
        s["row"] == {"prompt": f"q {s['line'] - 1}", "completion": f"a {s['line'] - 1}"}
        for s in first
    )


def test_small_file_sample_is_every_row(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": f"q {i}", "completion": "a"}) + "\n" for i in range(5))
    )
    sample = build_report(path, ReportOptions(workers=1)).to_dict()["sample"]
    assert [s["line"] for s in sample] == [1, 2, 3, 4, 5]
