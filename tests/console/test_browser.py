"""The console in headless Chromium against a real ``hokusai server`` and a real registry:
sign in, browse every page, follow a lineage to a contributor, redeliver a dead delivery and see
it delivered to a loopback receiver, sign out; a read key sees no admin button and its forged
POST is refused; no console error; accessibility (axe-core, keyboard). Screenshots go to
tests/console/artifacts/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.browser import CHROMIUM, CHROMIUM_ARGS, Watch, require_chromium, running_server
from tests.console.conftest import WEBHOOK_SECRET, artifacts_dir
from tests.console.store import CONTRIBUTOR, OTHER, Store, build_store
from tests.webhooks.receiver import Receiver, running_receiver

pytestmark = pytest.mark.slow

FAILING = (500, {}, 0.0, "receiver down")
WORKING = (200, {}, 0.0, "ok")


@pytest.fixture(scope="module")
def dead_receiver() -> Iterator[Receiver]:
    """A receiver that answers 500 until a test says otherwise."""
    with running_receiver(WEBHOOK_SECRET) as receiver:
        receiver.default = FAILING
        yield receiver


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, dead_receiver: Receiver
) -> Iterator[tuple[str, Store]]:
    """The registry, then a real server delivering its events to the failing receiver with one
    quick retry, until every delivery is dead."""
    require_chromium()
    webhook = {
        "webhook_url": dead_receiver.url,
        "webhook_secret": WEBHOOK_SECRET,
        "webhook_allow_private_networks": True,
    }
    store = build_store(tmp_path_factory.mktemp("browser") / "home", **webhook)
    env = {
        "HOKUSAI_WEBHOOK_URL": dead_receiver.url,
        "HOKUSAI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "HOKUSAI_WEBHOOK_RETRY_SCHEDULE": "0.05",
        "HOKUSAI_WEBHOOK_POLL_SECONDS": "0.05",
        "HOKUSAI_WEBHOOK_TIMEOUT_SECONDS": "2",
    }
    with running_server(store.settings.home_path, env) as url:
        from hokusai.webhooks import Webhooks

        hooks = Webhooks(store.settings)
        deadline = time.monotonic() + 60
        while True:
            stats = hooks.outbox.stats()
            if stats["dead"] and not (stats["pending"] or stats["delivering"]):
                break
            assert time.monotonic() < deadline, stats
            time.sleep(0.1)
        hooks.engine.dispose()
        yield url, store


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, live: tuple[str, Store]) -> Iterator[tuple[Any, Watch]]:
    url, _ = live
    context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    watch = Watch(origin=url)
    watch.attach(tab)
    yield tab, watch
    context.close()


def shot(page: Any, name: str) -> Path:
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def sign_in(page: Any, key: str) -> None:
    page.goto("/ui/")
    assert page.url.endswith("/ui/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/ui/models$"))


def test_an_admin_browses_everything_redelivers_and_signs_out(
    page: tuple[Any, Watch], live: tuple[str, Store], dead_receiver: Receiver
):
    tab, watch = page
    url, store = live
    tab.goto("/ui/models")
    assert tab.url.endswith("/ui/sign-in")
    shot(tab, "sign-in")
    sign_in(tab, store.keys["admin"])

    # Models: the listing, a search, a version page.
    assert tab.locator("table.data tbody tr").count() == 5
    assert tab.locator(".badge.alias", has_text="@champion").count() == 1
    shot(tab, "models")
    tab.get_by_label("Search").fill(OTHER.lower())
    tab.get_by_role("button", name="Search").click()
    assert tab.locator("table.data tbody tr").count() == 2
    tab.get_by_role("link", name=store.second).click()
    tab.wait_for_url(re.compile(r".*/ui/models/hokusai_classification_improved/2$"))
    assert tab.get_by_role("heading", name="Signature").is_visible()
    assert tab.get_by_text("sklearn").first.is_visible()
    shot(tab, "version")

    # Lineage: families, the graph, then from an edge's contributor to the contributor page.
    tab.get_by_role("link", name="Lineage", exact=True).click()
    tab.get_by_role("link", name=store.baseline).click()
    graph = tab.locator("svg.lineage")
    assert graph.locator("a.node").count() == 4
    assert graph.locator("a.node.serving").count() == 1
    assert tab.locator("figure.plot svg path").count() >= 1
    shot(tab, "lineage")
    graph.locator("a.contributor-link", has_text=CONTRIBUTOR[:6]).first.click()
    tab.wait_for_url(re.compile(rf".*/ui/contributors/{CONTRIBUTOR}$"))
    assert tab.locator("#address").inner_text() == CONTRIBUTOR
    shot(tab, "contributor")

    tab.get_by_role("link", name="Contributors", exact=True).click()
    rows = tab.locator("table.data tbody tr")
    assert rows.count() == 2
    assert CONTRIBUTOR in rows.nth(0).inner_text()
    shot(tab, "leaderboard")

    # Webhooks: the dead deliveries; the receiver is fixed; redeliver one; it succeeds.
    tab.get_by_role("link", name="Webhooks", exact=True).click()
    tab.get_by_role("link", name=re.compile(r"^dead")).click()
    dead = tab.locator("table#deliveries tbody tr")
    assert dead.count() >= 1
    first_event = dead.nth(0).locator("td").nth(0).locator(".mono").inner_text()
    shot(tab, "webhooks-dead")
    dead_receiver.default = WORKING
    arrived_before = len(dead_receiver.received)
    dead.nth(0).get_by_role("button", name="Redeliver").click()
    tab.wait_for_url(re.compile(rf".*/ui/webhooks/events/{first_event}\?requeued=1$"))
    assert "1 delivery queued again" in tab.locator(".notice").inner_text()
    deadline = time.monotonic() + 20
    while "delivered" not in tab.locator("section.delivery h2 .badge").first.inner_text():
        assert time.monotonic() < deadline, tab.content()
        time.sleep(0.2)
        tab.reload()
    last_attempt = tab.locator("section.delivery table tbody tr").last
    cells = last_attempt.locator("td")
    assert cells.nth(2).inner_text() == "200"
    assert re.fullmatch(r"\d+\.\d ms", cells.nth(3).inner_text())
    assert tab.locator("section.delivery table tbody tr").count() == 3  # 500, 500, then 200
    shot(tab, "webhooks-redelivered")
    fresh = [r for r in dead_receiver.received[arrived_before:] if r.webhook_id == first_event]
    assert fresh, "the receiver never got the redelivery"
    assert all(dead_receiver.verified)

    # Sign out: the session is gone.
    tab.get_by_role("button", name="Sign out").click()
    tab.wait_for_url(re.compile(r".*/ui/sign-in$"))
    tab.goto("/ui/models")
    assert tab.url.endswith("/ui/sign-in")
    watch.assert_clean()


def test_a_read_key_sees_no_admin_button_and_its_forged_post_is_refused(
    page: tuple[Any, Watch], live: tuple[str, Store]
):
    tab, watch = page
    url, store = live
    sign_in(tab, store.keys["read"])
    for path in ("/ui/models", f"/ui/models/{store.first}", "/ui/contributors", "/ui/webhooks"):
        tab.goto(path)
        assert tab.locator("button.admin-action").count() == 0, path
        assert tab.get_by_role("button", name="Redeliver").count() == 0
        assert tab.get_by_role("button", name="Replay").count() == 0
    assert "admin keys only" in tab.content()
    shot(tab, "webhooks-read-key")
    # The forged POST a page could send with this browser's cookies, even with the session's
    # own CSRF token (read from the sign-out form): the key's scope refuses it.
    csrf = tab.locator('form[action="/ui/sign-out"] input[name="csrf"]').get_attribute("value")
    from hokusai.webhooks import Webhooks

    hooks = Webhooks(store.settings)
    event_id = hooks.outbox.deliveries()[0]["event_id"]
    endpoint_id = hooks.endpoints.list()[0].id
    hooks.engine.dispose()
    request = tab.context.request
    forged = request.post(
        f"{url}/ui/webhooks/events/{event_id}/redeliver", form={"csrf": csrf}, max_redirects=0
    )
    assert forged.status == 403
    forged = request.post(
        f"{url}/ui/webhooks/endpoints/{endpoint_id}/replay",
        form={"csrf": csrf, "since": "2020-01-01T00:00"},
        max_redirects=0,
    )
    assert forged.status == 403
    watch.assert_clean()


def _axe(tab: Any) -> list[dict[str, Any]]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(tab)
    return [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]


def test_every_page_passes_axe_without_serious_violations(
    page: tuple[Any, Watch], live: tuple[str, Store]
):
    tab, watch = page
    _, store = live
    tab.goto("/ui/sign-in")
    found = {"/ui/sign-in": _axe(tab)}
    sign_in(tab, store.keys["admin"])
    from hokusai.webhooks import Webhooks

    hooks = Webhooks(store.settings)
    event_id = hooks.outbox.deliveries()[0]["event_id"]
    hooks.engine.dispose()
    for path in (
        "/ui/models",
        f"/ui/models/{store.first}",
        "/ui/lineage",
        f"/ui/lineage/{store.baseline}",
        "/ui/contributors",
        f"/ui/contributors/{CONTRIBUTOR}",
        "/ui/webhooks",
        f"/ui/webhooks/events/{event_id}",
    ):
        tab.goto(path)
        found[path] = _axe(tab)
    serious = {
        path: [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
        for path, violations in found.items()
        if violations
    }
    assert serious == {}
    watch.assert_clean()


def test_the_keyboard_reaches_the_form_and_the_navigation_in_order(
    page: tuple[Any, Watch], live: tuple[str, Store]
):
    tab, watch = page
    _, store = live
    tab.goto("/ui/sign-in")

    def tab_to() -> tuple[str, str]:
        tab.keyboard.press("Tab")
        return tab.evaluate(
            "[document.activeElement.tagName.toLowerCase(),"
            " (document.activeElement.id || document.activeElement.textContent || '').trim()]"
        )

    order = [tab_to() for _ in range(4)]
    assert order == [
        ["a", "Skip to content"],
        ["a", "Hokusai registry"],
        ["input", "api_key"],
        ["button", "Sign in"],
    ]
    # The focused button shows it: an outline wider than nothing.
    outline = tab.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    tab.keyboard.press("Shift+Tab")
    tab.keyboard.type(store.keys["read"])
    tab.keyboard.press("Enter")
    tab.wait_for_url(re.compile(r".*/ui/models$"))
    order = [tab_to() for _ in range(6)]
    assert order == [
        ["a", "Skip to content"],
        ["a", "Hokusai registry"],
        ["a", "Models"],
        ["a", "Lineage"],
        ["a", "Contributors"],
        ["a", "Webhooks"],
    ]
    tab.keyboard.press("Enter")
    tab.wait_for_url(re.compile(r".*/ui/webhooks$"))
    watch.assert_clean()
