"""The per-user generation limit shared by replicas through Redis (app/services/user_generations.py)."""

import asyncio
import uuid

import pytest

from app.core.errors import ApiError
from app.services.user_generations import SharedUserGenerations, UserGenerations


def replica(redis_url: str, lease_s: float = 30) -> SharedUserGenerations:
    return SharedUserGenerations(limit=1, redis_url=redis_url, renew_interval_s=lease_s / 6, lease_s=lease_s)


async def test_a_place_taken_on_one_replica_counts_on_the_other(redis_url: str) -> None:
    a, b, user = replica(redis_url), replica(redis_url), uuid.uuid4().hex
    async with a.hold(user):
        with pytest.raises(ApiError) as refused:
            async with b.hold(user):
                pass
        assert (refused.value.status, refused.value.code) == (429, "too_many_generations")
        async with b.hold(uuid.uuid4().hex):  # another user is not limited by this one
            pass
    async with b.hold(user):  # given back
        pass
    await a.aclose()
    await b.aclose()


async def test_the_places_of_a_killed_replica_lapse_with_their_lease(redis_url: str) -> None:
    killed, survivor, user = replica(redis_url, lease_s=0.5), replica(redis_url), uuid.uuid4().hex
    held = killed.hold(user)
    await held.__aenter__()
    assert killed._renewing is not None
    killed._renewing.cancel()  # its process is gone: nothing renews the place, nothing gives it back
    while True:
        try:
            async with survivor.hold(user):
                break
        except ApiError:
            await asyncio.sleep(0.05)
    await survivor.aclose()


async def test_in_memory_limit_without_redis() -> None:
    generations, user = UserGenerations(limit=2), "someone"
    async with generations.hold(user), generations.hold(user):
        with pytest.raises(ApiError):
            async with generations.hold(user):
                pass
    async with generations.hold(user):
        pass
