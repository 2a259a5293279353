"""Benchmark: the dataset report pipeline against the naive one, on generated chat JSONL.

    python -m bench.dataset_report --tokenizer var/models/SmolLM2-135M-Instruct \\
        --workdir /tmp/lpx-bench --sizes 100 1000 --naive-max-rows 40000 --repeat 2 \\
        --results bench/results/dataset_report.json

For each size (MB) it generates a training file and a validation file (1% of the size, a
tenth of its rows copied from the training file) unless they exist, then runs, `--repeat`
times and interleaved (naive, report, naive, report, ...), each in its own process so their
memory is measured apart:

- naive: one process, one row at a time: json.loads -> apply_chat_template -> tokenizer,
  (transformers), over the first `--naive-max-rows` rows;
- report: `build_report(train, compare_with=validation)`: validation, token counts,
  exact and near duplicates, contamination, PII, balance, sample, statistics.

Peak memory is sampled every 0.1 s over the whole process tree: the sum of RSS (shared pages
counted once per process) and the sum of PSS (shared pages split between processes). The
load average is read before every run: the CPU may be shared. Prints one JSON object per
run and a Markdown table (medians) at the end; `--results` also writes them as JSON.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil

from bench.generate_dataset import generate, generate_parts


def naive(path: Path, tokenizer_dir: Path, max_rows: int) -> dict[str, Any]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    rows = tokens = 0
    with path.open("rb") as lines:
        for line in lines:
            if rows >= max_rows:
                break
            row = json.loads(line)
            text = tokenizer.apply_chat_template(row["messages"], tokenize=False)
            tokens += len(tokenizer(text, add_special_tokens=False)["input_ids"])
            rows += 1
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    return {"rows": rows, "tokens": tokens, "seconds": seconds, "cpu_seconds": cpu}


def pipeline(path: Path, tokenizer_dir: Path, compare_with: Path, workers: int) -> dict[str, Any]:
    from worker.datasets.report import ReportOptions, build_report

    started, cpu_started = time.perf_counter(), cpu_seconds()
    report = build_report(
        path,
        ReportOptions(tokenizer_dir=tokenizer_dir, workers=workers, compare_with=compare_with),
    ).to_dict()
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started  # the helper processes have ended: counted
    tokens = report["tokens"]
    return {
        "rows": report["rows"],
        "valid_rows": report["valid_rows"],
        "tokens": tokens["total"],
        "token_method": tokens["method"],
        "verified_rows": tokens["verified_rows"],
        "mismatched_rows": tokens["mismatched_rows"],
        "exact_duplicate_rows": report["duplicates"]["exact"]["rows"],
        "near_duplicate_rows": report["duplicates"]["near"]["rows"],
        "contaminated_rows": report["contamination"]["contaminated_rows"],
        "pii_rows": report["pii"]["rows"],
        "seconds": seconds,
        "cpu_seconds": cpu,
    }


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children so far: on a shared machine,
    tokens per CPU second compare the pipelines' work where wall time also measures the
    neighbours."""
    used = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in used)


