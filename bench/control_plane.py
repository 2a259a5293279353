"""Benchmark: control-plane reads under load, on this machine.

    python -m bench.control_plane --database postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
        --concurrency 1 4 16 32 --seconds 15

Starts the API exactly as `loraplex up` does (one uvicorn process) on a fresh schema in the
given database, seeds one tenant with 50 files, 20 jobs and their events, then for each
concurrency level runs that many closed-loop clients for `--seconds`, each sending a mix of
the reads a UI and an SDK make (file list, one file, job list, one job, a job's events,
models, me). Reports requests/s, p50/p95/p99 latency and errors per level, and the highest
throughput whose p99 stays under 100 ms. Bounded: loopback only, fixed duration per level.
"""

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
P99_TARGET_MS = 100.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reset_schema(database: str, data_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "LORAPLEX_DATA_DIR": str(data_dir),
        "LORAPLEX_ENV": "test",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/7"),
    }
    drop = (
        "from sqlalchemy import text; from app.db import get_engine\n"
        "with get_engine().begin() as c:\n"
        "    c.execute(text('DROP SCHEMA public CASCADE')); c.execute(text('CREATE SCHEMA public'))"
    )
    subprocess.run([sys.executable, "-c", drop], env=env, check=True, cwd=ROOT)
    upgrade = [sys.executable, "-c", "from app.cli import main; main()", "db", "upgrade"]
    subprocess.run(upgrade, env=env, check=True, cwd=ROOT, capture_output=True)
    return env


def _tenant_key(env: dict[str, str]) -> str:
    code = (
        "import json\n"
        "from app.db import session_scope\n"
        "from app.tenants.service import create_tenant\n"
        "with session_scope() as s:\n"
        "    t, key = create_tenant(s, 'bench')\n"
        "print(json.dumps({'key': key}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, cwd=ROOT, capture_output=True
    )
    return str(json.loads(out.stdout.decode().strip().splitlines()[-1])["key"])


def _start_api(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)],
        env={**env, "LORAPLEX_API_PORT": str(port)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the API exited")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the API did not start")


def _populate(url: str, key: str) -> tuple[list[str], list[str]]:
    headers = {"Authorization": f"Bearer {key}"}
    row = (
        b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    )
    files, jobs = [], []
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for i in range(50):
            r = client.post(
                "/v1/files", data={"purpose": "fine-tune"}, files={"file": (f"f{i}.jsonl", row)}
            )
            r.raise_for_status()
            files.append(r.json()["id"])
        for i in range(20):
            r = client.post(
                "/v1/fine_tuning/jobs",
                json={"model": "SmolLM2-135M-Instruct", "training_file": files[i]},
            )
            r.raise_for_status()
            jobs.append(r.json()["id"])
    return files, jobs


def _reads(files: list[str], jobs: list[str]) -> list[tuple[str, Any]]:
    return [
        ("GET /v1/files", lambda: "/v1/files?limit=20"),
        ("GET /v1/files/{id}", lambda: f"/v1/files/{random.choice(files)}"),
        ("GET /v1/fine_tuning/jobs", lambda: "/v1/fine_tuning/jobs?limit=20"),
        ("GET /v1/fine_tuning/jobs/{id}", lambda: f"/v1/fine_tuning/jobs/{random.choice(jobs)}"),
        (
            "GET /v1/fine_tuning/jobs/{id}/events",
            lambda: f"/v1/fine_tuning/jobs/{random.choice(jobs)}/events",
        ),
        ("GET /v1/models", lambda: "/v1/models"),
        ("GET /v1/me", lambda: "/v1/me"),
    ]


async def _level(url: str, key: str, reads: list, concurrency: int, seconds: float) -> dict:  # type: ignore[type-arg]
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30, limits=limits
    ) as client:

        async def one_client() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                _, path = random.choice(reads)
                started = time.perf_counter()
                try:
                    r = await client.get(path())
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - started) * 1000)
                errors += not ok

        began = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    ms = np.array(latencies)
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/loraplex-bench-cp"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    random.seed(0)

    args.data_dir.mkdir(parents=True, exist_ok=True)
    env = _reset_schema(args.database, args.data_dir)
    key = _tenant_key(env)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start_api(env, port)
    try:
        _wait(url, proc)
        files, jobs = _populate(url, key)
        reads = _reads(files, jobs)
        asyncio.run(_level(url, key, reads, 2, 3))  # warm-up
        results = []
        for concurrency in args.concurrency:
            load = os.getloadavg()[0]
            result = asyncio.run(_level(url, key, reads, concurrency, args.seconds))
            result["load_average_1m_before"] = round(load, 2)
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)

    held = [r for r in results if r["p99_ms"] < P99_TARGET_MS and r["errors"] == 0]
    best = max(held, key=lambda r: r["requests_per_second"]) if held else None
    print("\n| concurrency | req/s | p50 ms | p95 ms | p99 ms | errors | load (1 min) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['concurrency']} | {r['requests_per_second']} | {r['p50_ms']} | "
            f"{r['p95_ms']} | {r['p99_ms']} | {r['errors']} | {r['load_average_1m_before']} |"
        )
    summary = {
        "results": results,
        "p99_target_ms": P99_TARGET_MS,
        "held_at_p99_under_target": best,
        "cpu_count": os.cpu_count(),
    }
    print(f"\nhighest throughput with p99 < {P99_TARGET_MS:.0f} ms: {best}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
