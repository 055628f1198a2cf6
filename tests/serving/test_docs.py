"""docs/serving.md names exactly the settings the server reads."""

from __future__ import annotations

import re
from pathlib import Path

from hokusai.config import ProjectConfig, ServingSettings

DOC = (Path(__file__).resolve().parents[2] / "docs" / "serving.md").read_text()


def test_every_serving_setting_is_documented():
    for name, field in ServingSettings.model_fields.items():
        aliases = getattr(field.validation_alias, "choices", [name])
        env_name = next(a for a in aliases if a.isupper())
        assert f"`{env_name}`" in DOC, name


def test_every_config_yaml_field_is_documented():
    for name in ProjectConfig.model_fields:
        assert re.search(rf"^{name}:", DOC, re.MULTILINE), name


def test_every_documented_route_exists():
    from hokusai.serving.app import create_app

    # The OpenAPI paths: FastAPI keeps included routers as one entry each in ``app.routes``.
    routes = set(create_app().openapi()["paths"])
    documented = set(re.findall(r"`(?:GET|POST) (/[a-z/]+)`", DOC))
    assert "/admin/reload" in documented
    for path in documented:
        assert path in routes, path
