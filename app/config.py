"""Settings, read from the environment (and `.env`). Defaults are the embedded single-machine
setup: everything lives under `var/` and no external service is needed."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    # Errors and reprs must not carry secrets: a refused configuration would otherwise print
    # every value it was given (the secret key, database password, judge key) to the log.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    environment: str = Field("dev", alias="LORAPLEX_ENV")
    data_dir: Path = Field(ROOT / "var", alias="LORAPLEX_DATA_DIR")
    database_url: str = Field("", alias="DATABASE_URL", repr=False)
    redis_url: str = Field("", alias="REDIS_URL", repr=False)
    # OpenAI-compatible vLLM server(s) the gateway talks to: LORAPLEX_VLLM_URLS (comma-separated
    # replicas) wins over the single LORAPLEX_VLLM_URL.
    vllm_url: str = Field("http://127.0.0.1:8001", alias="LORAPLEX_VLLM_URL")
    vllm_urls_raw: str = Field("", alias="LORAPLEX_VLLM_URLS")
    # Seconds between replica health checks; an unhealthy replica is skipped until it answers.
    vllm_health_interval: float = Field(5.0, alias="LORAPLEX_VLLM_HEALTH_INTERVAL")
    # A replica with this many requests in flight spills new ones to the least loaded replica.
    vllm_spill_inflight: int = Field(16, alias="LORAPLEX_VLLM_SPILL_INFLIGHT")
    models_dir_override: Path | None = Field(None, alias="LORAPLEX_MODELS_DIR")
    catalog_path: Path | None = Field(None, alias="LORAPLEX_CATALOG")
    max_upload_bytes: int = Field(8 * 1024**3, alias="LORAPLEX_MAX_UPLOAD_BYTES")
    # Bodies read whole (every JSON endpoint); file uploads stream and use max_upload_bytes.
    max_json_body_bytes: int = Field(16 * 1024**2, alias="LORAPLEX_MAX_JSON_BODY_BYTES")
    # A request's line and headers together (uvicorn's httptools sets no limit of its own).
    max_header_bytes: int = Field(64 * 1024, alias="LORAPLEX_MAX_HEADER_BYTES")
    # Most bytes a gzip dataset may expand to: past it, ingestion stops with a file error.
    max_decompressed_bytes: int = Field(32 * 1024**3, alias="LORAPLEX_MAX_DECOMPRESSED_BYTES")
    # An upload whose body sends nothing for this long (seconds) is dropped, nothing stored.
    upload_idle_timeout: float = Field(60.0, alias="LORAPLEX_UPLOAD_IDLE_TIMEOUT")
    # How long the serving routes may reuse a resolved API key and its tenant's rate limits
    # (app/auth/callers.py); 0 reads them from the database on every request.
    auth_cache_seconds: float = Field(2.0, alias="LORAPLEX_AUTH_CACHE_SECONDS")
    # Once an upload has run that long, it must average at least this many bytes a second: a
    # client that sends a byte just often enough to dodge the idle timeout is dropped too.
    upload_min_bytes_per_second: int = Field(1024, alias="LORAPLEX_UPLOAD_MIN_BYTES_PER_SECOND")
    # A JSON body must arrive whole within this many seconds of the request's headers.
    json_body_timeout: float = Field(30.0, alias="LORAPLEX_JSON_BODY_TIMEOUT")
    # Python interpreter that runs training recipes (the worker's own by default).
    training_python: str = Field("", alias="LORAPLEX_TRAINING_PYTHON")
    # The vLLM server `loraplex up` starts: which base model it serves and its LoRA limits.
    vllm_python: Path = Field(ROOT / ".venv-vllm" / "bin" / "python", alias="LORAPLEX_VLLM_PYTHON")
    serve_model: str = Field("SmolLM2-135M-Instruct", alias="LORAPLEX_SERVE_MODEL")
    vllm_max_loras: int = Field(4, alias="LORAPLEX_VLLM_MAX_LORAS")
    vllm_max_cpu_loras: int = Field(16, alias="LORAPLEX_VLLM_MAX_CPU_LORAS")
    vllm_max_lora_rank: int = Field(64, alias="LORAPLEX_VLLM_MAX_LORA_RANK")
    vllm_max_model_len: int = Field(4096, alias="LORAPLEX_VLLM_MAX_MODEL_LEN")
    api_host: str = Field("127.0.0.1", alias="LORAPLEX_API_HOST")
    api_port: int = Field(8000, alias="LORAPLEX_API_PORT")
    # Per-tenant rate limits (defaults; the `rate_limits` table overrides them per tenant).
    # A Redis token bucket when REDIS_URL is set, an in-process one in the embedded mode.
    rate_limit_rpm: int = Field(600, alias="LORAPLEX_RATE_LIMIT_RPM")
    rate_limit_tpm: int = Field(1_000_000, alias="LORAPLEX_RATE_LIMIT_TPM")
    # Usage counters and completion records are written in batches this often (seconds).
    usage_flush_interval: float = Field(1.0, alias="LORAPLEX_USAGE_FLUSH_INTERVAL")
    # Drift: thumbs-down rate over the recent window vs the adapter's first week.
    drift_margin: float = Field(0.10, alias="LORAPLEX_DRIFT_MARGIN")
    drift_min_volume: int = Field(20, alias="LORAPLEX_DRIFT_MIN_VOLUME")
    metrics_enabled: bool = Field(True, alias="LORAPLEX_METRICS_ENABLED")
    # Eval runs call the serving gateway over HTTP (default: this API at api_host:api_port).
    gateway_url_override: str = Field("", alias="LORAPLEX_GATEWAY_URL")
    eval_concurrency: int = Field(4, alias="LORAPLEX_EVAL_CONCURRENCY")
    # LLM-as-judge: any OpenAI-compatible endpoint; empty base URL = the gateway itself.
    judge_base_url: str = Field("", alias="LORAPLEX_JUDGE_BASE_URL")
    judge_model: str = Field("SmolLM2-135M-Instruct", alias="LORAPLEX_JUDGE_MODEL")
    judge_api_key: str = Field("", alias="LORAPLEX_JUDGE_API_KEY", repr=False)
    # Promotion to an alias is refused when a regression-suite or safety metric drops by more
    # than this (absolute, on a 0-1 scale) versus the alias' current version.
    promotion_max_regression: float = Field(0.02, alias="LORAPLEX_PROMOTION_MAX_REGRESSION")
    # Training workers write a heartbeat on their running job this often (seconds); celery
    # beat requeues a running job whose heartbeat is older than job_stale_after (its worker
    # died), checking every job_reaper_interval, and fails it after job_max_attempts claims.
    job_heartbeat_interval: float = Field(10.0, alias="LORAPLEX_JOB_HEARTBEAT_INTERVAL")
    job_stale_after: float = Field(120.0, alias="LORAPLEX_JOB_STALE_AFTER")
    job_reaper_interval: float = Field(60.0, alias="LORAPLEX_JOB_REAPER_INTERVAL")
    job_max_attempts: int = Field(3, alias="LORAPLEX_JOB_MAX_ATTEMPTS")
    # A `queued` or `validating_files` job whose task message is in no broker queue and not
    # held by any worker (Redis restarted without persistence, a publish that failed) for
    # this long, seen by two sweeps, has its task sent again by the same beat sweep.
    job_lost_task_after: float = Field(60.0, alias="LORAPLEX_JOB_LOST_TASK_AFTER")
    # How long workers keep retrying a database write while the database is unreachable (a
    # restart, a failover) before giving up on the step.
    db_outage_grace: float = Field(120.0, alias="LORAPLEX_DB_OUTAGE_GRACE")
    # Training jobs one tenant may have running at once; more wait in `queued` (0: no limit).
    max_running_jobs_per_tenant: int = Field(4, alias="LORAPLEX_MAX_RUNNING_JOBS_PER_TENANT")
    # Pepper mixed into API-key hashes. Must be set outside dev.
    secret_key: str = Field("dev-insecure-secret", alias="LORAPLEX_SECRET_KEY", repr=False)

    @model_validator(mode="after")
    def _refuse_default_secret_outside_dev(self) -> "Settings":
        if self.environment not in {"dev", "test"} and self.secret_key == "dev-insecure-secret":
            raise ValueError("LORAPLEX_SECRET_KEY must be set when LORAPLEX_ENV is not dev/test")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'loraplex.db'}"

    @property
    def vllm_urls(self) -> list[str]:
        urls = [u.strip().rstrip("/") for u in self.vllm_urls_raw.split(",") if u.strip()]
        return urls or [self.vllm_url.rstrip("/")]

    @property
    def gateway_url(self) -> str:
        return (self.gateway_url_override or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def broker_url(self) -> str:
        # Without Redis, kombu's filesystem transport gives a server-less broker under var/.
        return self.redis_url or "filesystem://"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"

    @property
    def models_dir(self) -> Path:
        return self.models_dir_override or self.data_dir / "models"


@lru_cache
def get_settings() -> Settings:
    return Settings()
