"""Pure logic of the serving path: rendezvous hashing, spill-over, the adapter LRU."""

from collections import Counter
from dataclasses import dataclass

import pytest

from app.inference.residency import LRUSet
from app.inference.routing import choose, rendezvous_order


@dataclass
class Node:
    url: str
    inflight: int = 0


NODES = [f"http://10.0.0.{i}:8001" for i in range(1, 6)]
KEYS = [f"adapter-{i:04d}" for i in range(2000)]


def test_rendezvous_is_deterministic_and_spreads_keys():
    owners = Counter(rendezvous_order(k, NODES)[0] for k in KEYS)
    assert owners == Counter(rendezvous_order(k, list(reversed(NODES)))[0] for k in KEYS)
    assert set(owners) == set(NODES)
    assert all(250 < n < 550 for n in owners.values()), owners  # ~400 each


def test_removing_a_node_moves_only_its_keys():
    before = {k: rendezvous_order(k, NODES)[0] for k in KEYS}
    gone = NODES[2]
    after = {k: rendezvous_order(k, [n for n in NODES if n != gone])[0] for k in KEYS}
    moved = [k for k in KEYS if before[k] != after[k]]
    assert moved and all(before[k] == gone for k in moved)
    # …and each moved key goes to its second choice.
    assert all(after[k] == rendezvous_order(k, NODES)[1] for k in moved)


def test_adding_a_node_takes_keys_only_for_itself():
    before = {k: rendezvous_order(k, NODES)[0] for k in KEYS}
    new = "http://10.0.0.9:8001"
    after = {k: rendezvous_order(k, [*NODES, new])[0] for k in KEYS}
    assert all(after[k] in (before[k], new) for k in KEYS)


def test_choose_sticks_to_the_rendezvous_node_below_the_spill_threshold():
    nodes = [Node(u, inflight=3) for u in NODES]
    owner = rendezvous_order("adapter-x", NODES)[0]
    assert choose("adapter-x", nodes, spill_inflight=4).url == owner


def test_choose_spills_to_the_least_loaded_when_the_owner_is_busy():
    nodes = [Node(u, inflight=5) for u in NODES]
    owner = rendezvous_order("adapter-x", NODES)[0]
    next(n for n in nodes if n.url == owner).inflight = 9
    quiet = next(n for n in nodes if n.url != owner)
    quiet.inflight = 1
    assert choose("adapter-x", nodes, spill_inflight=8) is quiet


def test_choose_keeps_the_owner_when_everyone_is_as_busy():
    nodes = [Node(u, inflight=9) for u in NODES]
    owner = rendezvous_order("adapter-x", NODES)[0]
    assert choose("adapter-x", nodes, spill_inflight=8).url == owner


def test_choose_needs_a_replica():
    with pytest.raises(ValueError):
        choose("k", [], 1)


def test_lru_evicts_least_recently_used_first():
    lru = LRUSet(2)
    lru.add("a")
    lru.add("b")
    assert lru.victims_for("a") == []  # already resident
    lru.touch("a")
    assert lru.victims_for("c") == ["b"]
    lru.discard("b")
    lru.add("c")
    assert lru.names() == ["a", "c"]


def test_lru_never_evicts_a_pinned_adapter_and_overflows_instead():
    lru = LRUSet(1)
    lru.add("a")
    lru.pin("a")
    assert lru.victims_for("b") == []
    lru.add("b")
    assert len(lru) == 2  # over capacity while "a" is in use
    lru.unpin("a")
    assert lru.victims_for("c") == ["a", "b"]


def test_lru_trims_an_over_capacity_replica_around_a_resident_adapter():
    lru = LRUSet(1)
    lru.add("a")
    lru.pin("a")
    lru.add("b")  # overflow while "a" was in use
    lru.unpin("a")
    assert lru.over_capacity()
    assert lru.victims_for("b") == ["a"] and lru.victims_for("a") == ["b"]


