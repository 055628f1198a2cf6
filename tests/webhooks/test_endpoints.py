"""Endpoints: URL policy, the env endpoint, secrets never shown again, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hokusai.cli.main import app
from hokusai.config import Settings
from hokusai.errors import EndpointNotFoundError, InvalidWebhookUrlError, ValidationError
from hokusai.webhooks.endpoints import validate_url
from hokusai.webhooks.hub import Webhooks
from tests.webhooks.conftest import SECRET
from tests.webhooks.helpers import fake_result

runner = CliRunner()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "example.com/hook",
        "https://",
        "https://user:pw@example.com/hook",
        "https://example.com:99999/hook",
        "https://exa mple.com/hook",
        "",
        None,
    ],
)
def test_malformed_urls_are_always_refused(url):
    for allow_insecure in (True, False):
        with pytest.raises(InvalidWebhookUrlError) as info:
            validate_url(url, allow_insecure=allow_insecure)
        assert info.value.code == "invalid_webhook_url"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.com/hook", "not https"),
        ("https://127.0.0.1/hook", "loopback or private"),
        ("https://localhost/hook", "loopback or private"),
        ("https://10.0.0.5/hook", "loopback or private"),
        ("https://[::1]/hook", "loopback or private"),
        ("https://169.254.169.254/latest", "loopback or private"),
    ],
)
def test_insecure_urls_are_refused_outside_the_embedded_mode(url, message):
    with pytest.raises(InvalidWebhookUrlError, match=message):
        validate_url(url, allow_insecure=False)
    assert validate_url(url, allow_insecure=True) == url


def test_https_public_urls_are_accepted():
    url = "https://marketplace.hokusai.ai/api/webhooks/models"
    assert validate_url(url, allow_insecure=False) == url


def test_insecure_default_follows_the_embedded_mode(tmp_path: Path):
    assert Settings(home=tmp_path).resolved_webhook_allow_insecure is True
    server = Settings(home=tmp_path, tracking_uri="http://mlflow:5000")
    assert server.resolved_webhook_allow_insecure is False
    with pytest.raises(InvalidWebhookUrlError):
        Webhooks(
            Settings(
                home=tmp_path,
                tracking_uri="http://mlflow:5000",
                webhook_url="http://127.0.0.1/x",
                webhook_secret=SECRET,
            )
        )


def test_env_url_without_secret_is_refused(tmp_path: Path):
    with pytest.raises(ValidationError, match="HOKUSAI_WEBHOOK_SECRET is not"):
        Webhooks(Settings(home=tmp_path, webhook_url="http://127.0.0.1:1/x"))


def test_env_endpoint_follows_the_environment(tmp_path: Path):
    settings = Settings(home=tmp_path, webhook_url="http://127.0.0.1:1/a", webhook_secret="s1")
    Webhooks(settings).endpoints.set_enabled("env", False, reason="410")
    moved = Webhooks(settings.model_copy(update={"webhook_url": "http://127.0.0.1:1/b"}))
    (endpoint,) = moved.endpoints.list()
    assert endpoint.url == "http://127.0.0.1:1/b"
    assert endpoint.enabled  # a new URL is a deliberate change
    moved.close()


def test_event_filters_choose_the_subscribers(tmp_path: Path):
    hooks = Webhooks(Settings(home=tmp_path, webhook_background=False))
    registered, _ = hooks.add_endpoint("http://127.0.0.1:1/a", events="model_registered")
    promoted, _ = hooks.add_endpoint("http://127.0.0.1:1/b", events=["model_promoted"])
    hooks.announce_registration(fake_result(1))
    assert [d["endpoint_id"] for d in hooks.outbox.deliveries()] == [registered.id]
    with pytest.raises(ValidationError, match="Unknown event type 'nope'"):
        hooks.add_endpoint("http://127.0.0.1:1/c", events="nope")
    hooks.endpoints.remove(promoted.id)
    with pytest.raises(EndpointNotFoundError):
        hooks.endpoints.get(promoted.id)
    hooks.close()


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout


def test_cli_add_list_test_deliveries_remove(receiver, monkeypatch):
    code, out = _cli("webhooks", "add", receiver.url, "--secret", SECRET, "--json")
    assert code == 0
    created = json.loads(out)
    assert created["secret"] == SECRET  # shown once, at creation

    code, out = _cli("webhooks", "list", "--json")
    listed = json.loads(out)
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]
    assert SECRET not in out

    code, out = _cli("webhooks", "test", created["id"], "--json")
    assert code == 0, out
    assert json.loads(out)["status_code"] == 200
    assert receiver.received[0].json["event_type"] == "ping"
    assert receiver.verified == [True]

    code, out = _cli("webhooks", "deliveries", "--status", "delivered", "--json")
    (delivery,) = json.loads(out)
    assert delivery["event_type"] == "ping"
    code, out = _cli("webhooks", "attempts", delivery["delivery_id"], "--json")
    assert json.loads(out)[0]["status_code"] == 200

    code, out = _cli("webhooks", "remove", receiver.url)
    assert code == 0
    assert json.loads(_cli("webhooks", "list", "--json")[1]) == []


def test_cli_test_against_a_failing_receiver_exits_non_zero(receiver):
    receiver.always((500, {}, 0, "down"))
    _, out = _cli("webhooks", "add", receiver.url, "--json")
    code, _ = _cli("webhooks", "test", json.loads(out)["id"])
    assert code == 1


def test_cli_redeliver_and_status_filter(receiver, tmp_path):
    receiver.always((400, {}, 0, "no"))
    hooks = Webhooks(Settings(home=tmp_path / "home", webhook_background=False))
    hooks.add_endpoint(receiver.url, secret=SECRET)
    event_id = hooks.announce_registration(fake_result(1))
    hooks.dispatcher().run_once()
    code, out = _cli("webhooks", "deliveries", "--status", "failed", "--json")
    assert [d["event_id"] for d in json.loads(out)] == [event_id]
    assert json.loads(out)[0]["model_id"] == "hokusai_lead_scoring_baseline/1"
    code, out = _cli("webhooks", "redeliver", event_id)
    assert code == 0
    assert "re-queued 1" in out
    assert hooks.outbox.stats()["pending"] == 1
    assert _cli("webhooks", "redeliver", "--all-failed")[0] == 0
    assert runner.invoke(app, ["webhooks", "redeliver"]).exit_code != 0
    hooks.close()


def test_cli_rejects_an_unknown_status(tmp_path):
    result = runner.invoke(app, ["webhooks", "deliveries", "--status", "lost"])
    assert isinstance(result.exception, ValidationError)
