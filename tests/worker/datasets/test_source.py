import gzip
import json
import os

from worker.datasets.report import ReportOptions, build_report
from worker.datasets.source import MAX_LINE_BYTES, is_gzip

GOOD = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def good_line(i: int = 0) -> bytes:
    row = {
        "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]
    }
    return json.dumps(row).encode() + b"\n"


def report(path):
    return build_report(path, ReportOptions(workers=1)).to_dict()


def test_gzip_is_detected_by_magic_bytes_not_name(tmp_path):
    path = tmp_path / "data.jsonl"  # no .gz suffix
    path.write_bytes(gzip.compress(b"".join(good_line(i) for i in range(3))))
    assert is_gzip(path)
    r = report(path)
    assert r["compression"] == "gzip"
    assert (r["rows"], r["valid_rows"], r["error_count"]) == (3, 3, 0)


def test_plain_file_named_gz_is_read_as_plain(tmp_path):
    path = tmp_path / "data.jsonl.gz"
    path.write_bytes(good_line(1) + good_line(2))
    assert not is_gzip(path)
    r = report(path)
    assert r["compression"] == "none"
    assert (r["valid_rows"], r["error_count"]) == (2, 0)


def test_truncated_gzip_is_reported_not_raised(tmp_path):
    # More than one 1 MiB read decompressed, so some whole reads succeed before the cut.
    pad = "y" * 1000
    rows = [
        json.dumps({"prompt": f"{i} {pad}", "completion": "a"}).encode() + b"\n"
        for i in range(1500)
    ]
    data = gzip.compress(b"".join(rows))
    path = tmp_path / "cut.jsonl"
    path.write_bytes(data[:-50])  # loses the end of the stream and its trailer
    r = report(path)
    assert r["errors_by_code"].get("truncated_gzip") == 1
    failure = next(e for e in r["errors"] if e["code"] == "truncated_gzip")
    # The lines read before the cut are counted and the failure names the line after them.
    assert 0 < r["valid_rows"] < 1500
    # At most one more error: the half line decompressed before the cut.
    assert r["error_count"] - 1 == r["rows"] - r["valid_rows"] <= 1
    assert failure["line"] == r["valid_rows"] + 1


def test_binary_garbage_gives_per_line_errors(tmp_path):
    rng = __import__("random").Random(7)
    garbage = bytes(rng.randrange(256) for _ in range(20_000))
    # Never starts with the gzip magic bytes.
    garbage = b"\x00" + garbage
    path = tmp_path / "garbage.jsonl"
    path.write_bytes(garbage)
    r = report(path)
    assert r["valid_rows"] == 0
    assert r["error_count"] == r["rows"] > 1
    assert all(e["line"] >= 1 for e in r["errors"])
    assert set(r["errors_by_code"]) <= {"invalid_json", "invalid_utf8", "not_an_object"}


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    r = report(path)
    assert r["errors_by_code"] == {"empty_file": 1}
    assert r["rows"] == 0


def test_blank_lines_only_is_empty_file(tmp_path):
    path = tmp_path / "blank.jsonl"
    path.write_bytes(b"\n\r\n  \n")
    assert report(path)["errors_by_code"] == {"empty_file": 1}


def test_fifty_megabyte_line_is_line_too_long_with_its_number(tmp_path):
    path = tmp_path / "huge.jsonl"
    big = 50 * 1024 * 1024
    with path.open("wb") as f:
        f.write(good_line(1))
        f.write(good_line(2))
        f.write(b'{"messages": "' + b"x" * big + b'"}\n')
        f.write(good_line(4))
    r = report(path)
    assert r["errors_by_code"] == {"line_too_long": 1}
    (error,) = r["errors"]
    assert error["line"] == 3
    assert str(MAX_LINE_BYTES) in error["message"]
    assert (r["rows"], r["valid_rows"]) == (4, 3)
    assert r["file_bytes"] == os.path.getsize(path)


def test_bom_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + good_line(1).rstrip(b"\n")
        + b"\r\n"
        + good_line(2).rstrip(b"\n")
        + b"\r\n"
    )
    r = report(path)
    assert (r["rows"], r["valid_rows"], r["error_count"]) == (2, 2, 0)


def test_small_truncated_gzip_keeps_rows_before_the_cut(tmp_path):
    # Less than one read's worth decompressed: the rows before the cut must not be lost
    # (nor the file called empty).
    rows = b"".join(good_line(i) for i in range(100))
    path = tmp_path / "cut.jsonl"
    path.write_bytes(gzip.compress(rows)[:-20])
    r = report(path)
    assert "empty_file" not in r["errors_by_code"]
    assert r["errors_by_code"]["truncated_gzip"] == 1
    assert 90 <= r["valid_rows"] < 100
    failure = next(e for e in r["errors"] if e["code"] == "truncated_gzip")
    assert failure["line"] == r["valid_rows"] + 1
