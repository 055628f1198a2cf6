"""The console's assets ship in the wheel (built here with the project's own build backend,
hatchling, offline): no build step at install time, nothing fetched from elsewhere."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "src" / "hokusai" / "rest" / "ui"


def test_the_wheel_carries_every_template_and_static_file(tmp_path: Path):
    builders = pytest.importorskip("hatchling.builders.wheel")
    wheel = next(iter(builders.WheelBuilder(str(ROOT)).build(directory=str(tmp_path))))
    names = set(zipfile.ZipFile(wheel).namelist())
    assets = [
        p for folder in ("templates", "static") for p in (UI / folder).rglob("*") if p.is_file()
    ]
    assert len(assets) >= 10
    missing = [
        str(p.relative_to(ROOT)) for p in assets if str(p.relative_to(ROOT / "src")) not in names
    ]
    assert missing == []


def test_no_asset_refers_to_another_host():
    external = re.compile(
        r"""(?:src|href|action)\s*=\s*["'](?:[a-z]+:)?//|url\(\s*["']?(?:[a-z]+:)?//|@import"""
    )
    for path in (UI / "templates").rglob("*.html"):
        text = path.read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert not external.findall(text), path
        assert "<script" not in text, path  # no script at all: nothing for the CSP to allow
    for path in (UI / "static").rglob("*.css"):
        assert not external.findall(path.read_text()), path