def measured(command: list[str]) -> dict[str, Any]:
    """Run a command, sampling the memory of its process tree; its stdout is one JSON line."""
    load_before = os.getloadavg()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = {"rss": 0, "pss": 0, "processes": 0}
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(process.pid)
        while not done.wait(0.1):
            try:
                tree = [root, *root.children(recursive=True)]
                rss = pss = 0
                for member in tree:
                    info = member.memory_full_info()
                    rss += info.rss
                    pss += info.pss
            except psutil.Error:
                continue
            peak["rss"] = max(peak["rss"], rss)
            peak["pss"] = max(peak["pss"], pss)
            peak["processes"] = max(peak["processes"], len(tree))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    done.set()
    sampler.join()
    if process.returncode:
        raise RuntimeError(f"{command} failed with {process.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["tokens_per_second"] = round(result["tokens"] / result["seconds"])
    result["tokens_per_cpu_second"] = round(result["tokens"] / result["cpu_seconds"])
    result["peak_rss_mb"] = round(peak["rss"] / 2**20)
    result["peak_pss_mb"] = round(peak["pss"] / 2**20)
    result["processes"] = peak["processes"]
    result["load_average_before"] = [round(x, 2) for x in load_before]
    return result


def make_files(workdir: Path, megabytes: int, parts: int = 1) -> tuple[Path, Path]:
    train = workdir / f"train-{megabytes}mb.jsonl"
    validation = workdir / f"validation-{megabytes}mb.jsonl"
    if not train.exists():
        generate_parts(train, megabytes, seed=megabytes, parts=parts)
    if not validation.exists():
        own = workdir / f"validation-{megabytes}mb.part"
        generate(own, megabytes / 100, seed=megabytes + 1)
        own_rows = sum(1 for _ in own.open("rb"))
        copied = []
        with train.open("rb") as lines:
            for number, line in enumerate(lines):
                if number % 97 == 0:
                    copied.append(line)
                if len(copied) * 10 >= own_rows or number > 200_000:
                    break
        validation.write_bytes(own.read_bytes() + b"".join(copied))
        own.unlink()
    return train, validation


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cpus_used": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "versions": {
            name: version(name) for name in ("tokenizers", "transformers", "numpy", "regex")
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def summary(size: int, file_bytes: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    naive_runs = [run for run in runs if run["pipeline"] == "naive"]
    report_runs = [run for run in runs if run["pipeline"] == "report"]
    pairs = list(zip(naive_runs, report_runs, strict=True))
    speedups = [ours["tokens_per_second"] / base["tokens_per_second"] for base, ours in pairs]
    cpu_ratios = [
        ours["tokens_per_cpu_second"] / base["tokens_per_cpu_second"] for base, ours in pairs
    ]
    base, ours = naive_runs[-1], report_runs[-1]
    return {
        "size_mb": size,
        "file_bytes": file_bytes,
        "naive_tokens_per_second": statistics.median(r["tokens_per_second"] for r in naive_runs),
        "report_tokens_per_second": statistics.median(r["tokens_per_second"] for r in report_runs),
        "speedup": round(statistics.median(speedups), 2),
        "speedups": [round(s, 2) for s in speedups],
        "cpu_efficiency_ratio": round(statistics.median(cpu_ratios), 2),
        "report_peak_rss_mb": max(r["peak_rss_mb"] for r in report_runs),
        "report_peak_pss_mb": max(r["peak_pss_mb"] for r in report_runs),
        "report_processes": max(r["processes"] for r in report_runs),
        "token_totals_equal": (
            base["tokens"] == ours["tokens"] if base["rows"] == ours["valid_rows"] else None
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/lpx-bench"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--naive-max-rows", type=int, default=10**9)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--generate-parts", type=int, default=1)
    parser.add_argument("--results", type=Path)
    parser.add_argument("--run", choices=["naive", "pipeline"])
    parser.add_argument("--file", type=Path)
    parser.add_argument("--compare", type=Path)
    args = parser.parse_args()

    if args.run == "naive":
        print(json.dumps(naive(args.file, args.tokenizer, args.naive_max_rows)))
        return
    if args.run == "pipeline":
        print(json.dumps(pipeline(args.file, args.tokenizer, args.compare, args.workers)))
        return

    args.workdir.mkdir(parents=True, exist_ok=True)
    me = [sys.executable, "-m", "bench.dataset_report", "--tokenizer", str(args.tokenizer)]
    results: dict[str, Any] = {"machine": machine(), "workers": args.workers, "sizes": []}
    for size in args.sizes:
        train, validation = make_files(args.workdir, size, args.generate_parts)
        commands = {
            "naive": [
                *me,
                *("--run", "naive", "--file", str(train)),
                *("--naive-max-rows", str(args.naive_max_rows)),
            ],
            "report": [
                *me,
                *("--run", "pipeline", "--file", str(train), "--compare", str(validation)),
                *("--workers", str(args.workers)),
            ],
        }
        runs = []
        for attempt in range(args.repeat):
            for name, command in commands.items():
                run = {"size_mb": size, "attempt": attempt, "pipeline": name, **measured(command)}
                print(json.dumps(run), flush=True)
                runs.append(run)
        results["sizes"].append(
            {"summary": summary(size, train.stat().st_size, runs), "runs": runs}
        )
        if args.results:
            args.results.write_text(json.dumps(results, indent=1) + "\n")

    print(f"\n{results['machine']}, {args.workers} workers")
    print(
        "| file | pipeline | rows | tokens | seconds | tokens/s | tokens/CPU-s | load before "
        "| peak RSS (sum) | peak PSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for entry in results["sizes"]:
        total = entry["summary"]
        for run in entry["runs"]:
            print(
                f"| {total['file_bytes'] / 1e6:.0f} MB | {run['pipeline']} | {run['rows']:,} | "
                f"{run['tokens']:,} | {run['seconds']:.1f} | {run['tokens_per_second']:,} | "
                f"{run['tokens_per_cpu_second']:,} | {run['load_average_before'][0]} | "
                f"{run['peak_rss_mb']} MB ({run['processes']} proc.) | {run['peak_pss_mb']} MB |"
            )
        print(
            f"| | speed-up {total['speedup']}x (each pair: {total['speedups']}), per CPU second "
            f"{total['cpu_efficiency_ratio']}x, token totals equal: "
            f"{total['token_totals_equal']} | | | | | | | | |"
        )


if __name__ == "__main__":
    main()
