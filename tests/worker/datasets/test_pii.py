import json

from worker.datasets.pii import find_pii, luhn_valid
from worker.datasets.report import ReportOptions, build_report


def row(text: str) -> dict:
    return {"prompt": "hello there", "completion": text}


def test_email_phone_and_card_found_with_line_numbers(tmp_path):
    rows = [
        row("nothing personal here"),
        row("write to jane.doe@example.com please"),
        row("call me at +1 (555) 123-4567 tomorrow"),
        row("my card is 4111 1111 1111 1111 thanks"),
        row("order 1234567812345678 shipped"),  # 16 digits, Luhn-invalid
    ]
    path = tmp_path / "pii.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pii = build_report(path, ReportOptions(workers=1)).to_dict()["pii"]
    assert pii["by_kind"] == {
        "email": {"rows": 1, "lines": [2]},
        "phone": {"rows": 1, "lines": [3]},
        "card_number": {"rows": 1, "lines": [4]},
    }
    assert pii["rows"] == 3


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("1234567812345678")
    assert not luhn_valid("4111111111111112")


def test_luhn_invalid_sixteen_digits_is_not_a_card():
    assert list(find_pii("ref 1234567812345678")) == []
    assert list(find_pii("ref 1234-5678-1234-5678")) == []


def test_dates_are_not_phones():
    assert list(find_pii("on 2024-01-31 and 31.01.2024")) == []


def test_number_runs_are_number_run_matches():
    from worker.datasets.pii import NUMBER_RUN, number_runs

    texts = [
        "+(415) 555 1234 x",
        "(+1) 5551234567",
        "a+(12345678)",
        "++12345678",
        "((12345678",
        "call 1234567 8901234 now",
        "12345678+(87654321) and 4111 1111 1111 1111.",
        "+",
        "dates 2024-01-02 and 01.02.2024, ids 123456789012",
    ]
    for text in texts:
        assert list(number_runs(text)) == [m.group() for m in NUMBER_RUN.finditer(text)]
