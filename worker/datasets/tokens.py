"""Token counts of a conversation as the SFT loader sees it: the chat template's rendering,
tokenized with the base model's tokenizer; trainable tokens are the weight-1 assistant replies
and their end-of-turn marker (worker/training/data.py labels the same ones).

Two ways to count, with the same answers:

- `ExactCounter` renders the whole conversation with the template and tokenizes the text,
  locating replies by rendering prefixes, like the loader. About 3 ms a 700-token row here.
- `FastCounter` renders each *shape* of conversation (its sequence of roles) once, with
  placeholder contents, to learn the template's fixed text around each message, then counts
  each message content on its own (worker/datasets/pretokens.py: the pre-tokenizer's regex
  in Python and a per-process cache of piece -> token count). This is exact when the
  template's text and a content never merge into one pre-tokenizer piece: contents that
  start or end with whitespace go the exact way.
  `TokenCounter` checks the fast counts against the exact ones on sampled rows and stops
  using the fast way for good on the first disagreement.
"""

from dataclasses import dataclass, field
from typing import Any

from tokenizers import Tokenizer

from worker.datasets.chat_template import ChatTemplate, ChatTemplateError, TokenizerFiles
from worker.datasets.pretokens import PieceCounter

Message = dict[str, Any]
_MAX_SHAPES = 4096


@dataclass(frozen=True)
class ConversationTokens:
    total: int
    trainable: int


class TemplateNotPrefixConsistentError(ChatTemplateError):
    pass


class ExactCounter:
    def __init__(self, tokenizer: Tokenizer, template: ChatTemplate):
        self.tokenizer = tokenizer
        self.template = template

    def count(
        self, messages: list[Message], tools: list[dict[str, Any]] | None = None
    ) -> ConversationTokens:
        text = self.template.render(messages, tools=tools)
        spans = [
            self._reply_span(messages, index, text, tools)
            for index, message in enumerate(messages)
            if message.get("role") == "assistant" and message.get("weight", 1) == 1
        ]
        offsets = self.tokenizer.encode(text, add_special_tokens=False).offsets
        trainable = sum(
            1
            for position, (start, _end) in enumerate(offsets)
            if position > 0 and any(lo <= start < hi for lo, hi in spans)
        )
        return ConversationTokens(total=len(offsets), trainable=trainable)

    def _reply_span(
        self,
        messages: list[Message],
        index: int,
        full_text: str,
        tools: list[dict[str, Any]] | None,
    ) -> tuple[int, int]:
        prompt = self.template.render(messages[:index], add_generation_prompt=True, tools=tools)
        through_reply = self.template.render(messages[: index + 1], tools=tools)
        if not (through_reply.startswith(prompt) and full_text.startswith(through_reply)):
            raise TemplateNotPrefixConsistentError(
                f"the chat template is not prefix-consistent at message {index}, so the "
                "assistant tokens cannot be located"
            )
        return len(prompt), len(through_reply.rstrip())


@dataclass(frozen=True)
class Shape:
    """What the template adds around each message of a conversation shape."""

    fixed_tokens: int  # tokens of all the template's own text
    reply_end_tokens: tuple[int, ...]  # per message: trained tokens after an assistant content


