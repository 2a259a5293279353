import json
import random

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from worker.datasets.pretokens import (
    GPT2_ASCII_PATTERN,
    GPT2_PATTERN,
    PieceCounter,
    split_pattern,
)

TEXTS = [
    "What is the capital of France?",
    "Count  to three,\nplease.",
    "Now backwards ünïcödé 🙂 — done.  Really done.",
    "  leading and trailing  ",
    "```python\ndef f(x):\n    return x  # twice\n\n\n    pass\n```",
    "tabs\tand\r\nCRLF\x0b\x0c and \x1c\x1d\x1e\x1f separators",
    "don't I'll we've they're she's I'm he'd 'quoted' O'Neil",
    "numbers 1234567 3.14159 -42 ²³ Ⅻ １２３ ٣٤",
    "non-breaking\u00a0space, em\u2003space, ideographic\u3000space",
    "special <|im_end|> token and <|im_start|>user inside",
    "",
    " ",
    "\n\n",
    "email me: jane.doe+tag@example.com, call +1 (415) 555-0100.",
]


@pytest.fixture(scope="module")
def tokenizer(model_dir) -> Tokenizer:
    return Tokenizer.from_file(str(model_dir / "tokenizer.json"))


def exact(tokenizer: Tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


def test_counts_equal_the_tokenizer(tokenizer):
    counter = PieceCounter.for_tokenizer(tokenizer)
    assert counter is not None
    for text in TEXTS:
        assert counter.count(text) == exact(tokenizer, text), text
        assert counter.count(text) == exact(tokenizer, text), text  # from the cache


def test_counts_equal_the_tokenizer_on_random_text(tokenizer):
    counter = PieceCounter.for_tokenizer(tokenizer)
    assert counter is not None
    rng = random.Random(0)
    alphabet = "aZ9 _-.,'\n\t\u00a0é🙂—²<|>"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(60)))
        assert counter.count(text) == exact(tokenizer, text), repr(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_ascii_pattern_cuts_like_the_unicode_one(text):
    assert regex.findall(GPT2_ASCII_PATTERN, text) == regex.findall(GPT2_PATTERN, text)


def test_split_pattern_understands_byte_level_and_split_then_byte_level(model_dir):
    config = json.loads((model_dir / "tokenizer.json").read_text())
    assert split_pattern(config) == GPT2_PATTERN
    llama3_like = {
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": r"\p{N}{1,3}|\s+"},
                    "behavior": "Isolated",
                    "invert": False,
                },
                {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False},
            ],
        },
    }
    assert split_pattern(llama3_like) == r"\p{N}{1,3}|\s+"


def test_split_pattern_declines_other_pre_tokenizers():
    assert split_pattern({"normalizer": None, "pre_tokenizer": {"type": "Metaspace"}}) is None
    normalized = {"normalizer": {"type": "NFC"}, "pre_tokenizer": {"type": "ByteLevel"}}
    assert split_pattern(normalized) is None
    assert split_pattern({"pre_tokenizer": {"type": "ByteLevel", "use_regex": False}}) is None
