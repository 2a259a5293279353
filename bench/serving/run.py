"""Serving benchmarks against real processes: the gateway (`uvicorn app.main:app`) in front of
vLLM CPU servers started as `loraplex up` starts them, with random-weight LoRA adapters.

    PYTHONPATH=. .venv/bin/python -m bench.serving.run --out bench/serving/results

Scenarios (all on one machine, compared variants interleaved round by round):
  overhead  gateway vs vLLM directly, base model, closed loop at --concurrency
  overhead_paired  the same one request at a time, direct and gateway alternating (not in the
            default list)
  cold      time to first streamed token: an adapter not yet loaded vs a resident one
  rotation  1, 8 and 32 adapters in rotation vs the base model, for every --configs entry
  hotswap   an alias repointed between two adapters every --swap-period s under load
  load      a timed mix: chat on base/adapters/alias (some streamed), /v1/models, /v1/usage
"""

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.serving import loadgen
from bench.serving.loadgen import Sample, chat_body, summarize

ROOT = Path(__file__).resolve().parents[2]
BASE = "SmolLM2-135M-Instruct"
CHAT = "/v1/chat/completions"
GATEWAY_COUNTERS = {
    "loads": "loraplex_adapter_loads_total",
    "evictions": "loraplex_adapter_evictions_total",
    "retries": "loraplex_upstream_retries_total",
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Target:
    """One vLLM server and the gateway in front of it."""

    label: str
    max_loras: int
    max_cpu_loras: int
    stack: Any  # app.stack.Stack
    gateway: httpx.AsyncClient
    direct: httpx.AsyncClient

    async def counters(self) -> dict[str, float]:
        text = (await self.gateway.get("/metrics")).text
        out = dict.fromkeys(GATEWAY_COUNTERS, 0.0)
        for line in text.splitlines():
            for key, name in GATEWAY_COUNTERS.items():
                if line.startswith(name + "{") and 'outcome="failed"' not in line:
                    out[key] += float(line.rsplit(" ", 1)[1])
        return out


def parse_configs(raw: str) -> list[tuple[int, int]]:
    """`4:16,16:32` -> [(max_loras, max_cpu_loras), ...]; the first one runs every scenario."""
    pairs = []
    for part in raw.split(","):
        loras, cpu = part.split(":")
        pairs.append((int(loras), int(cpu)))
    return pairs


def prepare_environment(args: argparse.Namespace) -> None:
    """Settings are read from the environment: set them before anything reads them."""
    os.environ.update(
        {
            "LORAPLEX_ENV": "dev",
            "LORAPLEX_DATA_DIR": str(args.data_dir),
            "LORAPLEX_MODELS_DIR": str(ROOT / "var" / "models"),
            "LORAPLEX_USAGE_FLUSH_INTERVAL": "1",
            "LORAPLEX_VLLM_HEALTH_INTERVAL": "5",
        }
    )
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    if args.redis_url:
        os.environ["REDIS_URL"] = args.redis_url


def reset_state(args: argparse.Namespace) -> None:
    """A fresh schema built by the migrations (the benchmark's own database), an empty Redis db."""
    from alembic import command
    from sqlalchemy import text

    from app.cli import alembic_config
    from app.db import get_engine

    if args.database_url:
        with get_engine().begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    command.upgrade(alembic_config(), "head")
    if args.redis_url:
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()


def start_target(label: str, max_loras: int, max_cpu_loras: int) -> Any:
    from app.config import Settings
    from app.stack import Stack, api_command, vllm_command

    overrides = {
        "LORAPLEX_API_PORT": str(free_port()),
        "LORAPLEX_VLLM_URL": f"http://127.0.0.1:{free_port()}",
        "LORAPLEX_VLLM_MAX_LORAS": str(max_loras),
        "LORAPLEX_VLLM_MAX_CPU_LORAS": str(max_cpu_loras),
    }
    env = {**os.environ, **overrides}
    stack = Stack(Settings(**overrides), env=env)  # type: ignore[arg-type]
    stack.start(
        f"vllm-{label}",
        vllm_command(stack.settings),
        {
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
            "VLLM_CPU_KVCACHE_SPACE": env.get("VLLM_CPU_KVCACHE_SPACE", "2"),
            "HF_HUB_OFFLINE": "1",
        },
    )
    stack.start(f"api-{label}", api_command(stack.settings))
    return stack


def client(base_url: str, key: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        timeout=600,
        limits=httpx.Limits(max_connections=128, max_keepalive_connections=128),
    )


async def round_(
    target: Target, variant: str, total: int, concurrency: int, model_for: Any, direct: bool = False
) -> dict[str, Any]:
    http = target.direct if direct else target.gateway
    before_load, before = loadgen.load_average(), await target.counters()

    async def one(i: int) -> Sample:
        return await loadgen.post_chat(http, CHAT, chat_body(model_for(i)), variant)

    samples, wall = await loadgen.closed_loop(one, total, concurrency)
    after = await target.counters()
    return {
        "target": target.label,
        "variant": variant,
        **summarize(samples, wall),
        "latencies_ms": [round(s.latency_s * 1000, 1) for s in samples if s.ok],
        "gateway_delta": {k: after[k] - before[k] for k in after},
        "load_average": {"before": before_load, "after": loadgen.load_average()},
    }


def pooled(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = [x / 1000 for r in rounds for x in r["latencies_ms"]]
    ok = sum(r["requests"] - r["failed"] for r in rounds)
    wall = sum(r["wall_s"] for r in rounds)
    loads = [
        la for r in rounds for la in (r["load_average"]["before"][0], r["load_average"]["after"][0])
    ]
    return {
        "rounds": len(rounds),
        "requests": sum(r["requests"] for r in rounds),
        "failed": sum(r["failed"] for r in rounds),
        "rps": round(ok / wall, 3),
        "p50_ms": loadgen.ms(loadgen.percentile(latencies, 50)),
        "p95_ms": loadgen.ms(loadgen.percentile(latencies, 95)),
        "load_average_1m": [min(loads), max(loads)],
        "gateway_delta": {k: sum(r["gateway_delta"][k] for r in rounds) for k in GATEWAY_COUNTERS},
    }


async def overhead(t: Target, rounds: int, total: int, concurrency: int) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for r in range(rounds):
        order = [False, True] if r % 2 == 0 else [True, False]
        for via_vllm in order:
            name = "direct" if via_vllm else "gateway"
            out.append(await round_(t, name, total, concurrency, lambda i: BASE, direct=via_vllm))
            print(f"  overhead round {r} {name}: {out[-1]['rps']} req/s p50 {out[-1]['p50_ms']} ms")
    direct = pooled([r for r in out if r["variant"] == "direct"])
    gateway = pooled([r for r in out if r["variant"] == "gateway"])
    pairs = [
        (a["rps"] / b["rps"])
        for a, b in zip(
            [r for r in out if r["variant"] == "gateway"],
            [r for r in out if r["variant"] == "direct"],
            strict=True,
        )
    ]
    return {
        "direct": direct,
        "gateway": gateway,
        "throughput_ratio": round(gateway["rps"] / direct["rps"], 3),
        "throughput_ratio_per_round_pair": [round(p, 3) for p in pairs],
        "added_p50_ms": round(gateway["p50_ms"] - direct["p50_ms"], 1),
        "added_p95_ms": round(gateway["p95_ms"] - direct["p95_ms"], 1),
        "rounds": out,
    }


async def overhead_paired(t: Target, pairs: int, max_tokens: int) -> dict[str, Any]:
    """One request at a time, direct and through the gateway in alternation (which goes first
    alternates too): the gateway's own cost per request without the engine's queueing."""
    rows: dict[str, list[float]] = {"direct": [], "gateway": []}
    failed = 0
    loads = []
    api_pid = t.stack.processes[f"api-{t.label}"].pid
    cpu_before, wall_before = cpu_seconds(api_pid), time.monotonic()
    for i in range(pairs):
        order = ["direct", "gateway"] if i % 2 == 0 else ["gateway", "direct"]
        loads.append(loadgen.load_average()[0])
        for via in order:
            http = t.direct if via == "direct" else t.gateway
            s = await loadgen.post_chat(http, CHAT, chat_body(BASE, max_tokens), via)
            if s.ok:
                rows[via].append(s.latency_s)
            else:
                failed += 1
    api_cpu, wall = cpu_seconds(api_pid) - cpu_before, time.monotonic() - wall_before
    diffs = sorted(g - d for d, g in zip(rows["direct"], rows["gateway"], strict=False))
    out: dict[str, Any] = {"pairs": pairs, "max_tokens": max_tokens, "failed": failed}
    # CPU time the API process spent, per gateway request: what the gateway costs whatever
    # the load (its health checks and usage flushes over the same seconds included).
    out["gateway_cpu_ms_per_request"] = round(api_cpu / max(len(rows["gateway"]), 1) * 1000, 2)
    out["api_cpu_seconds"], out["wall_seconds"] = round(api_cpu, 3), round(wall, 1)
    for via, values in rows.items():
        out[via] = {
            "p50_ms": loadgen.ms(loadgen.percentile(values, 50)),
            "p95_ms": loadgen.ms(loadgen.percentile(values, 95)),
        }
    out["added_p50_ms"] = round(out["gateway"]["p50_ms"] - out["direct"]["p50_ms"], 1)
    out["added_p95_ms"] = round(out["gateway"]["p95_ms"] - out["direct"]["p95_ms"], 1)
    out["median_pair_difference_ms"] = loadgen.ms(loadgen.percentile(diffs, 50))
    out["load_average_1m"] = [min(loads), max(loads)]
    return out


async def cold(t: Target, fresh: list[dict[str, str]], warm: dict[str, str]) -> dict[str, Any]:
    """One request at a time: a resident adapter, then one never loaded, per fresh adapter."""
    body = {"max_tokens": 16}
    await loadgen.stream_chat(t.gateway, CHAT, chat_body(warm["name"], **body), "warm")
    rows: list[dict[str, Any]] = []
    for adapter in fresh:
        for kind, model in (("base", BASE), ("warm", warm["name"]), ("cold", adapter["name"])):
            before = await t.counters()
            la = loadgen.load_average()[0]
            s = await loadgen.stream_chat(t.gateway, CHAT, chat_body(model, **body), kind)
            delta = {k: v - before[k] for k, v in (await t.counters()).items()}
            rows.append(
                {
                    "kind": kind,
                    "ok": s.ok,
                    "error": s.error,
                    "ttft_ms": loadgen.ms(s.ttft_s),
                    "total_ms": loadgen.ms(s.latency_s),
                    "gateway_delta": delta,
                    "load_average_1m": la,
                }
            )
        print("  cold:", [(r["kind"], r["ttft_ms"]) for r in rows[-3:]])
    summary = {}
    for kind in ("base", "warm", "cold"):
        ttfts = [r["ttft_ms"] / 1000 for r in rows if r["kind"] == kind and r["ttft_ms"]]
        summary[kind] = {
            "n": len(ttfts),
            "failed": sum(1 for r in rows if r["kind"] == kind and not r["ok"]),
            "ttft_p50_ms": loadgen.ms(loadgen.percentile(ttfts, 50)),
            "ttft_p95_ms": loadgen.ms(loadgen.percentile(ttfts, 95)),
        }
    las = [r["load_average_1m"] for r in rows]
    return {"summary": summary, "load_average_1m": [min(las), max(las)], "requests": rows}


async def rotation(
    targets: list[Target],
    rotating: list[dict[str, str]],
    counts: list[int],
    rounds: int,
    total: int,
    concurrency: int,
) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    variants = [0, *counts]  # 0: the base model alone
    for r in range(rounds):
        order = variants if r % 2 == 0 else list(reversed(variants))
        for k in order:
            for t in targets if r % 2 == 0 else list(reversed(targets)):
                name = "base" if k == 0 else f"{k} adapters"
                pick = (lambda i: BASE) if k == 0 else (lambda i, k=k: rotating[i % k]["name"])
                row = await round_(t, name, total, concurrency, pick)
                out.append(row)
                print(
                    f"  rotation r{r} {t.label} {name}: {row['rps']} req/s p50 {row['p50_ms']} ms "
                    f"failed {row['failed']} {row['gateway_delta']}"
                )
    result: dict[str, Any] = {"rounds": out, "by_target": {}}
    for t in targets:
        base = pooled([x for x in out if x["target"] == t.label and x["variant"] == "base"])
        per: dict[str, Any] = {"base": base}
        for k in counts:
            name = f"{k} adapters"
            p = pooled([x for x in out if x["target"] == t.label and x["variant"] == name])
            p["ratio_to_base"] = round(p["rps"] / base["rps"], 3)
            per[name] = p
        result["by_target"][t.label] = per
    return result


async def hotswap(
    t: Target,
    v1: dict[str, str],
    v2: dict[str, str],
    seconds: float,
    period: float,
    concurrency: int,
    max_tokens: int,
) -> dict[str, Any]:
    alias = "bench-bot@prod"
    created = await t.gateway.post("/v1/aliases", json={"name": alias, "adapter": v1["id"]})
    created.raise_for_status()
    for v in (v1, v2):  # both resident before the clock starts
        await loadgen.post_chat(t.gateway, CHAT, chat_body(v["name"], max_tokens), "warm")
    repoints: list[tuple[int, str]] = []
    stop = asyncio.Event()

    async def repointer() -> None:
        current = v1
        while not stop.is_set():
            await asyncio.sleep(period)
            current = v2 if current is v1 else v1
            r = await t.gateway.post(f"/v1/aliases/{alias}", json={"adapter": current["id"]})
            repoints.append((r.status_code, current["id"]))

    async def one(i: int) -> Sample:
        return await loadgen.post_chat(t.gateway, CHAT, chat_body(alias, max_tokens), "alias")

    la_before = loadgen.load_average()
    swapper = asyncio.create_task(repointer())
    # Staggered starts: when answers take longer than the window (a loaded CPU), the users'
    # first requests still arrive across several repoints.
    samples, wall = await loadgen.timed_loop(one, seconds, concurrency, stagger=period / 2)
    stop.set()
    await swapper
    served = {v1["id"]: 0, v2["id"]: 0}
    for s in samples:
        if s.ok and s.served in served:
            served[s.served] += 1
    other = sum(1 for s in samples if s.ok and s.served not in served)
    return {
        **summarize(samples, wall),
        "max_tokens": max_tokens,
        "stagger_s": period / 2,
        "repoints": len(repoints),
        "repoints_failed": sum(1 for status, _ in repoints if status != 200),
        "answers_by_version": {"v1": served[v1["id"]], "v2": served[v2["id"]], "other": other},
        "load_average": {"before": la_before, "after": loadgen.load_average()},
    }


async def load_test(
    t: Target, adapters: list[dict[str, str]], alias: str, seconds: float, users: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    mix: list[tuple[str, float]] = [
        ("chat base", 0.30),
        ("chat adapter", 0.25),
        ("chat alias", 0.15),
        ("chat stream", 0.10),
        ("models list", 0.10),
        ("usage read", 0.10),
    ]
    kinds, weights = zip(*mix, strict=True)

    async def one(i: int) -> Sample:
        kind = rng.choices(kinds, weights)[0]
        if kind == "chat base":
            return await loadgen.post_chat(t.gateway, CHAT, chat_body(BASE), kind)
        if kind == "chat adapter":
            model = rng.choice(adapters)["name"]
            return await loadgen.post_chat(t.gateway, CHAT, chat_body(model), kind)
        if kind == "chat alias":
            return await loadgen.post_chat(t.gateway, CHAT, chat_body(alias), kind)
        if kind == "chat stream":
            model = rng.choice([BASE, alias, *[a["name"] for a in adapters]])
            return await loadgen.stream_chat(t.gateway, CHAT, chat_body(model), kind)
        if kind == "models list":
            return await loadgen.get(t.gateway, "/v1/models", kind)
        return await loadgen.get(t.gateway, "/v1/usage", kind)

    la_before = loadgen.load_average()
    before = await t.counters()
    samples, wall = await loadgen.timed_loop(one, seconds, users)
    after = await t.counters()
    per_kind = {k: summarize([s for s in samples if s.kind == k], wall) for k in kinds}
    total = summarize(samples, wall)
    return {
        "users": users,
        "seconds": seconds,
        "mix": dict(mix),
        **total,
        "error_rate": round(total["failed"] / max(total["requests"], 1), 4),
        "per_kind": per_kind,
        "gateway_delta": {k: after[k] - before[k] for k in after},
        "load_average": {"before": la_before, "after": loadgen.load_average()},
    }


async def warm_up(http: httpx.AsyncClient) -> None:
    async def one(i: int) -> Sample:
        return await loadgen.post_chat(http, CHAT, chat_body(BASE), "warmup")

    await loadgen.closed_loop(one, 8, 4)


async def run_scenarios(
    args: argparse.Namespace,
    t: Target,
    adapters: list[dict[str, str]],
    scenarios: list[str],
    save: Any,
) -> None:
    """Run `scenarios` on one target; `save(name, result)` is called after each one."""
    counts = [int(x) for x in args.adapter_counts.split(",")]
    rotating = adapters[: max(counts)]
    spare = adapters[max(counts) :]
    fresh, v1, v2 = spare[: args.cold], spare[args.cold], spare[args.cold + 1]
    for http in (t.direct, t.gateway):  # the first requests pay one-off costs on both paths
        await warm_up(http)
    for name in scenarios:
        print(f"{t.label}: {name} (load average {loadgen.load_average()})", flush=True)
        try:
            if name == "overhead":
                result = await overhead(t, args.rounds, args.requests, args.concurrency)
            elif name == "overhead_paired":
                result = await overhead_paired(t, args.pairs, args.pair_max_tokens)
            elif name == "cold":
                result = await cold(t, fresh, rotating[0])
            elif name == "rotation":
                result = await rotation(
                    [t], rotating, counts, args.rotation_rounds, args.requests, args.concurrency
                )
            elif name == "hotswap":
                result = await hotswap(
                    t,
                    v1,
                    v2,
                    args.swap_seconds,
                    args.swap_period,
                    args.concurrency,
                    args.swap_max_tokens,
                )
            elif name == "load":
                alias = "bench-bot@prod"  # hotswap's alias (409 when it made it already)
                await t.gateway.post("/v1/aliases", json={"name": alias, "adapter": v1["id"]})
                result = await load_test(
                    t, rotating[:3], alias, args.load_seconds, args.concurrency, args.seed
                )
            else:
                raise SystemExit(f"unknown scenario {name}")
        except Exception as exc:  # keep what the other scenarios measured
            result = {"error": repr(exc)}
            print(f"  {name} failed: {exc!r}", flush=True)
        save(name, result)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "serving" / "results")
    p.add_argument("--tag", default="")
    p.add_argument("--data-dir", type=Path, default=None, help="default: a new temp dir")
    p.add_argument("--database-url", default="", help="default: SQLite under --data-dir")
    p.add_argument("--redis-url", default="", help="default: no Redis (in-process buckets)")
    p.add_argument("--configs", default="4:16", help="max_loras:max_cpu_loras,...")
    p.add_argument(
        "--scenarios", default="overhead,cold,rotation,hotswap,load", help="comma-separated"
    )
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--requests", type=int, default=64, help="requests per closed-loop round")
    p.add_argument("--rounds", type=int, default=4, help="overhead rounds per variant")
    p.add_argument("--pairs", type=int, default=40, help="overhead_paired: request pairs")
    p.add_argument("--pair-max-tokens", type=int, default=1)
    p.add_argument("--rotation-rounds", type=int, default=2)
    p.add_argument("--adapter-counts", default="1,8,32")
    p.add_argument("--cold", type=int, default=6, help="adapters measured cold")
    p.add_argument("--swap-seconds", type=float, default=20)
    p.add_argument("--swap-period", type=float, default=0.5)
    p.add_argument("--swap-max-tokens", type=int, default=4)
    p.add_argument("--load-seconds", type=float, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--side-by-side",
        action="store_true",
        help="run every --configs entry at once and only the rotation, interleaved across them",
    )
    return p.parse_args()


def main() -> None:
    args = parse_args()
    args.data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="loraplex-servebench-"))
    prepare_environment(args)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
    reset_state(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"serving{args.tag}.json"
    report: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "cpu_model": _cpu_model()},
        "settings": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in {"out", "data_dir"}
        },
        "vllm_env": {"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")},
        "targets": {},
    }
    if args.side_by_side:
        run_side_by_side(args, report, path)
        return
    tenant = None
    for index, (max_loras, max_cpu) in enumerate(parse_configs(args.configs)):
        label = f"loras{max_loras}-cpu{max_cpu}"
        stack = start_target(label, max_loras, max_cpu)
        entry: dict[str, Any] = {"max_loras": max_loras, "max_cpu_loras": max_cpu}
        report["targets"][label] = entry

        def save(name: str, result: dict[str, Any], entry: dict[str, Any] = entry) -> None:
            entry[name] = result
            path.write_text(json.dumps(report, indent=1) + "\n")

        try:
            if tenant is None:  # written while the first vLLM boots
                from bench.serving.adapters import create_bench_tenant

                needed = max(int(x) for x in args.adapter_counts.split(",")) + args.cold + 2
                started = time.monotonic()
                tenant = create_bench_tenant(BASE, needed, args.seed)
                print(f"{needed} adapters written in {time.monotonic() - started:.0f}s")
            stack.wait_http(f"api-{label}", stack.api_url + "/healthz", 120)
            stack.wait_http(f"vllm-{label}", stack.settings.vllm_url + "/health", 900)
            scenarios = args.scenarios.split(",") if index == 0 else ["rotation"]
            asyncio.run(_run(args, label, max_loras, max_cpu, stack, tenant, scenarios, save))
        finally:
            stack.stop()
    print(f"wrote {path}")


