import json
import random

from worker.datasets.report import ReportOptions, build_report


def test_parallel_blocks_give_the_same_report_as_one_process(tmp_path):
    rng = random.Random(1)
    rows = []
    for i in range(400):
        text = " ".join(rng.choice(["red", "green", "blue", "cat", "dog"]) for _ in range(30))
        rows.append(json.dumps({"prompt": f"q{i} mail a{i}@example.com", "completion": text}))
    rows[10] = rows[3]
    rows[50] = "{broken"
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(rows) + "\n")
    one = build_report(path, ReportOptions(workers=1)).to_dict()
    many = build_report(path, ReportOptions(workers=2, block_bytes=4096)).to_dict()
    assert many == one
    assert one["errors"] == [
        {"line": 51, "code": "invalid_json", "message": one["errors"][0]["message"]}
    ]
    assert [3 + 1, 10 + 1] in one["duplicates"]["exact"]["examples"]
    assert one["pii"]["by_kind"]["email"]["rows"] == 399
