"""deploy/ as Docker would read it, with no Docker engine: the compose file with its variables
interpolated the way Compose does, the Compose specification's JSON schema, ``.env.example`` and
the Dockerfile's instructions."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"


def compose_schema() -> dict[str, Any]:
    """The Compose specification's JSON schema (``compose-spec.json``, draft 2020-12).

    It comes from the ``check-jsonschema`` package (a dev dependency), which vendors the
    schema SchemaStore publishes from the compose-spec repository, with its sha256 and license
    beside it; upgrading that package brings the newer specification.
    """
    from importlib.resources import files

    vendor = files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads(vendor.joinpath("compose-spec.json").read_text("utf-8"))
    return schema


def raw_compose() -> dict[str, Any]:
    """docker-compose.yml as YAML (merge keys resolved), before interpolation."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return loaded


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """``KEY=VALUE`` lines (comments and blank lines skipped), as Compose reads a ``.env``."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{path.name}:{number}: not KEY=VALUE: {line!r}")
        values[key] = value
    return values


# ---- interpolation, as the Compose specification defines it ----------------------------------

_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


class InterpolationError(ValueError):
    """A required variable (``${VAR:?message}``) is missing, or the syntax is not Compose's."""


@dataclass(frozen=True)
class Reference:
    """One ``${…}`` in the file: the variable, its operator (``:-``, ``?``, …) and argument."""

    name: str
    op: str | None
    arg: str


def references(text: str) -> list[Reference]:
    """Every variable reference in ``text`` (``$$`` is an escaped dollar, not a reference)."""
    found = []
    for match in _REFERENCE.finditer(text):
        if match["escaped"]:
            continue
        if match["named"]:
            found.append(Reference(match["named"], None, ""))
            continue
        parsed = _BRACED.fullmatch(match["braced"])
        if parsed is None:
            raise InterpolationError(f"not a Compose variable reference: ${{{match['braced']}}}")
        found.append(Reference(parsed["name"], parsed["op"], parsed["arg"] or ""))
    return found


def _substitute(reference: Reference, env: dict[str, str]) -> str:
    value = env.get(reference.name)
    unset_or_empty = not value
    missing = unset_or_empty if reference.op and reference.op.startswith(":") else value is None
    op = (reference.op or "").lstrip(":")
    if op == "-":
        return reference.arg if missing else (value or "")
    if op == "?":
        if missing:
            raise InterpolationError(f"{reference.name}: {reference.arg or 'required'}")
        return value or ""
    if op == "+":
        return "" if missing else reference.arg
    return value or ""


def interpolate_text(text: str, env: dict[str, str]) -> str:
    """``text`` with every ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``… replaced."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        (reference,) = references(match[0])
        return _substitute(reference, env)

    return _REFERENCE.sub(replace, text)


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Interpolate every string value of a loaded compose document (keys are left alone, as
    Compose leaves them)."""
    if isinstance(value, str):
        return interpolate_text(value, env)
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    return value


def all_strings(value: Any) -> list[str]:
    """Every string value in a document, depth first."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in all_strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in all_strings(item)]
    return []


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose document as Docker Compose sees it with ``env`` as its ``.env``
    (``.env.example`` by default)."""
    result: dict[str, Any] = interpolate(raw_compose(), read_env_file() if env is None else env)
    return result


# ---- services --------------------------------------------------------------------------------


