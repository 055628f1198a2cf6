"""deploy/ read as Docker would read it, with no Docker engine: the compose file against the
Compose specification's JSON schema, its variables against ``.env.example``, no committed secret,
and the Dockerfile against what the compose services need. (test_compose_runs.py runs the
services themselves.)"""

from __future__ import annotations

import copy
import re
import subprocess
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.deploy.compose import (
    COMPOSE_FILE,
    DEPLOY,
    DOCKERFILE,
    DOCKERIGNORE,
    KNOWN_MOUNTS,
    ROOT,
    InterpolationError,
    all_strings,
    command,
    compose,
    compose_schema,
    depends_on,
    dockerfile_stages,
    env_instructions,
    environment,
    interpolate_text,
    one_shot,
    project_services,
    raw_compose,
    read_env_file,
    readme_commands,
    references,
    seconds,
    start_order,
)

#: The roles issue #12 names, by their service names in the compose file.
ROLES = {
    "postgres",
    "minio",
    "minio-init",
    "redis",
    "mlflow",
    "migrate",
    "api",
    "webhook-worker",
    "serving",
}
#: Environment names that hold a credential: their value must come from deploy/.env.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|TOKEN|API_KEY")


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = Draft202012Validator(compose_schema())
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_the_compose_file_is_valid_against_the_compose_specification():
    document = compose()
    assert schema_errors(document) == []
    assert set(document["services"]) == ROLES


def test_the_schema_check_rejects_what_compose_rejects():
    """The validation above can fail: a misspelt key, a wrong type and an unknown condition are
    each caught (so an empty error list means something)."""
    document = compose()
    misspelt = copy.deepcopy(document)
    misspelt["services"]["api"]["comand"] = misspelt["services"]["api"].pop("command")
    wrong_type = copy.deepcopy(document)
    wrong_type["services"]["api"]["healthcheck"]["interval"] = 10
    bad_condition = copy.deepcopy(document)
    bad_condition["services"]["api"]["depends_on"]["mlflow"]["condition"] = "healthy"
    for broken in (misspelt, wrong_type, bad_condition):
        assert schema_errors(broken), broken["services"]["api"]


def test_interpolation_follows_compose_rules():
    env = {"SET": "value", "EMPTY": ""}
    assert interpolate_text("${SET}/${SET:-x}/${EMPTY:-d}/${EMPTY-d}/$$SET/$SET", env) == (
        "value/value/d//$SET/value"
    )
    assert interpolate_text("${UNSET:+alt}${SET:+alt}", env) == "alt"
    with pytest.raises(InterpolationError, match="set it"):
        interpolate_text("${EMPTY:?set it}", env)
    with pytest.raises(InterpolationError):
        interpolate_text("${NOT A NAME}", env)


def test_compose_durations():
    assert seconds("1m30s") == 90
    assert seconds("500ms") == 0.5
    for service in compose()["services"].values():
        for key in ("interval", "timeout", "start_period"):
            if key in service.get("healthcheck", {}):
                assert seconds(service["healthcheck"][key]) > 0
    with pytest.raises(ValueError, match="duration"):
        seconds("10 seconds")


def test_every_variable_is_in_env_example_and_every_entry_is_used():
    """A fresh `cp .env.example .env` gives every ${…} a value, and .env.example lists nothing
    the compose file ignores."""
    used = [reference for text in all_strings(raw_compose()) for reference in references(text)]
    example = read_env_file()
    required = {ref.name for ref in used if ref.op in ("?", ":?", None)}
    assert required <= set(example), f"no value in .env.example for {required - set(example)}"
    assert set(example) <= {ref.name for ref in used}, "entries of .env.example nothing reads"
    compose()  # interpolates with .env.example: raises if any required value is missing


def test_no_secret_is_committed():
    """Every credential a service gets comes from deploy/.env, required (`${VAR:?…}`, no
    default), deploy/.env is git-ignored, and .env.example holds placeholders only."""
    example = read_env_file()
    credentials = []
    for name, service in raw_compose()["services"].items():
        for key, value in environment(service).items():
            if not SECRET_NAME.search(key):
                continue
            (reference,) = references(value)
            assert value == f"${{{reference.name}:?{reference.arg}}}", (name, key, value)
            credentials.append(reference.name)
            if SECRET_NAME.search(reference.name):  # (an access key id is a user name)
                assert example[reference.name].startswith("change-me"), reference.name
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"} <= set(credentials)
    without = {key: value for key, value in example.items() if key != "POSTGRES_PASSWORD"}
    with pytest.raises(InterpolationError, match="POSTGRES_PASSWORD"):
        compose(without)
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(DEPLOY / ".env")], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, "deploy/.env must be git-ignored"


def test_services_wait_for_what_they_need():
    """depends_on names existing services; a service waited for as healthy has a health check;
    a one-shot one never restarts; every long-running project service has a health check; the
    volumes used are declared, and the whole graph has an order."""
    document = compose()
    services = document["services"]
    for name, service in services.items():
        for dependency, condition in depends_on(service).items():
            assert dependency in services, (name, dependency)
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], (name, dependency)
    for name in one_shot(document):
        assert str(services[name].get("restart")) == "no", name
    for name, service in project_services(document).items():
        if name not in one_shot(document):
            assert service["healthcheck"]["test"][0] == "CMD", name
            assert service.get("restart") == "unless-stopped", name
    used = {
        mount.split(":", 1)[0]
        for service in services.values()
        for mount in service.get("volumes", [])
        if not mount.startswith((".", "/"))
    }
    assert used == set(document["volumes"])
    assert start_order(services)[-1] in {"api", "webhook-worker", "serving"}


