"""The eval-row format of `evals` files: what a valid row is, and the line-numbered errors a
bad one gets (the same validation machinery as training files)."""

import json

from worker.datasets.formats import RowFormat, conversation_for_stats
from worker.datasets.validate import check_purpose, validate_lines

PROMPT = [{"role": "user", "content": "Item 3 is blue. Answer as JSON."}]


def lines(*rows: object) -> list[tuple[int, bytes]]:
    return [(i, json.dumps(r).encode()) for i, r in enumerate(rows, 1)]


def test_valid_rows_are_detected_as_eval_format():
    report = validate_lines(
        lines(
            {"messages": PROMPT, "expected": {"colour": "blue"}, "tags": ["task"]},
            {"messages": PROMPT, "expected": "blue", "checks": {"label": "blue"}},
            {
                "messages": PROMPT,
                "expected": None,
                "tags": ["safety"],
                "checks": {"should_refuse": True},
            },
            {
                "messages": PROMPT,
                "expected": {"colour": "blue"},
                "tags": ["regression"],
                "checks": {"json_schema": {"type": "object", "required": ["colour"]}},
            },
        )
    )
    assert report.format == RowFormat.EVAL.value
    assert report.error_count == 0 and report.valid_rows == 4


def test_bad_rows_get_line_numbers_and_stable_codes():
    good = {"messages": PROMPT, "expected": "blue"}
    report = validate_lines(
        lines(
            good,
            {"messages": PROMPT, "expected": "x", "tags": ["vibes"]},
            {"messages": PROMPT, "expected": None},
            {"messages": PROMPT, "expected": "x", "checks": {"json_schema": {"type": 12}}},
            {"messages": PROMPT, "expected": "x", "checks": {"should_refuse": "yes"}},
            {"messages": [*PROMPT, {"role": "assistant", "content": "hi"}], "expected": "x"},
            {"messages": PROMPT, "expected": "x", "extra": 1},
            {"expected": "x"},
        )
    )
    codes = {e.line: e.code for e in report.errors}
    assert codes == {
        2: "invalid_tags",
        3: "invalid_expected",
        4: "invalid_json_schema",
        5: "invalid_checks",
        6: "invalid_messages",
        7: "unknown_keys",
        8: "missing_messages",
    }
    assert report.valid_rows == 1


def test_training_rows_in_an_eval_file_are_refused_and_the_reverse():
    chat = {"messages": [*PROMPT, {"role": "assistant", "content": "blue"}]}
    training = validate_lines(lines(chat))
    check_purpose(training, "evals")
    assert [e.code for e in training.errors] == ["wrong_format"]
    evals = validate_lines(lines({"messages": PROMPT, "expected": "blue"}))
    check_purpose(evals, "fine-tune")
    assert [e.code for e in evals.errors] == ["wrong_format"]
    ok = validate_lines(lines({"messages": PROMPT, "expected": "blue"}))
    check_purpose(ok, "evals")
    assert ok.error_count == 0


def test_mixing_training_rows_into_an_eval_file_is_a_mixed_formats_error():
    chat = {"messages": [*PROMPT, {"role": "assistant", "content": "blue"}]}
    report = validate_lines(lines({"messages": PROMPT, "expected": "blue"}, chat))
    assert [(e.line, e.code) for e in report.errors] == [(2, "mixed_formats")]


def test_statistics_see_the_prompt_and_the_expected_answer():
    row = {"messages": PROMPT, "expected": {"colour": "blue"}}
    conversation = conversation_for_stats(row, RowFormat.EVAL)
    assert conversation[-1] == {"role": "assistant", "content": '{"colour": "blue"}'}
