"""Eval run and decision report shapes (Loraplex extensions under /v1)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models import DecisionReport, EvalRun, EvalRunRow

MAX_SYSTEM_PROMPT = 32_000
MAX_FEW_SHOT_MESSAGES = 64


class FewShotMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(..., min_length=1, max_length=MAX_SYSTEM_PROMPT)


class Candidate(BaseModel):
    """What to evaluate: `model` is an alias, an `ft:` name or adapter id, or a base model;
    a system prompt and few-shot examples are put in front of every eval prompt."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., min_length=1, max_length=255)
    system_prompt: str | None = Field(None, max_length=MAX_SYSTEM_PROMPT)
    few_shot: list[FewShotMessage] = Field(default_factory=list, max_length=MAX_FEW_SHOT_MESSAGES)


class JudgeOptions(BaseModel):
    """Grade every answer with an LLM judge (PASS/FAIL against a rubric). The endpoint is the
    platform's setting (LORAPLEX_JUDGE_BASE_URL, default: this gateway)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, min_length=1, max_length=255)
    rubric: str | None = Field(None, min_length=1, max_length=4000)


class EvalRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    eval_file: str = Field(..., min_length=1, max_length=64)
    candidate: Candidate
    judge: JudgeOptions | None = None
    max_tokens: int = Field(256, ge=1, le=4096)
    seed: int = Field(0, ge=0, le=2**31 - 1)


class CandidatePublic(BaseModel):
    model: str
    alias: str | None
    adapter_id: str | None
    base_model: str
    system_prompt: str | None
    few_shot: list[dict[str, Any]]


class Progress(BaseModel):
    rows_done: int
    rows_total: int


class EvalRunPublic(BaseModel):
    id: str
    object: Literal["eval_run"] = "eval_run"
    eval_file: str
    candidate: CandidatePublic
    status: str
    progress: Progress
    metrics: dict[str, Any] | None
    judge: dict[str, Any] | None
    max_tokens: int
    seed: int
    decision_report_id: str | None
    error: dict[str, Any] | None
    created_at: int
    started_at: int | None
    finished_at: int | None

    @classmethod
    def of(cls, run: EvalRun) -> "EvalRunPublic":
        return cls(
            id=run.id,
            eval_file=run.eval_file_id,
            candidate=CandidatePublic(
                model=run.model,
                alias=run.alias,
                adapter_id=run.adapter_id,
                base_model=run.base_model,
                system_prompt=run.system_prompt,
                few_shot=run.few_shot,
            ),
            status=run.status,
            progress=Progress(rows_done=run.rows_done, rows_total=run.rows_total),
            metrics=run.metrics,
            judge=run.options.get("judge"),
            max_tokens=run.options["max_tokens"],
            seed=run.options["seed"],
            decision_report_id=run.decision_report_id,
            error=run.error,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
        )


class EvalRowUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class EvalRunRowPublic(BaseModel):
    object: Literal["eval_run.row"] = "eval_run.row"
    line: int
    tags: list[str]
    output: str | None
    scores: dict[str, float]
    latency_ms: float | None
    usage: EvalRowUsage
    error: str | None

    @classmethod
    def of(cls, row: EvalRunRow) -> "EvalRunRowPublic":
        return cls(
            line=row.line,
            tags=row.tags,
            output=row.output,
            scores=row.scores,
            latency_ms=row.latency_ms,
            usage=EvalRowUsage(
                prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens
            ),
            error=row.error,
        )


class EvalRunRowPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[EvalRunRowPublic]
    has_more: bool
    last_line: int | None


class DecisionReportCreate(BaseModel):
    """The baseline is the base model with `system_prompt` and `few_shot`; the fine-tune runs
    with `candidate_system_prompt` (none by default: it should have learnt the behaviour)."""

    model_config = ConfigDict(extra="forbid")

    eval_files: list[str] = Field(..., min_length=1, max_length=8)
    system_prompt: str | None = Field(None, max_length=MAX_SYSTEM_PROMPT)
    few_shot: list[FewShotMessage] = Field(default_factory=list, max_length=MAX_FEW_SHOT_MESSAGES)
    candidate_system_prompt: str | None = Field(None, max_length=MAX_SYSTEM_PROMPT)
    primary_metric: str | None = Field(None, min_length=1, max_length=64)
    judge: JudgeOptions | None = None
    max_tokens: int = Field(256, ge=1, le=4096)
    seed: int = Field(0, ge=0, le=2**31 - 1)


class DecisionReportPublic(BaseModel):
    id: str
    object: Literal["fine_tuning.job.decision_report"] = "fine_tuning.job.decision_report"
    fine_tuning_job_id: str
    adapter_id: str
    eval_files: list[str]
    status: str
    runs: list[dict[str, str]]
    report: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: int
    finished_at: int | None

    @classmethod
    def of(cls, report: DecisionReport, runs: list[EvalRun]) -> "DecisionReportPublic":
        return cls(
            id=report.id,
            fine_tuning_job_id=report.job_id,
            adapter_id=report.adapter_id,
            eval_files=report.eval_file_ids,
            status=report.status,
            runs=[
                {
                    "id": r.id,
                    "role": "fine_tune" if r.adapter_id else "baseline",
                    "eval_file": r.eval_file_id,
                    "status": r.status,
                }
                for r in runs
            ],
            report=report.report,
            error=report.error,
            created_at=report.created_at,
            finished_at=report.finished_at,
        )
