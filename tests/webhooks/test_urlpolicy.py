"""Server-side request forgery: every form of a non-public destination is refused when an
endpoint is added and on every connection a sender opens (DNS rebinding included).

The machine running the tests has no DNS: names are resolved by the operating system only for
numeric forms and ``localhost``; every other name is answered by an injected resolver.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from hokusai.config import Settings
from hokusai.errors import InvalidWebhookUrlError
from hokusai.webhooks.hub import Webhooks
from hokusai.webhooks.urlpolicy import DestinationPolicy, refusal_reason
from tests.webhooks.conftest import SECRET
from tests.webhooks.helpers import fake_result
from tests.webhooks.receiver import Receiver, running_receiver

STRICT = DestinationPolicy(allow_http=False, allow_private_networks=False)
PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"


def answers(table: dict[str, Sequence[str]]) -> Any:
    """A resolver answering from ``table`` and recording its calls; unknown names fail."""
    calls: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> Sequence[str]:
        calls.append((host, port))
        if host not in table:
            raise OSError(f"{host}: Name or service not known")
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


# ---- when an endpoint is added -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # Numeric forms the OS resolver normalises (no DNS involved).
        ("https://2130706433/", "2130706433 resolves to 127.0.0.1, a loopback address"),
        ("https://127.1:1/", "127.1 resolves to 127.0.0.1, a loopback address"),
        ("https://0x7f000001/", "0x7f000001 resolves to 127.0.0.1, a loopback address"),
        ("https://0177.0.0.1/", "0177.0.0.1 resolves to 127.0.0.1, a loopback address"),
        ("https://0/", "0 resolves to 0.0.0.0, the unspecified address"),
        ("https://localhost/hook", "localhost resolves to .*, a loopback address"),
        # Literals.
        ("https://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("https://100.64.0.1/", "100.64.0.1 is a carrier-grade NAT"),
        ("https://10.0.0.5/hook", "10.0.0.5 is a private address"),
        ("https://192.168.1.1/hook", "192.168.1.1 is a private address"),
        ("https://169.254.169.254/latest", "169.254.169.254 is a link-local address"),
        ("https://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("https://240.0.0.1/", "240.0.0.1 is a reserved address"),
        ("https://192.0.2.10/", "192.0.2.10 is a documentation address"),
        ("https://198.18.0.1/", "198.18.0.1 is a benchmarking address"),
        # IPv6, and IPv6 that carries an IPv4 address.
        ("https://[::1]/", r"::1 is a loopback address"),
        ("https://[::]/", r":: is the unspecified address"),
        ("https://[::ffff:127.0.0.1]/", r"is an IPv4-mapped 127.0.0.1, a loopback address"),
        ("https://[::ffff:169.254.169.254]/", r"IPv4-mapped 169.254.169.254, a link-local"),
        ("https://[::7f00:1]/", r"IPv4-compatible 127.0.0.1, a loopback address"),
        ("https://[fe80::1]/", r"fe80::1 is a link-local address"),
        ("https://[fe80::1%25eth0]/", r"is a link-local address"),
        ("https://[fec0::1]/", r"fec0::1 is a site-local address"),
        ("https://[fd12:3456::1]/", r"is a unique local \(private\) address"),
        ("https://[ff02::1]/", r"ff02::1 is a multicast address"),
        ("https://[2001:db8::1]/", r"2001:db8::1 is a documentation address"),
        ("https://[2002:a00:1::]/", r"a 6to4 address of 10.0.0.1, a private address"),
        (
            "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
            r"a Teredo address of 127.0.0.1, a loopback address",
        ),
        ("https://[64:ff9b::a9fe:a9fe]/", r"a NAT64 address of 169.254.169.254, a link-local"),
    ],
)
def test_every_form_of_a_non_public_host_is_refused(url: str, reason: str):
    with pytest.raises(InvalidWebhookUrlError, match=reason) as info:
        STRICT.validate_url(url)
    assert info.value.code == "invalid_webhook_url"
    assert "HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true" in info.value.message
    # Allowing plain http changes nothing about private addresses: two separate settings.
    with pytest.raises(InvalidWebhookUrlError, match=reason):
        DestinationPolicy(allow_http=True).validate_url(url)
    assert DestinationPolicy(allow_private_networks=True).validate_url(url) == url


def test_a_name_that_resolves_to_a_private_address_is_refused():
    resolver = answers(
        {
            "169.254.169.254.nip.io": ["169.254.169.254"],
            "split.example": [PUBLIC_V4, "10.1.2.3"],
            "v6.example": [PUBLIC_V6, "::ffff:127.0.0.1"],
        }
    )
    policy = DestinationPolicy(resolver=resolver)
    with pytest.raises(
        InvalidWebhookUrlError,
        match="169.254.169.254.nip.io resolves to 169.254.169.254, a link-local address",
    ) as info:
        policy.validate_url("https://169.254.169.254.nip.io/latest/meta-data")
    assert info.value.code == "invalid_webhook_url"
    # One private address among public ones is enough: the socket could pick it.
    with pytest.raises(InvalidWebhookUrlError, match="resolves to 10.1.2.3, a private address"):
        policy.validate_url("https://split.example/hook")
    with pytest.raises(InvalidWebhookUrlError, match="IPv4-mapped 127.0.0.1"):
        policy.validate_url("https://v6.example:8443/hook")
    assert resolver.calls == [
        ("169.254.169.254.nip.io", 443),
        ("split.example", 443),
        ("v6.example", 8443),
    ]


def test_public_names_are_accepted_and_unresolvable_ones_are_left_to_the_sender():
    policy = DestinationPolicy(resolver=answers({"hooks.example": [PUBLIC_V4, PUBLIC_V6]}))
    assert policy.validate_url("https://hooks.example/h") == "https://hooks.example/h"
    assert policy.validate_url("https://8.8.8.8/h") == "https://8.8.8.8/h"
    # Not resolvable here (yet): accepted, and checked again on every send.
    assert policy.validate_url("https://later.example/h") == "https://later.example/h"
    # ...unless the name is one that only ever means a local host.
    for url in (
        "https://metadata.google.internal/",
        "https://printer.local/",
        "https://x.localhost/",
        "https://router.home.arpa/",
    ):
        with pytest.raises(InvalidWebhookUrlError, match="is a local host name") as info:
            policy.validate_url(url)
        assert info.value.code == "invalid_webhook_url"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("0.0.0.0", "the unspecified address"),
        ("0.1.2.3", "a 'this network' address"),
        ("172.31.255.255", "a private address"),
        ("100.127.255.255", "a carrier-grade NAT (shared) address"),
        ("255.255.255.255", "the broadcast address"),
        ("203.0.113.7", "a documentation address"),
        ("192.0.0.8", "an IETF protocol address"),
        ("::ffff:10.0.0.1", "an IPv4-mapped 10.0.0.1, a private address"),
        ("3fff::1", "a documentation address"),
        ("fe80::1%eth0", "a link-local address"),
        ("not-an-ip", "not an IP address"),
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_refusal_reasons(address: str, reason: str | None):
    assert refusal_reason(address) == reason


# ---- when a request is sent --------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def permissive(home: Path) -> Iterator[Webhooks]:
    """The webhook layer as it was when the endpoints were added: local receivers allowed."""
    hooks = Webhooks(
        Settings(home=home, webhook_background=False, webhook_allow_private_networks=True)
    )
    yield hooks
    hooks.close()


@pytest.fixture
def strict(home: Path) -> Iterator[Webhooks]:
    """The same database under the default policy (plain http allowed, as in the embedded
    mode; private networks not)."""
    hooks = Webhooks(Settings(home=home, webhook_background=False))
    assert hooks.destinations == DestinationPolicy(allow_http=True, allow_private_networks=False)
    yield hooks
    hooks.close()


def _only_delivery(hooks: Webhooks) -> dict[str, Any]:
    (delivery,) = hooks.outbox.deliveries()
    return delivery


@pytest.mark.parametrize("host", ["localhost", "2130706433", "127.1", "0x7f000001"])
def test_a_send_to_a_host_that_resolves_to_loopback_fails_for_good(
    host: str, receiver: Receiver, permissive: Webhooks, strict: Webhooks
):
    port = receiver.url.split(":")[2].split("/")[0]
    permissive.add_endpoint(f"http://{host}:{port}/hook", secret=SECRET)
    strict.announce_registration(fake_result(1))

    assert strict.dispatcher().run_once() == 1
    delivery = _only_delivery(strict)
    assert delivery["state"] == "failed"  # permanent: not retried against a private address
    # (localhost may resolve to ::1 first where IPv6 is configured)
    assert re.match(
        rf"refused: {host} resolves to (127\.0\.0\.1|::1), a loopback address",
        delivery["last_error"],
    )
    assert strict.dispatcher().run_once() == 0
    assert receiver.received == []  # nothing reached the loopback receiver


def test_dns_rebinding_is_refused_at_send_time(tmp_path: Path, receiver: Receiver):
    """Public when the endpoint is added, 127.0.0.1 when the request is sent."""
    port = receiver.url.split(":")[2].split("/")[0]
    answers_in_turn = [[PUBLIC_V4], ["127.0.0.1"]]
    calls: list[str] = []

    def rebinding(host: str, port: int) -> Sequence[str]:
        calls.append(host)
        return answers_in_turn[min(len(calls), len(answers_in_turn)) - 1]

    hooks = Webhooks(
        Settings(home=tmp_path / "home", webhook_background=False),
        destinations=DestinationPolicy(allow_http=True, resolver=rebinding),
    )
    endpoint, _ = hooks.add_endpoint(f"http://rebind.example:{port}/hook")
    assert calls == ["rebind.example"]
    event_id = hooks.announce_registration(fake_result(1))
    assert hooks.dispatcher().run_once() == 1

    delivery = _only_delivery(hooks)
    assert delivery["event_id"] == event_id
    assert delivery["state"] == "failed"
    assert delivery["last_error"] == (
        "refused: rebind.example resolves to 127.0.0.1, a loopback address "
        "(HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true permits local receivers)."
    )
    assert calls == ["rebind.example", "rebind.example"]  # resolved once per connection
    assert receiver.received == []

    ping = hooks.test_endpoint(endpoint.id)
    assert ping.status_code is None
    assert ping.response_snippet is None
    assert ping.error is not None
    assert ping.error.startswith("refused: rebind.example resolves to 127.0.0.1")
    assert receiver.received == []
    hooks.close()


def test_the_socket_goes_to_the_checked_address_with_the_url_host(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
):
    """``receiver.test`` resolves only through the injected resolver: the request reaching the
    receiver proves the connection used the checked answer, not a second lookup (nor a proxy
    from the environment); the receiver still sees the URL's host name."""
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")  # nothing listens there
    port = receiver.url.split(":")[2].split("/")[0]
    resolver = answers({"receiver.test": ["127.0.0.1"]})
    hooks = Webhooks(
        Settings(home=tmp_path / "home", webhook_background=False),
        destinations=DestinationPolicy(
            allow_http=True, allow_private_networks=True, resolver=resolver
        ),
    )
    endpoint, _ = hooks.add_endpoint(f"http://receiver.test:{port}/hook", secret=SECRET)
    attempt = hooks.test_endpoint(endpoint.id)
    assert attempt.status_code == 200, attempt.error
    assert receiver.received[0].headers["host"] == f"receiver.test:{port}"
    assert receiver.verified == [True]
    assert resolver.calls == [("receiver.test", int(port))]  # the add accepted it unchecked
    hooks.close()


