"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106).

A verification costs about 160 ms of CPU on the development VM (64 MiB, three passes,
four lanes, each lane a thread of its own). The daemon never runs one on the event loop:
:func:`verify_password_async` and :func:`hash_password_async` run them on a pool of their
own, which is

* **bounded** (half the usable cores, at least one thread), so a burst of logins queues
  instead of running dozens of 64 MiB hashes at once; and
* **behind the event loop** for the CPU: its threads run at nice +:data:`HASH_NICE`
  (Linux nice values are per thread, and argon2's lane threads inherit their creator's),
  so that on a busy core a login waits for spare CPU instead of stalling every other
  request for the length of a hash. ``bench/rest.py`` measured the difference on one
  core at half load (250 requests/s, one login a second): trading p99 146 ms before,
  15 ms after; a login then took as long as before (p50 0.25 s). On a saturated core a
  login waits longer instead (p99 0.7 s, was 0.25 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()

MIN_LENGTH = 8

#: How much nicer than the rest of the process the hashing threads are.
HASH_NICE = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """False for a wrong password, a missing or corrupt hash; never raises."""
    if not password_hash:
        # Spend the same time as a real check, so timing doesn't reveal the account.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# -- off the event loop -----------------------------------------------------------------

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def hash_workers() -> int:
    """Half the cores this process may run on, at least one."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return max(1, usable // 2)


def _lower_priority() -> None:
    """Pool initializer: make this thread HASH_NICE nicer (Linux only, where a nice
    value belongs to a thread; elsewhere it would renice the whole process)."""
    if not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + HASH_NICE))


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=hash_workers(),
                thread_name_prefix="fxgate-argon2",
                initializer=_lower_priority,
            )
        return _pool


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """:func:`verify_password` on the hashing pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), verify_password, password_hash, password)


async def hash_password_async(password: str) -> str:
    """:func:`hash_password` on the hashing pool."""
    return await asyncio.get_running_loop().run_in_executor(_executor(), hash_password, password)
