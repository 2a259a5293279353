"""Compression bombs, archives and JSON nesting bombs given as datasets: reading stops at the
decompressed-size limit with a file-level error, a zip archive is refused without being
opened, and a line nested thousands deep is one row error. Memory stays bounded throughout."""

import gzip
import io
import resource

import pytest

from app.config import get_settings
from tests.hostile import GOOD_LINE, gzip_bomb, nested, zip_of
from worker.datasets.report import ReportOptions, build_report
from worker.datasets.source import DecompressedTooLarge, open_stream

LIMIT = 64 * 1024 * 1024


@pytest.fixture
def limit(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(get_settings(), "max_decompressed_bytes", LIMIT)
    return LIMIT


def report(path, workers: int = 1):  # type: ignore[no-untyped-def]
    return build_report(path, ReportOptions(workers=workers)).to_dict()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_gzip_bomb_of_zeros_stops_at_the_limit(tmp_path, limit):
    path = tmp_path / "bomb.jsonl"
    expanded = gzip_bomb(path, 4)  # ~4 MB on disk, 4 GiB of zeros and no newline
    assert path.stat().st_size < 5 * 1024 * 1024 and expanded == 4 * 1024**3
    before = peak_rss_mib()
    r = report(path)
    grown = peak_rss_mib() - before
    assert r["compression"] == "gzip"
    assert r["errors_by_code"]["decompressed_too_large"] == 1
    failure = next(e for e in r["errors"] if e["code"] == "decompressed_too_large")
    assert str(limit) in failure["message"] and failure["line"] == 1
    assert r["valid_rows"] == 0
    assert grown < 100, f"peak memory grew {grown:.0f} MiB reading the bomb"


def test_a_bomb_of_valid_rows_keeps_the_rows_before_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(get_settings(), "max_decompressed_bytes", 1024 * 1024)
    path = tmp_path / "rows.jsonl"
    gzip_bomb(path, 1, line=GOOD_LINE)  # 1 GiB of valid rows
    r = report(path)
    full_rows = 1024 * 1024 // len(GOOD_LINE)
    # The whole rows before the limit are checked; the one it cuts is not a row error.
    assert r["valid_rows"] == r["rows"] == full_rows
    assert r["errors_by_code"] == {"decompressed_too_large": 1}
    assert r["errors"][0]["line"] == full_rows + 1


def test_a_gzip_file_under_the_limit_is_read_whole(tmp_path, limit):
    path = tmp_path / "ok.jsonl"
    path.write_bytes(gzip.compress(GOOD_LINE * 1000))
    r = report(path)
    assert (r["rows"], r["valid_rows"], r["error_count"]) == (1000, 1000, 0)


def test_training_readers_stop_at_the_limit_too(tmp_path):
    path = tmp_path / "bomb.jsonl"
    gzip_bomb(path, 1, line=GOOD_LINE)
    with (
        open_stream(path, max_decompressed=4 * 1024 * 1024) as raw,
        io.TextIOWrapper(raw, encoding="utf-8") as lines,
        pytest.raises(DecompressedTooLarge),
    ):
        for _ in lines:
            pass


@pytest.mark.parametrize(
    "payload",
    [GOOD_LINE * 100, bytes(256 * 1024 * 1024)],
    ids=["jsonl-in-a-zip", "zip-bomb"],
)
def test_a_zip_archive_is_refused_without_being_opened(tmp_path, payload):
    path = tmp_path / "train.jsonl"
    path.write_bytes(zip_of("train.jsonl", payload))
    before = peak_rss_mib()
    r = report(path)
    assert r["errors_by_code"] == {"unsupported_archive": 1}
    assert r["valid_rows"] == 0
    assert "zip archive" in r["errors"][0]["message"]
    assert peak_rss_mib() - before < 100


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("kind", ["list", "object"])
@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_a_json_nesting_bomb_line_is_one_row_error(tmp_path, workers, kind, depth):
    bomb = nested(depth, kind).encode() + b"\n"
    in_a_row = (
        b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": '
        + nested(depth, kind).encode()
        + b"}]}\n"
    )
    path = tmp_path / "deep.jsonl"
    path.write_bytes(GOOD_LINE + bomb + GOOD_LINE + in_a_row + GOOD_LINE)
    r = report(path, workers)
    assert (r["rows"], r["valid_rows"]) == (5, 3)
    assert r["errors_by_code"] == {"too_deeply_nested": 2}
    assert [e["line"] for e in r["errors"]] == [2, 4]
