"""Secrets at rest: signing keys and API-key secrets are sealed before the store sees them.

A copy of the database (a backup, a MongoDB dump) must not be enough to forge tokens or
API-key signatures, so each secret is encrypted with Fernet (AES-128-CBC + HMAC-SHA256,
from the ``cryptography`` package) under a *master key* that lives in a file outside the
store: ``auth.master_key_file``, by default ``<state_dir>/master.key``.

- A sealed value is ``fxenc1:`` followed by a Fernet token. A value without the prefix
  is a clear-text secret written by an fxgate from before sealing: it is returned as is
  (and logged once per process, without the value), so old state directories keep
  working.
- The file holds one Fernet key per line (blank lines and ``#`` comments are skipped).
  The first key seals; every key unseals, so the master key can be rotated by putting a
  new key on top and keeping the old ones for as long as secrets sealed with them remain.
- The file is created (mode 0600, atomically) the first time a secret is sealed, never
  when one is only read: a missing file with sealed secrets in the store is an error
  that names the file, not a silent new key.
- A sealed value that does not decrypt raises :class:`SealError`, whose message names
  the file and the likely cause and never holds the secret.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)

#: Marks a sealed value; the digit is the format's version.
PREFIX = "fxenc1:"
#: The master key file's name in the state directory when none is configured.
DEFAULT_FILE_NAME = "master.key"


class SealError(Exception):
    """A secret cannot be sealed or unsealed; the message is for the operator and holds
    no secret."""


def master_key_path(configured: str | os.PathLike[str], state_dir: Path) -> Path:
    """The master key file: ``auth.master_key_file`` if set, else in the state directory."""
    if str(configured):
        return Path(configured).expanduser()
    return state_dir / DEFAULT_FILE_NAME


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def generate_key() -> str:
    """A new master key, as one line of a master key file."""
    return Fernet.generate_key().decode("ascii")


class Sealer:
    """Seals and unseals secrets with the master key in ``key_file``, read on first need."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._fernet: MultiFernet | None = None
        self._legacy_noted = False

    # -- the master key ------------------------------------------------------------------

    def ensure_key(self) -> None:
        """Read the master key, creating the file if there is none (the daemon calls this
        at start-up, after the stored secrets were read, so that the file exists to be
        backed up and a bad one is reported at once)."""
        self._load(create=True)

    def _load(self, *, create: bool) -> MultiFernet:
        if self._fernet is not None:
            return self._fernet
        path = self.key_file
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            if not create:
                raise SealError(
                    f"the store holds sealed secrets but the master key file {path} does not"
                    " exist: restore it from its backup (or set auth.master_key_file to it)"
                ) from None
            text = self._create(path)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
            raise SealError(f"cannot read the master key file {path}: {reason}") from None
        self._check_mode(path)
        keys: list[Fernet] = []
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                keys.append(Fernet(line.encode("ascii")))
            except ValueError:
                raise SealError(
                    f"the master key file {path}: line {number} is not a Fernet key"
                    " (32 url-safe base64-encoded bytes)"
                ) from None
        if not keys:
            raise SealError(f"the master key file {path} holds no key")
        self._fernet = MultiFernet(keys)
        return self._fernet

    @staticmethod
    def _create(path: Path) -> str:
        """Write a new key to ``path`` unless another process got there first; return the
        file's text either way. The key is written in full to a 0600 temporary file
        beside ``path`` and hard-linked into place, so no reader ever sees a half-written
        file and a concurrent creator's key is never overwritten."""
        text = generate_key() + "\n"
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
        except OSError as exc:
            raise SealError(
                f"cannot create the master key file {path}: {exc.strerror or exc}"
            ) from None
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return path.read_text(encoding="ascii")
            except OSError:
                # A file system without hard links: create exclusively instead.
                try:
                    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    return path.read_text(encoding="ascii")
                with os.fdopen(out, "w", encoding="ascii") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
        except OSError as exc:
            raise SealError(
                f"cannot create the master key file {path}: {exc.strerror or exc}"
            ) from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        log.info(
            "created a new master key for the secrets in the store, %s: back it up apart"
            " from the database",
            path,
        )
        return text

    @staticmethod
    def _check_mode(path: Path) -> None:
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                log.warning(
                    "the master key file %s is readable by others than its owner (mode"
                    " %04o): chmod 600 it",
                    path,
                    mode,
                )

    # -- secrets -------------------------------------------------------------------------

    def seal(self, secret: str) -> str:
        """``secret`` encrypted for the store, creating the master key on first use."""
        token = self._load(create=True).encrypt(secret.encode("utf-8"))
        return PREFIX + token.decode("ascii")

    def unseal(self, stored: str, *, what: str = "a stored secret") -> str:
        """The secret in ``stored``; ``what`` names it in errors and logs (never the value)."""
        if not is_sealed(stored):
            if not self._legacy_noted:
                self._legacy_noted = True
                log.warning(
                    "the store holds clear-text secrets from an fxgate older than sealing"
                    " (%s is one); they keep working until replaced: rotate the signing"
                    " keys, re-issue the API keys",
                    what,
                )
            return stored
        fernet = self._load(create=False)
        try:
            return fernet.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SealError(
                f"{what} does not decrypt with the master key in {self.key_file}: the master"
                " key changed or is not the one that sealed it (restore the original file;"
                " daemons sharing one store need the same master key)"
            ) from None
