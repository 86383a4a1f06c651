"""Making sure one channel's job runs in one place at a time.

* Between replicas on PostgreSQL: a session advisory lock per (channel, job), taken with
  ``pg_try_advisory_lock`` on a connection held for the job; a replica that cannot take
  it skips the run (another replica is doing it).
* On SQLite only one daemon may run at all: :class:`SingleInstance` holds an exclusive
  ``flock`` on ``<database>.lock`` for the daemon's life.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, text

from sellable.errors import ConfigError


def _lock_key(name: str) -> int:
    digest = hashlib.blake2b(f"sellable:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class JobLocks:
    """Advisory locks per job name on PostgreSQL; a no-op on SQLite (single daemon)."""

    def __init__(self, db: Engine) -> None:
        self.db = db
        self.enabled = db.dialect.name == "postgresql"

    @contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        if not self.enabled:
            yield True
            return
        key = _lock_key(name)
        with self.db.connect() as connection:
            acquired = bool(
                connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            )
            connection.commit()
            try:
                yield acquired
            finally:
                if acquired:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    connection.commit()

    def close(self) -> None:
        """Nothing to release: locks are held only while a job runs."""


class SingleInstance:
    """An exclusive lock file beside an SQLite database, held while the daemon runs."""

    def __init__(self, database_file: str) -> None:
        self.path = Path(f"{database_file}.lock")
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise ConfigError(
                f"another sellable daemon (pid {holder}) already runs on this SQLite database "
                f"({self.path.with_suffix('')}); SQLite supports one daemon — use PostgreSQL "
                "to run several replicas"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
