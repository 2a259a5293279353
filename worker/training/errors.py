"""Why a training run failed, as the job's error object `{"code", "message", "param"}`."""

from typing import Any

import torch


class TrainingFailure(RuntimeError):
    """A failure the recipe recognises and can explain; `code` goes into the job's error."""

    code = "training_failed"


class LossDiverged(TrainingFailure):
    code = "loss_diverged"


class BaseModelUnavailable(TrainingFailure):
    code = "base_model_unavailable"


OUT_OF_MEMORY = "out_of_memory"


def error_object(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, TrainingFailure):
        return {"code": exc.code, "message": str(exc), "param": None}
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {
            "code": OUT_OF_MEMORY,
            "message": (
                f"Training ran out of memory ({detail}); try a smaller batch_size or "
                "max_seq_length."
            ),
            "param": None,
        }
    return {"code": "training_failed", "message": f"{type(exc).__name__}: {exc}", "param": None}
