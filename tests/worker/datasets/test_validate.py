import json

import pytest

from worker.datasets.validate import MAX_LISTED_ERRORS, check_chat_row, validate_lines

GOOD = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def lines(*rows: bytes):
    return list(enumerate(rows, start=1))


def test_valid_rows_and_blank_lines():
    r = validate_lines(lines(json.dumps(GOOD).encode() + b"\r\n", b"\n", json.dumps(GOOD).encode()))
    assert (r.rows, r.valid_rows, r.error_count) == (2, 2, 0)


def test_bom_on_first_line_is_accepted():
    r = validate_lines(lines(b"\xef\xbb\xbf" + json.dumps(GOOD).encode()))
    assert r.error_count == 0


@pytest.mark.parametrize(
    "raw,code",
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'{"prompt": "x"}', "missing_messages"),
        (b'{"messages": []}', "invalid_messages"),
        (b'{"messages": [{"role": "wizard", "content": "x"}]}', "unknown_role"),
        (b'{"messages": [{"role": "user", "content": 3}]}', "invalid_content"),
        (b'{"messages": [{"role": "user", "content": "  "}]}', "empty_content"),
        (b'{"messages": [{"role": "user", "content": "q"}]}', "no_assistant_message"),
        (
            (
                b'{"messages": [{"role": "user", "content": "q"}, '
                b'{"role": "assistant", "content": "a", "weight": 0}]}'
            ),
            "no_assistant_message",
        ),
        (b"\xff\xfe", "invalid_utf8"),
    ],
)
def test_error_codes_carry_the_line_number(raw, code):
    r = validate_lines(lines(json.dumps(GOOD).encode(), raw))
    assert r.errors_by_code == {code: 1}
    assert r.errors[0].line == 2 and r.errors[0].code == code
    assert "line 2" in r.first_error_summary()


def test_empty_file_is_an_error():
    assert validate_lines([]).errors_by_code == {"empty_file": 1}


def test_listed_errors_are_capped_but_all_counted():
    r = validate_lines(lines(*[b"nope"] * (MAX_LISTED_ERRORS + 5)))
    assert len(r.errors) == MAX_LISTED_ERRORS and r.error_count == MAX_LISTED_ERRORS + 5


def test_assistant_tool_call_without_content_is_valid():
    row = {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
        ]
    }
    assert check_chat_row(row) is None


def test_report_round_trips_through_dict():
    from worker.datasets.validate import ValidationReport

    r = validate_lines(lines(b"nope", json.dumps(GOOD).encode()))
    again = ValidationReport.from_dict(r.to_dict())
    assert again.to_dict() == r.to_dict()
