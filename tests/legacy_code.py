"""The pre-upgrade registration code, reproduced against real MLflow to create legacy versions.

This is what versions in production registries look like before the upgrade: params
``model_type``/``is_baseline``/``metadata_*`` (baselines) or ``baseline_model_id``/
``contributor_address`` plus delta metrics as run metrics (improved), version tags
``baseline_model_id``/``contributor``, no uuid tag, and two versions per call (the log_model
``registered_model_name`` one and the ``register_model`` one).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc

PIP = ["mlflow", "cloudpickle"]


class LegacyModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return [0] * len(model_input)


def _experiment(tracking_uri: str, home: Path) -> str:
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("legacy")
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(client.create_experiment("legacy", artifact_location=(home / "legacy").as_uri()))


def legacy_register_baseline(
    tracking_uri: str, home: Path, model_type: str, metadata: dict[str, Any]
) -> dict[str, Any]:
    name = f"hokusai_{model_type}_baseline"
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with mlflow.start_run(experiment_id=_experiment(tracking_uri, home)) as run:
            mlflow.log_params(
                {
                    "model_type": model_type,
                    "is_baseline": True,
                    "registration_time": datetime.utcnow().isoformat(),
                }
            )
            for key, value in metadata.items():
                mlflow.log_param(f"metadata_{key}", value)
            mlflow.pyfunc.log_model(
                artifact_path="model",
                python_model=LegacyModel(),
                registered_model_name=name,
                pip_requirements=PIP,
            )
            mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    finally:
        mlflow.set_tracking_uri(None)
    return {"model_id": f"{mv.name}/{mv.version}", "run_id": run.info.run_id}


def legacy_register_improved(
    tracking_uri: str,
    home: Path,
    baseline_id: str,
    delta_metrics: dict[str, float],
    contributor: str,
) -> dict[str, Any]:
    improved_name = baseline_id.split("/")[0].replace("_baseline", "_improved")
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with mlflow.start_run(experiment_id=_experiment(tracking_uri, home)) as run:
            mlflow.log_metrics(delta_metrics)
            mlflow.log_params(
                {
                    "baseline_model_id": baseline_id,
                    "contributor_address": contributor,
                    "improvement_count": len(delta_metrics),
                    "registration_time": datetime.utcnow().isoformat(),
                }
            )
            mlflow.pyfunc.log_model(
                artifact_path="model",
                python_model=LegacyModel(),
                registered_model_name=improved_name,
                pip_requirements=PIP,
            )
            mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", improved_name)
            client = mlflow.MlflowClient()
            client.set_model_version_tag(
                improved_name, mv.version, "baseline_model_id", baseline_id
            )
            client.set_model_version_tag(improved_name, mv.version, "contributor", contributor)
    finally:
        mlflow.set_tracking_uri(None)
    return {"model_id": f"{mv.name}/{mv.version}", "run_id": run.info.run_id}


def mlflow2_style_baseline(tracking_uri: str, home: Path, model_type: str) -> dict[str, Any]:
    """A version whose source is a plain artifact folder and whose MLmodel uuid is not ``m-…``,
    as MLflow 2 wrote them."""
    client = mlflow.MlflowClient(tracking_uri)
    experiment_id = _experiment(tracking_uri, home)
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "model_type", model_type)
    client.log_param(run.info.run_id, "is_baseline", "True")
    folder = home / "mlflow2" / run.info.run_id
    mlflow.pyfunc.save_model(folder, python_model=LegacyModel(), pip_requirements=PIP)
    client.set_terminated(run.info.run_id)
    name = f"hokusai_{model_type}_baseline"
    with contextlib.suppress(mlflow.exceptions.MlflowException):
        client.create_registered_model(name)
    mv = client.create_model_version(name, source=folder.as_uri(), run_id=run.info.run_id)
    return {"model_id": f"{mv.name}/{mv.version}", "run_id": run.info.run_id, "folder": folder}