def run_side_by_side(args: argparse.Namespace, report: dict[str, Any], path: Path) -> None:
    """Every --configs entry running at once, the adapter rotation interleaved across them
    round by round (needs memory for one vLLM server per entry)."""
    from bench.serving.adapters import create_bench_tenant

    configs = parse_configs(args.configs)
    stacks = []
    try:
        for max_loras, max_cpu in configs:
            label = f"loras{max_loras}-cpu{max_cpu}"
            stacks.append((label, max_loras, max_cpu, start_target(label, max_loras, max_cpu)))
            report["targets"][label] = {"max_loras": max_loras, "max_cpu_loras": max_cpu}
        needed = max(int(x) for x in args.adapter_counts.split(",")) + args.cold + 2
        tenant = create_bench_tenant(BASE, needed, args.seed)
        for label, _, _, stack in stacks:
            stack.wait_http(f"api-{label}", stack.api_url + "/healthz", 120)
            stack.wait_http(f"vllm-{label}", stack.settings.vllm_url + "/health", 900)

        def save(result: dict[str, Any]) -> None:
            report["side_by_side_rotation"] = result
            path.write_text(json.dumps(report, indent=1) + "\n")

        asyncio.run(_rotate_side_by_side(args, stacks, tenant, save))
    finally:
        for *_, stack in stacks:
            stack.stop()
    print(f"wrote {path}")


