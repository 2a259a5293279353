"""The eval runner's pure parts: the prompt it sends and the run summary it stores."""

import json

import pytest

from app.models import EvalRun
from worker.evaluation.metrics import EvalRow, score_row
from worker.evaluation.runner import RowResult, eval_rows, prompt_messages, summarize

ASK = [{"role": "user", "content": "Item 1 is red."}]


def result(line: int, output: str | None, row: EvalRow, latency: float, error=None) -> RowResult:  # type: ignore[no-untyped-def]
    return RowResult(line, row, output, score_row(output or "", row), latency, 10, 5, error)


def test_system_prompt_then_few_shot_then_the_row():
    run = EvalRun(
        system_prompt="Answer in JSON.",
        few_shot=[{"role": "user", "content": "x"}, {"role": "assistant", "content": "{}"}],
    )
    messages = prompt_messages(run, EvalRow(messages=ASK, expected="{}"))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == "Answer in JSON." and messages[-1] == ASK[0]


def test_only_valid_rows_are_run(tmp_path):
    path = tmp_path / "e.jsonl"
    good = {"messages": ASK, "expected": "red"}
    path.write_text(json.dumps(good) + "\n\n{oops\n" + json.dumps({"expected": "x"}) + "\n")
    assert [line for line, _ in eval_rows(path)] == [1]


def test_summary_has_latency_percentiles_tokens_and_errors():
    row = EvalRow(messages=ASK, expected={"colour": "red"}, tags=("task",))
    results = [result(i, '{"colour": "red"}', row, float(i * 10)) for i in range(1, 11)]
    results.append(result(11, None, row, 0.0, error="context too long"))
    summary = summarize(results)
    assert summary["rows"] == 11 and summary["errors"] == 1
    assert summary["overall"]["json_valid"] == {"mean": pytest.approx(10 / 11), "rows": 11}
    assert summary["latency_ms"]["p50"] == pytest.approx(55.0)
    assert summary["latency_ms"]["p95"] == pytest.approx(95.5)
    assert summary["usage"]["requests"] == 10
    assert summary["usage"]["prompt_tokens_per_request"] == 10
    assert summary["judge"] is None
