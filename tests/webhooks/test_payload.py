"""The model_registered contract, field by field, over a real signed delivery."""

from __future__ import annotations

import hashlib
import hmac

import jsonschema
import pytest

from hokusai.webhooks.payloads import model_registered_schema
from tests.conftest import CONTRIBUTOR
from tests.webhooks.conftest import SECRET

CONTRACT_FIELDS = {
    "event_type",
    "event_id",
    "model_id",
    "model_name",
    "version",
    "model_version",
    "mlflow_run_id",
    "model_uuid",
    "model_uri",
    "signature",
    "metadata",
    "model_type",
    "is_baseline",
    "baseline_id",
    "contributor",
    "delta_metrics",
    "timestamp",
}


@pytest.mark.backends
def test_baseline_payload_headers_and_signatures(hooked_registry, backend, receiver, forest, iris):
    features, _ = iris
    model_type = backend.model_type("lead_scoring")
    result = hooked_registry.register_baseline(
        forest, model_type, {"nested": {"k": [1, 2]}}, input_example=features.head(2)
    )
    receiver.wait_for(lambda got: len(got) == 1, timeout=5)
    delivery = receiver.received[0]
    payload = delivery.json
    assert set(payload) == CONTRACT_FIELDS
    jsonschema.validate(payload, model_registered_schema())
    assert payload["event_type"] == "model_registered"
    assert payload["model_id"] == result["model_id"] == f"hokusai_{model_type}_baseline/1"
    assert payload["model_name"] == f"hokusai_{model_type}_baseline"
    assert payload["version"] == payload["model_version"] == "1"
    assert payload["mlflow_run_id"] == result["run_id"]
    assert payload["model_uuid"] == result["model_uuid"]
    assert payload["model_uri"] == result["model_uri"]
    assert payload["signature"] == result["signature"]
    assert payload["metadata"] == {"nested": {"k": [1, 2]}}
    assert payload["model_type"] == model_type
    assert payload["is_baseline"] is True
    assert payload["baseline_id"] is None
    assert payload["contributor"] is None
    assert payload["delta_metrics"] is None
    assert payload["timestamp"] == result["registration_timestamp"]

    headers = delivery.headers
    assert receiver.verified == [True]  # standardwebhooks.Webhook(secret).verify passed
    assert headers["webhook-id"] == payload["event_id"]
    assert headers["x-hokusai-event"] == "model_registered"
    expected = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert headers["x-hokusai-signature"] == f"sha256={expected}"
    assert headers["webhook-signature"].startswith("v1,")


@pytest.mark.backends
def test_improved_payload_carries_attribution(hooked_registry, backend, receiver, forest):
    contributor = backend.address(CONTRIBUTOR)
    base = hooked_registry.register_baseline(forest, backend.model_type("lead_scoring"), {})
    hooked_registry.register_improved_model(
        forest, base["model_id"], {"auroc": 0.03}, contributor.lower()
    )
    receiver.wait_for(lambda got: len(got) == 2, timeout=5)
    improved = next(r.json for r in receiver.received if not r.json["is_baseline"])
    jsonschema.validate(improved, model_registered_schema())
    assert improved["model_id"] == backend.model_name("lead_scoring", "improved") + "/1"
    assert improved["baseline_id"] == base["model_id"]
    assert improved["contributor"] == contributor
    assert improved["delta_metrics"] == {"auroc": 0.03}
    assert all(receiver.verified)


def test_schema_refuses_a_payload_missing_a_contract_field(hooked_registry, receiver, forest):
    hooked_registry.register_baseline(forest, "lead_scoring", {})
    receiver.wait_for(lambda got: len(got) == 1, timeout=5)
    payload = receiver.received[0].json
    del payload["model_version"]
    with pytest.raises(jsonschema.ValidationError, match="model_version"):
        jsonschema.validate(payload, model_registered_schema())
