"""drop_invalid / dedup: the rows kept, the counts dropped and the final sha256."""

import gzip
import hashlib
import json

import pytest

from worker.datasets.prepare import NothingLeftToTrain, prepare_dataset


def chat(q: str, a: str) -> bytes:
    row = {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
    return json.dumps(row).encode() + b"\n"


def test_drops_invalid_rows_and_exact_duplicates_keeping_the_first(tmp_path):
    source = tmp_path / "train.jsonl"
    source.write_bytes(
        b"\xef\xbb\xbf"
        + chat("q1", "a1")
        + b"{oops\n"
        + chat("q2", "a2")
        + b"\n"
        + chat("q1", "a1")
        + b'{"messages": [{"role": "user", "content": "no answer"}]}\r\n'
        + chat("q3", "a3")
    )
    target = tmp_path / "out" / "prepared.jsonl"
    result = prepare_dataset(source, target, drop_invalid=True, dedup=True)

    kept = target.read_bytes()
    assert kept == chat("q1", "a1") + chat("q2", "a2") + chat("q3", "a3")
    assert result.sha256 == hashlib.sha256(kept).hexdigest()
    assert (result.rows_in, result.rows_kept) == (6, 3)
    assert (result.dropped_invalid, result.invalid_lines) == (2, [2, 6])
    assert (result.dropped_duplicates, result.duplicate_lines) == (1, [5])


def test_duplicates_are_the_same_json_whatever_the_key_order(tmp_path):
    source = tmp_path / "train.jsonl"
    a = b'{"prompt": "p", "completion": "c"}\n'
    b = b'{"completion": "c",   "prompt": "p"}\n'
    source.write_bytes(a + b)
    result = prepare_dataset(source, tmp_path / "p.jsonl", drop_invalid=False, dedup=True)
    assert (result.rows_kept, result.dropped_duplicates) == (1, 1)


def test_without_drop_invalid_an_invalid_row_is_an_error_naming_the_line(tmp_path):
    source = tmp_path / "train.jsonl"
    source.write_bytes(chat("q", "a") + b"[1, 2]\n")
    target = tmp_path / "p.jsonl"
    with pytest.raises(ValueError, match="line 2"):
        prepare_dataset(source, target, drop_invalid=False, dedup=True)
    assert not target.exists() and not list(tmp_path.glob("*.part"))


def test_two_writers_of_one_target_do_not_share_a_temporary_file(tmp_path):
    """A validate task delivered twice may prepare the same job's data at once: both
    succeed and the target holds the rows once."""
    from concurrent.futures import ThreadPoolExecutor

    source = tmp_path / "train.jsonl"
    source.write_bytes(b"".join(chat(f"q{i}", f"a{i}") for i in range(3000)))
    target = tmp_path / "p.jsonl"
    with ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(prepare_dataset, source, target, drop_invalid=False, dedup=True)
            for _ in range(2)
        ]
        first, second = (run.result() for run in runs)
    assert first.sha256 == second.sha256
    assert target.read_bytes() == source.read_bytes()
    assert not list(tmp_path.glob("*.part"))


def test_nothing_left_is_refused_and_writes_nothing(tmp_path):
    source = tmp_path / "train.jsonl"
    source.write_bytes(b"not json\n{}\n")
    target = tmp_path / "p.jsonl"
    with pytest.raises(NothingLeftToTrain, match="2 invalid"):
        prepare_dataset(source, target, drop_invalid=True, dedup=False)
    assert not target.exists() and not list(tmp_path.glob("*.part"))


def test_a_truncated_gzip_keeps_the_rows_read_before_the_cut(tmp_path):
    rows = b"".join(chat(f"question {i}", f"answer {i}") for i in range(2000))
    packed = gzip.compress(rows)
    source = tmp_path / "train.jsonl.gz"
    source.write_bytes(packed[: len(packed) // 2])
    result = prepare_dataset(source, tmp_path / "p.jsonl", drop_invalid=True, dedup=False)
    assert 0 < result.rows_kept < 2000
    assert result.unreadable_after_line is not None and result.dropped_invalid == 1
    # every kept row is a whole, valid row from the start of the file
    kept = (tmp_path / "p.jsonl").read_bytes().splitlines(keepends=True)
    assert kept == rows.splitlines(keepends=True)[: len(kept)]
