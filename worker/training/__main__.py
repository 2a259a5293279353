"""`python -m worker.training CONFIG.json`: run a recipe outside the platform (SFT, or DPO when
the config says `"method": "dpo"`), printing events, metrics and the result as JSON lines (for
benchmarks and debugging)."""

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from worker.training.recipe import PrintReporter
from worker.training.recipes import make_recipe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.training", description=__doc__)
    parser.add_argument(
        "config", type=Path, help='JSON file with TrainConfig (or DPOConfig) fields and "method"'
    )
    args = parser.parse_args(argv)

    recipe = make_recipe(json.loads(args.config.read_text()), PrintReporter())
    recipe.setup()
    result = recipe.train()
    print(json.dumps({"type": "result", **asdict(result)}, default=str), flush=True)
    return 0 if result.status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