def test_one_image_for_every_project_role():
    """mlflow, migrate, api, workers and serving are the project image, built from
    deploy/Dockerfile with the repository as context."""
    document = compose()
    project = project_services(document)
    assert set(project) == {"mlflow", "migrate", "api", "webhook-worker", "serving"}
    assert len({service["image"] for service in project.values()}) == 1
    assert {(DEPLOY / s["build"]["context"]).resolve() for s in project.values()} == {ROOT}
    assert command(project["migrate"]) == ["hokusai", "db", "upgrade"]
    # replicas: API processes behind one port, and webhook workers as separate containers
    assert "--workers" in command(project["api"])
    assert int(project["webhook-worker"]["deploy"]["replicas"]) >= 2


def test_one_database_for_mlflow_and_hokusai():
    """The issue's deployment: MLflow's backend store is Hokusai's database (mlflow_db)."""
    document = compose()
    mlflow = document["services"]["mlflow"]
    assert "--backend-store-uri" not in command(mlflow)  # (it would win over the environment)
    backend = environment(mlflow)["MLFLOW_BACKEND_STORE_URI"]
    for name in ("migrate", "api", "webhook-worker", "serving"):
        env = environment(document["services"][name])
        assert env["HOKUSAI_DATABASE_URL"] == backend, name
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
    assert backend.endswith("@postgres:5432/mlflow_db")


def test_the_readme_commands_name_the_compose_services():
    """deploy/README.md's `docker compose run|exec` lines name services of the compose file, and
    the project services' mounts are ones the run test maps (test_compose_runs.py runs those)."""
    document = compose()
    found = readme_commands()
    assert {c.service for c in found} >= {"api", "mlflow", "migrate", "postgres", "minio-init"}
    for readme_command in found:
        assert readme_command.service in document["services"], readme_command
        if readme_command.service in project_services(document):
            assert set(readme_command.mounts) <= set(KNOWN_MOUNTS), readme_command


# ---- the Dockerfile --------------------------------------------------------------------------


def _needed_extras() -> set[str]:
    """The extras of pyproject.toml whose packages the compose file's URLs need: psycopg for
    ``postgresql+psycopg://``, boto3 for an ``s3://`` artifact store."""
    needs = {"postgresql+psycopg://": "psycopg", "s3://": "boto3"}
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    wanted = {package for marker, package in needs.items() if marker in text}
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    extras = set()
    for extra in ("postgres", "s3"):
        declared = re.search(rf"^{extra} = \[(.*)\]$", pyproject, re.M)
        assert declared, f"pyproject.toml declares the {extra} extra"
        if any(f'"{package}' in declared[1] for package in wanted):
            extras.add(extra)
    return extras


def test_the_image_installs_the_extras_the_services_need_and_no_dev_tools():
    needed = _needed_extras()
    assert needed == {"postgres", "s3"}
    installs = [args for stage in dockerfile_stages() for args in stage.all("RUN")]
    extras = {
        extra.strip()
        for run in installs
        for group in re.findall(r"\.whl\)?\[([a-z0-9_,-]+)\]", run)
        for extra in group.split(",")
    }
    assert needed <= extras, f"the image installs {extras or 'no extra'}"
    assert "dev" not in extras and "all" not in extras


def test_the_image_runs_as_an_unprivileged_user_from_a_slim_multi_stage_build():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "build stage + runtime stage"
    runtime = stages[-1]
    users = runtime.all("USER")
    assert users, "the runtime stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert "slim" in runtime.base or "PYTHON_IMAGE" in runtime.base
    arg_defaults = [args for name, args in _global_args() if name == "ARG"]
    assert any("python:3.11-slim" in arg for arg in arg_defaults)
    # Only the virtual environment crosses over from the build stage (no compiler, no wheel cache).
    copies = runtime.all("COPY")
    assert [c for c in copies if c.startswith("--from=")] == [
        "--from=build /opt/hokusai /opt/hokusai"
    ]


def _global_args() -> list[tuple[str, str]]:
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    before_from = []
    for line in lines:
        if line.upper().startswith("FROM "):
            break
        if line.strip() and not line.startswith("#"):
            name, _, args = line.partition(" ")
            before_from.append((name.upper(), args))
    return before_from


def test_the_image_home_is_the_compose_volume_and_its_sources_are_in_the_context():
    runtime = dockerfile_stages()[-1]
    env = env_instructions(runtime)
    home = env["HOKUSAI_HOME"]
    assert runtime.all("WORKDIR")[-1] == home
    assert home in runtime.all("VOLUME")[-1]
    for name, service in project_services(compose()).items():
        assert f"hokusai-home:{home}" in service["volumes"], name
    config = env["CONFIG_PATH"]
    assert any(copy.endswith(f" {config}") for copy in runtime.all("COPY"))
    # every file the build copies exists, and the .dockerignore allowlist lets it in
    allowed = {
        line[1:].rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    for stage in dockerfile_stages():
        for copy_args in stage.all("COPY"):
            if copy_args.startswith("--from="):
                continue
            *sources, _destination = copy_args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert source.rstrip("/") in allowed, f"{source} is not in the build context"
