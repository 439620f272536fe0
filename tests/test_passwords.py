"""Password checks run on the hashing pool: bounded, and behind the event loop for the CPU."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

from fxgate.services.auth import passwords


async def test_async_verify_and_hash_agree_with_the_sync_ones() -> None:
    stored = await passwords.hash_password_async("a-long-password")
    assert passwords.verify_password(stored, "a-long-password")
    assert await passwords.verify_password_async(stored, "a-long-password")
    assert not await passwords.verify_password_async(stored, "another-password")
    assert not await passwords.verify_password_async(None, "a-long-password")
    assert not await passwords.verify_password_async("not-a-hash", "a-long-password")


async def test_the_pool_is_bounded_and_not_the_event_loop() -> None:
    seen: list[int] = []

    def where() -> int:
        seen.append(threading.get_ident())
        return threading.get_ident()

    pool = passwords._executor()
    assert pool._max_workers == passwords.hash_workers() >= 1
    assert passwords.hash_workers() <= max(1, (os.cpu_count() or 1) // 2)
    ident = await asyncio.get_running_loop().run_in_executor(pool, where)
    assert ident != threading.get_ident()


async def test_hashing_threads_are_nicer_than_the_event_loop() -> None:
    """On Linux each hashing thread is reniced on its own; elsewhere a nice value is the
    whole process's, so the pool must leave it alone."""
    loop = asyncio.get_running_loop()
    pool = passwords._executor()
    if not sys.platform.startswith("linux"):
        before = os.getpriority(os.PRIO_PROCESS, 0)
        await loop.run_in_executor(pool, passwords.hash_workers)
        assert os.getpriority(os.PRIO_PROCESS, 0) == before
        return

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    mine = nice()
    theirs = await loop.run_in_executor(pool, nice)
    assert theirs == min(19, mine + passwords.HASH_NICE)
    assert nice() == mine  # the event loop's thread, and so the process, is untouched


def test_hashes_use_owasps_parameters_and_old_ones_are_upgraded() -> None:
    from argon2 import PasswordHasher

    stored = passwords.hash_password("a-long-password")
    assert stored.startswith("$argon2id$v=19$m=47104,t=1,p=1$")
    assert not passwords.needs_rehash(stored)
    # A hash from argon2-cffi's defaults (what fxgate used before) still logs in, and
    # is marked to be re-made with the new parameters.
    old = PasswordHasher().hash("a-long-password")
    assert passwords.verify_password(old, "a-long-password")
    assert passwords.needs_rehash(old)
