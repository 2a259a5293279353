"""A short human summary of a file's validation report (`GET /v1/files/{id}/report`), for the
CLI. The known keys get their own lines; any other key the validator adds (token stats,
duplicates, warnings, …) is printed generically, so the summary keeps up with the report."""

import json
from typing import Any

from rich.console import Console

KNOWN_KEYS = {"format", "rows", "valid_rows", "bytes", "error_count", "errors_by_code", "errors"}
LINES_PER_CODE = 3
MAX_LIST_ITEMS = 3
MAX_VALUE_CHARS = 160


def has_errors(report: dict[str, Any]) -> bool:
    body = report.get("report") or {}
    return report.get("status") == "error" or bool(body.get("error_count"))


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _scalar(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _generic(key: str, value: Any, indent: int = 0) -> list[str]:
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return [f"{pad}{key}: none"]
        if all(not isinstance(v, (dict, list)) for v in value.values()):
            return [f"{pad}{key}: " + ", ".join(f"{k}={_scalar(v)}" for k, v in value.items())]
        lines = [f"{pad}{key}:"]
        for k, v in value.items():
            lines += _generic(str(k), v, indent + 1)
        return lines
    if isinstance(value, list):
        if not value:
            return [f"{pad}{key}: none"]
        lines = [f"{pad}{key}: {len(value)}"]
        lines += [f"{pad}  - {_scalar(item)}" for item in value[:MAX_LIST_ITEMS]]
        if len(value) > MAX_LIST_ITEMS:
            lines.append(f"{pad}  … {len(value) - MAX_LIST_ITEMS} more")
        return lines
    return [f"{pad}{key}: {_scalar(value)}"]


def summary_lines(file: dict[str, Any] | None, report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if file:
        lines.append(
            f"{file['id']}  {file.get('filename', '')}  {_size(int(file.get('bytes', 0)))}  "
            f"sha256 {str(file.get('sha256', ''))[:16]}…"
        )
    else:
        lines.append(str(report.get("file_id", "")))
    lines.append(f"status: {report.get('status')}")
    body: dict[str, Any] | None = report.get("report")
    if not body:
        lines.append("no report yet (validation has not finished)")
        return lines
    lines.append(
        f"format: {body.get('format', '?')}   rows: {body.get('rows', '?')}   "
        f"valid rows: {body.get('valid_rows', '?')}"
    )
    by_code: dict[str, int] = body.get("errors_by_code") or {}
    error_count = body.get("error_count", sum(by_code.values()))
    lines.append(f"errors: {error_count}")
    listed: list[dict[str, Any]] = body.get("errors") or []
    for code, count in sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {code} × {count}")
        for error in [e for e in listed if e.get("code") == code][:LINES_PER_CODE]:
            lines.append(f"    line {error.get('line')}: {error.get('message')}")
    for key, value in body.items():
        if key not in KNOWN_KEYS:
            lines += _generic(key, value)
    return lines


def print_summary(console: Console, file: dict[str, Any] | None, report: dict[str, Any]) -> None:
    for line in summary_lines(file, report):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
