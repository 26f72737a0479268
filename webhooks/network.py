"""Sending a webhook safely: SSRF checks, a connection pinned to the checked address, hard limits.

A subscriber's URL is untrusted. Every address its host resolves to must be public (not
loopback, private, link-local, CG-NAT, multicast, reserved, or an IPv4-mapped/NAT64/6to4 form of
one) unless it lies in ``WEBHOOK_ALLOWED_NETWORKS``; this is checked when the URL is saved and
again on every attempt, and the connection goes to the address that was checked (SNI and
``Host`` carry the name), so a second DNS answer cannot swap in an internal address. Redirects
are never followed, the whole attempt is cut at ``WEBHOOK_TIMEOUT`` seconds and at most 1 KiB of
the response body is read.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

from django.conf import settings

from .models import RESPONSE_BODY_MAX_BYTES, WebhookAttempt

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ErrorKind = WebhookAttempt.ErrorKind

# Blocked on top of what is not ``is_global``: CG-NAT is not global in Python either, but the
# translation prefixes embed IPv4 addresses and are checked through what they embed.
_EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(n) for n in ("100.64.0.0/10", "192.0.0.0/24", "192.88.99.0/24", "2001:20::/28", "5f00::/16")
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


class TargetError(Exception):
    """A URL or address that must not be sent to; ``kind`` is an attempt error kind."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent on the request line


@cache
def _allowed_networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in spec if n.strip())


def allowed_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return _allowed_networks(tuple(settings.WEBHOOK_ALLOWED_NETWORKS))


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, NAT64, 6to4), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    return None


def is_allowed_address(ip: IPAddress) -> bool:
    allowed = allowed_networks()
    embedded = _embedded_ipv4(ip)
    if any(ip.version == net.version and ip in net for net in allowed):
        return True
    if embedded is not None:
        return is_allowed_address(embedded)
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return False
    return not any(ip.version == net.version and ip in net for net in _EXTRA_BLOCKED)


