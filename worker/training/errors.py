"""Why a training run failed, as the job's error object `{"code", "message", "param"}`."""

import errno
import shutil
from pathlib import Path
from typing import Any

import torch


class TrainingFailure(RuntimeError):
    """A failure the recipe recognises and can explain; `code` goes into the job's error."""

    code = "training_failed"


class LossDiverged(TrainingFailure):
    code = "loss_diverged"


class BaseModelUnavailable(TrainingFailure):
    code = "base_model_unavailable"


class StorageFull(TrainingFailure):
    code = "storage_full"


OUT_OF_MEMORY = "out_of_memory"
STORAGE_FULL = StorageFull.code
# Below this much free space after a failed write, the volume is taken to be full: torch.save
# on a full disk says only "unexpected pos 576 vs 534", with no errno to go by.
NEARLY_FULL_BYTES = 1024 * 1024
_NO_SPACE = ("No space left on device", "os error 28", "Disk quota exceeded")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def out_of_space(exc: BaseException, volume: Path | None = None) -> bool:
    """Whether `exc` comes from a write to a full volume: an ENOSPC/EDQUOT anywhere in its
    chain, a library's message that quotes one, or (for libraries that report neither) a
    volume with next to nothing left."""
    for link in _chain(exc):
        if isinstance(link, OSError) and link.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(marker in str(link) for marker in _NO_SPACE):
            return True
    if volume is None:
        return False
    try:
        return shutil.disk_usage(volume).free < NEARLY_FULL_BYTES
    except OSError:
        return False


def error_object(exc: BaseException, volume: Path | None = None) -> dict[str, Any]:
    """The job's error for `exc`; `volume` is where the run writes (checked for free space)."""
    if not isinstance(exc, TrainingFailure) and out_of_space(exc, volume):
        exc = StorageFull(
            "The job's storage ran out of space while training wrote its checkpoints or adapter "
            f"({type(exc).__name__}: {str(exc)[:200]}); free some space and create the job again."
        )
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
