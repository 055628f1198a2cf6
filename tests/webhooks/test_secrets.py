"""Secrets are validated wherever they enter: a secret that cannot sign is refused with
``invalid_webhook_secret`` (API, CLI, ``HOKUSAI_WEBHOOK_SECRET``), never found by the sender.
(What the sender does with a legacy one is in test_delivery_guarantees.py.)"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hokusai.cli.main import app
from hokusai.config import Settings
from hokusai.errors import InvalidWebhookSecretError
from hokusai.webhooks.hub import Webhooks
from hokusai.webhooks.signing import generate_secret, validate_secret
from tests.webhooks.conftest import SECRET

BAD_SECRETS = [
    "whsec_AAAAAAAAAAAAAAAAA",  # 17 base64 characters: no valid padding
    "whsec_",
    "whsec_not base64 at all!",
    "whsec_" + base64.b64encode(b"8 bytes!").decode(),  # too short a key
    "whsec_" + base64.urlsafe_b64encode(b"\xfb" * 24).decode(),  # url-safe alphabet
    "",
    "\ud800 lone surrogate, not UTF-8",
]


@pytest.mark.parametrize("secret", BAD_SECRETS)
def test_secrets_that_cannot_sign_are_refused(secret):
    with pytest.raises(InvalidWebhookSecretError, match="secret") as info:
        validate_secret(secret)
    assert info.value.code == "invalid_webhook_secret"
    assert info.value.status == 422
    if len(secret) > 8:
        assert secret not in info.value.message  # never echoed into logs


@pytest.mark.parametrize("secret", [SECRET, generate_secret(), "plain-old-secret", "s"])
def test_good_secrets_are_accepted(secret):
    assert validate_secret(secret) == secret


def test_an_endpoint_with_a_bad_secret_is_refused_at_creation(tmp_path: Path):
    hooks = Webhooks(
        Settings(home=tmp_path, webhook_background=False, webhook_allow_private_networks=True)
    )
    with pytest.raises(InvalidWebhookSecretError, match="whsec_") as info:
        hooks.add_endpoint("http://127.0.0.1:1/x", secret="whsec_AAAAAAAAAAAAAAAAA")
    assert info.value.code == "invalid_webhook_secret"
    assert hooks.endpoints.list() == []
    hooks.close()


def test_a_bad_env_secret_is_refused_at_start(tmp_path: Path):
    settings = Settings(
        home=tmp_path,
        webhook_url="http://127.0.0.1:1/x",
        webhook_secret="whsec_AAAAAAAAAAAAAAAAA",
        webhook_allow_private_networks=True,
    )
    with pytest.raises(InvalidWebhookSecretError, match="standard base64") as info:
        Webhooks(settings)
    assert info.value.code == "invalid_webhook_secret"


def test_the_cli_refuses_a_bad_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
    result = CliRunner().invoke(
        app, ["webhooks", "add", "http://127.0.0.1:1/x", "--secret", "whsec_AAAAAAAAAAAAAAAAA"]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, InvalidWebhookSecretError)
    assert result.exception.code == "invalid_webhook_secret"