def parse_url(url: str) -> Target:
    """Split a subscriber URL, refusing what is never sendable (bad scheme, no host, credentials)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise TargetError(ErrorKind.INVALID_URL, f"Not a valid URL: {exc}.") from exc
    if parts.scheme not in ("http", "https"):
        raise TargetError(ErrorKind.INVALID_URL, "Must be an http or https URL.")
    if not parts.hostname:
        raise TargetError(ErrorKind.INVALID_URL, "Must include a host name.")
    if parts.username is not None or parts.password is not None:
        raise TargetError(ErrorKind.INVALID_URL, "Must not contain credentials (user:password@).")
    if any(c in url for c in "\r\n\t "):
        raise TargetError(ErrorKind.INVALID_URL, "Must not contain whitespace.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or (443 if parts.scheme == "https" else 80),
        path=path,
    )


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the name resolves to (A and AAAA), in the resolver's order. Tests replace it."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in seen:
            seen.append(ip)
    return seen


def _resolved(target: Target) -> list[IPAddress]:
    try:
        addresses = resolve(target.host, target.port)
    except (OSError, UnicodeError) as exc:
        raise TargetError(ErrorKind.DNS, f"{target.host} does not resolve ({exc}).") from exc
    if not addresses:
        raise TargetError(ErrorKind.DNS, f"{target.host} does not resolve.")
    return addresses


def checked_addresses(target: Target) -> list[IPAddress]:
    """The addresses to connect to; every one must be allowed (one bad answer refuses them all)."""
    try:
        addresses = [ipaddress.ip_address(target.host)]
    except ValueError:
        addresses = _resolved(target)
    blocked = [str(ip) for ip in addresses if not is_allowed_address(ip)]
    if blocked:
        raise TargetError(
            ErrorKind.BLOCKED_ADDRESS,
            f"{target.host} resolves to an address webhooks may not reach ({', '.join(blocked)}): loopback, "
            "private, link-local, CG-NAT, multicast and reserved addresses are refused "
            "(WEBHOOK_ALLOWED_NETWORKS lets chosen networks through).",
        )
    return addresses


def check_url(url: str) -> Target:
    """What saving a subscription checks: a sendable URL whose host resolves only to allowed addresses.

    Plain http is accepted only for hosts inside WEBHOOK_ALLOWED_NETWORKS (local development,
    self-hosted receivers); anything on the public internet must use https.
    """
    target = parse_url(url)
    addresses = checked_addresses(target)
    if target.scheme == "http" and not all(
        any(ip.version == net.version and ip in net for net in allowed_networks()) for ip in addresses
    ):
        raise TargetError(
            ErrorKind.INVALID_URL,
            "Must be an https URL (plain http only reaches hosts in WEBHOOK_ALLOWED_NETWORKS).",
        )
    return target


# ---------------------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """What one attempt got: a status (0 when no HTTP answer came) or an error kind."""

    status_code: int
    body: str
    duration_ms: int
    resolved_ip: str | None
    error_kind: str
    error: str
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a given address; the Host header still names the URL's host."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = _connected(self._address, self.port, self.timeout)


def _connected(address: str, port: int, timeout: float | None) -> socket.socket:
    sock = socket.create_connection((address, port), timeout)
    # Request/response on a kept-alive connection: never hold a small write back (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to a given address with SNI and certificate check against the URL's host name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        sock = _connected(self._address, self.port, self.timeout)
        try:
            self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


# The connections this module opens: each knows the checked address it is pinned to.
PinnedConnection = _PinnedHTTPConnection | _PinnedHTTPSConnection


def tls_context() -> ssl.SSLContext:
    """Certificates verified against the system's trust store, for the URL's host name."""
    return ssl.create_default_context()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Connections:
    """Keep-alive connections for a run of attempts, one per (scheme, host, port, checked address).

    A connection is reused only for the address this attempt just checked, so pinning holds;
    one whose answer was not read to its end, or that the server will close, is not kept.
    """

    def __init__(self) -> None:
        self._open: dict[tuple[str, str, int, str], PinnedConnection] = {}

    def take(self, key: tuple[str, str, int, str]) -> PinnedConnection | None:
        return self._open.pop(key, None)

    def keep(self, key: tuple[str, str, int, str], conn: PinnedConnection) -> None:
        self._open[key] = conn

    def close(self) -> None:
        for conn in self._open.values():
            conn.close()
        self._open.clear()

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def post(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout: float | None = None,
    connections: Connections | None = None,
) -> Response:
    """One POST attempt: checked, pinned, bounded. Never raises for what the network does."""
    timeout = float(settings.WEBHOOK_TIMEOUT if timeout is None else timeout)
    started = time.monotonic()

    def done(
        status: int, kind: str, error: str, ip: str | None, text: str = "", retry: float | None = None
    ) -> Response:
        return Response(
            status_code=status,
            body=text,
            duration_ms=int((time.monotonic() - started) * 1000),
            resolved_ip=ip,
            error_kind=kind,
            error=error[:500],
            retry_after=retry,
        )

    try:
        target = parse_url(url)
        addresses = checked_addresses(target)
    except TargetError as exc:
        return done(0, exc.kind, exc.message, None)
    last: Response | None = None
    for address in addresses:
        remaining = timeout - (time.monotonic() - started)
        if remaining <= 0:
            break
        key = (target.scheme, target.host, target.port, str(address))
        reused = connections.take(key) if connections is not None else None
        keep = (lambda conn, key=key: connections.keep(key, conn)) if connections is not None else None
        if reused is not None:
            try:
                return _post_to(target, reused, body=body, headers=headers, remaining=remaining, done=done,
                                keep=keep, stale_ok=True)  # fmt: skip
            except _StaleConnection:
                remaining = timeout - (time.monotonic() - started)  # the server had closed it: a new one
        last = _post_to(
            target, _connection(target, str(address), remaining), body=body, headers=headers, remaining=remaining,
            done=done, keep=keep,
        )  # fmt: skip
        if last.error_kind != ErrorKind.CONNECTION:
            return last
    return last or done(0, ErrorKind.TIMEOUT, f"no answer within {timeout:g} s", None)


class _StaleConnection(Exception):
    """A kept connection the server had closed before this request: retry on a new one."""


def _connection(target: Target, address: str, timeout: float) -> PinnedConnection:
    if target.scheme == "https":
        return _PinnedHTTPSConnection(target.host, target.port, address=address, timeout=timeout, context=tls_context())
    return _PinnedHTTPConnection(target.host, target.port, address=address, timeout=timeout)


def _post_to(
    target: Target,
    conn: PinnedConnection,
    *,
    body: bytes,
    headers: dict[str, str],
    remaining: float,
    done: Callable[..., Response],
    keep: Callable[[PinnedConnection], None] | None = None,
    stale_ok: bool = False,
) -> Response:
    address = conn._address
    if conn.sock is not None:
        conn.sock.settimeout(remaining)
    timed_out = threading.Event()
    answered = False
    kept = False

    def cut() -> None:
        # The deadline covers the whole attempt, however slowly the server drips its answer.
        timed_out.set()
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(remaining, cut)
    timer.daemon = True
    timer.start()
    try:
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "events_platform-webhooks/1",
                **headers,
            },
        )
        response = conn.getresponse()
        answered = True
        text = response.read(RESPONSE_BODY_MAX_BYTES).decode("utf-8", errors="replace")
        status = response.status
        if keep is not None and not response.will_close and (response.length == 0 or response.isclosed()):
            keep(conn)
            kept = True
        retry = _retry_after(response.getheader("Retry-After")) if status in (429, 503) else None
        if 200 <= status < 300:
            return done(status, ErrorKind.NONE, "", address, text)
        if 300 <= status < 400:
            where = response.getheader("Location") or "?"
            return done(
                status, ErrorKind.REDIRECT, f"HTTP {status} to {where} (redirects are not followed)", address, text
            )
        return done(status, ErrorKind.HTTP_STATUS, f"HTTP {status}", address, text, retry)
    except ssl.SSLError as exc:
        return done(0, ErrorKind.TLS, f"TLS: {exc}", address)
    except TimeoutError as exc:
        return done(0, ErrorKind.TIMEOUT, f"timed out: {exc}", address)
    except (OSError, http.client.HTTPException) as exc:
        if timed_out.is_set():
            return done(0, ErrorKind.TIMEOUT, f"no complete answer within {remaining:.0f} s", address)
        if stale_ok and not answered:
            raise _StaleConnection from exc
        return done(0, ErrorKind.CONNECTION, f"{type(exc).__name__}: {exc}", address)
    finally:
        timer.cancel()
        if not kept:
            conn.close()
