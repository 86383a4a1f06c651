"""Making sure one channel's job runs in one place at a time.

* Between replicas on PostgreSQL: a session advisory lock per (channel, job), taken with
  ``pg_try_advisory_lock`` on a connection held for the job; a replica that cannot take
  it skips the run (another replica is doing it).
* On SQLite only one process runs jobs at all: :class:`SingleInstance` holds an exclusive
  lock (``filelock``) on ``<database>.lock`` for the life of the daemon, or of a
  ``sellable sync --once``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Engine, make_url, text

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

    def held(self, name: str) -> bool:
        """Whether some session (this process's, another replica's) holds the lock of
        ``name`` now, read from ``pg_locks`` without taking it (a run starting at that
        moment is never turned away). PostgreSQL only."""
        unsigned = _lock_key(name) & 0xFFFF_FFFF_FFFF_FFFF
        with self.db.connect() as connection:
            found = connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1"
                ),
                {"high": unsigned >> 32, "low": unsigned & 0xFFFF_FFFF},
            ).scalar()
        return bool(found)

    def close(self) -> None:
        """Nothing to release: locks are held only while a job runs."""


def run_is_live(db: Engine) -> Callable[[str, str], bool]:
    """Whether a recorded run of (channel, job) that has not finished is still running
    somewhere: on PostgreSQL, whether its job lock is held (a run starts and finishes
    inside it); on SQLite, whether a daemon or a ``sellable sync --once`` holds the
    database. A run that is not live was interrupted: its process was killed, crashed or
    abandoned it at shutdown."""
    if db.dialect.name == "postgresql":
        locks = JobLocks(db)
        return lambda code, job: locks.held(f"{code}:{job}")
    database = make_url(db.url).database
    alive = database is not None and SingleInstance(database).holder() is not None
    return lambda _code, _job: alive


#: Who holds a SQLite database (:class:`SingleInstance`), as its pid file's second line.
DAEMON = "daemon"
ONE_PASS = "sellable sync --once"


class SingleInstance:
    """An exclusive lock file beside an SQLite database, held while a process runs jobs on
    it: the daemon (``role`` :data:`DAEMON`), or a one-pass ``sellable sync --once``
    (:data:`ONE_PASS`), which would otherwise run the daemon's jobs beside it.

    The lock is :class:`filelock.FileLock` (``flock`` on ``<database>.lock``, released by
    the kernel if the process dies); the holder's pid and role are written to
    ``<database>.pid`` so that another process can say who holds it, and ``status`` can
    tell a run in progress from one a killed process left open.
    """

    def __init__(self, database_file: str, role: str = DAEMON) -> None:
        self.path = Path(f"{database_file}.lock")
        self.pid_path = Path(f"{database_file}.pid")
        self.role = role
        self._lock = FileLock(self.path)

    @classmethod
    def for_url(cls, url: str, role: str = DAEMON) -> SingleInstance | None:
        """The lock of a SQLite database URL's file (None on PostgreSQL, where job locks
        keep each job in one place, and for an in-memory database)."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or not parsed.database:
            return None
        if parsed.database == ":memory:":
            return None
        return cls(parsed.database, role)

    def acquire(self) -> None:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            pid, role = self._pid_file()
            holder = pid or "unknown"
            if role != DAEMON:
                advice = "wait for it to finish"
            elif self.role == DAEMON:
                advice = "SQLite supports one daemon — use PostgreSQL to run several replicas"
            else:
                advice = (
                    "the daemon runs every job on its schedule; stop it to run them from "
                    "here, or use PostgreSQL, where both can run"
                )
            raise ConfigError(
                f"another {'sellable daemon' if role == DAEMON else role} (pid {holder}) "
                f"already runs on this SQLite database ({self.path.with_suffix('')}); {advice}"
            ) from None
        self.pid_path.write_text(f"{os.getpid()}\n{self.role}\n")

    def holder(self) -> int | None:
        """The pid of the live process (daemon or one pass) holding the database, read from
        ``<database>.pid`` without taking the lock: None when none runs (no file, or its
        process is gone, as after a SIGKILL that left the file behind)."""
        try:
            pid = int(self._pid_file()[0])
        except ValueError:
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:  # alive, another user's
            return pid
        return pid

    def _pid_file(self) -> tuple[str, str]:
        """The holder's pid (as written, "" when unknown) and role from ``<database>.pid``
        (a file of an older version holds the pid alone: a daemon)."""
        try:
            lines = self.pid_path.read_text().split("\n")
        except OSError:
            return "", DAEMON
        role = lines[1].strip() if len(lines) > 1 else ""
        return lines[0].strip(), role or DAEMON

    def release(self) -> None:
        if self._lock.is_locked:
            self.pid_path.unlink(missing_ok=True)
            self._lock.release()
