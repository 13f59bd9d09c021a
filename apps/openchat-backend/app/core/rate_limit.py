"""Rate limits (the `limits` library): in memory by default, Redis when REDIS_URL is set.

Limits are strings such as "10/minute" (see OPENCHAT_RATE_LIMIT_* in .env.example).
"""

import math
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.core.config import Settings
from app.core.errors import ApiError


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        storage = storage_from_string(settings.redis_url or "memory://")
        # Checking a limit in memory takes microseconds; in Redis it is a network call (run it in a thread).
        self.blocking = settings.redis_url is not None
        self._limiter = MovingWindowRateLimiter(storage)
        self._items: dict[str, RateLimitItem] = {
            "login": parse(settings.rate_limit_login),
            "signup": parse(settings.rate_limit_signup),
            "chat": parse(settings.rate_limit_chat),
        }

    def check(self, action: str, key: str) -> None:
        """Count one attempt of `action` by `key`; raise 429 with Retry-After when over the limit."""
        item = self._items[action]
        if self._limiter.hit(item, action, key):
            return
        reset = self._limiter.get_window_stats(item, action, key).reset_time
        retry_after = max(1, math.ceil(reset - time.time()))
        raise ApiError(
            429,
            "rate_limited",
            f"Too many {action} attempts; try again in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )
