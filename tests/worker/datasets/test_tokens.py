import json

import pytest

from worker.datasets.report import ReportOptions, build_report

ROWS = [
    {
        "messages": [
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Paris."},
        ]
    },
    {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Count  to three,\nplease."},
            {"role": "assistant", "content": "1, 2, 3"},
            {"role": "user", "content": "Now backwards ünïcödé 🙂"},
            {"role": "assistant", "content": "3, 2, 1", "weight": 0},
            {"role": "user", "content": "Again?"},
            {"role": "assistant", "content": "3 2 1 — done.  Really done."},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": " leading space"},
            {"role": "assistant", "content": "trailing space "},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "Write a long answer."},
            {"role": "assistant", "content": " ".join(f"word{i}" for i in range(300))},
        ]
    },
]


@pytest.fixture(scope="module")
def hf_tokenizer(model_dir):
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(model_dir))


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS))
    return path


def report(path, model_dir, **options):
    built = build_report(path, ReportOptions(workers=1, tokenizer_dir=model_dir, **options))
    return built, built.to_dict()["tokens"]


def rendered(tokenizer, row):
    messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    return tokenizer.apply_chat_template(messages, tokenize=False)


@pytest.mark.parametrize("fast", [True, False])
def test_counts_equal_apply_chat_template(data_file, model_dir, hf_tokenizer, fast):
    built, tokens = report(data_file, model_dir, fast_tokens=fast)
    expected = [
        len(hf_tokenizer(rendered(hf_tokenizer, r), add_special_tokens=False)["input_ids"])
        for r in ROWS
    ]
    assert list(built.token_lines) == [1, 2, 3, 4]
    assert list(built.token_totals) == expected
    assert tokens["total"] == sum(expected)
    assert tokens["counted_rows"] == 4 and tokens["mismatched_rows"] == 0
    if fast:
        # Row 3's contents start/end with whitespace, so it alone is counted the exact way.
        assert (tokens["method"], tokens["fast_rows"], tokens["exact_rows"]) == ("fast", 3, 1)
    else:
        assert (tokens["method"], tokens["fast_rows"]) == ("exact", 0)


@pytest.mark.parametrize("fast", [True, False])
def test_trainable_tokens_equal_the_training_loader(data_file, model_dir, hf_tokenizer, fast):
    from worker.training.data import tokenize_conversation

    built, tokens = report(data_file, model_dir, fast_tokens=fast)
    examples = [tokenize_conversation(r["messages"], hf_tokenizer, 100_000) for r in ROWS]
    assert list(built.token_trainable) == [e.trainable_tokens for e in examples]
    assert tokens["total"] == sum(len(e) for e in examples)
    assert tokens["trainable"] + tokens["prompt"] == tokens["total"]
    assert 0 < tokens["trainable"] < tokens["total"]


def test_weight_zero_reply_is_not_trainable(data_file, model_dir, hf_tokenizer):
    built, _ = report(data_file, model_dir)
    row = ROWS[1]
    unweighted = {
        "messages": [{**m, "weight": 1} if m["role"] == "assistant" else m for m in row["messages"]]
    }
    path = data_file.parent / "all.jsonl"
    path.write_text(json.dumps(unweighted) + "\n")
    all_built, _ = report(path, model_dir)
    assert all_built.token_totals[0] == built.token_totals[1]
    assert all_built.token_trainable[0] > built.token_trainable[1]


def test_truncated_rows_counted_against_max_seq_length(data_file, model_dir, hf_tokenizer):
    built, tokens = report(data_file, model_dir, max_seq_length=64)
    totals = list(built.token_totals)
    assert max(totals) > 64
    longer = [line for line, n in zip([1, 2, 3, 4], totals, strict=True) if n > 64]
    assert tokens["truncated_rows"] == len(longer)
    assert tokens["truncated_lines"] == longer
    assert tokens["tokens_after_truncation"] == sum(min(n, 64) for n in totals)
    assert tokens["max_seq_length"] == 64
    assert sum(b["rows"] for b in tokens["histogram"]) == 4
    assert "truncated_rows" in [a["code"] for a in built.to_dict()["advice"]]


def test_no_truncation_under_a_large_limit(data_file, model_dir):
    _, tokens = report(data_file, model_dir, max_seq_length=4096)
    assert tokens["truncated_rows"] == 0
    assert tokens["tokens_after_truncation"] == tokens["total"]


def test_no_tokenizer_no_tokens(data_file):
    assert build_report(data_file, ReportOptions(workers=1)).to_dict()["tokens"] is None
