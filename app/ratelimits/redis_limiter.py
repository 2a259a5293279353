"""The same token buckets in Redis, shared by every API process. Each decision is one Lua
script (atomic on the server) using Redis' own clock, so API hosts need not agree on time.
If Redis is unreachable the limiter fails open: serving matters more than metering."""

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.ratelimits.bucket import Decision, Limits

log = logging.getLogger(__name__)

# KEYS: requests bucket, tokens bucket. ARGV: rpm, tpm, mode ("admit" | "debit"), used tokens.
# Returns integers (Lua numbers are truncated on the way out): allowed, limit (0 none,
# 1 requests, 2 tokens), retry-after in ms, remaining requests, remaining tokens.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local function load(key, cap)
  local v = redis.call('HMGET', key, 'level', 'ts')
  local level, ts = tonumber(v[1]), tonumber(v[2])
  if level == nil then return cap end
  return math.min(cap, level + math.max(0, now - ts) * cap / 60)
end
local function save(key, level)
  redis.call('HSET', key, 'level', tostring(level), 'ts', tostring(now))
  redis.call('EXPIRE', key, 180)
end
local tok = load(KEYS[2], tpm)
if ARGV[3] == 'debit' then
  tok = math.max(-tpm, tok - tonumber(ARGV[4]))
  save(KEYS[2], tok)
  return {1, 0, 0, 0, math.floor(tok)}
end
local req = load(KEYS[1], rpm)
if tok <= 0 then
  return {0, 2, math.ceil((1 - tok) * 60000 / tpm), math.floor(req), math.floor(tok)}
end
if req < 1 then
  return {0, 1, math.ceil((1 - req) * 60000 / rpm), 0, math.floor(tok)}
end
req = req - 1
save(KEYS[1], req)
save(KEYS[2], tok)
return {1, 0, 0, math.floor(req), math.floor(tok)}
"""

LIMIT_NAMES = {1: "requests", 2: "tokens"}


class RedisLimiter:
    def __init__(self, url: str, prefix: str = "loraplex:ratelimit"):
        self.redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.script = self.redis.register_script(SCRIPT)
        self.prefix = prefix

    def _keys(self, tenant_id: str) -> list[str]:
        return [f"{self.prefix}:{tenant_id}:requests", f"{self.prefix}:{tenant_id}:tokens"]

    async def admit(self, tenant_id: str, limits: Limits) -> Decision:
        try:
            allowed, limit, retry_ms, req, tok = await self.script(
                keys=self._keys(tenant_id),
                args=[limits.requests_per_minute, limits.tokens_per_minute, "admit", 0],
            )
        except RedisError:
            log.warning("rate limiter: Redis unavailable, letting the request through")
            return Decision(True, None, 0.0, limits.requests_per_minute, limits.tokens_per_minute)
        return Decision(bool(allowed), LIMIT_NAMES.get(int(limit)), retry_ms / 1000.0, req, tok)

    async def debit(self, tenant_id: str, used: int, limits: Limits) -> None:
        try:
            await self.script(
                keys=self._keys(tenant_id),
                args=[limits.requests_per_minute, limits.tokens_per_minute, "debit", used],
            )
        except RedisError:
            log.warning("rate limiter: Redis unavailable, %d tokens not debited", used)

    async def aclose(self) -> None:
        await self.redis.aclose()
