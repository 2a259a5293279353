"""A base model's tokenizer files and chat template, loaded without transformers (which would
import torch into every analysis process). The template is rendered the way
`PreTrainedTokenizerBase.apply_chat_template` renders it: the same sandboxed Jinja
environment and globals, the special tokens as variables, messages with None values dropped.
A test checks the two agree."""

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import Tokenizer

SPECIAL_TOKEN_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token")


class ChatTemplateError(ValueError):
    """The chat template refused or failed to render a conversation."""


@dataclass(frozen=True)
class ChatTemplate:
    source: str
    variables: dict[str, str]  # special tokens, as transformers passes them

    @cached_property
    def _compiled(self) -> jinja2.Template:
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
        )
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        return env.from_string(self.source)

    def render(
        self,
        messages: list[dict[str, Any]],
        add_generation_prompt: bool = False,
        tools: list[dict[str, Any]] | None = None,
    ) -> str:
        plain = [{k: v for k, v in m.items() if v is not None} for m in messages]
        try:
            return self._compiled.render(
                messages=plain,
                tools=tools,
                documents=None,
                add_generation_prompt=add_generation_prompt,
                **self.variables,
            )
        except (jinja2.TemplateError, TypeError, ValueError, KeyError) as exc:
            raise ChatTemplateError(f"the chat template cannot render this row ({exc})") from exc


@dataclass(frozen=True)
class TokenizerFiles:
    """A Hugging Face tokenizer directory (tokenizer.json, tokenizer_config.json and the chat
    template, inline or in chat_template.jinja)."""

    directory: Path

    @property
    def name(self) -> str:
        return self.directory.name

    def tokenizer(self) -> Tokenizer:
        return Tokenizer.from_file(str(self.directory / "tokenizer.json"))

    def chat_template(self) -> ChatTemplate:
        config = self._config()
        jinja_file = self.directory / "chat_template.jinja"
        source = jinja_file.read_text() if jinja_file.exists() else config.get("chat_template")
        if not isinstance(source, str):
            raise ValueError(f"{self.directory} has no chat template")
        variables = {}
        for key in SPECIAL_TOKEN_KEYS:
            value = config.get(key)
            if isinstance(value, dict):  # an AddedToken written out in full
                value = value.get("content")
            if isinstance(value, str):
                variables[key] = value
        return ChatTemplate(source, variables)

    def _config(self) -> dict[str, Any]:
        path = self.directory / "tokenizer_config.json"
        config: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        return config


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)
