"""Settings are read when a registry is built, never at import."""

from __future__ import annotations

from pathlib import Path

import pytest

from hokusai.config import Settings, get_settings


def test_embedded_default_lives_under_hokusai_home(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HOKUSAI_HOME", str(tmp_path / "h"))
    settings = get_settings()
    assert settings.resolved_tracking_uri == f"sqlite:///{tmp_path / 'h' / 'mlflow.db'}"
    assert settings.resolved_registry_uri == settings.resolved_tracking_uri
    assert settings.resolved_artifact_location == (tmp_path / "h" / "artifacts").as_uri()
    assert settings.is_embedded


def test_default_home_is_dot_hokusai_in_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("HOKUSAI_HOME")
    monkeypatch.chdir(tmp_path)
    assert get_settings().home_path == tmp_path / ".hokusai"


def test_mlflow_tracking_uri_is_honoured_and_hokusai_prefix_wins(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    settings = get_settings()
    assert settings.resolved_tracking_uri == "http://mlflow.example:5000"
    assert not settings.is_embedded
    assert settings.resolved_artifact_location is None  # the server decides
    monkeypatch.setenv("HOKUSAI_TRACKING_URI", "sqlite:///x.db")
    assert get_settings().resolved_tracking_uri == "sqlite:///x.db"


def test_fields_with_environment_aliases_can_be_set_by_name(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-env:5000")
    settings = get_settings(tracking_uri="http://given:5000", registry_uri="sqlite:///r.db")
    assert settings.resolved_tracking_uri == "http://given:5000"
    assert settings.resolved_registry_uri == "sqlite:///r.db"


def test_overrides_win_over_environment(monkeypatch):
    monkeypatch.setenv("HOKUSAI_EXPERIMENT_NAME", "from-env")
    assert get_settings().experiment_name == "from-env"
    assert get_settings(experiment_name="given").experiment_name == "given"


def test_two_registries_built_under_different_environments_use_their_own(
    tmp_path: Path, monkeypatch, forest, iris
):
    from hokusai.services.model_registry import HokusaiModelRegistry

    monkeypatch.setenv("HOKUSAI_HOME", str(tmp_path / "a"))
    first = HokusaiModelRegistry()
    monkeypatch.setenv("HOKUSAI_HOME", str(tmp_path / "b"))
    second = HokusaiModelRegistry()
    assert first.tracking_uri != second.tracking_uri

    one = first.register_baseline(forest, "classification", {"store": "a"})
    two = second.register_baseline(forest, "classification", {"store": "b"})
    assert one["version"] == two["version"] == "1"  # separate stores, separate numbering
    assert str(tmp_path / "a") in one["artifact_path"]
    assert str(tmp_path / "b") in two["artifact_path"]
    assert first.get_model_by_uuid(two["model_uuid"]) is None
    assert second.get_model_by_uuid(two["model_uuid"])["metadata"] == {"store": "b"}


def test_registry_does_not_change_the_process_mlflow_uri(settings: Settings, forest):
    import mlflow

    from hokusai.services.model_registry import HokusaiModelRegistry

    mlflow.set_tracking_uri("sqlite:///elsewhere.db")
    try:
        HokusaiModelRegistry(settings=settings).register_baseline(forest, "classification", {})
        assert mlflow.get_tracking_uri() == "sqlite:///elsewhere.db"
    finally:
        mlflow.set_tracking_uri(None)


@pytest.mark.parametrize("value", ["", "relative/dir"])
def test_home_path_is_absolute(value: str, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert Settings(home=Path(value)).home_path.is_absolute()
