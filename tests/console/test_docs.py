"""docs/console.md documents every console setting and the migration behind its tables."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "console.md"


def test_every_console_setting_is_in_the_doc():
    from hokusai.config import Settings

    text = DOC.read_text()
    names = [n for n in Settings.model_fields if n.startswith("console_")]
    assert "console_trust_forwarded_proto" in names and len(names) >= 4
    missing = [f"HOKUSAI_{n.upper()}" for n in names if f"`HOKUSAI_{n.upper()}`" not in text]
    assert not missing, missing


def test_the_doc_names_the_console_tables():
    from hokusai.rest.ui.session import console_secrets, revoked_sessions

    text = DOC.read_text()
    for table in (console_secrets, revoked_sessions):
        assert f"`{table.name}`" in text, table.name
