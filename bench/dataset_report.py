"""Benchmark: the dataset report pipeline against the naive one, on generated chat JSONL.

    python -m bench.dataset_report --tokenizer var/models/SmolLM2-135M-Instruct \\
        --workdir /tmp/lpx-bench --sizes 100 1000 --naive-max-rows 60000

For each size (MB) it generates a training file and a validation file (1% of the size, a
tenth of its rows copied from the training file) unless they exist, then runs, each in its
own process so their memory is measured apart:

- naive: one process, one row at a time: json.loads -> apply_chat_template -> tokenizer,
  (transformers), over the first `--naive-max-rows` rows;
- pipeline: `build_report(train, compare_with=validation)`: validation, token counts,
  exact and near duplicates, contamination, PII, balance, sample, statistics.

Peak memory is sampled every 0.1 s over the whole process tree: the sum of RSS (shared pages
counted once per process) and the sum of PSS (shared pages split between processes).
Prints one JSON object per run and a Markdown table at the end.
"""

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench.generate_dataset import generate


def naive(path: Path, tokenizer_dir: Path, max_rows: int) -> dict[str, Any]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    started = time.perf_counter()
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
    return {"rows": rows, "tokens": tokens, "seconds": seconds}


def pipeline(path: Path, tokenizer_dir: Path, compare_with: Path, workers: int) -> dict[str, Any]:
    from worker.datasets.report import ReportOptions, build_report

    started = time.perf_counter()
    report = build_report(
        path,
        ReportOptions(tokenizer_dir=tokenizer_dir, workers=workers, compare_with=compare_with),
    ).to_dict()
    seconds = time.perf_counter() - started
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
        "seconds": seconds,
    }


def measured(command: list[str]) -> dict[str, Any]:
    """Run a command, sampling the memory of its process tree; its stdout is one JSON line."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = {"rss": 0, "pss": 0}
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

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    done.set()
    sampler.join()
    if process.returncode:
        raise RuntimeError(f"{command} failed with {process.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(peak["rss"] / 2**20)
    result["peak_pss_mb"] = round(peak["pss"] / 2**20)
    return result


def make_files(workdir: Path, megabytes: int) -> tuple[Path, Path]:
    train = workdir / f"train-{megabytes}mb.jsonl"
    validation = workdir / f"validation-{megabytes}mb.jsonl"
    if not train.exists():
        generate(train, megabytes, seed=megabytes)
    if not validation.exists():
        own = workdir / f"validation-{megabytes}mb.part"
        generate(own, megabytes / 100, seed=megabytes + 1)
        copied = []
        with train.open("rb") as lines:
            for number, line in enumerate(lines):
                if number % 97 == 0:
                    copied.append(line)
                if len(copied) * 10 >= sum(1 for _ in own.open("rb")) or number > 200_000:
                    break
        validation.write_bytes(own.read_bytes() + b"".join(copied))
        own.unlink()
    return train, validation


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/lpx-bench"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--naive-max-rows", type=int, default=10**9)
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
    table = []
    for size in args.sizes:
        train, validation = make_files(args.workdir, size)
        base = measured(
            [
                *me,
                "--run",
                "naive",
                "--file",
                str(train),
                "--naive-max-rows",
                str(args.naive_max_rows),
            ]
        )
        print(json.dumps({"size_mb": size, "naive": base}), flush=True)
        ours = measured(
            [
                *me,
                "--run",
                "pipeline",
                "--file",
                str(train),
                "--compare",
                str(validation),
                "--workers",
                str(args.workers),
            ]
        )
        print(json.dumps({"size_mb": size, "pipeline": ours}), flush=True)
        table.append((size, train.stat().st_size, base, ours))

    print("\n| file | pipeline | rows | tokens | seconds | tokens/s | peak RSS (tree) | peak PSS |")
    print("|---|---|---|---|---|---|---|---|")
    for _size, file_bytes, base, ours in table:
        for name, run in (("naive", base), ("report", ours)):
            print(
                f"| {file_bytes / 1e6:.0f} MB | {name} | {run['rows']:,} | {run['tokens']:,} | "
                f"{run['seconds']:.1f} | {run['tokens'] / run['seconds']:,.0f} | "
                f"{run['peak_rss_mb']} MB | {run['peak_pss_mb']} MB |"
            )
        speedup = (ours["tokens"] / ours["seconds"]) / (base["tokens"] / base["seconds"])
        same = (
            "same"
            if base["rows"] == ours["valid_rows"] and base["tokens"] == ours["tokens"]
            else "n/a"
        )
        print(f"| | speed-up {speedup:.2f}x, token totals {same} | | | | | | |")


if __name__ == "__main__":
    main()
