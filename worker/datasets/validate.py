"""Row-level validation of chat fine-tuning JSONL. Pure logic: given lines, produce a report
with stable error codes and 1-based line numbers."""

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES = {"system", "user", "assistant", "tool"}
MAX_LINE_BYTES = 10 * 1024 * 1024
MAX_LISTED_ERRORS = 100


@dataclass(frozen=True)
class RowError:
    line: int
    code: str
    message: str


@dataclass
class ValidationReport:
    format: str = "chat"
    rows: int = 0
    valid_rows: int = 0
    bytes: int = 0
    errors: list[RowError] = field(default_factory=list)
    errors_by_code: Counter[str] = field(default_factory=Counter)

    @property
    def error_count(self) -> int:
        return sum(self.errors_by_code.values())

    def add_error(self, error: RowError) -> None:
        self.errors_by_code[error.code] += 1
        if len(self.errors) < MAX_LISTED_ERRORS:
            self.errors.append(error)

    def first_error_summary(self) -> str:
        e = self.errors[0]
        more = f" ({self.error_count - 1} more)" if self.error_count > 1 else ""
        return f"line {e.line}: {e.message} [{e.code}]{more}"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ValidationReport":
        return cls(
            format=raw["format"],
            rows=raw["rows"],
            valid_rows=raw["valid_rows"],
            bytes=raw["bytes"],
            errors=[RowError(**e) for e in raw["errors"]],
            errors_by_code=Counter(raw["errors_by_code"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "rows": self.rows,
            "valid_rows": self.valid_rows,
            "bytes": self.bytes,
            "error_count": self.error_count,
            "errors_by_code": dict(self.errors_by_code),
            "errors": [e.__dict__ for e in self.errors],
        }


def check_chat_row(row: Any) -> tuple[str, str] | None:
    """Return (code, message) for the first problem in a chat row, or None if it is valid."""
    if not isinstance(row, dict):
        return "not_an_object", f"expected a JSON object, got {type(row).__name__}"
    if "messages" not in row:
        return "missing_messages", "missing required key 'messages'"
    messages = row["messages"]
    if not isinstance(messages, list) or not messages:
        return "invalid_messages", "'messages' must be a non-empty array"
    has_assistant = False
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return "invalid_message", f"messages[{i}] must be an object"
        role = message.get("role")
        if role not in ROLES:
            return "unknown_role", f"messages[{i}].role {role!r} is not one of {sorted(ROLES)}"
        content = message.get("content")
        if content is None and role == "assistant" and message.get("tool_calls"):
            has_assistant = True
            continue
        if not isinstance(content, str):
            return "invalid_content", f"messages[{i}].content must be a string"
        if role in {"user", "assistant"} and not content.strip():
            return "empty_content", f"messages[{i}].content is empty"
        weight = message.get("weight", 1)
        if role == "assistant" and weight not in (0, 1):
            return "invalid_weight", f"messages[{i}].weight must be 0 or 1"
        has_assistant = has_assistant or (role == "assistant" and weight == 1)
    if not has_assistant:
        return "no_assistant_message", "no trainable assistant message"
    return None


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        yield from enumerate(f, start=1)


def validate_lines(lines: Iterable[tuple[int, bytes]]) -> ValidationReport:
    report = ValidationReport()
    for number, raw in lines:
        report.bytes += len(raw)
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        report.rows += 1
        problem = _check_line(raw)
        if problem:
            report.add_error(RowError(number, *problem))
        else:
            report.valid_rows += 1
    if report.rows == 0:
        report.add_error(RowError(0, "empty_file", "the file contains no rows"))
    return report


def _check_line(raw: bytes) -> tuple[str, str] | None:
    if len(raw) > MAX_LINE_BYTES:
        return "line_too_long", f"line is {len(raw)} bytes; the limit is {MAX_LINE_BYTES}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "invalid_utf8", f"not valid UTF-8 at byte {exc.start}"
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        return "invalid_json", f"not valid JSON ({exc.msg} at column {exc.colno})"
    return check_chat_row(row)


def validate_file(path: Path) -> ValidationReport:
    return validate_lines(iter_lines(path))
