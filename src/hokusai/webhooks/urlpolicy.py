"""Where webhooks may be sent: the URL and destination policy (server-side request forgery).

Two settings, independent of each other:

- ``HOKUSAI_WEBHOOK_ALLOW_HTTP`` permits ``http://`` URLs (default: only in the embedded mode);
- ``HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS`` permits hosts that resolve to non-public addresses —
  loopback, private, link-local (cloud metadata), CGNAT, multicast, reserved, documentation… —
  for local receivers (default: never). The deprecated ``HOKUSAI_WEBHOOK_ALLOW_INSECURE`` sets
  both.

The host is checked as the operating system resolves it (``socket.getaddrinfo``), so
``2130706433``, ``0x7f000001``, ``127.1`` or a DNS name pointing at ``127.0.0.1`` are all the
loopback address they reach; every address of the answer must be public. IPv6 addresses that
carry an IPv4 one (mapped, compatible, 6to4, Teredo, NAT64) are judged by it as well.

The check runs twice:

- when an endpoint is added (:meth:`DestinationPolicy.validate_url`): a refused URL is an
  ``invalid_webhook_url`` error naming the reason. A name that does not resolve yet is accepted:
  the check that matters is the next one.
- on every connection a sender opens (:class:`GuardedTransport`): the host is resolved once,
  every address checked, and the socket connected to a checked address, while the ``Host``
  header, TLS SNI and certificate check keep the URL's host name. A DNS answer that changes
  between add and send (rebinding) therefore cannot reach a refused address. A refusal raises
  :class:`~hokusai.errors.InvalidWebhookUrlError` out of the HTTP client; the sender records it
  as a permanent failure.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpcore
import httpx

from hokusai.config import Settings
from hokusai.errors import InvalidWebhookUrlError

__all__ = [
    "DestinationPolicy",
    "GuardedTransport",
    "Resolver",
    "refusal_reason",
    "system_resolver",
]

Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) → IP address strings``; raises :class:`OSError` when the name does not
resolve."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

HTTP_HINT = "HOKUSAI_WEBHOOK_ALLOW_HTTP=true permits http for local receivers"
PRIVATE_HINT = "HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true permits local receivers"

LOCAL_NAMES = ("localhost",)
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")


def _table(
    *rows: tuple[str, str],
) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]:
    return tuple((ipaddress.ip_network(net), reason) for net, reason in rows)


# First match names the reason; anything not listed that Python does not consider global is
# refused too ("a non-public address"), so the table is the message, not the whole policy.
REFUSED_NETWORKS = _table(
    ("0.0.0.0/32", "the unspecified address"),
    ("0.0.0.0/8", "a 'this network' address"),
    ("127.0.0.0/8", "a loopback address"),
    ("10.0.0.0/8", "a private address"),
    ("172.16.0.0/12", "a private address"),
    ("192.168.0.0/16", "a private address"),
    ("100.64.0.0/10", "a carrier-grade NAT (shared) address"),
    ("169.254.0.0/16", "a link-local address"),
    ("192.0.0.0/24", "an IETF protocol address"),
    ("192.0.2.0/24", "a documentation address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("192.88.99.0/24", "a 6to4 relay anycast address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/96", "an IPv4-compatible address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("fc00::/7", "a unique local (private) address"),
    ("ff00::/8", "a multicast address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("100::/64", "a discard-only address"),
    ("2001::/23", "an IETF protocol address"),
)

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_SIIT = ipaddress.ip_network("::ffff:0:0:0/96")
_COMPATIBLE = ipaddress.ip_network("::/96")


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the operating system would connect to, in its order of preference."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:  # an unencodable name resolves to nothing
        raise OSError(str(exc)) from exc
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def refusal_reason(address: str) -> str | None:
    """Why a webhook may not go to ``address`` (an IP address string), or None if it is public.

    >>> refusal_reason("127.0.0.1")
    'a loopback address'
    """
    try:
        ip: IPAddress = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:
            ip = ipaddress.IPv6Address(address.split("%", 1)[0])
        if ip.ipv4_mapped is not None:  # the very same IPv4 address on a dual-stack socket
            reason = refusal_reason(str(ip.ipv4_mapped))
            return None if reason is None else f"an IPv4-mapped {ip.ipv4_mapped}, {reason}"
        if int(ip) > 1:  # :: and ::1 are named below, not as "embedded 0.0.0.x"
            for how, embedded in _embedded_ipv4(ip):
                reason = refusal_reason(str(embedded))
                if reason is not None:
                    return f"{how} {embedded}, {reason}"
    for network, reason in REFUSED_NETWORKS:
        if ip.version == network.version and ip in network:
            return reason
    if not ip.is_global or ip.is_multicast or ip.is_reserved:
        return "a non-public address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> Iterable[tuple[str, ipaddress.IPv4Address]]:
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _COMPATIBLE or ip in _SIIT:
        yield "an IPv4-compatible", low32
    if ip.sixtofour is not None:
        yield "a 6to4 address of", ip.sixtofour
    if ip.teredo is not None:
        server, client = ip.teredo
        yield "a Teredo address of", client
        yield "a Teredo address via", server
    if any(ip in net for net in _NAT64):
        yield "a NAT64 address of", low32


def _is_ip_literal(host: str) -> bool:
    """An IP address in its canonical notation (``127.1`` and friends go to the resolver)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _local_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name in LOCAL_NAMES or name.endswith(LOCAL_SUFFIXES)


