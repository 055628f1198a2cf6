"""Endpoints: URL policy, the env endpoint, secrets never shown again, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hokusai.cli.main import app
from hokusai.config import Settings
from hokusai.errors import EndpointNotFoundError, InvalidWebhookUrlError, ValidationError
from hokusai.webhooks.hub import Webhooks
from hokusai.webhooks.urlpolicy import DestinationPolicy
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
    for allow in (True, False):
        policy = DestinationPolicy(allow_http=allow, allow_private_networks=allow)
        with pytest.raises(InvalidWebhookUrlError) as info:
            policy.validate_url(url)
        assert info.value.code == "invalid_webhook_url"


def test_plain_http_is_refused_unless_allowed():
    url = "http://hooks.example/hook"
    with pytest.raises(InvalidWebhookUrlError, match="is not https.*ALLOW_HTTP=true") as info:
        DestinationPolicy(allow_private_networks=True).validate_url(url)
    assert info.value.code == "invalid_webhook_url"
    public = DestinationPolicy(allow_http=True, resolver=lambda host, port: ["93.184.216.34"])
    assert public.validate_url(url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("http://localhost/hook", "localhost resolves to .*, a loopback address"),
        ("http://10.0.0.5/hook", "10.0.0.5 is a private address"),
        ("http://[::1]/hook", "::1 is a loopback address"),
        ("http://169.254.169.254/latest", "169.254.169.254 is a link-local address"),
    ],
)
def test_private_hosts_are_refused_unless_allowed(url, message):
    with pytest.raises(InvalidWebhookUrlError, match=message) as info:
        DestinationPolicy(allow_http=True).validate_url(url)
    assert info.value.code == "invalid_webhook_url"
    assert DestinationPolicy(allow_http=True, allow_private_networks=True).validate_url(url) == url


def test_https_public_urls_are_accepted():
    url = "https://marketplace.hokusai.ai/api/webhooks/models"
    policy = DestinationPolicy(resolver=lambda host, port: ["104.18.0.1", "2606:4700::6812:1"])
    assert policy.validate_url(url) == url


def test_defaults_http_in_the_embedded_mode_private_networks_never(tmp_path: Path):
    embedded = Settings(home=tmp_path)
    assert embedded.resolved_webhook_allow_http is True
    assert embedded.resolved_webhook_allow_private_networks is False
    server = Settings(home=tmp_path, tracking_uri="http://mlflow:5000")
    assert server.resolved_webhook_allow_http is False
    assert server.resolved_webhook_allow_private_networks is False
    for tracking in (None, "http://mlflow:5000"):
        with pytest.raises(InvalidWebhookUrlError, match="127.0.0.1 is a loopback address"):
            Webhooks(
                Settings(
                    home=tmp_path,
                    tracking_uri=tracking,
                    webhook_url="https://127.0.0.1/x",
                    webhook_secret=SECRET,
                )
            )


def test_allow_insecure_still_means_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    server = {"home": tmp_path, "tracking_uri": "http://mlflow:5000"}
    monkeypatch.setenv("HOKUSAI_WEBHOOK_ALLOW_INSECURE", "true")
    both = Settings(**server)
    assert both.resolved_webhook_allow_http is True
    assert both.resolved_webhook_allow_private_networks is True
    monkeypatch.setenv("HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "false")  # the explicit one wins
    http_only = Settings(**server)
    assert http_only.resolved_webhook_allow_http is True
    assert http_only.resolved_webhook_allow_private_networks is False
    monkeypatch.setenv("HOKUSAI_WEBHOOK_ALLOW_INSECURE", "false")
    monkeypatch.setenv("HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("HOKUSAI_WEBHOOK_ALLOW_HTTP", "true")
    explicit = Settings(home=tmp_path)
    assert explicit.resolved_webhook_allow_http is True
    assert explicit.resolved_webhook_allow_private_networks is True
    hooks = Webhooks(explicit)
    assert hooks.destinations == DestinationPolicy(allow_http=True, allow_private_networks=True)
    hooks.close()


def test_env_url_without_secret_is_refused(tmp_path: Path):
    with pytest.raises(ValidationError, match="HOKUSAI_WEBHOOK_SECRET is not"):
        Webhooks(Settings(home=tmp_path, webhook_url="https://hooks.example/x"))


def test_env_endpoint_follows_the_environment(tmp_path: Path):
    settings = Settings(
        home=tmp_path,
        webhook_url="http://127.0.0.1:1/a",
        webhook_secret="s1",
        webhook_allow_private_networks=True,
    )
    Webhooks(settings).endpoints.set_enabled("env", False, reason="410")
    moved = Webhooks(settings.model_copy(update={"webhook_url": "http://127.0.0.1:1/b"}))
    (endpoint,) = moved.endpoints.list()
    assert endpoint.url == "http://127.0.0.1:1/b"
    assert endpoint.enabled  # a new URL is a deliberate change
    moved.close()


def test_event_filters_choose_the_subscribers(tmp_path: Path):
    hooks = Webhooks(
        Settings(home=tmp_path, webhook_background=False, webhook_allow_private_networks=True)
    )
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


@pytest.fixture
def local_receivers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads the environment: allow the loopback receiver there."""
    monkeypatch.setenv("HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout


def test_cli_add_list_test_deliveries_remove(receiver, local_receivers):
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


def test_cli_test_against_a_failing_receiver_exits_non_zero(receiver, local_receivers):
    receiver.always((500, {}, 0, "down"))
    _, out = _cli("webhooks", "add", receiver.url, "--json")
    code, _ = _cli("webhooks", "test", json.loads(out)["id"])
    assert code == 1


def test_cli_redeliver_and_status_filter(receiver, tmp_path):
    receiver.always((400, {}, 0, "no"))
    hooks = Webhooks(
        Settings(
            home=tmp_path / "home", webhook_background=False, webhook_allow_private_networks=True
        )
    )
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


def test_cli_refuses_a_private_destination():
    result = runner.invoke(app, ["webhooks", "add", "https://127.1:1/hook"])
    assert isinstance(result.exception, InvalidWebhookUrlError)
    assert result.exception.code == "invalid_webhook_url"
    assert "127.1 resolves to 127.0.0.1, a loopback address" in result.exception.message