def project_services(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services built from deploy/Dockerfile (the project image), by name."""
    return {
        name: service
        for name, service in document["services"].items()
        if isinstance(service.get("build"), dict)
        and (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).resolve()
        == DOCKERFILE.resolve()
    }


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a dict (Compose allows a dict or ``KEY=VALUE`` list)."""
    declared = service.get("environment") or {}
    if isinstance(declared, list):
        return dict(item.split("=", 1) for item in declared)
    return {key: "" if value is None else str(value) for key, value in declared.items()}


def command(service: dict[str, Any]) -> list[str]:
    """A service's command as argv (a string command is split as Compose splits it)."""
    declared = service["command"]
    return shlex.split(declared) if isinstance(declared, str) else [str(arg) for arg in declared]


def container_ports(service: dict[str, Any]) -> list[int]:
    """The container side of each ``ports`` entry (``[address:]published:container``)."""
    ports = []
    for entry in service.get("ports", []):
        target = entry["target"] if isinstance(entry, dict) else str(entry).rsplit(":", 1)[-1]
        ports.append(int(str(target).split("/")[0]))
    return ports


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Service → condition it waits for (``service_started`` for the short list form)."""
    declared = service.get("depends_on") or {}
    if isinstance(declared, list):
        return dict.fromkeys(declared, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in declared.items()}


def one_shot(document: dict[str, Any]) -> set[str]:
    """The services others wait for to complete (``service_completed_successfully``): ones that
    run to completion, like ``migrate``."""
    return {
        name
        for service in document["services"].values()
        for name, condition in depends_on(service).items()
        if condition == "service_completed_successfully"
    }


def start_order(services: dict[str, dict[str, Any]]) -> list[str]:
    """The services in an order that honours ``depends_on`` among them."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ValueError(f"depends_on cycle through {name}")
        visiting.add(name)
        for dependency in depends_on(services[name]):
            if dependency in services:
                visit(dependency)
        visiting.discard(name)
        order.append(name)

    for name in services:
        visit(name)
    return order


# ---- the Dockerfile --------------------------------------------------------------------------


@dataclass
class Stage:
    """One ``FROM`` stage: its base, name, and instructions as (INSTRUCTION, arguments)."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


@cache
def dockerfile_stages() -> list[Stage]:
    """The Dockerfile's stages (continuation lines joined, comments dropped)."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        if (pending + line).strip():
            logical.append(" ".join((pending + line).split()))
        pending = ""
    stages: list[Stage] = []
    for text in logical:
        instruction, _, args = text.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        elif stages:
            stages[-1].instructions.append((instruction, args))
    return stages


def env_instructions(stage: Stage) -> dict[str, str]:
    """``ENV KEY=VALUE …`` of a stage, in order (later ones win)."""
    values: dict[str, str] = {}
    for args in stage.all("ENV"):
        for item in shlex.split(args):
            key, _, value = item.partition("=")
            values[key] = value
    return values


def seconds(duration: str | int | float) -> float:
    """A Compose duration (``"1m30s"``, ``"10s"``, ``"500ms"``) in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    if not parts or "".join(number + unit for number, unit in parts) != duration:
        raise ValueError(f"not a Compose duration: {duration!r}")
    return sum(float(number) * units[unit] for number, unit in parts)


# ---- deploy/README.md's commands -------------------------------------------------------------

README = DEPLOY / "README.md"
#: `docker compose run` options that take a value, and the mounts the tests know how to map.
_VALUE_OPTIONS = {"-v", "--volume", "-e", "--env", "-u", "--user", "-w", "--workdir"}
KNOWN_MOUNTS = {"$PWD/examples/data:/data:ro": ("/data/", ROOT / "examples" / "data")}


@dataclass(frozen=True)
class ReadmeCommand:
    """``docker compose run|exec [options] SERVICE ARGS…`` from a ```sh block of the README."""

    verb: str
    service: str
    args: list[str]
    mounts: list[str]


def _shell_commands(block: str) -> Iterator[list[str]]:
    """A sh block's commands as argv: continuation lines joined, quoted newlines kept,
    comments dropped."""
    buffer = ""
    for line in block.splitlines():
        if line.rstrip().endswith("\\"):
            buffer += line.rstrip()[:-1] + " "
            continue
        buffer += line
        try:
            tokens = shlex.split(buffer, comments=True)
        except ValueError:  # a quoted string goes on over the next line
            buffer += "\n"
            continue
        buffer = ""
        if tokens:
            yield tokens


def readme_commands() -> list[ReadmeCommand]:
    """Every ``docker compose run|exec`` of deploy/README.md's ```sh blocks, in order."""
    text = README.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S):
        for tokens in _shell_commands(block):
            if tokens[:2] != ["docker", "compose"] or tokens[2] not in {"run", "exec"}:
                continue
            rest, mounts = tokens[3:], []
            while rest[0].startswith("-"):
                option = rest.pop(0)
                if option in _VALUE_OPTIONS:
                    value = rest.pop(0)
                    if option in {"-v", "--volume"}:
                        mounts.append(value)
            found.append(ReadmeCommand(tokens[2], rest[0], rest[1:], mounts))
    return found
