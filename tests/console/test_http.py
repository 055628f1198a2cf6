"""The console over HTTP (TestClient, real registry): sign-in, cookie flags, CSRF, scope,
every page, escaping, security headers."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.console.conftest import csrf_of, sign_in
from tests.console.store import BENCHMARK, CONTRIBUTOR, HOSTILE, OTHER, Store

EXTERNAL = re.compile(r"""(?:src|href|action|xlink:href)\s*=\s*["'](?:[a-z]+:)?//""", re.I)


def _cookie_header(response: Any, name: str) -> str:
    headers = [v for v in response.headers.get_list("set-cookie") if v.startswith(f"{name}=")]
    assert len(headers) == 1, response.headers.get_list("set-cookie")
    return headers[0]


def test_pages_need_a_session(client: TestClient):
    for path in ("/ui/models", "/ui/lineage", "/ui/contributors", "/ui/webhooks"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/ui/sign-in"
    assert client.get("/ui/", follow_redirects=False).headers["location"] == "/ui/models"


def test_the_api_bearer_check_does_not_apply_to_the_console_and_vice_versa(
    client: TestClient, store: Store
):
    assert client.get("/ui/sign-in").status_code == 200  # no Authorization header needed
    sign_in(client, store.keys["admin"])
    # The console's cookie is no API credential.
    assert client.get("/api/v1/models").status_code == 401


def test_sign_in_sets_a_signed_httponly_strict_cookie_without_the_key(
    client: TestClient, store: Store
):
    form = client.get("/ui/sign-in")
    assert 'type="password"' in form.text and '<label for="api_key">' in form.text
    pre = _cookie_header(form, "hokusai_console_pre")
    assert "HttpOnly" in pre and "SameSite=strict" in pre and "Path=/ui" in pre
    answer = client.post(
        "/ui/sign-in",
        data={"csrf": csrf_of(form.text), "api_key": store.keys["read"]},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    cookie = _cookie_header(answer, "hokusai_console")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/ui" in cookie
    assert "Max-Age=28800" in cookie  # 8 h
    assert "Secure" not in cookie  # plain http here
    value = cookie.split(";")[0].split("=", 1)[1]
    secret = store.keys["read"].rsplit("_", 1)[1]
    assert secret not in value and store.keys["read"] not in value
    assert store.keys["read"] not in answer.headers["location"]


def test_the_cookie_is_secure_over_https(console_app: Any, store: Store):
    with TestClient(console_app, base_url="https://testserver") as client:
        form = client.get("/ui/sign-in")
        answer = client.post(
            "/ui/sign-in",
            data={"csrf": csrf_of(form.text), "api_key": store.keys["read"]},
            follow_redirects=False,
        )
        assert "Secure" in _cookie_header(answer, "hokusai_console")


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://testserver"},
        {"referer": "https://testserver/ui/sign-in"},
        {"origin": "HTTPS://TestServer"},
    ],
)
def test_sign_in_from_behind_a_tls_proxy_is_this_origin(
    client: TestClient, store: Store, headers: dict[str, str]
):
    """The proxy terminates TLS: the browser says https, the server sees http on the same
    host — the scheme is not compared, the host is."""
    form = client.get("/ui/sign-in")
    answer = client.post(
        "/ui/sign-in",
        data={"csrf": csrf_of(form.text), "api_key": store.keys["read"]},
        headers=headers,
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    csrf = csrf_of(client.get("/ui/models").text)
    out = client.post("/ui/sign-out", data={"csrf": csrf}, headers=headers, follow_redirects=False)
    assert out.status_code == 303


def _sign_in_cookie(client: TestClient, key: str, headers: dict[str, str]) -> str:
    """The session cookie's Set-Cookie of a sign-in sent with ``headers``. The pre-session
    cookie is sent back by hand: a Secure one is not, by the client, over plain http (a browser
    behind the proxy is on https)."""
    form = client.get("/ui/sign-in", headers=headers)
    pre = _cookie_header(form, "hokusai_console_pre").split(";")[0]
    client.cookies.clear()
    answer = client.post(
        "/ui/sign-in",
        data={"csrf": csrf_of(form.text), "api_key": key},
        headers={**headers, "cookie": pre},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return _cookie_header(answer, "hokusai_console")


def test_x_forwarded_proto_makes_the_cookie_secure_only_when_trusted(
    console_app: Any, store: Store
):
    from hokusai.rest.app import create_app

    forwarded = {"x-forwarded-proto": "https", "origin": "https://testserver"}
    with TestClient(console_app) as client:  # the default: the header is not trusted
        assert "Secure" not in _sign_in_cookie(client, store.keys["read"], forwarded)
    trusting = create_app(
        store.settings.model_copy(update={"console_trust_forwarded_proto": True}),
        deliver_webhooks=False,
    )
    with TestClient(trusting) as client:
        assert "Secure" in _sign_in_cookie(client, store.keys["read"], forwarded)
        client.cookies.clear()
        assert "Secure" not in _sign_in_cookie(client, store.keys["read"], {})
        client.cookies.clear()
        plain = {"x-forwarded-proto": "http"}
        assert "Secure" not in _sign_in_cookie(client, store.keys["read"], plain)


def test_a_wrong_key_is_refused_without_a_session(client: TestClient, store: Store):
    form = client.get("/ui/sign-in")
    answer = client.post(
        "/ui/sign-in",
        data={"csrf": csrf_of(form.text), "api_key": store.keys["read"] + "x"},
        follow_redirects=False,
    )
    assert answer.status_code == 401
    assert "not valid" in answer.text
    assert "hokusai_console=" not in answer.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    ("extra", "headers"),
    [
        ({}, {}),  # no token
        ({"csrf": "0" * 64}, {}),  # a wrong token
        (None, {"origin": "https://evil.example"}),  # the right token from another origin
        (None, {"referer": "https://evil.example/page"}),
        (None, {"origin": "https://testserver.evil.example"}),  # the host as a prefix only
        (None, {"origin": "http://testserver:8443"}),  # the same name, another port
        (None, {"origin": "null"}),  # an opaque origin (a sandboxed page, a data: URL)
    ],
)
def test_sign_in_needs_the_form_token_and_this_origin(
    client: TestClient, store: Store, extra: dict[str, str] | None, headers: dict[str, str]
):
    form = client.get("/ui/sign-in")
    data = {"api_key": store.keys["admin"]}
    data.update({"csrf": csrf_of(form.text)} if extra is None else extra)
    answer = client.post("/ui/sign-in", data=data, headers=headers, follow_redirects=False)
    assert answer.status_code == 403
    assert "hokusai_console=" not in answer.headers.get("set-cookie", "")


def test_every_page_renders_for_an_admin(client: TestClient, store: Store):
    sign_in(client, store.keys["admin"])
    deliveries = client.app.state.components.webhooks.outbox.deliveries()  # type: ignore[attr-defined]
    pages = {
        "/ui/models": store.second,
        f"/ui/models?q={CONTRIBUTOR.lower()}": store.first,
        "/ui/models?kind=baseline": store.other_family,
        f"/ui/models/{store.first}": CONTRIBUTOR,
        "/ui/lineage": store.baseline,
        f"/ui/lineage/{store.second}": "Cumulative improvement",
        "/ui/contributors": OTHER,
        f"/ui/contributors/{CONTRIBUTOR.lower()}": CONTRIBUTOR,  # shown EIP-55
        "/ui/webhooks": "Deliveries by state",
    }
    if deliveries:
        pages[f"/ui/webhooks/events/{deliveries[0]['event_id']}"] = "Attempts of"
    for path, expected in pages.items():
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
        assert expected in answer.text, path
        assert answer.headers["content-security-policy"].startswith("default-src 'self'")
        assert answer.headers["cache-control"] == "no-store"
        # Nothing the browser would fetch from elsewhere: every reference is to this server.
        assert not EXTERNAL.findall(answer.text), (path, EXTERNAL.findall(answer.text))


def test_search_and_kinds_filter_the_listing(client: TestClient, store: Store):
    sign_in(client, store.keys["read"])
    mine = client.get(f"/ui/models?q={quote(CONTRIBUTOR)}").text
    assert "1 version matching" in mine
    assert store.first in mine and store.second not in mine
    assert "5 versions" in client.get("/ui/models").text
    regression = client.get("/ui/models?q=REGRESSION").text
    assert store.other_family in regression and store.baseline not in regression
    assert "No version matches" in client.get("/ui/models?q=100%25_").text


def test_the_listing_pages_through_the_index(store: Store):
    from hokusai.registry import ModelRegistry

    registry = ModelRegistry(settings=store.settings)
    everything, total = registry.search_models()
    assert total == 5 and len(everything) == 5
    page, total = registry.search_models(offset=1, limit=2)
    assert total == 5
    assert [v["model_id"] for v in page] == [v["model_id"] for v in everything[1:3]]
    improved, total = registry.search_models(kind="improved", query="classification")
    assert total == 3 and all(not v["is_baseline"] for v in improved)


def test_without_the_index_the_listing_gives_the_same_answers(store: Store):
    from hokusai.registry import ModelRegistry

    indexed = ModelRegistry(settings=store.settings)
    plain = ModelRegistry(settings=store.settings.model_copy(update={"registry_index": False}))
    assert plain.index is None
    for kwargs in ({}, {"offset": 1, "limit": 2}, {"query": "0XFB69"}, {"kind": "baseline"}):
        ids = [[v["model_id"] for v in r.search_models(**kwargs)[0]] for r in (indexed, plain)]
        assert ids[0] == ids[1], kwargs
        assert indexed.search_models(**kwargs)[1] == plain.search_models(**kwargs)[1]


def test_an_admin_replays_to_an_endpoint(client: TestClient, store: Store):
    csrf = sign_in(client, store.keys["admin"])
    page = client.get("/ui/webhooks").text
    assert "Replay" in page and "Redeliver" not in page  # nothing failed or dead yet
    endpoint = client.app.state.components.webhooks.endpoints.list()[0]  # type: ignore[attr-defined]
    answer = client.post(
        f"/ui/webhooks/endpoints/{endpoint.id}/replay",
        data={"csrf": csrf, "since": "2000-01-01T00:00"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/webhooks?replayed=0"  # every event already queued
    assert "0 deliveries queued by the replay" in client.get(answer.headers["location"]).text
    bad = client.post(
        f"/ui/webhooks/endpoints/{endpoint.id}/replay",
        data={"csrf": csrf, "since": "yesterday"},
        follow_redirects=False,
    )
    assert bad.status_code == 422 and "since must be a date" in bad.text


def test_html_in_metadata_is_shown_as_text(client: TestClient, store: Store):
    sign_in(client, store.keys["read"])
    page = client.get(f"/ui/models/{store.baseline}").text
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "<script" not in page


def test_the_version_page_shows_signature_flavors_and_links(client: TestClient, store: Store):
    sign_in(client, store.keys["read"])
    page = client.get(f"/ui/models/{store.first}").text
    for expected in (
        "Signature",
        "Flavors",
        "sklearn",
        "f3",
        "double",
        "Claimed deltas",
        "+0.0200",
    ):
        assert expected in page, expected
    # The registry verified this one: its measured gain is the headline, labelled verified.
    assert "<h2>Verification</h2>" in page and "accepted" in page and BENCHMARK in page
    assert re.search(r'gain-verified[^>]*>accuracy \+0\.\d{4} <span class="tag">verified', page)
    # An embedded (sqlite) store has no MLflow UI to link to: the model URI is shown as text.
    assert "not an MLflow server" in page and "models:/" in page
    claimed = client.get(f"/ui/models/{store.second}").text
    assert "<h2>Verification</h2>" not in claimed
    assert 'accuracy +0.0100 <span class="tag">claimed' in claimed


def test_lineage_graph_highlights_the_serving_alias_and_links_contributors(
    client: TestClient, store: Store
):
    sign_in(client, store.keys["read"])
    page = client.get(f"/ui/lineage/{store.baseline}").text
    assert page.count('class="node') == 4
    assert page.count('class="node serving"') == 1
    assert "@champion" in page
    assert f'href="/ui/contributors/{CONTRIBUTOR}"' in page
    assert f'href="/ui/contributors/{OTHER}"' in page
    assert re.search(r'class="gain-verified">accuracy \+0\.\d{4} ✓<', page)
    assert 'class="gain-claimed">accuracy +0.0100 (claimed)<' in page
    assert "verified (accepted)" in page  # the plot's second series


def test_the_leaderboard_ranks_verified_gains_first_and_labels_claims(
    client: TestClient, store: Store
):
    sign_in(client, store.keys["read"])
    page = client.get("/ui/contributors").text
    # CONTRIBUTOR's improvement was verified; OTHER only claimed 100 + 50 bps.
    assert page.index(CONTRIBUTOR) < page.index(OTHER)
    assert re.search(r'\+\d{3,4} bps <span class="tag">verified', page)
    assert '+150 bps <span class="tag">claimed' in page


def test_an_invalid_address_is_a_422_page(client: TestClient, store: Store):
    sign_in(client, store.keys["read"])
    answer = client.get("/ui/contributors/0x123")
    assert answer.status_code == 422
    assert "invalid_contributor" in answer.text
    assert answer.headers["content-type"].startswith("text/html")
    missing = client.get("/ui/no-such-page")
    assert missing.status_code == 404 and "There is no such page" in missing.text
    wrong = client.post("/ui/models", data={"csrf": "x"})
    assert wrong.status_code == 405 and wrong.headers["content-type"].startswith("text/html")
    assert wrong.headers["content-security-policy"].startswith("default-src 'self'")


def test_a_read_key_sees_no_admin_buttons_and_its_forged_posts_are_refused(
    client: TestClient, store: Store
):
    csrf = sign_in(client, store.keys["read"])
    page = client.get("/ui/webhooks")
    assert page.status_code == 200
    assert "admin keys only" in page.text
    for marker in ("Redeliver", "Replay", "admin-action", "/redeliver", "/replay"):
        assert marker not in page.text
    outbox = client.app.state.components.webhooks.outbox  # type: ignore[attr-defined]
    event_id = outbox.deliveries()[0]["event_id"]
    assert client.get(f"/ui/webhooks/events/{event_id}").status_code == 403
    for data in ({"csrf": csrf}, {}):
        forged = client.post(
            f"/ui/webhooks/events/{event_id}/redeliver", data=data, follow_redirects=False
        )
        assert forged.status_code == 403
    endpoint = client.app.state.components.webhooks.endpoints.list()  # type: ignore[attr-defined]
    if endpoint:
        forged = client.post(
            f"/ui/webhooks/endpoints/{endpoint[0].id}/replay",
            data={"csrf": csrf, "since": "2020-01-01T00:00"},
            follow_redirects=False,
        )
        assert forged.status_code == 403


def test_an_admin_post_needs_the_session_token(client: TestClient, store: Store):
    sign_in(client, store.keys["admin"])
    outbox = client.app.state.components.webhooks.outbox  # type: ignore[attr-defined]
    event_id = outbox.deliveries()[0]["event_id"]
    for data, headers in (
        ({}, {}),
        ({"csrf": "f" * 64}, {}),
        ({"csrf": csrf_of(client.get("/ui/models").text)}, {"origin": "http://evil.example"}),
    ):
        refused = client.post(
            f"/ui/webhooks/events/{event_id}/redeliver",
            data=data,
            headers=headers,
            follow_redirects=False,
        )
        assert refused.status_code == 403, data
    # Another session's token is not this session's.
    with TestClient(client.app) as other:
        other_csrf = sign_in(other, store.keys["admin"])
    refused = client.post(
        f"/ui/webhooks/events/{event_id}/redeliver",
        data={"csrf": other_csrf},
        follow_redirects=False,
    )
    assert refused.status_code == 403


def test_a_post_without_a_session_is_refused_not_redirected(client: TestClient):
    answer = client.post("/ui/sign-out", data={"csrf": "x"}, follow_redirects=False)
    assert answer.status_code == 401


def test_sign_out_needs_the_token_and_ends_the_session(client: TestClient, store: Store):
    csrf = sign_in(client, store.keys["read"])
    assert client.post("/ui/sign-out", data={}, follow_redirects=False).status_code == 403
    assert client.get("/ui/models", follow_redirects=False).status_code == 200
    answer = client.post("/ui/sign-out", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/sign-in"
    assert "Max-Age=0" in _cookie_header(answer, "hokusai_console")
    assert client.get("/ui/models", follow_redirects=False).status_code == 303


def test_a_cookie_captured_before_sign_out_is_refused_after_it(console_app: Any, store: Store):
    with TestClient(console_app) as client, TestClient(console_app) as thief:
        csrf = sign_in(client, store.keys["admin"])
        captured = client.cookies.get("hokusai_console") or ""
        thief.cookies.set("hokusai_console", captured, path="/ui")
        assert thief.get("/ui/models", follow_redirects=False).status_code == 200
        out = client.post("/ui/sign-out", data={"csrf": csrf}, follow_redirects=False)
        assert out.status_code == 303
        answer = thief.get("/ui/models", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/sign-in"
        assert "Max-Age=0" in _cookie_header(answer, "hokusai_console")
        thief.cookies.set("hokusai_console", captured, path="/ui")
        forged = thief.post("/ui/sign-out", data={"csrf": csrf}, follow_redirects=False)
        assert forged.status_code == 401  # not a session any more, even with its token
        thief.cookies.set("hokusai_console", captured, path="/ui")
        form = thief.post(
            f"/ui/webhooks/events/{'e' * 8}/redeliver", data={"csrf": csrf}, follow_redirects=False
        )
        assert form.status_code == 401
        # A new sign-in of the same key is a new session, untouched by the old one's end.
        sign_in(client, store.keys["admin"])
        assert client.get("/ui/models", follow_redirects=False).status_code == 200


def test_sign_out_prunes_the_sessions_that_expired_anyway(store: Store):
    import sqlalchemy as sa

    from hokusai.db import open_database
    from hokusai.rest.ui.session import Session, is_revoked, revoke, revoked_sessions

    engine = open_database(store.settings.resolved_database_url)
    now = time.time()
    with engine.begin() as conn:
        conn.execute(revoked_sessions.insert().values(nonce="stale-nonce", expires_at=now - 5))
    assert is_revoked(engine, "stale-nonce")
    revoke(engine, Session(key_id="k", nonce="fresh-nonce", issued_at=now), 3600)
    revoke(engine, Session(key_id="k", nonce="fresh-nonce", issued_at=now), 3600)  # twice: fine
    revoke(engine, Session(key_id="k", nonce="old-nonce", issued_at=now - 7200), 3600)
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.select(revoked_sessions)).all())
    assert "stale-nonce" not in rows and "old-nonce" not in rows  # expired: nothing to refuse
    assert rows["fresh-nonce"] == pytest.approx(now + 3600)
    assert is_revoked(engine, "fresh-nonce") and not is_revoked(engine, "stale-nonce")


def test_a_revoked_key_signs_its_session_out(client: TestClient, store: Store):
    from hokusai.auth import ApiKeyStore

    keys: ApiKeyStore = client.app.state.components.keys  # type: ignore[attr-defined]
    key, plaintext = keys.create(name="soon-revoked", scope="admin")
    sign_in(client, plaintext)
    assert client.get("/ui/models", follow_redirects=False).status_code == 200
    keys.revoke(key.id)
    answer = client.get("/ui/models", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/sign-in"
    assert "Max-Age=0" in _cookie_header(answer, "hokusai_console")


def test_a_tampered_cookie_is_no_session(client: TestClient, store: Store):
    sign_in(client, store.keys["read"])
    value = client.cookies.get("hokusai_console")
    assert value
    client.cookies.set(
        "hokusai_console", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"), path="/ui"
    )
    assert client.get("/ui/models", follow_redirects=False).status_code == 303


def test_sessions_expire():
    from hokusai.rest.ui.session import SessionSigner

    signer = SessionSigner(b"k" * 32, max_age_seconds=1)
    _, cookie = signer.new_session("abc")
    assert signer.session(cookie) is not None
    time.sleep(2.1)
    assert signer.session(cookie) is None
    assert SessionSigner(b"j" * 32, max_age_seconds=60).session(cookie) is None


def test_replicas_share_the_secret_of_the_database_and_the_setting_wins(store: Store):
    from hokusai.rest.app import create_app

    first = create_app(store.settings, deliver_webhooks=False)
    second = create_app(store.settings, deliver_webhooks=False)
    with TestClient(first) as a, TestClient(second) as b:
        sign_in(a, store.keys["read"])
        b.cookies.set("hokusai_console", a.cookies.get("hokusai_console") or "", path="/ui")
        assert b.get("/ui/models", follow_redirects=False).status_code == 200
    own = create_app(
        store.settings.model_copy(
            update={"console_secret": SecretStr("another-secret-of-this-deployment")}
        ),
        deliver_webhooks=False,
    )
    with TestClient(first) as a, TestClient(own) as c:
        sign_in(a, store.keys["read"])
        c.cookies.set("hokusai_console", a.cookies.get("hokusai_console") or "", path="/ui")
        assert c.get("/ui/models", follow_redirects=False).status_code == 303


def test_sign_in_attempts_are_rate_limited(store: Store):
    from hokusai.rest.app import create_app

    app = create_app(
        store.settings.model_copy(update={"rate_limit_burst": 2, "rate_limit_per_minute": 1}),
        deliver_webhooks=False,
    )
    with TestClient(app) as client:
        statuses = []
        for _ in range(4):
            form = client.get("/ui/sign-in")
            answer = client.post(
                "/ui/sign-in", data={"csrf": csrf_of(form.text), "api_key": "hk_nope"}
            )
            statuses.append(answer.status_code)
        assert statuses[0] == 401 and statuses[-1] == 429
        assert "Retry-After" in answer.headers


def test_static_assets_are_served_with_the_same_policy(client: TestClient):
    css = client.get("/ui/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["content-security-policy"].startswith("default-src 'self'")
    assert "url(http" not in css.text and "@import" not in css.text
