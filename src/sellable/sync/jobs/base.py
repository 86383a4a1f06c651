"""What every job shares: the channel it runs for and the result it fills in."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sellable.config import ChannelSettings
from sellable.core.rules import ChannelRules
from sellable.errors import ChannelPayloadError
from sellable.sdk import ChannelHttp, Connector

MAX_PAGES = 100_000  # pages one job reads at most (a guard against a channel paging forever)


@dataclass(slots=True)
class JobResult:
    channel: str
    job: str
    ok: bool = True
    skipped: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    reports: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def describe(self) -> str:
        counts = " ".join(f"{k}={v}" for k, v in self.counts.items())
        if self.skipped:
            return f"{self.job}: skipped ({self.skipped})"
        state = "ok" if self.ok else f"FAILED: {self.error}"
        return f"{self.job}: {state} {counts} ({self.seconds:.2f}s)".replace("  ", " ")


@dataclass(slots=True)
class Channel:
    """One configured channel as the engine runs it."""

    settings: ChannelSettings
    connector: Connector
    http: ChannelHttp
    rules: ChannelRules
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def code(self) -> str:
        return self.settings.code


class PaginationLoop(ChannelPayloadError):
    """The channel sent the same page token twice."""


def next_token(token: str | None, seen: set[str], channel: str) -> str | None:
    """Refuse to loop on a page token the channel already gave (Singer SDK's guard)."""
    if token is None:
        return None
    if token in seen:
        raise PaginationLoop(f"the channel repeated page token {token!r}", channel=channel)
    seen.add(token)
    return token


__all__ = ["MAX_PAGES", "Channel", "JobResult", "PaginationLoop", "next_token"]
