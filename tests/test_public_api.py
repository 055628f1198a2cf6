"""The public surface is deliberate: explicit __all__ lists, documented import paths."""

from __future__ import annotations

import subprocess
import sys

import hokusai
import hokusai.errors


def test_package_all_is_exactly_the_public_api():
    assert sorted(hokusai.__all__) == sorted(
        [
            "HokusaiError",
            "HokusaiModelRegistry",
            "Settings",
            "ValidationError",
            "__version__",
            "errors",
            "get_settings",
            "open_registry",
        ]
    )
    for name in hokusai.__all__:
        assert getattr(hokusai, name) is not None


def test_documented_import_path_is_the_assembled_registry():
    from hokusai.registry import ModelRegistry
    from hokusai.services.model_registry import HokusaiModelRegistry, open_registry

    assert hokusai.HokusaiModelRegistry is HokusaiModelRegistry
    assert hokusai.open_registry is open_registry
    assert issubclass(HokusaiModelRegistry, ModelRegistry)


def test_registry_package_exports_its_public_names():
    import hokusai.registry

    for name in hokusai.registry.__all__:
        assert getattr(hokusai.registry, name) is not None


def test_errors_all_lists_every_exception_class():
    classes = {
        name
        for name, value in vars(hokusai.errors).items()
        if isinstance(value, type) and issubclass(value, hokusai.errors.HokusaiError)
    }
    assert classes <= set(hokusai.errors.__all__)


def test_importing_hokusai_does_not_import_mlflow():
    code = "import sys, hokusai, hokusai.cli.main; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_attribute_raises_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = hokusai.nope  # type: ignore[attr-defined]
