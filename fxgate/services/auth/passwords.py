"""Password hashing with argon2id, at OWASP's recommended cost.

The parameters are the first of OWASP's Password Storage Cheat Sheet's equivalent
argon2id configurations: 46 MiB of memory, one pass, one lane. argon2-cffi's own
defaults (RFC 9106's "low memory" choice: 64 MiB, three passes, four lanes) cost about
160 ms of CPU per check on the development VM, which put seed 003's "authentication
< 200 ms" out of reach on a busy core; these cost about 40 ms. A hash made with other
parameters still verifies, and is re-made with these at the user's next login
(:func:`needs_rehash`).

The daemon never runs a hash on the event loop: :func:`verify_password_async` and
:func:`hash_password_async` run them on a pool of their own, which is

* **bounded** (half the usable cores, at least one thread), so a burst of logins queues
  instead of running dozens of hashes at once; and
* **behind the event loop** for the CPU: its threads run at nice +:data:`HASH_NICE`
  (Linux nice values are per thread), so that on a busy core a login waits for spare
  CPU instead of stalling every other request for the length of a hash.
  ``bench/rest.py`` measured the difference on one core at half load (250 requests/s,
  one login a second, the old 160 ms parameters): trading p99 146 ms before, 15 ms
  after.
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

#: OWASP's argon2id configuration "m=47104 (46 MiB), t=1, p=1".
_hasher = PasswordHasher(time_cost=1, memory_cost=47104, parallelism=1)

MIN_LENGTH = 8

#: How much nicer than the rest of the process the hashing threads are.
HASH_NICE = 5


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
