"""`loraplex up`: run the whole platform on one machine — migrations, the vLLM server, a CPU
and a GPU-queue Celery worker, celery beat, and the API (which serves the web UI). Every
process is a plain command, the same ones docker-compose.yml runs; logs go to var/logs/."""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from app.catalog.catalog import get_base_model
from app.config import ROOT, Settings
from app.kit.http_limits import PROTOCOL as HEADER_LIMITED_PROTOCOL

BIN = Path(sys.executable).parent


def vllm_command(settings: Settings, url_: str | None = None) -> list[str]:
    entry = get_base_model(settings.serve_model)
    if entry is None:
        raise SystemExit(f"LORAPLEX_SERVE_MODEL={settings.serve_model} is not in the catalog")
    url = urlparse(url_ or settings.vllm_url)
    return [
        str(settings.vllm_python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(entry.local_path),
        "--served-model-name",
        entry.id,
        "--host",
        url.hostname or "127.0.0.1",
        "--port",
        str(url.port or 8001),
        "--enable-lora",
        "--max-loras",
        str(settings.vllm_max_loras),
        "--max-lora-rank",
        str(settings.vllm_max_lora_rank),
        "--max-cpu-loras",
        str(settings.vllm_max_cpu_loras),
        "--max-model-len",
        str(settings.vllm_max_model_len),
    ]


def worker_command(queue: str) -> list[str]:
    return [
        str(BIN / "celery"),
        "-A",
        "worker.celery_app",
        "worker",
        "-Q",
        queue,
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
        "--hostname",
        f"{queue}@%h",
    ]


def beat_command(settings: Settings) -> list[str]:
    schedule = settings.data_dir / "celerybeat-schedule"
    return [str(BIN / "celery"), "-A", "worker.celery_app", "beat", "--schedule", str(schedule)]


def api_command(settings: Settings) -> list[str]:
    return [
        str(BIN / "uvicorn"),
        "app.main:app",
        "--host",
        settings.api_host,
        "--port",
        str(settings.api_port),
        "--http",
        HEADER_LIMITED_PROTOCOL,
    ]


def _require_free_port(url: str) -> None:
    """Refuse to start a server whose port is taken: its health check would otherwise be
    answered by whatever already listens there."""
    parsed = urlparse(url)
    with socket.socket() as probe:
        if probe.connect_ex((parsed.hostname or "127.0.0.1", parsed.port or 80)) == 0:
            raise RuntimeError(f"{url} is already in use by another process")


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.settings.data_dir / "logs"

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    def start(self, name: str, command: list[str], extra_env: dict[str, str] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        env = {**self.env, **(extra_env or {})}
        self.processes[name] = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_vllm(self, url: str | None = None, name: str = "vllm") -> None:
        """One vLLM replica at `url` (default: LORAPLEX_VLLM_URL)."""
        self.start(
            name,
            vllm_command(self.settings, url),
            {
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
                "VLLM_CPU_KVCACHE_SPACE": self.env.get("VLLM_CPU_KVCACHE_SPACE", "2"),
                "HF_HUB_OFFLINE": "1",
            },
        )

    def start_workers(self) -> None:
        self.start("worker-cpu", worker_command("cpu"))
        self.start("worker-gpu", worker_command("gpu"))
        self.start("beat", beat_command(self.settings))

    def start_api(self) -> None:
        _require_free_port(self.api_url)
        self.start("api", api_command(self.settings))

    def wait_http(self, name: str, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.processes.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {proc.returncode}; see {self.log_dir / name}.log"
                )
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1)
        raise TimeoutError(f"{name} not ready at {url} after {timeout:.0f}s")

    def wait_ready(self, vllm_timeout: float = 300) -> None:
        if "api" in self.processes:
            self.wait_http("api", self.api_url + "/healthz", 60)
        if "vllm" in self.processes:
            self.wait_http("vllm", self.settings.vllm_url.rstrip("/") + "/health", vllm_timeout)

    def stop(self, names: list[str] | None = None) -> None:
        targets = names or list(self.processes)
        for name in targets:
            proc = self.processes.get(name)
            if proc and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name in targets:
            proc = self.processes.pop(name, None)
            if proc is None:
                continue
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
