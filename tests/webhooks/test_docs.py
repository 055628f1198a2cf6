"""docs/webhooks.md cannot rot: its verification code is the example, run on real deliveries."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "webhooks" / "verify_signature.py"
DOC = ROOT / "docs" / "webhooks.md"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_signature", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_doc_quotes_the_example_verbatim():
    source = inspect.getsource(_example().verify)
    assert source in DOC.read_text()


def test_the_example_runs():
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out[0] == "processed model_registered hokusai_lead_scoring_baseline/1"
    assert out[1] == "duplicate"
    assert out[2].startswith("tampered body rejected")


def test_the_example_verifies_real_deliveries(hooked_registry, receiver, forest):
    from tests.webhooks.conftest import SECRET

    example = _example()
    hooked_registry.register_baseline(forest, "lead_scoring", {})
    receiver.wait_for(lambda got: len(got) == 1, timeout=5)
    delivery = receiver.received[0]
    seen: set[str] = set()
    assert example.handle(delivery.body, delivery.headers, SECRET, seen).startswith(
        "processed model_registered hokusai_lead_scoring_baseline/1"
    )
    assert example.handle(delivery.body, delivery.headers, SECRET, seen) == "duplicate"
    with pytest.raises(Exception, match="signature"):
        example.verify(delivery.body, delivery.headers, "whsec_" + "A" * 32)


def test_raw_string_secrets_verify_too(tmp_path):
    """A non-whsec secret (as the existing consumer may have) is used as raw bytes."""
    from hokusai.webhooks.signing import sign_headers

    example = _example()
    body = '{"event_type": "ping", "model_id": "x/1"}'
    headers = sign_headers(
        secret="plain-old-secret", event_id="evt_1", event_type="ping", body=body
    )
    assert example.verify(body.encode(), headers, "plain-old-secret")["event_type"] == "ping"


def test_every_setting_and_command_in_the_doc_exists():
    from typer.main import get_command

    from hokusai.cli.main import app
    from hokusai.config import Settings

    text = DOC.read_text()
    for name in Settings.model_fields:
        if name.startswith("webhook_") or name == "database_url":
            assert f"HOKUSAI_{name.upper()}" in text, name
    commands = get_command(app).commands["webhooks"].commands  # type: ignore[attr-defined]
    for name in commands:
        assert f"hokusai webhooks {name}" in text or name in {"worker", "reconcile"}, name


def _json_examples() -> dict[str, dict[str, object]]:
    """The doc's JSON examples, by event type."""
    import json
    import re

    found = {}
    for block in re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S):
        try:
            example = json.loads(block)
        except json.JSONDecodeError:
            continue  # the model_registered example abbreviates its long values with "…"
        found[example["event_type"]] = example
    return found


def test_the_verification_examples_are_what_the_builders_send():
    """The documented payloads validate against the shipped schemas and are, field for field,
    what the builders make of the test suite's sample verification."""
    import jsonschema

    from hokusai.webhooks.payloads import (
        deltaone_accepted_payload,
        event_schema,
        improvement_verified_payload,
    )
    from tests.webhooks.helpers import verification_result

    examples = _json_examples()
    assert {"improvement.verified", "deltaone.accepted"} <= set(examples)
    result = verification_result()
    builders = {
        "improvement.verified": improvement_verified_payload,
        "deltaone.accepted": deltaone_accepted_payload,
    }
    for event_type, build in builders.items():
        example = examples[event_type]
        jsonschema.validate(example, event_schema(event_type))
        assert example == build(result, event_id=str(example["event_id"]))
