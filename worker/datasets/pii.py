"""Personal data that should not be in training rows: e-mail addresses, phone numbers, and card
numbers (13-19 digits that pass the Luhn check). Warnings, not errors: a reviewer decides."""

import re
from collections.abc import Iterator

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Runs of 8+ digits, maybe grouped by spaces, dots, dashes or parentheses: phone or card
# candidates, classified in Python (few per text, so cheap).
NUMBER_RUN = re.compile(r"\+?\(?\d[\d().\- ]{6,30}\d")
# NUMBER_RUN without its optional "+(": starting with a digit, `re` skips to digits quickly.
# It finds the same runs, as a run's prefix is never part of the run before it (which ends
# in a digit); `number_runs` adds the prefix back.
_NUMBER_CORE = re.compile(r"\d[\d().\- ]{6,30}\d")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}[./-]\d{2}[./-]\d{4}")
PHONE_DIGITS = range(8, 16)
CARD_DIGITS = range(13, 20)


def find_pii(text: str) -> Iterator[str]:
    """The kinds of personal data in `text` ("email", "card_number", "phone"), each at most once."""
    if "@" in text and EMAIL.search(text):
        yield "email"
    found: set[str] = set()
    for run in number_runs(text):
        kind = classify_number(run.rstrip(" .-"))
        if kind and kind not in found:
            found.add(kind)
            yield kind


def number_runs(text: str) -> Iterator[str]:
    """What `NUMBER_RUN.finditer(text)` matches."""
    for match in _NUMBER_CORE.finditer(text):
        start = match.start()
        if text[start - 2 : start] == "+(":
            start -= 2
        elif start and text[start - 1] in "+(":
            start -= 1
        yield text[start : match.end()]


def classify_number(run: str) -> str | None:
    digits = "".join(c for c in run if c.isdigit())
    if len(digits) in CARD_DIGITS and set(run) <= set("0123456789 -") and luhn_valid(digits):
        return "card_number"
    grouped = run.startswith("+") or any(c in run for c in " .-()")
    if grouped and len(digits) in PHONE_DIGITS and not DATE.fullmatch(run.strip()):
        return "phone"
    return None


def luhn_valid(digits: str) -> bool:
    if len(digits) not in CARD_DIGITS:
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0
