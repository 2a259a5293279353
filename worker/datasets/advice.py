"""Readiness advice from the fine-tuning guide, from a finished report's figures."""

import re
from typing import Any

MIN_GOOD_EXAMPLES = 200
# Replies that decline or push back: a dataset with none teaches the model to always comply.
REFUSAL = re.compile(
    r"\b(?:I(?:'m| am) (?:sorry|afraid|unable|not able)|I can(?:not|'t|’t)|I won(?:'t|’t)"
    r"|I(?: do|')n(?:'t|’t) (?:know|have)|unable to (?:help|assist|comply)|as an AI)\b",
    re.IGNORECASE,
)


def is_refusal(reply: str) -> bool:
    return REFUSAL.search(reply[:400]) is not None


def readiness_advice(report: dict[str, Any]) -> list[dict[str, str]]:
    advice = []
    good = report["valid_rows"]
    if good < MIN_GOOD_EXAMPLES:
        advice.append(
            {
                "code": "few_examples",
                "message": (
                    f"Only {good} usable examples (fewer than ~{MIN_GOOD_EXAMPLES}). Try few-shot "
                    "prompting the base model first; fine-tune once you have a few hundred."
                ),
            }
        )
    if good and report.get("refusal_rows", 0) == 0:
        advice.append(
            {
                "code": "no_refusals",
                "message": (
                    "No refusals or hard negatives found. Add examples where the assistant "
                    "declines, asks for clarification or says it does not know, or the model "
                    "will learn to always comply."
                ),
            }
        )
    tokens = report.get("tokens") or {}
    if tokens.get("truncated_rows"):
        advice.append(
            {
                "code": "truncated_rows",
                "message": (
                    f"{tokens['truncated_rows']} rows are longer than max_seq_length "
                    f"({tokens['max_seq_length']} tokens) and will be cut; shorten them or raise "
                    "max_seq_length."
                ),
            }
        )
    duplicates = report.get("duplicates") or {}
    copies = duplicates.get("exact", {}).get("rows", 0) + duplicates.get("near", {}).get("rows", 0)
    if good and copies / good > 0.05:
        advice.append(
            {
                "code": "many_duplicates",
                "message": f"{copies} rows repeat or nearly repeat earlier rows; deduplicate them.",
            }
        )
    if (report.get("balance") or {}).get("warning"):
        advice.append({"code": "imbalanced_labels", "message": report["balance"]["warning"]})
    if (report.get("pii") or {}).get("rows"):
        advice.append(
            {
                "code": "personal_data",
                "message": "Rows contain e-mail addresses, phone or card numbers: review them.",
            }
        )
    return advice
