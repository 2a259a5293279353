import json

from worker.datasets.advice import is_refusal, readiness_advice
from worker.datasets.report import ReportOptions, build_report


def codes(report):
    return [a["code"] for a in readiness_advice(report)]


def test_few_rows_get_few_shot_advice():
    advice = readiness_advice({"valid_rows": 50, "refusal_rows": 3})
    assert [a["code"] for a in advice] == ["few_examples"]
    assert "few-shot" in advice[0]["message"] and "50" in advice[0]["message"]


def test_enough_rows_with_refusals_get_no_advice():
    assert codes({"valid_rows": 500, "refusal_rows": 10}) == []


def test_no_refusals_is_said():
    assert codes({"valid_rows": 500, "refusal_rows": 0}) == ["no_refusals"]


def test_refusal_detection():
    assert is_refusal("I'm sorry, but I can't help with that.")
    assert is_refusal("I don't know the answer.")
    assert not is_refusal("Paris is the capital of France.")


def test_report_advice_end_to_end(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        "".join(
            json.dumps({"prompt": f"question {i}", "completion": f"answer {i}"}) + "\n"
            for i in range(10)
        )
    )
    report = build_report(path, ReportOptions(workers=1)).to_dict()
    assert report["refusal_rows"] == 0
    assert [a["code"] for a in report["advice"]] == ["few_examples", "no_refusals"]


def test_report_counts_refusals(tmp_path):
    rows = [
        {"prompt": "q", "completion": "I cannot help with that."},
        {"prompt": "q2", "completion": "Sure."},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = build_report(path, ReportOptions(workers=1)).to_dict()
    assert report["refusal_rows"] == 1
    assert "no_refusals" not in [a["code"] for a in report["advice"]]
