"""The CLI's report summary: known keys on their own lines, anything else printed as is."""

from app.files.summary import has_errors, summary_lines

REPORT = {
    "file_id": "file-1",
    "status": "error",
    "report": {
        "format": "chat",
        "rows": 10,
        "valid_rows": 8,
        "bytes": 900,
        "error_count": 2,
        "errors_by_code": {"invalid_json": 1, "empty_content": 1},
        "errors": [
            {"line": 3, "code": "invalid_json", "message": "not valid JSON"},
            {"line": 7, "code": "empty_content", "message": "messages[1].content is empty"},
        ],
        "token_stats": {"min": 3, "max": 812, "mean": 120.25},
        "duplicates": 4,
        "warnings": [{"line": 9, "code": "long_row"}],
        "compression": "gzip",
        "contamination": None,
        "pii": {"rows": 0, "by_kind": {}},
        "sample": [{"line": n, "row": {"messages": ["x" * 500]}} for n in range(10)],
    },
}


def test_known_keys_and_errors_by_code_with_their_first_lines():
    text = "\n".join(summary_lines(None, REPORT))
    assert "format: chat   rows: 10   valid rows: 8" in text
    assert "errors: 2" in text
    assert "invalid_json × 1\n    line 3: not valid JSON" in text
    assert "empty_content × 1\n    line 7: messages[1].content is empty" in text


def test_unknown_keys_are_printed_generically():
    lines = summary_lines(None, REPORT)
    assert "token_stats: min=3, max=812, mean=120.2" in lines
    assert "duplicates: 4" in lines and "compression: gzip" in lines
    assert "warnings: 1" in lines and '  - {"line": 9, "code": "long_row"}' in lines
    assert "contamination: none" in lines and "pii:" in lines and "  by_kind: none" in lines


def test_long_lists_and_values_are_cut_short():
    lines = summary_lines(None, REPORT)
    start = lines.index("sample: 10")
    shown = lines[start + 1 : start + 5]
    assert [line.startswith("  - ") for line in shown] == [True, True, True, False]
    assert shown[3] == "  … 7 more"
    assert all(len(line) <= 170 for line in shown)


def test_errors_decide_the_exit_code():
    assert has_errors(REPORT)
    clean = {"status": "processed", "report": {"error_count": 0}}
    assert not has_errors(clean)
    assert not has_errors({"status": "uploaded", "report": None})


def test_a_file_still_validating_says_so():
    lines = summary_lines(None, {"file_id": "file-2", "status": "uploaded", "report": None})
    assert lines[-1].startswith("no report yet")