def test_plain_http_is_refused_at_send_time_once_it_is_no_longer_allowed(
    receiver: Receiver, permissive: Webhooks, home: Path
):
    permissive.add_endpoint(receiver.url, secret=SECRET)
    https_only = Webhooks(
        Settings(
            home=home,
            webhook_background=False,
            webhook_allow_http=False,
            webhook_allow_private_networks=True,
        )
    )
    https_only.announce_registration(fake_result(1))
    https_only.dispatcher().run_once()
    delivery = _only_delivery(https_only)
    assert delivery["state"] == "failed"
    assert "is not https" in delivery["last_error"]
    assert receiver.received == []
    https_only.close()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "receiver.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("receiver.test")]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_keeps_the_url_host_for_sni_and_verifies_the_certificate(tmp_path: Path):
    """Connected to the checked address, the TLS handshake still names ``receiver.test`` (SNI)
    and the client still verifies the certificate (a self-signed one is rejected)."""
    import contextlib
    import socket
    import ssl
    import threading

    import httpx

    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server_names: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]

    def serve_one() -> None:
        connection, _ = listener.accept()
        # The client refuses the certificate mid-handshake.
        with connection, contextlib.suppress(ssl.SSLError, OSError):
            server_context.wrap_socket(connection, server_side=True).close()

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    policy = DestinationPolicy(
        allow_private_networks=True, resolver=answers({"receiver.test": ["127.0.0.1"]})
    )
    with policy.client() as client, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY"):
        client.post(f"https://receiver.test:{port}/hook", content=b"{}", timeout=5)
    thread.join(timeout=5)
    listener.close()
    assert server_names == ["receiver.test"]


def test_redirects_are_not_followed(receiver: Receiver, permissive: Webhooks):
    with running_receiver(None) as elsewhere:
        receiver.always((302, {"location": elsewhere.url}, 0, ""))
        permissive.add_endpoint(receiver.url, secret=SECRET)
        permissive.announce_registration(fake_result(1))
        permissive.dispatcher().run_once()
        delivery = _only_delivery(permissive)
        assert (delivery["state"], delivery["last_error"]) == ("failed", "HTTP 302")
        assert elsewhere.received == []
