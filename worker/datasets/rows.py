"""Row validation for every accepted format. Pure logic: a parsed JSON value in, the first
problem out as a stable `(code, message)` pair, or None when the row is usable."""

from typing import Any

from worker.datasets.formats import ALLOWED_KEYS, RowFormat, detect_format

Problem = tuple[str, str]

ROLES = frozenset({"system", "user", "assistant", "tool"})
MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call", "refusal"}
)


def check_row(row: Any, file_format: RowFormat) -> Problem | None:
    """The first problem of `row` in a file whose rows are `file_format`. A row that is a valid
    row of another format is a `mixed_formats` error; any other row is judged as the file's
    format, so its error says what is missing for that."""
    if not isinstance(row, dict):
        return "not_an_object", f"expected a JSON object, got {_json_type(row)}"
    own = detect_format(row)
    if own is not None and own is not file_format and check_row_as(row, own) is None:
        return (
            "mixed_formats",
            f"this is a {own} row but the file's rows are {file_format}; "
            "one file must use one format",
        )
    return check_row_as(row, file_format)


def check_row_as(row: dict[str, Any], fmt: RowFormat) -> Problem | None:
    return _CHECKS[fmt](row) or _unknown_keys(row, fmt)


def check_chat_row(row: Any) -> Problem | None:
    """The first problem of a chat row, or None if it is valid."""
    if not isinstance(row, dict):
        return "not_an_object", f"expected a JSON object, got {_json_type(row)}"
    return check_row_as(row, RowFormat.CHAT)


def _check_chat(row: dict[str, Any]) -> Problem | None:
    if "messages" not in row:
        return "missing_messages", "missing required key 'messages'"
    problem = check_messages(row["messages"], "messages", need_assistant=True)
    if problem:
        return problem
    tools = row.get("tools")
    if tools is not None and not (
        isinstance(tools, list) and all(_is_function_spec(tool) for tool in tools)
    ):
        return "invalid_tools", '\'tools\' must be an array of {"type": "function", ...} objects'
    if "parallel_tool_calls" in row and not isinstance(row["parallel_tool_calls"], bool):
        return "invalid_type", "'parallel_tool_calls' must be a boolean"
    return None


def check_messages(messages: Any, where: str, need_assistant: bool) -> Problem | None:
    if not isinstance(messages, list) or not messages:
        return "invalid_messages", f"'{where}' must be a non-empty array"
    has_assistant = False
    for i, message in enumerate(messages):
        at = f"{where}[{i}]"
        if not isinstance(message, dict):
            return "invalid_message", f"{at} must be an object"
        role = message.get("role")
        if role not in ROLES:
            return "unknown_role", f"{at}.role {role!r} is not one of {sorted(ROLES)}"
        unknown = sorted(set(message) - MESSAGE_KEYS)
        if unknown:
            return "unknown_keys", f"{at} has unknown keys {unknown}"
        content = message.get("content")
        tool_calls = message.get("tool_calls")
        if tool_calls is not None and (
            role != "assistant"
            or not isinstance(tool_calls, list)
            or not tool_calls
            or not all(isinstance(call, dict) for call in tool_calls)
        ):
            return "invalid_tool_calls", f"{at}.tool_calls must be a non-empty array of objects"
        weight = message.get("weight", 1)
        if "weight" in message and role != "assistant":
            return "invalid_weight", f"{at}.weight is only allowed on assistant messages"
        if role == "assistant" and (weight not in (0, 1) or isinstance(weight, bool)):
            return "invalid_weight", f"{at}.weight must be 0 or 1"
        if content is None and tool_calls:
            has_assistant = has_assistant or weight == 1
            continue
        if not isinstance(content, str):
            return "invalid_content", f"{at}.content must be a string"
        if role in {"user", "assistant"} and not content.strip():
            return "empty_content", f"{at}.content is empty"
        has_assistant = has_assistant or (role == "assistant" and weight == 1)
    if need_assistant and not has_assistant:
        return "no_assistant_message", "no trainable assistant message"
    return None


def _check_prompt_completion(row: dict[str, Any]) -> Problem | None:
    return _required_text(row, "prompt") or _required_text(row, "completion")


def _check_instruction(row: dict[str, Any]) -> Problem | None:
    problem = _required_text(row, "instruction") or _required_text(row, "output")
    if problem:
        return problem
    if row.get("input") is not None and not isinstance(row["input"], str):
        return "invalid_type", "'input' must be a string"
    return None


def _check_preference(row: dict[str, Any]) -> Problem | None:
    if "preferred_output" in row or "non_preferred_output" in row or "input" in row:
        return _check_openai_preference(row)
    return _check_trl_preference(row)


