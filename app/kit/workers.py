"""The registry of live training workers in Redis: each GPU worker writes what it can serve
(hostname, GPUs, memory per GPU, queues) under one key with a TTL that its heartbeat keeps
refreshing, so a worker that dies drops out of the list by itself."""

import json
from typing import Any

from redis import Redis

KEY_PREFIX = "loraplex:workers:"
# A worker refreshes its entry every HEARTBEAT_SECONDS; one silent for TTL_SECONDS is gone.
TTL_SECONDS = 60
HEARTBEAT_SECONDS = 20


def redis_client(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)


def advertise(client: Redis, capacity: dict[str, Any], ttl: int = TTL_SECONDS) -> None:
    client.set(KEY_PREFIX + capacity["hostname"], json.dumps(capacity), ex=ttl)


def withdraw(client: Redis, hostname: str) -> None:
    client.delete(KEY_PREFIX + hostname)


def live_workers(client: Redis) -> list[dict[str, Any]]:
    """Every worker whose entry has not expired, by hostname."""
    keys = sorted(client.scan_iter(match=KEY_PREFIX + "*", count=100))
    entries = client.mget(keys) if keys else []
    return [json.loads(entry) for entry in entries if entry is not None]