@dataclass(frozen=True)
class DestinationPolicy:
    """Which webhook URLs are accepted and which addresses a sender may connect to."""

    allow_http: bool = False
    allow_private_networks: bool = False
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, resolver: Resolver | None = None
    ) -> DestinationPolicy:
        """The policy the settings ask for (``resolver`` replaces the system's, for tests)."""
        return cls(
            allow_http=settings.resolved_webhook_allow_http,
            allow_private_networks=settings.resolved_webhook_allow_private_networks,
            resolver=resolver or system_resolver,
        )

    def validate_url(self, url: object) -> str:
        """Return ``url`` if an endpoint may be added with it, else raise InvalidWebhookUrlError."""
        if not isinstance(url, str) or not url or any(ch.isspace() for ch in url):
            raise InvalidWebhookUrlError(f"Invalid webhook URL {url!r}: expected an absolute URL.")
        try:
            parts = urlsplit(url)
            host = parts.hostname
            port = parts.port  # raises ValueError for a bad port
        except ValueError as exc:
            raise InvalidWebhookUrlError(f"Invalid webhook URL {url!r}: {exc}.") from exc
        if parts.scheme not in ("http", "https") or not host:
            raise InvalidWebhookUrlError(
                f"Invalid webhook URL {url!r}: expected an absolute http(s) URL with a host."
            )
        if parts.username or parts.password:
            raise InvalidWebhookUrlError(
                f"Invalid webhook URL {url!r}: credentials in the URL would be logged; "
                "authenticate with the signature instead."
            )
        if parts.scheme != "https" and not self.allow_http:
            raise InvalidWebhookUrlError(
                f"Webhook URL {url!r} is not https; only https is allowed ({HTTP_HINT})."
            )
        if self.allow_private_networks:
            return url
        try:
            self.checked_addresses(host, port or (443 if parts.scheme == "https" else 80))
        except InvalidWebhookUrlError as exc:
            raise InvalidWebhookUrlError(f"Webhook URL {url!r} refused: {exc.message}") from exc
        except OSError:
            pass  # not resolvable from here (yet): every send checks again
        return url

    def checked_addresses(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once and return its addresses if every one may be connected to.

        Raises InvalidWebhookUrlError naming the first refused address, or OSError when the
        name does not resolve.
        """
        if not self.allow_private_networks:
            literal = host.strip("[]")
            if _is_ip_literal(literal):
                reason = refusal_reason(literal)
                if reason is not None:
                    raise InvalidWebhookUrlError(f"{host} is {reason} ({PRIVATE_HINT}).")
        try:
            addresses = list(self.resolver(host, port))
        except OSError:
            # Not resolvable here; a local name may still resolve where the sender runs.
            if not self.allow_private_networks and _local_name(host):
                raise InvalidWebhookUrlError(
                    f"{host} is a local host name ({PRIVATE_HINT})."
                ) from None
            raise
        if not self.allow_private_networks:
            for address in addresses:
                reason = refusal_reason(address)
                if reason is not None:
                    raise InvalidWebhookUrlError(
                        f"{host} resolves to {address}, {reason} ({PRIVATE_HINT})."
                    )
        if not addresses:
            raise OSError(f"{host} resolves to no address")
        return addresses

    def check_scheme(self, url: httpx.URL) -> None:
        """Refuse a request to a plain-http URL when http is not allowed (any more)."""
        if url.scheme != "https" and not self.allow_http:
            raise InvalidWebhookUrlError(
                f"Webhook URL {str(url)!r} is not https; only https is allowed ({HTTP_HINT})."
            )

    def client(self) -> httpx.Client:
        """An HTTP client whose every connection goes through this policy, no redirects."""
        return httpx.Client(transport=GuardedTransport(self), follow_redirects=False)


class _CheckedBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, connecting only to addresses the policy checked."""

    def __init__(self, policy: DestinationPolicy) -> None:
        self._policy = policy
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._policy.checked_addresses(host, port)
        except OSError as exc:  # as socket.create_connection would fail: a retryable error
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._sockets.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # checked_addresses never returns an empty list
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise InvalidWebhookUrlError("Webhooks are never sent over a Unix socket.")

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connection pool connects through the policy.

    httpx does not take a network backend, so the pool it builds is replaced by an identical
    ``httpcore.ConnectionPool`` that has one; the constructor fails loudly if a future httpx no
    longer keeps its pool where this expects it, rather than sending unchecked.
    """

    def __init__(self, policy: DestinationPolicy, *, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        ssl_context = httpx.create_ssl_context()  # ~0.1 s: built once, shared with the base
        super().__init__(verify=ssl_context, limits=limits)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            raise RuntimeError("httpx.HTTPTransport has no _pool: the webhook guard cannot attach")
        self._policy = policy
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=_CheckedBackend(policy),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._policy.check_scheme(request.url)
        return super().handle_request(request)
