"""The library on the deployed shape: ``mlflow server`` on PostgreSQL, artifacts in S3.

Each test runs in both artifact modes (``tracking`` fixture): proxied, where this process has no
S3 credentials at all and every byte goes through the tracking server, and direct, where it
writes to the bucket itself. Either way the model's files must be objects in the bucket, and
everything the registry answers must come back through the tracking server.
"""

from __future__ import annotations

import secrets
from typing import Any

from hokusai.services.model_registry import HokusaiModelRegistry
from tests.stack.stack import PROXIED, LoopbackStack, TrackingServer


def _address() -> str:
    """A contributor of this test alone (the session's database is shared)."""
    return "0x" + secrets.token_hex(20)


def _artifact_keys(stack: LoopbackStack, tracking: TrackingServer, model_uuid: str) -> set[str]:
    """The file names of logged model ``model_uuid`` among the bucket's objects."""
    keys = stack.s3.keys(tracking.artifact_prefix)
    return {key.rsplit("/", 1)[-1] for key in keys if f"/models/{model_uuid}/" in key}


def test_register_read_back_and_load_through_the_tracking_server(
    stack_settings, tracking, loopback_stack, logistic, iris, model_type, capfd
):
    import mlflow.pyfunc

    features, _ = iris
    registry = HokusaiModelRegistry(settings=stack_settings)
    base = registry.register_baseline(
        logistic, model_type, {"dataset": "iris"}, input_example=features.head(2)
    )
    contributor = _address()
    improved = registry.register_improved_model(
        logistic, base["model_id"], {"accuracy": 0.03}, contributor
    )

    # MLflow prints a "View run" link for every run ended on a tracking server; the library's
    # caller owns stdout.
    assert "View run" not in capfd.readouterr().out

    scheme = "mlflow-artifacts:" if tracking.mode == PROXIED else "s3:"
    assert str(base["artifact_path"]).startswith(scheme)
    for result in (base, improved):
        files = _artifact_keys(loopback_stack, tracking, result["model_uuid"])
        assert {"MLmodel", "requirements.txt"} <= files, files

    found = registry.get_model_by_uuid(improved["model_uuid"])
    assert found is not None
    assert found["model_id"] == improved["model_id"]
    assert found["baseline_id"] == base["model_id"]
    assert found["contributor"].lower() == contributor
    lineage = registry.get_model_lineage(improved["model_id"])
    assert [entry["model_id"] for entry in lineage] == [base["model_id"], improved["model_id"]]
    assert lineage[-1]["cumulative_improvement"]["accuracy"] == 0.03
    mine = registry.get_contributor_models(contributor)
    assert [summary["model_id"] for summary in mine] == [improved["model_id"]]

    # The model itself comes back from the bucket (through the server in the proxied mode).
    model: Any = mlflow.pyfunc.load_model(f"models:/{base['model_name']}/{base['version']}")
    assert list(model.predict(features.head(3))) == list(logistic.predict(features.head(3)))


def test_a_fresh_registry_reads_what_another_registered(
    stack_settings, tracking, logistic, model_type
):
    """Nothing is cached in the registering process: a second registry (another replica, in
    a deployment) finds the version through the server and the shared database."""
    first = HokusaiModelRegistry(settings=stack_settings)
    result = first.register_baseline(logistic, model_type, {"owner": "replica-1"})
    second = HokusaiModelRegistry(settings=stack_settings.model_copy())
    found = second.get_model(result["model_id"])
    assert found["model_uuid"] == result["model_uuid"]
    assert found["metadata"] == {"owner": "replica-1"}
    listed, _ = second.list_models(model_type=model_type)
    assert [summary["model_id"] for summary in listed] == [result["model_id"]]
