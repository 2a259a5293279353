"""The fine-tuning row formats Loraplex accepts, how a row's format is recognised, and the one
conversion from a row to chat messages that both the dataset report and the SFT loader use.

- chat: `{"messages": [...], "tools"?: [...], "parallel_tool_calls"?: bool}` (OpenAI);
- prompt_completion: `{"prompt": str, "completion": str}`;
- instruction: `{"instruction": str, "input"?: str, "output": str}` (alpaca);
- preference: OpenAI's `{"input": {"messages": [...]}, "preferred_output": [...],
  "non_preferred_output": [...]}` or `{"prompt", "chosen", "rejected"}` (TRL), for DPO;
- eval (files of purpose `evals`): `{"messages": [...prompt...], "expected": text or JSON,
  "tags"?: ["task" | "regression" | "safety"], "checks"?: {...}}`, never trained on.
"""

import json
from enum import StrEnum
from typing import Any

Message = dict[str, Any]


class RowFormat(StrEnum):
    CHAT = "chat"
    PROMPT_COMPLETION = "prompt_completion"
    INSTRUCTION = "instruction"
    PREFERENCE = "preference"
    EVAL = "eval"


# Top-level keys each format allows; a row with any other key is refused (`unknown_keys`).
ALLOWED_KEYS: dict[RowFormat, frozenset[str]] = {
    RowFormat.CHAT: frozenset({"messages", "tools", "parallel_tool_calls"}),
    RowFormat.PROMPT_COMPLETION: frozenset({"prompt", "completion"}),
    RowFormat.INSTRUCTION: frozenset({"instruction", "input", "output"}),
    RowFormat.PREFERENCE: frozenset(
        {"input", "preferred_output", "non_preferred_output", "prompt", "chosen", "rejected"}
    ),
    RowFormat.EVAL: frozenset({"messages", "expected", "tags", "checks"}),
}

# The file purpose each format belongs to: eval rows only in `evals` files, the rest only in
# `fine-tune` files.
EVAL_PURPOSE = "evals"


class PreferenceRowError(ValueError):
    """A preference (DPO) row was given where supervised chat examples are needed."""


class EvalRowError(ValueError):
    """An eval row (prompt + expected answer) was given where training examples are needed."""


def detect_format(row: dict[str, Any]) -> RowFormat | None:
    """The format a JSON object's keys announce, or None when they match none."""
    if "expected" in row:
        return RowFormat.EVAL
    if "messages" in row:
        return RowFormat.CHAT
    if "preferred_output" in row or "non_preferred_output" in row:
        return RowFormat.PREFERENCE
    if "chosen" in row or "rejected" in row:
        return RowFormat.PREFERENCE
    if "prompt" in row or "completion" in row:
        return RowFormat.PROMPT_COMPLETION
    if "instruction" in row or "output" in row:
        return RowFormat.INSTRUCTION
    return None


def to_chat_messages(row: dict[str, Any], fmt: RowFormat) -> list[Message]:
    """The conversation a valid supervised row trains on, as chat messages.

    Preference rows are refused: they pair two replies and are trained with DPO, not SFT.
    """
    if fmt is RowFormat.CHAT:
        messages: list[Message] = row["messages"]
        return messages
    if fmt is RowFormat.PROMPT_COMPLETION:
        return [
            {"role": "user", "content": row["prompt"]},
            {"role": "assistant", "content": row["completion"]},
        ]
    if fmt is RowFormat.INSTRUCTION:
        return [
            {"role": "user", "content": instruction_prompt(row)},
            {"role": "assistant", "content": row["output"]},
        ]
    if fmt is RowFormat.EVAL:
        raise EvalRowError("eval rows are for evaluation runs, not for training")
    raise PreferenceRowError(
        "preference rows (chosen/rejected pairs) are for preference training (DPO); "
        "supervised fine-tuning needs chat, prompt/completion or instruction rows"
    )


def instruction_prompt(row: dict[str, Any]) -> str:
    """Alpaca's user turn: the instruction, then the optional input after a blank line."""
    extra = row.get("input") or ""
    return f"{row['instruction']}\n\n{extra}" if extra.strip() else str(row["instruction"])


def preferred_conversation(row: dict[str, Any]) -> list[Message]:
    """The prompt followed by the preferred reply of a valid preference row (for statistics)."""
    if "preferred_output" in row:
        prompt: list[Message] = row["input"]["messages"]
        return [*prompt, *row["preferred_output"]]
    return [*_as_messages(row["prompt"], "user"), *_as_messages(row["chosen"], "assistant")]


def rejected_conversation(row: dict[str, Any]) -> list[Message]:
    if "non_preferred_output" in row:
        prompt: list[Message] = row["input"]["messages"]
        return [*prompt, *row["non_preferred_output"]]
    return [*_as_messages(row["prompt"], "user"), *_as_messages(row["rejected"], "assistant")]


def _as_messages(value: str | list[Message], role: str) -> list[Message]:
    return [{"role": role, "content": value}] if isinstance(value, str) else value


def conversation_for_stats(row: dict[str, Any], fmt: RowFormat) -> list[Message]:
    """The conversation the report measures: the training conversation, or for a preference
    row its preferred side (what a DPO run would also feed through the chat template)."""
    if fmt is RowFormat.PREFERENCE:
        return preferred_conversation(row)
    if fmt is RowFormat.EVAL:
        return [*row["messages"], {"role": "assistant", "content": expected_text(row["expected"])}]
    return to_chat_messages(row, fmt)


def expected_text(expected: Any) -> str:
    """An eval row's expected answer as the text a model would have to produce."""
    if isinstance(expected, str):
        return expected
    return "" if expected is None else json.dumps(expected, ensure_ascii=False)