async def _rotate_side_by_side(
    args: argparse.Namespace, stacks: list[Any], tenant: Any, save: Any
) -> None:
    targets = [
        Target(
            label,
            loras,
            cpu,
            stack,
            client(stack.api_url, tenant.key),
            client(stack.settings.vllm_url),
        )
        for label, loras, cpu, stack in stacks
    ]
    try:
        for t in targets:
            await t.gateway.get("/healthz")
            await warm_up(t.gateway)
        counts = [int(x) for x in args.adapter_counts.split(",")]
        save(
            await rotation(
                targets,
                tenant.adapters[: max(counts)],
                counts,
                args.rotation_rounds,
                args.requests,
                args.concurrency,
            )
        )
    finally:
        for t in targets:
            await t.gateway.aclose()
            await t.direct.aclose()


async def _run(
    args: argparse.Namespace,
    label: str,
    max_loras: int,
    max_cpu: int,
    stack: Any,
    tenant: Any,
    scenarios: list[str],
    save: Any,
) -> None:
    target = Target(
        label,
        max_loras,
        max_cpu,
        stack,
        client(stack.api_url, tenant.key),
        client(stack.settings.vllm_url),
    )
    try:
        await target.gateway.get("/healthz")
        await run_scenarios(args, target, tenant.adapters, scenarios, save)
    finally:
        await target.gateway.aclose()
        await target.direct.aclose()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