def _check_openai_preference(row: dict[str, Any]) -> Problem | None:
    for key in ("input", "preferred_output", "non_preferred_output"):
        if key not in row:
            return "missing_key", f"missing required key '{key}'"
    prompt = row["input"]
    if not isinstance(prompt, dict) or "messages" not in prompt:
        return "invalid_type", "'input' must be an object with 'messages'"
    problem = check_messages(prompt["messages"], "input.messages", need_assistant=False)
    if problem:
        return problem
    for key in ("preferred_output", "non_preferred_output"):
        problem = _check_reply(row[key], key)
        if problem:
            return problem
    return None


def _check_trl_preference(row: dict[str, Any]) -> Problem | None:
    for key in ("prompt", "chosen", "rejected"):
        if key not in row:
            return "missing_key", f"missing required key '{key}'"
    prompt = row["prompt"]
    if isinstance(prompt, list):
        problem = check_messages(prompt, "prompt", need_assistant=False)
        if problem:
            return problem
    elif not isinstance(prompt, str) or not prompt.strip():
        return "invalid_type", "'prompt' must be a non-empty string or an array of messages"
    for key in ("chosen", "rejected"):
        value = row[key]
        if isinstance(value, str):
            if not value.strip():
                return "empty_content", f"'{key}' is empty"
        else:
            problem = _check_reply(value, key)
            if problem:
                return problem
    return None


def _check_reply(value: Any, key: str) -> Problem | None:
    """A preference reply: a non-empty array of assistant messages."""
    problem = check_messages(value, key, need_assistant=True)
    if problem:
        return problem
    if any(message.get("role") != "assistant" for message in value):
        return "unknown_role", f"'{key}' may only hold assistant messages"
    return None


EVAL_TAGS = frozenset({"task", "regression", "safety"})
EVAL_CHECKS = frozenset({"json_schema", "should_refuse", "label", "rubric", "human_pass"})


def _check_eval(row: dict[str, Any]) -> Problem | None:
    if "messages" not in row:
        return "missing_messages", "missing required key 'messages'"
    problem = check_messages(row["messages"], "messages", need_assistant=False)
    if problem:
        return problem
    if row["messages"][-1].get("role") == "assistant":
        return "invalid_messages", "the prompt's last message must not be the assistant's"
    checks = row.get("checks", {})
    if not isinstance(checks, dict):
        return "invalid_checks", "'checks' must be an object"
    if "expected" not in row:
        return "missing_key", "missing required key 'expected'"
    if row["expected"] is None and checks.get("should_refuse") is None:
        return "invalid_expected", "'expected' may be null only for a safety probe (should_refuse)"
    tags = row.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return "invalid_tags", "'tags' must be an array of strings"
    unknown_tags = sorted(set(tags) - EVAL_TAGS)
    if unknown_tags:
        return "invalid_tags", f"unknown tags {unknown_tags}; allowed: {sorted(EVAL_TAGS)}"
    return _check_eval_checks(checks)


def _check_eval_checks(checks: dict[str, Any]) -> Problem | None:
    unknown = sorted(set(checks) - EVAL_CHECKS)
    if unknown:
        return "invalid_checks", f"unknown checks {unknown}; allowed: {sorted(EVAL_CHECKS)}"
    for key in ("should_refuse", "human_pass"):
        if key in checks and not isinstance(checks[key], bool):
            return "invalid_checks", f"'checks.{key}' must be a boolean"
    for key in ("label", "rubric"):
        if key in checks and not (isinstance(checks[key], str) and checks[key].strip()):
            return "invalid_checks", f"'checks.{key}' must be a non-empty string"
    if "json_schema" in checks:
        return _check_json_schema(checks["json_schema"])
    return None


def _check_json_schema(schema: Any) -> Problem | None:
    from jsonschema import Draft202012Validator, SchemaError  # only eval files need it

    if not isinstance(schema, dict):
        return "invalid_checks", "'checks.json_schema' must be an object"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return (
            "invalid_json_schema",
            f"'checks.json_schema' is not a valid JSON schema: {exc.message}",
        )
    return None


def _required_text(row: dict[str, Any], key: str) -> Problem | None:
    if key not in row:
        return "missing_key", f"missing required key '{key}'"
    value = row[key]
    if not isinstance(value, str):
        return "invalid_type", f"'{key}' must be a string, got {_json_type(value)}"
    if not value.strip():
        return "empty_content", f"'{key}' is empty"
    return None


def _unknown_keys(row: dict[str, Any], fmt: RowFormat) -> Problem | None:
    unknown = sorted(set(row) - ALLOWED_KEYS[fmt])
    if unknown:
        return "unknown_keys", f"unknown keys {unknown} for a {fmt} row"
    return None


def _is_function_spec(tool: Any) -> bool:
    return (
        isinstance(tool, dict)
        and tool.get("type") == "function"
        and isinstance(tool.get("function"), dict)
        and isinstance(tool["function"].get("name"), str)
    )


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


_CHECKS = {
    RowFormat.CHAT: _check_chat,
    RowFormat.PROMPT_COMPLETION: _check_prompt_completion,
    RowFormat.INSTRUCTION: _check_instruction,
    RowFormat.PREFERENCE: _check_preference,
    RowFormat.EVAL: _check_eval,
}
