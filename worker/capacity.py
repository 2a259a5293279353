"""What this host can train on: its GPUs (torch's CUDA device count, or LORAPLEX_WORKER_GPUS
on CPU hosts and in tests), their memory, and so the queues its training worker consumes
(`gpu`, `gpu.2` … `gpu.N`, and their memory classes `gpu.m24` …, app/kit/queue.py).

    python -m worker.capacity    # prints this host's capacity as JSON
"""

import json
import logging
import os
import shutil
import subprocess
import threading
from typing import Any

from redis.exceptions import RedisError

from app.kit import workers
from app.kit.queue import gpu_queues

log = logging.getLogger(__name__)

GPUS_ENV = "LORAPLEX_WORKER_GPUS"
GPU_MEMORY_ENV = "LORAPLEX_WORKER_GPU_MEMORY_GB"


def detected_gpus() -> int:
    override = os.environ.get(GPUS_ENV)
    if override:
        return int(override)
    import torch

    # Counts devices through NVML without initialising CUDA in this (forking) process.
    return int(torch.cuda.device_count())


def gpu_memory_bytes() -> list[int]:
    """Total memory of each GPU, from nvidia-smi (not torch: that would initialise CUDA in the
    worker process, which then forks its pool). Empty where there is no nvidia-smi.
    LORAPLEX_WORKER_GPU_MEMORY_GB stands in for it on CPU hosts and in tests."""
    override = os.environ.get(GPU_MEMORY_ENV)
    if override:
        return [int(float(override) * 2**30)] * max(detected_gpus(), 1)
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None or os.environ.get(GPUS_ENV):
        return []
    try:
        out = subprocess.run(
            [nvidia_smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [int(line) * 2**20 for line in out.split() if line.strip().isdigit()]


def capacity(hostname: str, queues: list[str] | None = None) -> dict[str, Any]:
    gpus = detected_gpus()
    memory = gpu_memory_bytes()
    per_gpu = min(memory) if memory else None
    return {
        "hostname": hostname,
        "gpus": gpus,
        "memory_per_gpu_bytes": per_gpu,
        "queues": queues if queues is not None else gpu_queues(gpus, per_gpu),
    }


if __name__ == "__main__":
    print(json.dumps(capacity(os.uname().nodename)))


class Advertiser:
    """Keeps this worker's entry in the Redis registry (app/kit/workers.py) alive from a
    daemon thread, and removes it on stop()."""

    def __init__(self, redis_url: str, entry: dict[str, Any]):
        self.entry = entry
        self._client = workers.redis_client(redis_url)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capacity-heartbeat", daemon=True)

    def start(self) -> None:
        workers.advertise(self._client, self.entry)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        workers.withdraw(self._client, self.entry["hostname"])

    def _run(self) -> None:
        while not self._stopped.wait(workers.HEARTBEAT_SECONDS):
            try:
                workers.advertise(self._client, self.entry)
            except RedisError:  # a blip must not kill the thread; a lasting one expires us
                log.warning("worker capacity not refreshed", exc_info=True)