@dataclass
class FastCounter:
    tokenizer: Tokenizer
    template: ChatTemplate
    _shapes: dict[tuple[str, ...], Shape | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._pieces = PieceCounter.for_tokenizer(self.tokenizer)

    def count(self, messages: list[Message]) -> ConversationTokens | None:
        """The counts, or None when this row must be counted the exact way."""
        contents: list[str] = []
        for message in messages:
            content = message.get("content")
            if not isinstance(content, str) or message.get("tool_calls"):
                return None
            if not content or content[0].isspace() or content[-1].isspace():
                return None
            contents.append(content)
        shape = self._shape(tuple(message["role"] for message in messages))
        if shape is None:
            return None
        total = shape.fixed_tokens
        trainable = 0
        for index, (message, content) in enumerate(zip(messages, contents, strict=True)):
            tokens = self.count_text(content)
            total += tokens
            if message["role"] == "assistant" and message.get("weight", 1) == 1:
                trainable += tokens + shape.reply_end_tokens[index]
        return ConversationTokens(total=total, trainable=trainable)

    def count_text(self, text: str) -> int:
        """Tokens of a content on its own."""
        if self._pieces is None:
            return len(self.tokenizer.encode(text, add_special_tokens=False))
        return self._pieces.count(text)

    def _shape(self, roles: tuple[str, ...]) -> Shape | None:
        if roles not in self._shapes:
            if len(self._shapes) >= _MAX_SHAPES:
                return None
            self._shapes[roles] = self._learn_shape(roles)
        return self._shapes[roles]

    def _learn_shape(self, roles: tuple[str, ...]) -> Shape | None:
        """Render the shape with placeholder contents; None if the template does not place
        each content verbatim, in order, with replies where the generation prompt ends."""
        markers = [f"\x02{index}\x03" for index in range(len(roles))]
        messages = [
            {"role": role, "content": marker} for role, marker in zip(roles, markers, strict=True)
        ]
        try:
            text = self.template.render(messages)
            fixed: list[str] = []
            rest = text
            for marker in markers:
                before, found, rest = rest.partition(marker)
                if not found or marker in rest:
                    return None
                fixed.append(before)
            fixed.append(rest)
            reply_end = []
            for index, role in enumerate(roles):
                if role != "assistant":
                    reply_end.append(0)
                    continue
                prompt = self.template.render(messages[:index], add_generation_prompt=True)
                through = self.template.render(messages[: index + 1])
                consistent = through.startswith(prompt + markers[index]) and text.startswith(
                    through
                )
                # A reply that starts the text would have its first token unlabelled.
                if not consistent or not prompt:
                    return None
                reply_end.append(
                    self._tokens(through[len(prompt) + len(markers[index]) :].rstrip())
                )
        except ChatTemplateError:
            return None
        return Shape(
            fixed_tokens=sum(self._tokens(piece) for piece in fixed),
            reply_end_tokens=tuple(reply_end),
        )

    def _tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False)) if text else 0


@dataclass
class CountingStats:
    fast_rows: int = 0
    exact_rows: int = 0
    verified_rows: int = 0
    mismatched_rows: int = 0
    first_mismatch_line: int | None = None

    def merge(self, other: "CountingStats") -> None:
        self.fast_rows += other.fast_rows
        self.exact_rows += other.exact_rows
        self.verified_rows += other.verified_rows
        self.mismatched_rows += other.mismatched_rows
        if self.first_mismatch_line is None:
            self.first_mismatch_line = other.first_mismatch_line


class TokenCounter:
    """Fast counts, checked against exact ones on every `verify_every`-th row (and on the first
    `verify_first` rows of each process); after one disagreement every row is counted exactly."""

    def __init__(
        self,
        files: TokenizerFiles,
        fast: bool = True,
        verify_every: int = 97,
        verify_first: int = 20,
    ):
        tokenizer = files.tokenizer()
        template = files.chat_template()
        self.exact = ExactCounter(tokenizer, template)
        self.fast = FastCounter(tokenizer, template) if fast else None
        self.verify_every = verify_every
        self.verify_first = verify_first
        self.stats = CountingStats()

    def count(
        self,
        messages: list[Message],
        line: int,
        tools: list[dict[str, Any]] | None = None,
    ) -> ConversationTokens:
        """Raises ChatTemplateError when the template cannot render the row."""
        counted = self.fast.count(messages) if self.fast is not None and not tools else None
        if counted is None:
            self.stats.exact_rows += 1
            return self.exact.count(messages, tools)
        self.stats.fast_rows += 1
        seen = self.stats.fast_rows
        if seen <= self.verify_first or seen % self.verify_every == 0:
            exact = self.exact.count(messages, tools)
            self.stats.verified_rows += 1
            if exact != counted:
                self.stats.mismatched_rows += 1
                if self.stats.first_mismatch_line is None:
                    self.stats.first_mismatch_line = line
                self.fast = None
                return exact
        return counted

    @property
    def method(self) -> str:
        return "exact" if self.fast is None else "fast"
