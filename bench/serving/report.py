"""Markdown tables from a results file of `bench.serving.run`.

.venv/bin/python -m bench.serving.report bench/serving/results/serving.json
"""

import json
import sys
from pathlib import Path
from typing import Any


def _la(value: Any) -> str:
    if isinstance(value, list) and len(value) == 2:
        return f"{value[0]:.1f}–{value[1]:.1f}"
    if isinstance(value, dict):  # {"before": [1m, 5m, 15m], "after": [...]}
        return f"{value['before'][0]:.1f}–{value['after'][0]:.1f}"
    return str(value)


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def overhead(r: dict[str, Any]) -> list[str]:
    lines = [
        _row(["path", "requests", "failed", "req/s", "p50 ms", "p95 ms", "load avg (1 min)"]),
        _row(["---"] * 7),
    ]
    for via in ("direct", "gateway"):
        p = r[via]
        lines.append(
            _row(
                [
                    via,
                    p["requests"],
                    p["failed"],
                    p["rps"],
                    p["p50_ms"],
                    p["p95_ms"],
                    _la(p["load_average_1m"]),
                ]
            )
        )
    lines.append("")
    lines.append(
        f"throughput ratio {r['throughput_ratio']} (per round pair: "
        f"{r['throughput_ratio_per_round_pair']}), added p50 {r['added_p50_ms']} ms, "
        f"added p95 {r['added_p95_ms']} ms"
    )
    return lines


def overhead_paired(r: dict[str, Any]) -> list[str]:
    return [
        _row(["path", "pairs", "p50 ms", "p95 ms", "load avg (1 min)"]),
        _row(["---"] * 5),
        *(
            _row([via, r["pairs"], r[via]["p50_ms"], r[via]["p95_ms"], _la(r["load_average_1m"])])
            for via in ("direct", "gateway")
        ),
        "",
        f"added p50 {r['added_p50_ms']} ms, added p95 {r['added_p95_ms']} ms, median of the "
        f"per-pair differences {r['median_pair_difference_ms']} ms, failed {r['failed']}",
    ]


def cold(r: dict[str, Any]) -> list[str]:
    lines = [
        _row(["model", "requests", "failed", "TTFT p50 ms", "TTFT p95 ms", "load avg (1 min)"]),
        _row(["---"] * 6),
    ]
    for kind, s in r["summary"].items():
        lines.append(
            _row(
                [
                    kind,
                    s["n"],
                    s["failed"],
                    s["ttft_p50_ms"],
                    s["ttft_p95_ms"],
                    _la(r["load_average_1m"]),
                ]
            )
        )
    return lines


def rotation(label: str, r: dict[str, Any]) -> list[str]:
    lines = [
        _row(
            [
                "config",
                "variant",
                "requests",
                "failed",
                "req/s",
                "vs base",
                "p50 ms",
                "p95 ms",
                "gateway loads",
                "evictions",
                "load avg (1 min)",
            ]
        ),
        _row(["---"] * 11),
    ]
    for variant, p in r["by_target"][label].items():
        lines.append(
            _row(
                [
                    label,
                    variant,
                    p["requests"],
                    p["failed"],
                    p["rps"],
                    p.get("ratio_to_base", 1.0),
                    p["p50_ms"],
                    p["p95_ms"],
                    int(p["gateway_delta"]["loads"]),
                    int(p["gateway_delta"]["evictions"]),
                    _la(p["load_average_1m"]),
                ]
            )
        )
    return lines


def hotswap(r: dict[str, Any]) -> list[str]:
    v = r["answers_by_version"]
    return [
        f"requests {r['requests']}, failed {r['failed']}, {r['rps']} req/s, p50 {r['p50_ms']} ms, "
        f"p95 {r['p95_ms']} ms; repoints {r['repoints']} (failed {r['repoints_failed']}); "
        f"answers from v1 {v['v1']}, v2 {v['v2']}, other {v['other']}; "
        f"load avg {_la(r['load_average'])}"
    ]


def load(r: dict[str, Any]) -> list[str]:
    lines = [
        f"{r['users']} users, {r['seconds']} s: {r['requests']} requests, {r['rps']} req/s, "
        f"error rate {r['error_rate']}, load avg {_la(r['load_average'])}, gateway "
        f"{r['gateway_delta']}",
        "",
        _row(["kind", "requests", "failed", "req/s", "p50 ms", "p95 ms"]),
        _row(["---"] * 6),
    ]
    for kind, s in r["per_kind"].items():
        lines.append(_row([kind, s["requests"], s["failed"], s["rps"], s["p50_ms"], s["p95_ms"]]))
    return lines


def render(report: dict[str, Any]) -> str:
    out = [f"measured {report['measured_at']} on {report['machine']}", ""]
    for label, target in report["targets"].items():
        for name in ("overhead", "overhead_paired", "cold", "rotation", "hotswap", "load"):
            if name not in target:
                continue
            out.append(f"### {label}: {name}")
            result = target[name]
            if "error" in result:
                out.append(f"failed: {result['error']}")
            elif name == "rotation":
                out.extend(rotation(label, result))
            else:
                out.extend(globals()[name](result))
            out.append("")
    side_by_side = report.get("side_by_side_rotation")
    if side_by_side:
        out.append("### side by side: rotation")
        for label in side_by_side["by_target"]:
            out.extend(rotation(label, side_by_side))
            out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(json.loads(Path(sys.argv[1]).read_text())))
