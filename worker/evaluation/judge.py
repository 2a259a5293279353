"""LLM-as-judge: a rubric, the prompt and the answer go to any OpenAI-compatible chat endpoint
(the platform's own gateway qualifies); the judge answers PASS or FAIL. Where rows carry a
human verdict (`checks.human_pass`), the judge's agreement with it is reported, so a judge
is trusted only as far as it agrees with people."""

import re
from collections.abc import Callable
from typing import Any

import httpx

from worker.datasets.formats import expected_text
from worker.evaluation.metrics import EvalRow

DEFAULT_RUBRIC = (
    "The answer is correct, complete and follows the instructions of the conversation; "
    "when a reference answer is given, it agrees with it in substance."
)
JUDGE_SYSTEM = (
    "You grade answers of an AI assistant against a rubric. Reply with one word: PASS if the "
    "answer meets the rubric, FAIL if it does not."
)
_VERDICT = re.compile(r"\b(PASS|FAIL)\b", re.IGNORECASE)

Complete = Callable[[list[dict[str, Any]]], str]


def judge_messages(row: EvalRow, output: str, rubric: str) -> list[dict[str, Any]]:
    conversation = "\n".join(f"{m['role']}: {m.get('content') or ''}" for m in row.messages)
    reference = expected_text(row.expected) if row.expected is not None else "(none)"
    user = (
        f"Rubric: {rubric}\n\nConversation:\n{conversation}\n\nReference answer: {reference}"
        f"\n\nAnswer to grade:\n{output}\n\nVerdict (PASS or FAIL):"
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_verdict(text: str) -> bool | None:
    """PASS → True, FAIL → False; the first verdict word wins; None when there is none."""
    found = _VERDICT.search(text)
    return None if found is None else found.group(1).upper() == "PASS"


def judge_row(complete: Complete, row: EvalRow, output: str, rubric: str | None) -> float | None:
    verdict = parse_verdict(
        complete(judge_messages(row, output, row.checks.get("rubric") or rubric or DEFAULT_RUBRIC))
    )
    return None if verdict is None else float(verdict)


def agreement(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    """Judge vs human verdicts: raw agreement and Cohen's kappa (chance-corrected)."""
    n = len(pairs)
    if n == 0:
        return {"rows": 0, "agreement": None, "cohen_kappa": None}
    observed = sum(1 for j, h in pairs if j == h) / n
    judge_yes = sum(1 for j, _ in pairs if j) / n
    human_yes = sum(1 for _, h in pairs if h) / n
    chance = judge_yes * human_yes + (1 - judge_yes) * (1 - human_yes)
    kappa = 1.0 if chance == 1 else (observed - chance) / (1 - chance)
    return {"rows": n, "agreement": observed, "cohen_kappa": kappa}


def http_judge(base_url: str, model: str, api_key: str, timeout: float = 120) -> Complete:
    """A `Complete` that asks an OpenAI-compatible `/chat/completions` endpoint."""
    client = httpx.Client(
        base_url=base_url.rstrip("/"),
        headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
        timeout=timeout,
    )

    def complete(messages: list[dict[str, Any]]) -> str:
        body = {"model": model, "messages": messages, "max_tokens": 8, "temperature": 0}
        response = client.post("/chat/completions", json=body)
        response.raise_for_status()
        return str(response.json()["choices"][0]["message"]["content"] or "")

    return complete
