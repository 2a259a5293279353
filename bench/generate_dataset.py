"""Generate a synthetic chat SFT dataset of a given size, for the dataset report benchmark.

Rows look like real SFT data: an optional system prompt drawn from a small set (real datasets
repeat a few system prompts), one to three user/assistant turns of ~100-1,000 tokens in all,
words drawn with their real frequencies from English text (the docstrings and comments of
Python's standard library, which is always at hand), some code blocks, a few exact and near
duplicates, refusals, e-mail addresses and phone numbers. Deterministic for a given seed.

    python -m bench.generate_dataset OUT.jsonl --megabytes 100 [--seed 0] [--parts 8]
"""

import argparse
import ast
import random
import re
import shutil
import sys
import sysconfig
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson

WORD = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+")
SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are a customer support agent for Acme Cloud. Be concise and polite.",
    "You are a senior Python engineer. Answer with working code and a short explanation.",
    "You summarise documents for busy executives. Use bullet points.",
    "You are a friendly tutor who explains things step by step.",
    "Answer in the style of a technical writer. Prefer short sentences.",
    "You are an assistant that classifies support tickets and explains the category.",
    "You translate informal requests into precise specifications.",
]
REFUSAL = "I'm sorry, but I can't help with that request."


def stdlib_corpus(limit_files: int = 400) -> tuple[list[str], list[int], list[str]]:
    """Words with their counts, and code lines, from the standard library's own sources."""
    counts: Counter[str] = Counter()
    code_lines: list[str] = []
    sources = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:limit_files]
    for source in sources:
        text = source.read_text(encoding="utf-8", errors="ignore")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Module):
                doc = ast.get_docstring(node)
                if doc:
                    counts.update(WORD.findall(doc))
        code_lines.extend(
            line
            for line in text.splitlines()
            if 20 < len(line) < 90 and not line.strip().startswith("#")
        )
    words, weights = zip(*counts.most_common(40_000), strict=True)
    return list(words), list(weights), code_lines


class RowMaker:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        words, weights, self.code_lines = stdlib_corpus()
        self.words = words
        self.cum_weights = list(_accumulate(weights))
        self.recent: list[bytes] = []

    def prose(self, n_words: int) -> str:
        rng = self.rng
        picked = rng.choices(self.words, cum_weights=self.cum_weights, k=n_words)
        out: list[str] = []
        sentence_left = rng.randint(6, 22)
        for word in picked:
            if sentence_left == 0:
                out[-1] += rng.choice(".....?!:")
                sentence_left = rng.randint(6, 22)
                word = word.capitalize()
                if rng.random() < 0.15:
                    out[-1] += "\n\n" if rng.random() < 0.7 else "\n- "
            elif out and rng.random() < 0.06:
                out[-1] += ","
            out.append(word)
            sentence_left -= 1
        return " ".join(out) + "."

    def code_block(self) -> str:
        start = self.rng.randrange(len(self.code_lines) - 12)
        lines = self.code_lines[start : start + self.rng.randint(3, 12)]
        return "```python\n" + "\n".join(lines) + "\n```"

    def reply(self, n_words: int) -> str:
        text = self.prose(n_words)
        if self.rng.random() < 0.2:
            text += "\n\n" + self.code_block()
        return text

    def row(self) -> bytes:
        rng = self.rng
        if self.recent and rng.random() < 0.01:  # exact duplicate of a recent row
            return rng.choice(self.recent)
        if self.recent and rng.random() < 0.01:  # near duplicate: one word changed
            return self.recent[-1].replace(b" the ", b" a ", 1)
        messages = []
        if rng.random() < 0.7:
            messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            question = self.prose(rng.randint(8, 80))
            if rng.random() < 0.02:
                question += f" You can reach me at {rng.choice(self.words).lower()}@example.com."
            if rng.random() < 0.01:
                question += f" My number is +1 415 555 {rng.randint(1000, 9999)}."
            messages.append({"role": "user", "content": question})
            answer = REFUSAL if rng.random() < 0.02 else self.reply(rng.randint(40, 450))
            messages.append({"role": "assistant", "content": answer})
        line = orjson.dumps({"messages": messages})
        self.recent = [*self.recent[-50:], line]
        return line


def _accumulate(values: list[int]) -> list[int]:
    total, out = 0, []
    for value in values:
        total += value
        out.append(total)
    return out


def generate(path: Path, megabytes: float, seed: int = 0) -> int:
    """Write rows until the file reaches `megabytes` MB; returns the number of rows."""
    maker = RowMaker(seed)
    target = int(megabytes * 1_000_000)
    written = rows = 0
    with path.open("wb") as out:
        while written < target:
            line = maker.row() + b"\n"
            out.write(line)
            written += len(line)
            rows += 1
    return rows


def generate_parts(path: Path, megabytes: float, seed: int = 0, parts: int = 1) -> None:
    """`parts` files of megabytes/parts, each generated with its own seed by its own process
    and appended in order (deterministic for a given seed and number of parts)."""
    if parts <= 1:
        generate(path, megabytes, seed)
        return
    names = [path.with_name(f"{path.name}.part{index}") for index in range(parts)]
    with ProcessPoolExecutor(parts) as pool:
        list(
            pool.map(
                generate,
                names,
                [megabytes / parts] * parts,
                [seed * 1000 + index for index in range(parts)],
            )
        )
    with path.open("wb") as out:
        for name in names:
            with name.open("rb") as part:
                shutil.copyfileobj(part, out)
            name.unlink()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--megabytes", type=float, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", type=int, default=1, help="generated in parallel")
    args = parser.parse_args(argv)
    generate_parts(args.out, args.megabytes, args.seed, args.parts)
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
