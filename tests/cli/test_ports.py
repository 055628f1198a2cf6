"""A busy port: both servers refuse in one line naming the option and the variable to change,
before printing a banner or starting uvicorn."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hokusai.config import ProjectConfig, ServingSettings, load_project_config

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port held by a real listening socket for the whole test."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _hokusai(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    clean.update(
        HOKUSAI_HOME=str(home),
        PYTHONPATH=os.pathsep.join([str(SRC), clean.get("PYTHONPATH", "")]),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "hokusai.cli.main", *args],
        capture_output=True,
        text=True,
        env=clean,
        cwd=home.parent,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("command", "variable"),
    [("serve", "HOKUSAI_SERVING_PORT"), ("server", "HOKUSAI_API_PORT")],
)
def test_a_busy_port_is_one_line_naming_the_option_and_variable(
    tmp_path: Path, busy_port: int, command: str, variable: str
) -> None:
    home = tmp_path / "home"
    result = _hokusai(command, "--port", str(busy_port), home=home)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""  # no banner: nothing claims a server is up
    assert result.stderr.splitlines() == [
        f"error[port_in_use]: 127.0.0.1:{busy_port} is already in use; "
        f"choose another with --port or {variable}"
    ]
    assert not home.exists()  # refused before anything was created (no bootstrap key)


def test_the_busy_port_may_come_from_the_variable(tmp_path: Path, busy_port: int) -> None:
    result = _hokusai("serve", home=tmp_path / "home", HOKUSAI_SERVING_PORT=str(busy_port))
    assert result.returncode == 1
    assert result.stderr.startswith(f"error[port_in_use]: 127.0.0.1:{busy_port} ")
    result = _hokusai("server", home=tmp_path / "home", HOKUSAI_API_PORT=str(busy_port))
    assert result.returncode == 1
    assert result.stderr.startswith(f"error[port_in_use]: 127.0.0.1:{busy_port} ")


def test_the_two_servers_have_different_default_ports(tmp_path: Path) -> None:
    from hokusai.config import Settings

    assert Settings.model_fields["api_port"].default == 8000
    assert ProjectConfig().port == 8080
    assert load_project_config(ROOT / "config.yaml").port == 8080
    missing = tmp_path / "config.yaml"
    assert ServingSettings(config_path=missing).resolved_port == 8080
    missing.write_text("port: 9001\n")
    assert ServingSettings(config_path=missing).resolved_port == 9001
    assert ServingSettings(config_path=missing, serving_port=9002).resolved_port == 9002


def test_hokusai_serving_port_wins_over_config_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("port: 9001\n")
    monkeypatch.setenv("HOKUSAI_SERVING_PORT", "9003")
    monkeypatch.setenv("PORT", "1")  # another program's variable is not read
    assert ServingSettings(config_path=config).resolved_port == 9003
    monkeypatch.delenv("HOKUSAI_SERVING_PORT")
    assert ServingSettings(config_path=config).resolved_port == 9001