def test_lru_pins_count():
    lru = LRUSet(1)
    lru.add("a")
    lru.pin("a")
    lru.pin("a")
    lru.unpin("a")
    assert lru.victims_for("b") == []
    lru.unpin("a")
    assert lru.victims_for("b") == ["a"]


def test_lru_reconcile_keeps_order_drops_lost_and_queues_unknown_first():
    lru = LRUSet(4)
    for name in ("a", "b", "c"):
        lru.add(name)
    lru.reconcile({"c", "a", "x"})
    assert lru.names() == ["x", "a", "c"]
    lru.reconcile([])
    assert lru.names() == []


def test_lru_capacity_must_be_positive():
    with pytest.raises(ValueError):
        LRUSet(0)


# --- what vLLM is sent ----------------------------------------------------------------------


def _target(system_prompt=None):  # type: ignore[no-untyped-def]
    from app.inference.schemas import ServingTarget
    from app.ratelimits.bucket import Limits

    return ServingTarget(
        tenant_id="tenant-1",
        public_name="bot",
        served_name="adapter-1",
        kind="alias",
        base_model="base",
        limits=Limits(1, 1),
        adapter_id="adapter-1",
        adapter_path="/storage/adapters/tenant-1/adapter-1",
        system_prompt=system_prompt,
    )


def test_upstream_body_renames_the_model_and_drops_server_side_knobs():
    from app.inference.service import upstream_body

    body = {
        "model": "bot",
        "messages": [{"role": "user", "content": "hi"}],
        "chat_template": "{{ evil }}",
        "logits_processors": ["os.system"],
        "temperature": 0,
    }
    out, wants_usage = upstream_body("/v1/chat/completions", _target(), body)
    assert out == {"model": "adapter-1", "messages": body["messages"], "temperature": 0}
    assert wants_usage == "none" and body["model"] == "bot"  # the client's body is untouched


def test_streams_always_ask_vllm_for_usage_on_every_chunk_and_remember_who_asked():
    from app.inference.service import upstream_body

    out, wants = upstream_body("/v1/completions", _target(), {"prompt": "x", "stream": True})
    every_chunk = {"include_usage": True, "continuous_usage_stats": True}
    assert out["stream_options"] == every_chunk and wants == "none"
    asked = {"prompt": "x", "stream": True, "stream_options": {"include_usage": True}}
    assert upstream_body("/v1/completions", _target(), asked)[1] == "final"
    asked["stream_options"] = every_chunk
    assert upstream_body("/v1/completions", _target(), asked)[1] == "continuous"


@pytest.mark.parametrize(
    ("wants", "final", "sent", "usage"),
    [
        ("none", False, True, "absent"),
        ("none", True, False, "absent"),
        ("final", False, True, None),
        ("final", True, True, {"total_tokens": 3}),
        ("continuous", False, True, {"total_tokens": 3}),
    ],
)
def test_chunks_carry_only_the_usage_the_client_asked_for(wants, final, sent, usage):
    from app.inference.service import _usage_for_client

    chunk = {"choices": [] if final else [{"delta": {"content": "x"}}]}
    chunk["usage"] = {"total_tokens": 3}
    assert _usage_for_client(chunk, wants) is sent
    assert chunk.get("usage", "absent") == usage


def test_alias_system_prompt_goes_first_in_chat_only():
    from app.inference.service import upstream_body

    target = _target("Be terse.")
    user = [{"role": "user", "content": "hi"}]
    out, _ = upstream_body("/v1/chat/completions", target, {"messages": user})
    assert out["messages"] == [{"role": "system", "content": "Be terse."}, *user]
    own = [{"role": "system", "content": "Use JSON."}, *user]
    out, _ = upstream_body("/v1/chat/completions", target, {"messages": own})
    assert out["messages"] == [{"role": "system", "content": "Be terse.\n\nUse JSON."}, *user]
    out, _ = upstream_body("/v1/completions", target, {"prompt": "hi"})
    assert out["prompt"] == "hi"
