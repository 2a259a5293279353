"""Row-level validation of fine-tuning JSONL: given lines, a report with the detected format,
stable error codes and 1-based line numbers. The full data-quality report (tokens, duplicates,
...) builds on it in worker/datasets/report.py."""

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from worker.datasets.formats import EVAL_PURPOSE, RowFormat, detect_format
from worker.datasets.rows import Problem, check_chat_row, check_row
from worker.datasets.source import (
    MAX_LINE_BYTES,
    UTF8_BOM,
    LineBlock,
    OversizedLine,
    ReadFailure,
    iter_pieces,
)

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_LISTED_ERRORS",
    "RowError",
    "ValidationReport",
    "check_chat_row",
    "check_lines",
    "parse_line",
    "validate_file",
    "validate_lines",
]

MAX_LISTED_ERRORS = 100
SNIFF_LINES = 1000


@dataclass(frozen=True)
class RowError:
    line: int
    code: str
    message: str


@dataclass
class ValidationReport:
    format: str = RowFormat.CHAT.value
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

    def merge(self, other: "ValidationReport") -> None:
        """Add the counts and errors of the next part of the same file."""
        self.rows += other.rows
        self.valid_rows += other.valid_rows
        self.bytes += other.bytes
        self.errors_by_code.update(other.errors_by_code)
        room = MAX_LISTED_ERRORS - len(self.errors)
        self.errors.extend(other.errors[: max(room, 0)])

    def first_error_summary(self) -> str:
        e = self.errors[0]
        more = f" ({self.error_count - 1} more)" if self.error_count > 1 else ""
        where = f"line {e.line}" if e.line else "file"
        return f"{where}: {e.message} [{e.code}]{more}"

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


def parse_line(raw: bytes) -> Any:
    """The JSON value of a non-blank line; raises LineProblem."""
    if len(raw) > MAX_LINE_BYTES:
        raise LineProblem(
            "line_too_long", f"line is {len(raw)} bytes; the limit is {MAX_LINE_BYTES}"
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if exc.msg.startswith("depth limit"):
            raise _too_deep() from None
    # orjson is strict where json is not (integers beyond 64 bits); ask json before refusing.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineProblem("invalid_utf8", f"not valid UTF-8 at byte {exc.start}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineProblem(
            "invalid_json", f"not valid JSON ({exc.msg} at column {exc.colno})"
        ) from None
    except RecursionError:  # `[[[[…` thousands deep: json recurses once per level
        raise _too_deep() from None


def _too_deep() -> "LineProblem":
    return LineProblem("too_deeply_nested", "the JSON is nested too deeply to read")


def checked_row(raw: bytes, fmt: RowFormat) -> tuple[Any, Problem | None]:
    """A non-blank line's JSON value and its problem as a row of `fmt` (None when valid)."""
    try:
        row = parse_line(raw)
        return row, check_row(row, fmt)
    except LineProblem as exc:
        return None, exc.problem


class LineProblem(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def problem(self) -> Problem:
        return self.code, self.message


def sniff_format(lines: Iterable[tuple[int, bytes]]) -> RowFormat:
    """The format of the first row whose keys announce one (chat when none does)."""
    for count, (_, raw) in enumerate(lines):
        if count >= SNIFF_LINES:
            break
        if not raw.strip():
            continue
        try:
            row = parse_line(raw)
        except LineProblem:
            continue
        fmt = detect_format(row) if isinstance(row, dict) else None
        if fmt is not None:
            return fmt
    return RowFormat.CHAT


def validate_lines(
    lines: Iterable[tuple[int, bytes]], file_format: RowFormat | None = None
) -> ValidationReport:
    """Validate a whole file given as (line number, bytes) pairs."""
    numbered = list(_without_bom(lines))
    report = check_lines(numbered, file_format or sniff_format(numbered))
    if report.rows == 0 and not report.error_count:  # an unreadable file says why
        add_empty_file_error(report)
    return report


def check_lines(lines: Iterable[tuple[int, bytes]], fmt: RowFormat) -> ValidationReport:
    """Validate some lines of a file whose rows are `fmt`."""
    report = ValidationReport(format=fmt.value)
    for number, raw in lines:
        report.bytes += len(raw)
        if not raw.strip():
            continue
        report.rows += 1
        _, problem = checked_row(raw, fmt)
        if problem:
            report.add_error(RowError(number, *problem))
        else:
            report.valid_rows += 1
    return report


def check_purpose(report: ValidationReport, purpose: str) -> None:
    """Eval rows belong in `evals` files and only there: a file of the wrong kind is refused
    as a whole, so a training file cannot be an eval set by mistake and vice versa."""
    is_eval = report.format == RowFormat.EVAL.value
    if purpose == EVAL_PURPOSE and not is_eval and report.valid_rows:
        report.add_error(
            RowError(
                0,
                "wrong_format",
                f"files of purpose '{EVAL_PURPOSE}' need eval rows "
                '({"messages": [...], "expected": ...}); these rows are ' + report.format,
            )
        )
    elif purpose != EVAL_PURPOSE and is_eval:
        report.add_error(
            RowError(
                0,
                "wrong_format",
                f"these are eval rows (they have 'expected'); upload them with purpose "
                f"'{EVAL_PURPOSE}'",
            )
        )


def add_empty_file_error(report: ValidationReport) -> None:
    report.add_error(RowError(0, "empty_file", "the file contains no rows"))


def _without_bom(lines: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    for number, raw in lines:
        yield number, raw.removeprefix(UTF8_BOM) if number == 1 else raw


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """The lines of a plain or gzip file, oversized lines left out."""
    for piece in iter_pieces(path):
        if isinstance(piece, LineBlock):
            yield from piece.lines()


def validate_file(path: Path) -> ValidationReport:
    """Row validation only (no tokenizer): what `job_file_error` needs."""
    fmt = sniff_format(iter_lines(path))
    report = ValidationReport(format=fmt.value)
    for piece in iter_pieces(path):
        if isinstance(piece, LineBlock):
            report.merge(check_lines(piece.lines(), fmt))
        elif isinstance(piece, OversizedLine):
            add_oversized_line(report, piece)
        elif isinstance(piece, ReadFailure):
            report.add_error(RowError(piece.line, piece.code, piece.message))
    if report.rows == 0 and not report.error_count:  # an unreadable file says why
        add_empty_file_error(report)
    return report


def add_oversized_line(report: ValidationReport, piece: OversizedLine) -> None:
    report.rows += 1
    report.bytes += piece.size
    report.add_error(
        RowError(
            piece.line,
            "line_too_long",
            f"line is {piece.size} bytes; the limit is {MAX_LINE_BYTES}",
        )
    )
