"""LLM-as-judge: the prompt it sees, verdict parsing, agreement with human labels."""

import pytest

from worker.evaluation.judge import agreement, judge_messages, judge_row, parse_verdict
from worker.evaluation.metrics import EvalRow

ROW = EvalRow(
    messages=[{"role": "user", "content": "Capital of France?"}],
    expected="Paris",
    checks={"rubric": "Names the right city."},
)


def test_the_judge_sees_rubric_prompt_reference_and_answer():
    seen = []

    def complete(messages):  # type: ignore[no-untyped-def]
        seen.append(messages)
        return "PASS - it names Paris"

    assert judge_row(complete, ROW, "It is Paris.", rubric="ignored: the row has its own") == 1.0
    prompt = seen[0][-1]["content"]
    assert "Names the right city." in prompt and "Capital of France?" in prompt
    assert "Reference answer: Paris" in prompt and "It is Paris." in prompt
    assert "ignored" not in prompt


@pytest.mark.parametrize(
    ("text", "verdict"),
    [("PASS", True), ("fail.", False), ("Verdict: Fail, then pass", False), ("maybe", None)],
)
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) is verdict


def test_an_unparseable_verdict_scores_nothing():
    assert judge_row(lambda _: "I am not sure", ROW, "Lyon", None) is None
    messages = judge_messages(ROW, "Lyon", "x")
    assert messages[0]["role"] == "system"


def test_agreement_with_human_labels_is_chance_corrected():
    perfect = agreement([(True, True), (False, False)])
    assert perfect == {"rows": 2, "agreement": 1.0, "cohen_kappa": 1.0}
    always_pass = agreement([(True, True), (True, False), (True, True), (True, False)])
    assert always_pass["agreement"] == 0.5 and always_pass["cohen_kappa"] == 0.0
    assert agreement([]) == {"rows": 0, "agreement": None, "cohen_kappa": None}
