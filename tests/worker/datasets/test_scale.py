"""A million tiny rows: the whole report (validation, token counts with the chat template,
duplicates, balance, PII, sample) completes, counts every row, and the pipeline's processes
together stay within bounded memory. Run as its own process tree, measured from outside."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[3]
ROWS = 1_000_000
RSS_LIMIT = 1_000_000_000  # bytes, summed over the pipeline's processes

SCRIPT = """
import json, sys
from pathlib import Path
from worker.datasets.report import ReportOptions, build_report

if __name__ == "__main__":
    options = ReportOptions(tokenizer_dir=Path(sys.argv[2]), tokenizer_name="base")
    report = build_report(Path(sys.argv[1]), options).to_dict()
    print(json.dumps({
        "rows": report["rows"],
        "valid_rows": report["valid_rows"],
        "counted_rows": report["tokens"]["counted_rows"],
        "p50": report["tokens"]["p50"],
        "duplicates": report["duplicates"],
        "sample": len(report["sample"]),
    }))
"""


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def test_a_million_tiny_rows_in_bounded_memory(tmp_path, model_dir):
    data = tmp_path / "tiny.jsonl"
    with data.open("w") as f:
        for start in range(0, ROWS, 100_000):
            f.write(
                "".join(
                    f'{{"messages": [{{"role": "user", "content": "ping {i}"}}, '
                    f'{{"role": "assistant", "content": "pong {i % 997}"}}]}}\n'
                    for i in range(start, start + 100_000)
                )
            )
    script = tmp_path / "run_report.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(data), str(model_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    watched = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(watched))
        time.sleep(0.2)
    out, err = proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    result = json.loads(out.decode().strip().splitlines()[-1])

    assert result["rows"] == result["valid_rows"] == result["counted_rows"] == ROWS
    assert result["p50"] > 0 and result["sample"] == 20
    print(f"1M tiny rows: peak RSS {peak / 1e6:.0f} MB summed over the pipeline's processes")
    assert peak < RSS_LIMIT, f"peak RSS {peak / 1e6:.0f} MB"
