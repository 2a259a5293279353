from dataclasses import dataclass

from app.ratelimits.bucket import Limits


@dataclass(frozen=True)
class ServingTarget:
    """What a request's `model` resolved to, within its tenant."""

    tenant_id: str
    public_name: str  # what the tenant asked for and sees in responses
    served_name: str  # what vLLM knows it as: the adapter id or the base model id
    kind: str  # "base" | "adapter" | "alias" | "checkpoint"
    base_model: str
    limits: Limits
    adapter_id: str | None = None
    adapter_path: str | None = None
    system_prompt: str | None = None

    @property
    def routing_key(self) -> str | None:
        """Adapters stick to a replica (loaded once); the base model goes anywhere."""
        return self.served_name if self.adapter_path else None


@dataclass(frozen=True)
class ServedRequest:
    """One completed inference request, as the usage meter and the completion log see it."""

    tenant_id: str
    model: str
    served_model: str
    adapter_id: str | None
    completion_id: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    finished_at: float
