"""The MLflow experiment that runs go to, created on first use."""

from __future__ import annotations

from typing import Any

from hokusai.registry.backend import translate_mlflow_error

__all__ = ["ensure_experiment"]


def ensure_experiment(client: Any, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, creating it (with ``artifact_location`` as its artifact
    root) when it does not exist; safe when another process creates it at the same time."""
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(client.create_experiment(name, artifact_location=artifact_location))
        except Exception:
            experiment = client.get_experiment_by_name(name)  # created meanwhile elsewhere
            if experiment is None:
                raise
            return str(experiment.experiment_id)
    except Exception as exc:
        raise translate_mlflow_error(exc, f"opening experiment {name!r}") from exc
