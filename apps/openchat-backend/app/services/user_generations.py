"""Fairness: how many replies each user has generating or waiting; more than the limit gets 429.

Counted in memory, per process, by default. With REDIS_URL the count is shared by every replica:
each place a user holds is a member of the user's sorted set in Redis, scored with the time its
lease expires. A process renews its places' leases while it holds them (every reply save
interval), so the places of a replica that was killed lapse within the reply lease instead of
counting against their user forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import redis.asyncio as redis

from app.core.config import Settings
from app.core.errors import ApiError

log = logging.getLogger(__name__)

KEY_PREFIX = "openchat:generations:"
# Drop the lapsed places, then take one if fewer than the limit are held (atomic in Redis).
# KEYS[1]: the user's set; ARGV: now, lease expiry, this place's id, limit, key lifetime (ms).
TAKE_PLACE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


def too_many(limit: int) -> ApiError:
    return ApiError(
        429,
        "too_many_generations",
        f"You already have {limit} replies generating or waiting. Wait for one to finish, or stop it, then send again.",
        headers={"Retry-After": "5"},
    )


class UserGenerations:
    """In this process's memory: one server."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, user_id: str) -> AsyncIterator[None]:
        if self._counts.get(user_id, 0) >= self.limit:
            raise too_many(self.limit)
        self._counts[user_id] = self._counts.get(user_id, 0) + 1
        try:
            yield
        finally:
            self._counts[user_id] -= 1
            if not self._counts[user_id]:
                del self._counts[user_id]

    async def aclose(self) -> None:
        pass


class SharedUserGenerations:
    """In Redis: every replica sees every user's places. If Redis cannot be reached, the limit is
    not enforced (logged): fairness is not worth refusing every chat for."""

    def __init__(self, limit: int, redis_url: str, renew_interval_s: float, lease_s: float) -> None:
        self.limit = limit
        self.renew_interval_s = renew_interval_s
        self.lease_s = lease_s
        self._redis_url = redis_url
        self._client: redis.Redis | None = None  # made in the event loop that uses it
        self._held: dict[str, str] = {}  # place id -> its user's key
        self._renewing: asyncio.Task[None] | None = None

    def _redis(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(self._redis_url, socket_timeout=5, socket_connect_timeout=5)
        return self._client

    @asynccontextmanager
    async def hold(self, user_id: str) -> AsyncIterator[None]:
        key, place = f"{KEY_PREFIX}{user_id}", uuid.uuid4().hex
        now = time.time()
        try:
            taken = await self._redis().eval(
                TAKE_PLACE, 1, key, now, now + self.lease_s, place, self.limit, int(self.lease_s * 1000)
            )
        except redis.RedisError as error:
            log.warning("Redis is unreachable: the per-user generation limit is not enforced (%s)", error)
            taken = None
        if taken is None:
            yield
            return
        if not taken:
            raise too_many(self.limit)
        self._held[place] = key
        if self._renewing is None or self._renewing.done():
            self._renewing = asyncio.get_running_loop().create_task(self._renew())
        try:
            yield
        finally:
            del self._held[place]
            with anyio.CancelScope(shield=True):  # a place not given back counts until its lease lapses
                try:
                    await self._redis().zrem(key, place)
                except redis.RedisError as error:
                    log.warning("Could not give back a generation place in Redis: %s", error)

    async def _renew(self) -> None:
        """Renew the leases of this process's places while it holds any."""
        while self._held:
            await anyio.sleep(self.renew_interval_s)
            expires = time.time() + self.lease_s
            try:
                async with self._redis().pipeline(transaction=False) as pipe:
                    for place, key in list(self._held.items()):
                        pipe.zadd(key, {place: expires}, xx=True)
                        pipe.pexpire(key, int(self.lease_s * 1000))
                    await pipe.execute()
            except redis.RedisError as error:
                log.warning("Could not renew generation places in Redis: %s", error)

    async def aclose(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            await asyncio.gather(self._renewing, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()


def user_generations(settings: Settings) -> UserGenerations | SharedUserGenerations:
    if settings.redis_url:
        return SharedUserGenerations(
            settings.user_max_generations, settings.redis_url, settings.reply_save_interval_s, settings.reply_lease_s
        )
    return UserGenerations(settings.user_max_generations)
