"""A job's training data as training will see it: with `drop_invalid`, only rows the
validator accepts; with `dedup`, only the first of each exact duplicate (the same row as the
report's duplicate check: equal canonical JSON). The rows kept are written, unchanged, to a
new plain JSONL file whose sha256 goes into the job's manifest with the counts dropped."""

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from worker.datasets.source import LineBlock, OversizedLine, ReadFailure, iter_pieces
from worker.datasets.text import row_digest
from worker.datasets.validate import checked_row, iter_lines, sniff_format

LISTED_LINES = 100


@dataclass
class PreparedDataset:
    sha256: str
    rows_in: int = 0
    rows_kept: int = 0
    dropped_invalid: int = 0
    dropped_duplicates: int = 0
    invalid_lines: list[int] = field(default_factory=list)  # the first LISTED_LINES
    duplicate_lines: list[int] = field(default_factory=list)
    unreadable_after_line: int | None = None  # a truncated gzip: rows past it were never read

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class NothingLeftToTrain(ValueError):
    pass


def prepare_dataset(
    source: Path, target: Path, *, drop_invalid: bool, dedup: bool
) -> PreparedDataset:
    """Write the rows kept from `source` to `target`. Raises ValueError on an invalid row when
    `drop_invalid` is off, and NothingLeftToTrain when no row is kept."""
    digest = hashlib.sha256()
    seen: set[int] = set()
    result = PreparedDataset(sha256="")
    # A name of its own: a validate task delivered twice (a resent lost task) may write the
    # same target at once; each writes its own file and the last atomic rename wins.
    tmp = target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tmp.open("wb") as out:
            for line, row, raw in _rows(source, drop_invalid, result):
                if dedup:
                    key = row_digest(orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
                    if key in seen:
                        result.dropped_duplicates += 1
                        _note(result.duplicate_lines, line)
                        continue
                    seen.add(key)
                data = raw.rstrip(b"\r\n") + b"\n"
                out.write(data)
                digest.update(data)
                result.rows_kept += 1
        if result.rows_kept == 0:
            raise NothingLeftToTrain(
                f"no row is left to train on: {result.dropped_invalid} invalid and "
                f"{result.dropped_duplicates} duplicate row(s) dropped"
            )
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)  # nothing half-written stays behind
        raise
    result.sha256 = digest.hexdigest()
    return result


def _rows(
    source: Path, drop_invalid: bool, result: PreparedDataset
) -> Iterator[tuple[int, Any, bytes]]:
    fmt = sniff_format(iter_lines(source))
    for piece in iter_pieces(source):
        if isinstance(piece, OversizedLine):
            result.rows_in += 1
            _invalid(result, piece.line, "line_too_long", drop_invalid)
        elif isinstance(piece, ReadFailure):
            # Not a row: the rest of the file cannot be read (a truncated gzip, say).
            if not drop_invalid:
                raise ValueError(f"line {piece.line}: {piece.message} [{piece.code}]")
            result.unreadable_after_line = piece.line
        elif isinstance(piece, LineBlock):
            for line, raw in piece.lines():
                if not raw.strip():
                    continue
                result.rows_in += 1
                row, problem = checked_row(raw, fmt)
                if problem:
                    _invalid(result, line, problem[0], drop_invalid)
                    continue
                yield line, row, raw


def _invalid(result: PreparedDataset, line: int, code: str, drop_invalid: bool) -> None:
    if not drop_invalid:
        raise ValueError(f"line {line}: invalid row [{code}]")
    result.dropped_invalid += 1
    _note(result.invalid_lines, line)


def _note(lines: list[int], line: int) -> None:
    if len(lines) < LISTED_LINES:
        lines.append(line)
