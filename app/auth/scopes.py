"""What each API key scope may call. `all` may call everything; `inference` only what a
serving client needs: completions, the model list, feedback, and who it is."""

from typing import Literal

Scope = Literal["all", "inference"]
SCOPES: tuple[str, ...] = ("all", "inference")

INFERENCE_ROUTES = frozenset(
    {
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/{model_id:path}"),
        ("POST", "/v1/feedback"),
        ("GET", "/v1/me"),
        ("GET", "/v1/rate_limits"),
    }
)


def allows(scopes: list[str], method: str, route: str) -> bool:
    if "all" in scopes:
        return True
    return "inference" in scopes and (method, route) in INFERENCE_ROUTES
