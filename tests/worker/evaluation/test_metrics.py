"""Per-row metrics and their aggregates on hand-made outputs."""

import pytest

from worker.evaluation.metrics import (
    METRICS,
    EvalRow,
    ScoredRow,
    aggregate,
    classification_report,
    is_refusal,
    normalize_text,
    parse_json,
    score_row,
)

ASK = [{"role": "user", "content": "Item 3 is blue. Answer as JSON."}]
SCHEMA = {
    "type": "object",
    "properties": {"item": {"type": "integer"}, "colour": {"type": "string"}},
    "required": ["item", "colour"],
}


def row(expected, tags=("task",), **checks) -> EvalRow:  # type: ignore[no-untyped-def]
    return EvalRow(messages=ASK, expected=expected, tags=tuple(tags), checks=checks)


def test_the_registry_holds_every_row_metric():
    assert set(METRICS) == {
        "exact_match",
        "normalized_match",
        "fuzzy_similarity",
        "json_valid",
        "json_schema_valid",
        "field_accuracy",
        "label_accuracy",
        "refusal_correct",
    }


def test_text_answers_exact_normalised_and_fuzzy():
    r = row("The Blue Whale.")
    assert score_row("The Blue Whale.", r)["exact_match"] == 1.0
    scores = score_row("  blue whale ", r)
    assert scores["exact_match"] == 0.0 and scores["normalized_match"] == 1.0
    assert 0.5 < scores["fuzzy_similarity"] < 1.0
    assert "json_valid" not in scores and "field_accuracy" not in scores
    assert score_row("pizza", r)["fuzzy_similarity"] < 0.3


def test_json_answers_validity_schema_and_per_field_accuracy():
    r = row({"item": 3, "colour": "blue"}, json_schema=SCHEMA)
    perfect = score_row('{"colour": "blue", "item": 3}', r)
    assert perfect["exact_match"] == 1.0 and perfect["json_valid"] == 1.0
    assert perfect["json_schema_valid"] == 1.0 and perfect["field_accuracy"] == 1.0
    half = score_row('```json\n{"item": 4, "colour": "blue"}\n```', r)
    assert half["json_valid"] == 1.0 and half["field_accuracy"] == 0.5
    assert half["exact_match"] == 0.0
    wrong_type = score_row('{"item": "three", "colour": "blue"}', r)
    assert wrong_type["json_valid"] == 1.0 and wrong_type["json_schema_valid"] == 0.0
    prose = score_row("It is blue.", r)
    assert prose["json_valid"] == 0.0 and prose["json_schema_valid"] == 0.0
    assert prose["field_accuracy"] == 0.0


def test_parse_json_and_normalize_text():
    assert parse_json(" [1, 2] ") == (True, [1, 2])
    assert parse_json("{'a': 1}") == (False, None)
    assert normalize_text("  Café,  the  ANSWER! ") == "cafe answer"


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("I cannot provide instructions for making weapons.", True),
        ("As an AI, I must decline.", True),
        ("I won’t assist with that request.", True),
        ("Sure! Paris is the capital of France.", False),
        ("The cannot-fail test is green.", False),
    ],
)
def test_refusal_detection(text, refusal):
    assert is_refusal(text) is refusal


def test_safety_probes_score_refusing_and_answering():
    harmful = row(None, ("safety",), should_refuse=True)
    benign = row("Paris", ("safety",), should_refuse=False)
    assert score_row("I can't help with that.", harmful)["refusal_correct"] == 1.0
    assert score_row("Here is how: ...", harmful)["refusal_correct"] == 0.0
    assert score_row("Paris.", benign)["refusal_correct"] == 1.0
    assert score_row("I'm sorry, I cannot answer that.", benign)["refusal_correct"] == 0.0


def test_classification_report_accuracy_and_per_label_f1():
    report = classification_report(
        [("spam", "spam"), ("spam", "ham"), ("ham", "ham"), ("ham", "ham")]
    )
    assert report["accuracy"] == 0.75
    assert report["per_label"]["spam"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert report["per_label"]["ham"]["f1"] == pytest.approx(0.8)
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_aggregate_by_tag_with_classification_and_refusal():
    rows = [
        (row("spam", ("task",), label="spam"), "Spam"),
        (row("ham", ("task",), label="ham"), "spam"),
        (row({"a": 1}, ("regression",)), '{"a": 1}'),
        (row({"a": 1}, ("regression",)), "nope"),
        (row(None, ("safety",), should_refuse=True), "I cannot help with that."),
        (row("4", ("safety",), should_refuse=False), "I'm sorry, I can't answer that."),
    ]
    scored = [ScoredRow(r, out, score_row(out, r)) for r, out in rows]
    agg = aggregate(scored)
    assert agg["rows"] == 6
    assert agg["by_tag"]["regression"]["json_valid"] == {"mean": 0.5, "rows": 2}
    assert agg["by_tag"]["task"]["label_accuracy"] == {"mean": 0.5, "rows": 2}
    assert agg["classification"]["accuracy"] == 0.5
    assert agg["refusal"] == {
        "should_refuse_rows": 1,
        "refusal_rate": 1.0,
        "should_answer_rows": 1,
        "answer_rate": 0.0,
    }
    assert agg["overall"]["refusal_correct"] == {"mean": 0.5, "rows": 2}
