"""Making sure one channel's job runs in one place at a time.

* Between replicas on PostgreSQL: a session advisory lock per (channel, job), taken with
  ``pg_try_advisory_lock`` on a connection held for the job; a replica that cannot take
  it skips the run (another replica is doing it).
* On SQLite only one daemon may run at all: :class:`SingleInstance` holds an exclusive
  lock (``filelock``) on ``<database>.lock`` for the daemon's life.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
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
    """An exclusive lock file beside an SQLite database, held while the daemon runs.

    The lock is :class:`filelock.FileLock` (``flock`` on ``<database>.lock``, released by
    the kernel if the process dies); the holder's pid is written to ``<database>.pid`` so
    that a second daemon can say who holds it.
    """

    def __init__(self, database_file: str) -> None:
        self.path = Path(f"{database_file}.lock")
        self.pid_path = Path(f"{database_file}.pid")
        self._lock = FileLock(self.path)

    def acquire(self) -> None:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            try:
                holder = self.pid_path.read_text().strip() or "unknown"
            except OSError:
                holder = "unknown"
            raise ConfigError(
                f"another sellable daemon (pid {holder}) already runs on this SQLite database "
                f"({self.path.with_suffix('')}); SQLite supports one daemon — use PostgreSQL "
                "to run several replicas"
            ) from None
        self.pid_path.write_text(str(os.getpid()))

    def release(self) -> None:
        if self._lock.is_locked:
            self.pid_path.unlink(missing_ok=True)
            self._lock.release()
