"""Webhooks for async video jobs: which URLs the server may call, how a call is signed, and
the bounded sender that makes the calls.

Policy (the Serve config's `args.webhooks`; docs/serving.md):
- `https://` only; plain `http://` only with `allow_http: true`. No credentials in the URL.
- The host is resolved once per attempt and every address it resolves to must be public
  unicast. Loopback, private, link-local, shared (CGNAT), reserved and other non-global
  addresses — IPv4 and IPv6, including IPv4 inside IPv6 (mapped, NAT64, 6to4) — are refused
  unless the host name or the address is on `allow_hosts`. Unspecified, multicast and cloud
  metadata addresses are refused always.
- The connection goes to the checked address (the name is sent as Host and TLS SNI and the
  certificate is checked against it), so a second DNS answer cannot redirect it. Redirects are
  not followed, proxy variables are ignored, each attempt has a total deadline.

Signature: `X-TalkingHead-Signature: t=<unix seconds>,v1=<hex>` where hex is
HMAC-SHA256(secret, "<t>." + raw body); `verify_signature` is the receiver's check.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import os
import socket
import ssl
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from services.common.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SIGNATURE_HEADER = "X-TalkingHead-Signature"
DELIVERY_HEADER = "X-TalkingHead-Delivery"
ENV_SECRET = "TALKING_HEAD_WEBHOOK_SECRET"
MAX_URL_CHARS = 2048
#: Instance-metadata endpoints (AWS/GCP/Azure/OpenStack, AWS IPv6, AWS ECS, Alibaba): they hand
#: out cloud credentials, so no allow-list entry opens them.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: Refusals no allow-list lifts.
ALWAYS_REFUSED = ("unspecified", "multicast", "a cloud metadata address")

log = logging.getLogger("ray.serve")


class WebhookRefused(InvalidInput):
    """The URL or an address it resolves to is not allowed (never retried)."""


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, NAT64 well-known prefix, 6to4)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def address_refusal(address: str | IPAddress) -> str | None:
    """Why a webhook may not be sent to `address` by default, or None for a public unicast address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    inner = _embedded_v4(ip)
    # the embedded IPv4 address first: it is where the packets go
    candidates = (inner, ip) if inner is not None else (ip,)
    if any(c in METADATA_ADDRESSES for c in candidates):
        return "a cloud metadata address"
    for candidate in candidates:
        for attr, reason in (("is_unspecified", "unspecified"), ("is_multicast", "multicast"),
                             ("is_loopback", "loopback"), ("is_link_local", "link-local"),
                             ("is_private", "private"), ("is_reserved", "reserved")):
            if getattr(candidate, attr):
                return reason
        if not candidate.is_global:
            return "not globally routable"
    return None


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), str(int(timestamp)).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={int(timestamp)},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, *, tolerance_s: float = 300.0,
                     now: float | None = None) -> bool:
    """The receiver's check: the header signs this body with this secret, and is recent
    (`tolerance_s` either way, against replays)."""
    parts = dict(p.split("=", 1) for p in (header or "").split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = signature(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def redact(url: str) -> str:
    """A loggable form of a webhook URL: no credentials, no query (it may hold a token)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    creds = "***@" if parts.username is not None or parts.password is not None else ""
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{creds}{host}{port}{parts.path}{query}"


@dataclass(frozen=True)
class Target:
    """A webhook URL that passed the syntax checks."""

    url: str
    scheme: str
    host: str  # lower case, no brackets, no trailing dot
    port: int
    path: str  # path and query, as sent

    def __str__(self) -> str:
        return redact(self.url)


def _host_entry(entry: Any) -> str | IPNetwork:
    if not isinstance(entry, str) or not entry.strip():
        raise InvalidInput(f"webhooks.allow_hosts entries must be host names or IP networks, got {entry!r}")
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        return entry.strip().lower().rstrip(".")


@dataclass(frozen=True)
class WebhookPolicy:
    """Which webhook URLs may be called and how (the Serve config's `args.webhooks`)."""

    allow_hosts: tuple[str | IPNetwork, ...] = ()  # host names / IP networks that may be non-public
    allow_http: bool = False
    secret: str = field(default="", repr=False)   # HMAC key; "" → $TALKING_HEAD_WEBHOOK_SECRET
    timeout_s: float = 10.0   # total deadline of one attempt (connect, TLS, request, response head)
    retries: int = 3          # further attempts after a 5xx, 429, timeout or connection error
    backoff_s: float = 1.0    # wait before retry k: backoff_s · 2^k
    workers: int = 4          # threads that deliver (their own pool: slow receivers starve nothing else)
    max_pending: int = 64     # deliveries waiting for a thread; more are dropped (and logged)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "WebhookPolicy":
        d = dict(d or {})
        fields = {"allow_hosts", "allow_http", "secret", "timeout_s", "retries", "backoff_s", "workers",
                  "max_pending"}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise InvalidInput(f"unknown webhooks setting(s) {', '.join(unknown)}: the settings are "
                               f"{', '.join(sorted(fields))}")
        hosts = d.pop("allow_hosts", None) or ()
        if isinstance(hosts, str) or not isinstance(hosts, (list, tuple)):
            raise InvalidInput("webhooks.allow_hosts must be a list")
        values: dict[str, Any] = {"allow_hosts": tuple(_host_entry(h) for h in hosts)}
        if "allow_http" in d:
            if not isinstance(d["allow_http"], bool):
                raise InvalidInput("webhooks.allow_http must be true or false")
            values["allow_http"] = d.pop("allow_http")
        if "secret" in d:
            if not isinstance(d["secret"], str):
                raise InvalidInput("webhooks.secret must be a string")
            values["secret"] = d.pop("secret")
        for key, value in d.items():
            kind = float if key in ("timeout_s", "backoff_s") else int
            lowest = 0 if key in ("retries", "backoff_s") else 1e-9
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lowest <= value < 1e9 \
                    or (kind is int and value != int(value)):
                raise InvalidInput(f"webhooks.{key} must be a {'non-negative' if lowest == 0 else 'positive'} "
                                   f"{kind.__name__}, got {value!r}")
            values[key] = kind(value)
        return cls(**values)

    @property
    def signing_secret(self) -> str:
        return self.secret or os.environ.get(ENV_SECRET, "")

    def check_url(self, url: Any) -> Target:
        """The URL's syntax and scheme, and its address when the host is an IP literal (the
        request is refused at once); host names are resolved and checked at delivery."""
        if not isinstance(url, str) or not url:
            raise WebhookRefused("webhook must be a URL string")
        if len(url) > MAX_URL_CHARS or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
            raise WebhookRefused(f"webhook must be a URL of at most {MAX_URL_CHARS} characters without spaces")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise WebhookRefused(f"webhook is not a valid URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http") or (scheme == "http" and not self.allow_http):
            raise WebhookRefused("webhook must be an https:// URL" + ("" if scheme != "http" else
                                 " (plain http only when the server's webhooks.allow_http is set)"))
        if parts.username is not None or parts.password is not None:
            raise WebhookRefused("webhook URL must not carry credentials; verify the signature header instead")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise WebhookRefused("webhook URL has no host")
        target = Target(url, scheme, host, port or (443 if scheme == "https" else 80),
                        (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            self.check_address(target, literal)
        return target

    def check_address(self, target: Target, address: str | IPAddress) -> None:
        """Raise WebhookRefused unless `target` may be sent to `address`."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        reason = address_refusal(ip)
        if reason is None:
            return
        if reason not in ALWAYS_REFUSED and self._allow_listed(target.host, ip):
            return
        extra = "" if reason in ALWAYS_REFUSED else " (not on the server's webhooks.allow_hosts)"
        raise WebhookRefused(f"webhook host {target.host} resolves to {ip}, {reason}{extra}")

    def _allow_listed(self, host: str, ip: IPAddress) -> bool:
        inner = _embedded_v4(ip)
        for entry in self.allow_hosts:
            if isinstance(entry, str):
                if entry == host.lower():
                    return True
            elif ip in entry or (inner is not None and inner in entry):
                return True
        return False

    def resolve(self, target: Target) -> str:
        """The address to connect to: every address the host resolves to must pass
        `check_address` — one bad answer refuses the host."""
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise ConnectionError(f"cannot resolve {target.host}: {exc}") from None
        if not infos:
            raise ConnectionError(f"{target.host} resolves to no address")
        for *_, sockaddr in infos:
            self.check_address(target, sockaddr[0])
        return infos[0][4][0]


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to a checked address; the Host header still names the URL's host."""

    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address; SNI and certificate checks use the URL's host name."""

    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host, do_handshake_on_connect=False)
        self.sock.do_handshake()  # after self.sock is set, so the deadline can abort a slow handshake


@dataclass
class Delivery:
    """How one webhook went: delivered or not, after how many attempts, the last status/error."""

    delivered: bool
    attempts: int
    status: int | None = None
    error: str = ""


class _Retry(Exception):
    pass


class WebhookSender:
    """Delivers webhooks on its own bounded thread pool (`submit`), or inline (`deliver`)."""

    def __init__(self, policy: WebhookPolicy | None = None) -> None:
        self.policy = policy or WebhookPolicy()
        self._pool = ThreadPoolExecutor(max_workers=self.policy.workers, thread_name_prefix="webhook")
        self._pending = 0
        self._lock = threading.Lock()

    def submit(self, url: str, payload: dict[str, Any]) -> Future | None:
        """Queue a delivery; None (logged) when `max_pending` deliveries are already waiting."""
        with self._lock:
            if self._pending >= self.policy.max_pending:
                log.warning("webhook %s dropped: %d deliveries already waiting", redact(url), self._pending)
                return None
            self._pending += 1

        def run() -> Delivery:
            try:
                return self.deliver(url, payload)
            finally:
                with self._lock:
                    self._pending -= 1

        return self._pool.submit(run)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def deliver(self, url: str, payload: dict[str, Any]) -> Delivery:
        """POST `payload` as JSON, retrying 5xx/429/timeouts/connection errors with backoff.
        Never raises: the outcome is returned and logged (with the URL redacted)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        delivery_id = uuid.uuid4().hex  # the same on every retry: receivers can drop repeats
        attempts, status, error = 0, None, ""
        try:
            target = self.policy.check_url(url)
        except WebhookRefused as exc:
            log.warning("webhook %s refused: %s", redact(url), exc.message)
            return Delivery(False, 0, None, exc.message)
        for attempt in range(1 + self.policy.retries):
            if attempt:
                time.sleep(self.policy.backoff_s * 2 ** (attempt - 1))
            attempts += 1
            try:
                status = self._post(target, body, delivery_id)
            except WebhookRefused as exc:
                log.warning("webhook %s refused: %s", target, exc.message)
                return Delivery(False, attempts, None, exc.message)
            except (OSError, http.client.HTTPException, _Retry) as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
                continue
            if 200 <= status < 300:
                return Delivery(True, attempts, status)
            error = f"HTTP {status}"
            if status < 500 and status != 429:  # redirects are not followed; other 4xx will not change
                break
        log.warning("webhook %s failed after %d attempt(s): %s", target, attempts, error)
        return Delivery(False, attempts, status, error)

    def _post(self, target: Target, body: bytes, delivery_id: str) -> int:
        address = self.policy.resolve(target)
        timeout = self.policy.timeout_s
        conn_type = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
        conn = conn_type(target, address, timeout)
        headers = {"Content-Type": "application/json", "User-Agent": "talking-head-webhooks/1",
                   DELIVERY_HEADER: delivery_id}
        secret = self.policy.signing_secret
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, body, int(time.time()))
        expired = threading.Event()

        def abort() -> None:  # the total deadline: a receiver that drips bytes is cut off here
            expired.set()
            sock = conn.sock
            if sock is not None:
                try:
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass

        timer = threading.Timer(timeout, abort)
        timer.daemon = True
        timer.start()
        try:
            conn.request("POST", target.path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status
        except (OSError, http.client.HTTPException):
            if expired.is_set():
                raise _Retry(f"no answer within {timeout:g} s") from None
            raise
        finally:
            timer.cancel()
            conn.close()
