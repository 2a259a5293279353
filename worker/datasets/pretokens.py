"""Token counts of plain text without the tokenizer's own pre-tokenizer.

A byte-level BPE tokenizer cuts text into pieces with a regex, then runs BPE inside each piece
on its UTF-8 bytes; a piece's token count never depends on its neighbours. The Rust
pre-tokenizer's regex engine costs ~15 us a piece on these CPUs, most of a tokenizer call, so
`PieceCounter` cuts with the same regex in the `regex` module (~1 us a piece), remembers
each distinct piece's count, and asks the BPE model only for pieces it has not seen.

Only the pre-tokenizers whose whole job is that regex are understood: `ByteLevel` with its
GPT-2 regex (SmolLM2, GPT-2, StarCoder), or a `Split` by a regex followed by a regex-less
`ByteLevel` (Llama 3, Qwen 2); no normalizer. For anything else `for_tokenizer` answers
None. Text containing an added token (split off before pre-tokenization) is tokenized whole.
"""

import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import regex
from tokenizers import Tokenizer

# The ByteLevel pre-tokenizer's own regex (tokenizers/src/pre_tokenizers/byte_level.rs).
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
# The same for ASCII text, for the standard `re` engine, nearly twice as fast: \p{L} and
# \p{N} are the ASCII letters and digits there, and \s is Unicode White_Space (which, unlike
# `re`'s \s, leaves out \x1c-\x1f).
_WS = r"\t\n\x0b\x0c\r "
GPT2_ASCII_PATTERN = (
    rf"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^{_WS}A-Za-z0-9]+"
    rf"|[{_WS}]+(?![^{_WS}])|[{_WS}]+"
)
_CACHE_LIMIT = 300_000


@lru_cache(maxsize=1)
def byte_level_alphabet() -> tuple[str, ...]:
    """GPT-2's byte -> printable character map, which byte-level BPE vocabularies use."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in chars:
            chars[byte] = chr(256 + extra)
            extra += 1
    return tuple(chars[byte] for byte in range(256))


def split_pattern(config: dict[str, Any]) -> str | None:
    """The regex the pre-tokenizer config cuts with, if that is all it does (see above)."""
    if config.get("normalizer") is not None:
        return None
    pre = config.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    if len(steps) == 1 and steps[0].get("type") == "ByteLevel":
        return GPT2_PATTERN if steps[0].get("use_regex", True) else None
    if (
        len(steps) == 2
        and steps[0].get("type") == "Split"
        and "Regex" in steps[0].get("pattern", {})
        and steps[0].get("behavior") == "Isolated"
        and not steps[0].get("invert")
        and steps[1].get("type") == "ByteLevel"
        and not steps[1].get("use_regex", True)
    ):
        pattern: str = steps[0]["pattern"]["Regex"]
        return pattern
    return None


class PieceCounter(dict[str, int]):
    """piece -> token count, for one tokenizer, learnt on first sight (bounded)."""

    def __init__(self, tokenizer: Tokenizer, pattern: str):
        super().__init__()
        self.tokenizer = tokenizer
        self.model = tokenizer.model
        self.pieces: Callable[[str], list[str]] = regex.compile(pattern).findall
        self.ascii_pieces = (
            re.compile(GPT2_ASCII_PATTERN).findall if pattern == GPT2_PATTERN else self.pieces
        )
        added = sorted(
            (token.content for token in tokenizer.get_added_tokens_decoder().values()),
            key=len,
            reverse=True,
        )
        self.added = regex.compile("|".join(map(regex.escape, added))).search if added else None
        self.alphabet = byte_level_alphabet()

    @classmethod
    def for_tokenizer(cls, tokenizer: Tokenizer) -> "PieceCounter | None":
        pattern = split_pattern(json.loads(tokenizer.to_str()))
        return cls(tokenizer, pattern) if pattern is not None else None

    def count(self, text: str) -> int:
        """Tokens of `text` on its own (no special tokens added)."""
        if self.added is not None and self.added(text):
            return len(self.tokenizer.encode(text, add_special_tokens=False))
        pieces = self.ascii_pieces(text) if text.isascii() else self.pieces(text)
        try:
            return sum(map(self.__getitem__, pieces))
        except KeyError:
            pass
        if len(self) + len(pieces) > _CACHE_LIMIT:
            self.clear()
        for piece in pieces:
            if piece not in self:
                self[piece] = self._tokens(piece)
        return sum(map(self.__getitem__, pieces))

    def _tokens(self, piece: str) -> int:
        alphabet = self.alphabet
        return len(self.model.tokenize("".join([alphabet[byte] for byte in piece.encode()])))
