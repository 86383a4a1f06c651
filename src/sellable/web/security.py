"""The dashboard's safety: where it may listen, the login token, CSRF tokens for actions,
and the security headers on every response."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sellable.config import Settings
from sellable.errors import ConfigError
from sellable.sdk import is_loopback_host

#: The cookie a login sets (the token's digest, never the token itself).
SESSION_COOKIE = "sellable_session"
#: The form field (and header) that carries the CSRF token of an action.
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

#: Paths served without a login: probes, and what the login page itself needs.
PUBLIC_PATHS = ("/healthz", "/metrics", "/login", "/static/")


def split_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; an empty host is loopback)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def check_listen(listen: str, settings: Settings, where: str) -> None:
    """Refuse (ConfigError: exit 2) a non-loopback address without ``[daemon]
    dashboard_token``: the dashboard shows the merchant's stock and can act on it."""
    host, _port = split_listen(listen)
    if not is_loopback_host(host) and settings.daemon.dashboard_token is None:
        raise ConfigError(
            f"refusing to serve the dashboard on {listen} ({where}): it is not a loopback "
            "address and [daemon] dashboard_token is not set; set dashboard_token (or "
            "SELLABLE_DAEMON__DASHBOARD_TOKEN) or listen on 127.0.0.1"
        )


class Guard:
    """The login token (when set), where the dashboard is bound, and this process's CSRF
    secret."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.daemon.dashboard_token
        self.token: str | None = None if secret is None else secret.get_secret_value()
        #: Bound to a loopback address only (the :class:`WebServer` says so when it binds):
        #: then nobody needs to log in. Until told, a set token is required everywhere.
        self.loopback = False
        self._csrf_key = secrets.token_bytes(32)
        self.csrf_token = hmac.new(self._csrf_key, b"csrf", hashlib.sha256).hexdigest()

    @property
    def needs_login(self) -> bool:
        """A token is set and the dashboard is not bound to loopback only."""
        return self.token is not None and not self.loopback

    def session_value(self) -> str:
        assert self.token is not None
        return hmac.new(self.token.encode(), b"sellable-dashboard-session", "sha256").hexdigest()

    def token_ok(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def session_ok(self, cookie: str | None) -> bool:
        return (
            self.token is not None
            and cookie is not None
            and hmac.compare_digest(cookie, self.session_value())
        )

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given, self.csrf_token)
