"""The ``mt5`` broker backend: the registry's ``build`` and ``check``.

``check`` is what ``fxgate config check`` and start-up both run: the ``[mt5]`` section
must name its ``owner``, a ``bridge`` must be an ``mt5linux://host:port`` URL that
answers, a ``password_file`` must be readable, and the package the choice needs
(``MetaTrader5``, or ``mt5linux`` with a bridge) must be importable. Each problem is one
line naming its key. The password (``password_file`` or ``FXGATE_MT5_PASSWORD``) goes
to ``initialize`` and nowhere else: never logged, stored, or put in a repr.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

from fxgate.brokers.mt5.broker import Mt5Broker
from fxgate.brokers.mt5.process import ProcessTerminal, child_env, package_api
from fxgate.brokers.mt5.terminal import Worker, bridge_reachable, import_api, parse_bridge
from fxgate.brokers.mt5.thread import ThreadTerminal
from fxgate.config.settings import Mt5Settings, Settings
from fxgate.services.ports.broker_backend import BrokerBackend
from fxgate.services.ports.store import Store

#: Seconds an import check may take (the package, numpy) before it counts as broken.
IMPORT_TIMEOUT = 60


def check(settings: Settings) -> list[str]:
    """Problems with the ``[mt5]`` section, one line each."""
    s = settings.mt5
    found: list[str] = []
    if not s.owner:
        found.append("mt5.owner: required: the fxgate user id whose account this terminal is")
    if s.password_file:
        try:
            Path(s.password_file).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            found.append(f"mt5.password_file: cannot read it ({exc.strerror or exc})")
    package, extra = ("mt5linux", "mt5linux") if s.bridge else ("MetaTrader5", "mt5")
    if not importable(package, s.worker):
        found.append(
            f"broker.backend = \"mt5\": {package} is not installed (pip install 'fxgate[{extra}]')"
        )
    if s.bridge:
        try:
            parse_bridge(s.bridge)
        except ValueError as exc:
            found.append(f"mt5.bridge: {exc} (got {s.bridge!r})")
        else:
            why = bridge_reachable(s.bridge)
            if why is not None:
                found.append(f"mt5.bridge: {why}; is the mt5linux server running?")
    return found


def importable(package: str, worker: str) -> bool:
    """Whether the package imports where the worker will import it. With the default
    worker that is a child process, so the check imports it in a short-lived one
    (``python -P -c "import MetaTrader5"``, the worker's environment): the daemon itself
    never imports it (a fake's control port, the real package's DLL stay out of it)."""
    if importlib.util.find_spec(package) is None:
        return False
    if worker == "thread":
        try:
            importlib.import_module(package)
        except ImportError:
            return False
        return True
    env = {k: v for k, v in child_env().items() if k != "FAKE_MT5_CONTROL"}
    try:
        done = subprocess.run(
            [sys.executable, "-P", "-c", f"import {package}"],
            env=env,
            capture_output=True,
            timeout=IMPORT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def password(s: Mt5Settings) -> str | None:
    if s.password is not None:
        return s.password.get_secret_value()
    if s.password_file:
        return Path(s.password_file).expanduser().read_text(encoding="utf-8").strip()
    return None


def connect_kwargs(s: Mt5Settings) -> dict[str, Any]:
    """``initialize``'s arguments: only those the operator set."""
    kwargs: dict[str, Any] = {"timeout": s.timeout, "portable": s.portable}
    if s.terminal_path:
        kwargs["path"] = s.terminal_path
    if s.login is not None:
        kwargs["login"] = s.login
    if s.server:
        kwargs["server"] = s.server
    secret = password(s)
    if secret is not None:
        kwargs["password"] = secret
    return kwargs


def worker(kind: str, bridge: str) -> Worker:
    """``mt5.worker``: the terminal's owner in a child process, or in a thread."""
    if kind == "thread":
        return ThreadTerminal(lambda: import_api(bridge))
    return ProcessTerminal(package_api(bridge))


def build(settings: Settings, store: Store) -> BrokerBackend:
    s = settings.mt5
    bridge = s.bridge
    terminal = worker(s.worker, bridge)
    broker = Mt5Broker(
        terminal,
        store.trading,
        owner=s.owner,
        symbols=s.symbols,
        connect_kwargs=connect_kwargs(s),
        magic=s.magic,
        deviation=s.deviation,
        poll_interval=s.poll_interval,
        trade_poll_interval=s.trade_poll_interval,
    )
    return BrokerBackend(broker, broker.feed, None)
