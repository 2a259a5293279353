"""Property-based and example tests of the row validator and format conversion."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.datasets.formats import (
    PreferenceRowError,
    RowFormat,
    detect_format,
    preferred_conversation,
    to_chat_messages,
)
from worker.datasets.rows import check_row

text = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def chat_rows(draw: st.DrawFn) -> dict[str, Any]:
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(st.text(max_size=20))})
    for _ in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(text)})
        messages.append({"role": "assistant", "content": draw(text)})
    return {"messages": messages}


@given(chat_rows())
def test_well_formed_chat_rows_are_valid(row: dict[str, Any]) -> None:
    assert check_row(row, RowFormat.CHAT) is None


@given(text, text)
def test_prompt_completion_rows_are_valid_and_convert(prompt: str, completion: str) -> None:
    row = {"prompt": prompt, "completion": completion}
    assert detect_format(row) is RowFormat.PROMPT_COMPLETION
    assert check_row(row, RowFormat.PROMPT_COMPLETION) is None
    assert to_chat_messages(row, RowFormat.PROMPT_COMPLETION) == [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": completion},
    ]


@given(text, st.text(max_size=20), text)
def test_instruction_rows_are_valid_and_convert(instruction: str, extra: str, output: str) -> None:
    row = {"instruction": instruction, "input": extra, "output": output}
    assert check_row(row, RowFormat.INSTRUCTION) is None
    user, assistant = to_chat_messages(row, RowFormat.INSTRUCTION)
    assert user["content"].startswith(instruction) and assistant["content"] == output
    assert (extra in user["content"]) or not extra.strip()


@settings(max_examples=300)
@given(json_values, st.sampled_from(list(RowFormat)))
def test_any_json_value_gets_a_verdict_never_an_exception(value: Any, fmt: RowFormat) -> None:
    verdict = check_row(value, fmt)
    assert verdict is None or (isinstance(verdict[0], str) and isinstance(verdict[1], str))


@given(chat_rows(), st.sampled_from(["user", "assistant"]))
def test_blanking_a_turn_is_always_an_empty_content_error(row: dict[str, Any], role: str) -> None:
    index = next(i for i, m in enumerate(row["messages"]) if m["role"] == role)
    row["messages"][index]["content"] = "  "
    assert check_row(row, RowFormat.CHAT) == (
        "empty_content",
        f"messages[{index}].content is empty",
    )


@given(
    chat_rows(),
    st.text(min_size=1, max_size=10).filter(
        lambda k: k not in {"messages", "tools", "parallel_tool_calls"}
    ),
)
def test_unknown_top_level_keys_are_refused(row: dict[str, Any], key: str) -> None:
    row[key] = 1
    problem = check_row(row, RowFormat.CHAT)
    assert problem is not None and problem[0] in {"unknown_keys", "mixed_formats"}


@pytest.mark.parametrize(
    ("row", "code"),
    [
        ({"prompt": "p"}, "missing_key"),
        ({"prompt": "p", "completion": 3}, "invalid_type"),
        ({"prompt": "p", "completion": " "}, "empty_content"),
        ({"prompt": "p", "completion": "c", "extra": 1}, "unknown_keys"),
        ({"instruction": "i"}, "missing_key"),
        ({"instruction": "i", "output": "o", "input": 5}, "invalid_type"),
        ({"prompt": "p", "chosen": "a"}, "missing_key"),
        (
            {"input": {"messages": []}, "preferred_output": [], "non_preferred_output": []},
            "invalid_messages",
        ),
        (
            {
                "input": {"messages": [{"role": "user", "content": "q"}]},
                "preferred_output": [{"role": "user", "content": "a"}],
                "non_preferred_output": [{"role": "assistant", "content": "b"}],
            },
            "no_assistant_message",
        ),
    ],
)
def test_format_errors(row: dict[str, Any], code: str) -> None:
    fmt = detect_format(row)
    assert fmt is not None
    problem = check_row(row, fmt)
    assert problem is not None and problem[0] == code


def test_a_valid_row_of_another_format_is_a_mixed_formats_error() -> None:
    problem = check_row({"prompt": "p", "completion": "c"}, RowFormat.CHAT)
    assert problem is not None and problem[0] == "mixed_formats"


def test_both_preference_shapes_are_valid_and_refused_for_sft() -> None:
    openai = {
        "input": {"messages": [{"role": "user", "content": "q"}]},
        "preferred_output": [{"role": "assistant", "content": "good"}],
        "non_preferred_output": [{"role": "assistant", "content": "bad"}],
    }
    trl = {"prompt": "q", "chosen": "good", "rejected": "bad"}
    for row in (openai, trl):
        assert detect_format(row) is RowFormat.PREFERENCE
        assert check_row(row, RowFormat.PREFERENCE) is None
        assert preferred_conversation(row)[-1] == {"role": "assistant", "content": "good"}
        with pytest.raises(PreferenceRowError):
            to_chat_messages(row, RowFormat.PREFERENCE)


def test_tool_calls_and_tools_are_checked() -> None:
    call = {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    row = {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "content": "42", "tool_call_id": "1"},
            {"role": "assistant", "content": "It is 42."},
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    assert check_row(row, RowFormat.CHAT) is None
    assert check_row({**row, "tools": [{"name": "f"}]}, RowFormat.CHAT)[0] == "invalid_tools"  # type: ignore[index]
    row["messages"][1]["tool_calls"] = "nope"
    assert check_row(row, RowFormat.CHAT)[0] == "invalid_tool_calls"  # type: ignore[index]
