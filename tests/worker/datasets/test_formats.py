import json

import pytest

from worker.datasets.formats import (
    PreferenceRowError,
    RowFormat,
    detect_format,
    to_chat_messages,
)
from worker.datasets.validate import validate_lines

CHAT = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
PC = {"prompt": "p", "completion": "c"}
INSTR = {"instruction": "do it", "input": "data", "output": "done"}
PREF_OPENAI = {
    "input": {"messages": [{"role": "user", "content": "q"}]},
    "preferred_output": [{"role": "assistant", "content": "good"}],
    "non_preferred_output": [{"role": "assistant", "content": "bad"}],
}
PREF_TRL = {"prompt": "q", "chosen": "good", "rejected": "bad"}


def numbered(*rows):
    return [(i, json.dumps(r).encode() + b"\n") for i, r in enumerate(rows, start=1)]


@pytest.mark.parametrize(
    "row,fmt",
    [
        (CHAT, RowFormat.CHAT),
        (PC, RowFormat.PROMPT_COMPLETION),
        (INSTR, RowFormat.INSTRUCTION),
        (PREF_OPENAI, RowFormat.PREFERENCE),
        (PREF_TRL, RowFormat.PREFERENCE),
    ],
)
def test_detect_format(row, fmt):
    assert detect_format(row) is fmt
    report = validate_lines(numbered(row, row))
    assert report.format == fmt.value
    assert (report.valid_rows, report.error_count) == (2, 0)


def test_unknown_keys_detect_nothing():
    assert detect_format({"text": "hello"}) is None


def test_mixed_formats_error_names_lines():
    report = validate_lines(numbered(CHAT, PC, CHAT, INSTR))
    assert report.format == "chat"
    assert report.errors_by_code == {"mixed_formats": 2}
    assert [(e.line, e.code) for e in report.errors] == [(2, "mixed_formats"), (4, "mixed_formats")]
    assert "prompt_completion" in report.errors[0].message


def test_file_format_is_the_first_rows():
    report = validate_lines(numbered(PC, CHAT))
    assert report.format == "prompt_completion"
    assert [(e.line, e.code) for e in report.errors] == [(2, "mixed_formats")]


def test_chat_rows_convert_to_themselves():
    assert to_chat_messages(CHAT, RowFormat.CHAT) == CHAT["messages"]


def test_prompt_completion_converts_to_user_and_assistant():
    assert to_chat_messages(PC, RowFormat.PROMPT_COMPLETION) == [
        {"role": "user", "content": "p"},
        {"role": "assistant", "content": "c"},
    ]


def test_instruction_with_input_joins_them_with_a_blank_line():
    assert to_chat_messages(INSTR, RowFormat.INSTRUCTION) == [
        {"role": "user", "content": "do it\n\ndata"},
        {"role": "assistant", "content": "done"},
    ]


def test_instruction_with_blank_input_is_the_instruction_alone():
    row = {"instruction": "do it", "input": "  ", "output": "done"}
    assert to_chat_messages(row, RowFormat.INSTRUCTION)[0] == {"role": "user", "content": "do it"}


def test_preference_rows_are_refused_for_sft():
    with pytest.raises(PreferenceRowError):
        to_chat_messages(PREF_TRL, RowFormat.PREFERENCE)
