"""Rate limits (the `limits` library): in memory by default, Redis when REDIS_URL is set.

Limits are strings such as "10/minute" (see OPENCHAT_RATE_LIMIT_* in .env.example).

Logins are limited so that nobody can lock another person out:
- every attempt counts against its address (one machine trying many accounts);
- failures count against the pair (account, address): an attacker's addresses get 429, the
  owner's address does not;
- failures also count against the account from all addresses: past OPENCHAT_LOGIN_BACKOFF_AFTER
  of them, each further attempt waits a short delay that doubles with each failure, up to
  LOGIN_BACKOFF_MAX_S. An address that logged in to the account before is not delayed, so the
  owner at a known place always gets in; a new place waits seconds, never longer.
"""

import math
import time

from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.core.config import Settings
from app.core.errors import ApiError

# Failed logins to one account are counted over this window (from its first failure).
LOGIN_FAILURE_WINDOW_S = 15 * 60
LOGIN_BACKOFF_MAX_S = 30
# How long an address that logged in to an account is remembered as the owner's.
KNOWN_ADDRESS_S = 30 * 24 * 3600


def _too_many(detail: str, retry_after: float) -> ApiError:
    seconds = max(1, math.ceil(retry_after))
    return ApiError(429, "rate_limited", detail.format(seconds=seconds), headers={"Retry-After": str(seconds)})


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        storage = storage_from_string(settings.redis_url or "memory://")
        assert isinstance(storage, Storage)  # memory:// and redis:// are synchronous storages
        self._storage = storage
        # Checking a limit in memory takes microseconds; in Redis it is a network call (run it in a thread).
        self.blocking = settings.redis_url is not None
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._items: dict[str, RateLimitItem] = {
            "login": parse(settings.rate_limit_login_address),
            "login failure": parse(settings.rate_limit_login),
            "signup": parse(settings.rate_limit_signup),
            "chat": parse(settings.rate_limit_chat),
        }
        self._backoff_after = settings.login_backoff_after

    def _retry_after(self, action: str, key: str) -> float:
        return self._limiter.get_window_stats(self._items[action], action, key).reset_time - time.time()

    def check(self, action: str, key: str) -> None:
        """Count one attempt of `action` by `key`; raise 429 with Retry-After when over the limit."""
        if not self._limiter.hit(self._items[action], action, key):
            raise _too_many(f"Too many {action} attempts; try again in {{seconds}} s.", self._retry_after(action, key))

    def check_login(self, account: str, address: str) -> None:
        """Before a password is checked: raise 429 if this address, or this account from this
        address, must wait. Counts the attempt against the address."""
        self.check("login", f"ip:{address}")
        pair = f"account:{account}|ip:{address}"
        if not self._limiter.test(self._items["login failure"], "login failure", pair):
            raise _too_many(
                "Too many failed logins to this account from your address; try again in {seconds} s.",
                self._retry_after("login failure", pair),
            )
        wait_key = f"login-wait/{account}"
        if self._storage.get(wait_key) and not self._storage.get(f"login-known/{account}|{address}"):
            raise _too_many(
                "This account has had many failed logins; try again in {seconds} s.",
                self._storage.get_expiry(wait_key) - time.time(),
            )

    def login_failed(self, account: str, address: str) -> None:
        self._limiter.hit(self._items["login failure"], "login failure", f"account:{account}|ip:{address}")
        failures = self._storage.incr(f"login-failures/{account}", LOGIN_FAILURE_WINDOW_S)
        if failures >= self._backoff_after:
            delay = min(LOGIN_BACKOFF_MAX_S, 2 ** min(failures - self._backoff_after, 8))
            wait_key = f"login-wait/{account}"
            self._storage.clear(wait_key)
            self._storage.incr(wait_key, delay)

    def login_succeeded(self, account: str, address: str) -> None:
        self._storage.incr(f"login-known/{account}|{address}", KNOWN_ADDRESS_S)
