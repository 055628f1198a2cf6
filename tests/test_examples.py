"""The examples are documentation that runs, and the library guide is held to the code.

Every ``examples/*.py`` script is run the way a reader runs it: a fresh interpreter, a fresh
embedded store under ``HOKUSAI_HOME``, no MLflow or Hokusai configuration inherited. The guide
(``docs/library.md``) must link and quote every example verbatim, document every public method,
constructor argument, setting, error code and version tag of the registry, and list exactly the
fields it returns; the migration guide must cover every new parameter and result field; links
between the docs must resolve. A change on either side that breaks the agreement fails here, so
the docs cannot quietly rot.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONTRIBUTOR

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "examples"
GUIDE = ROOT / "docs" / "library.md"
MIGRATION_GUIDE = ROOT / "docs" / "migration-guide.md"
LINKED_DOCS = [ROOT / "README.md", GUIDE, MIGRATION_GUIDE]

# Scripts only: helper modules the examples ship (e.g. for code_paths) live in examples/helpers/.
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))

# What each example must print to show it did its job; an example not listed here must at
# least print something.
EXPECTED_OUTPUT: dict[str, list[str]] = {
    "register_baseline": [
        r"^Registered hokusai_classification_baseline/\d+ \(model_type=classification\)$",
        r"^  model_uuid:  m-[0-9a-f]{32}$",
        r"^  flavors:     python_function, sklearn$",
        r"^  metadata round-trips unchanged: True$",
    ],
    "register_improved_model": [
        # lowercase address in, EIP-55 checksum out
        r"^improved  hokusai_classification_improved/\d+ improves hokusai_classification_baseline/"
        r"\d+: contributor=0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed ",
        r"^improved  hokusai_classification_improved/\d+ improves hokusai_classification_improved/"
        r"\d+: contributor=0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359 ",
    ],
    "lookup_by_uuid": [
        r"^m-[0-9a-f]{32} -> hokusai_classification_baseline/\d+$",
        r"^unknown uuid -> None$",
    ],
    "lineage": [
        r"^lineage of hokusai_regression_improved/\d+: 3 versions$",
        r"cumulative_improvement=\{'mae': -3\.0, 'r2': 0\.043, 'total_improvements': 2\}$",
    ],
    "contributor_models": [
        r"^0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359: 2 versions$",
        r"^0xFB6916095CA1DF60BB79CE92CE3EA74C37C5D359: 2 versions$",
    ],
    "code_paths": [
        r"^  code_paths: \['code/iris_rules\.py'\]$",
        r"^  loaded elsewhere: predictions \[0, 1, 2\] from .*code/iris_rules\.py$",
    ],
    "handling_errors": [
        r"^InvalidContributorError code=invalid_contributor: ",
        r"^model_type: InvalidModelTypeError code=invalid_model_type ValueError=True$",
        r"^SignatureMismatchError code=signature_mismatch column='petal width \(cm\)'$",
        r"^except ValueError caught ModelNotFoundError",
        r"^RegistrationError code=registration_failed: .*rolled back",
        r"^versions of hokusai_rollback_demo_baseline left behind: 0$",
    ],
}

# The registry's public methods; the guide must document each (plus any added later).
PUBLIC_METHODS = {
    "register_baseline",
    "register_improved_model",
    "get_model_by_uuid",
    "get_model",
    "get_model_lineage",
    "get_contributor_models",
    "backfill",
}


# The settings the registry library reads (webhook and database settings are documented with
# those components).
REGISTRY_SETTINGS = ("home", "tracking_uri", "registry_uri", "artifact_location", "experiment_name")


# The codes of the errors the registry library raises (webhook errors are documented with them).
REGISTRY_ERROR_CODES = (
    "internal_error",
    "validation_error",
    "invalid_model_type",
    "invalid_contributor",
    "invalid_metadata",
    "invalid_metrics",
    "invalid_model_id",
    "unsupported_model",
    "signature_mismatch",
    "prediction_failed",
    "baseline_not_found",
    "not_found",
    "model_not_found",
    "not_a_hokusai_model",
    "conflict",
    "registration_failed",
    "backend_error",
    "backend_unavailable",
)

# What the pre-upgrade API had; everything else is new and must be in the migration guide.
PRE_UPGRADE_PARAMETERS = {
    "register_baseline": {"self", "model", "model_type", "metadata"},
    "register_improved_model": {"self", "model", "baseline_id", "delta_metrics", "contributor"},
}
PRE_UPGRADE_RESULT_FIELDS = {
    "model_id",
    "model_name",
    "version",
    "model_type",
    "run_id",
    "registration_timestamp",
    "baseline_id",
    "contributor",
    "delta_metrics",
}


def _example_env(home: Path) -> dict[str, str]:
    """The caller's environment minus every MLflow/Hokusai setting, with a fresh home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HOKUSAI_"))}
    env.update(HOKUSAI_HOME=str(home), GIT_PYTHON_REFRESH="quiet")
    return env


def _guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


# ---- the examples run ------------------------------------------------------------------


def test_expected_output_names_real_examples() -> None:
    """A renamed or removed example must be renamed or removed in EXPECTED_OUTPUT too."""
    assert EXAMPLES, "no examples/*.py found"
    assert set(EXPECTED_OUTPUT) <= {p.stem for p in EXAMPLES}


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_a_documented_script(script: Path) -> None:
    tree = ast.parse(script.read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), f"{script.name} must open with a docstring saying what it shows"
    guards = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"
    ]
    assert guards, f'{script.name} must end with `if __name__ == "__main__": main()`'


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=workdir,
        env=_example_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{script.name} exited {done.returncode}:\n{done.stderr[-4000:]}"
    for pattern in EXPECTED_OUTPUT.get(script.stem, [r"\S"]):
        assert re.search(pattern, done.stdout, re.MULTILINE), (
            f"{script.name} did not print a line matching {pattern!r}; it printed:\n{done.stdout}"
        )
    assert (home / "mlflow.db").exists(), f"{script.name} did not use HOKUSAI_HOME"
    stray = sorted(p.name for p in workdir.iterdir())
    assert not stray, f"{script.name} wrote into the current directory: {stray}"


# ---- the guide agrees with the examples ------------------------------------------------


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_guide_links_every_example(script: Path) -> None:
    assert f"](../examples/{script.name})" in _guide(), (
        f"docs/library.md does not link examples/{script.name}"
    )


_QUOTE_RE = re.compile(
    r"<!-- quote: (?P<path>examples/[\w/]+\.py) -->\s*```python\n(?P<body>.*?)```", re.DOTALL
)


def _quotes() -> list[tuple[str, str]]:
    return [(m["path"], m["body"]) for m in _QUOTE_RE.finditer(_guide())]


def test_guide_quotes_every_example() -> None:
    quoted = {path for path, _ in _quotes()}
    missing = {f"examples/{p.name}" for p in EXAMPLES} - quoted
    assert not missing, f"docs/library.md quotes none of: {sorted(missing)}"


@pytest.mark.parametrize(("path", "body"), _quotes(), ids=lambda v: v if "\n" not in v else "")
def test_guide_quotes_are_verbatim(path: str, body: str) -> None:
    """Each quoted block (parts separated by a `...` line) appears in the file, in order."""
    source = (ROOT / path).read_text(encoding="utf-8")
    position = 0
    for part in re.split(r"^\.\.\.\n", body, flags=re.MULTILINE):
        lines = part.rstrip("\n").split("\n")
        for indent in ("", "    ", "        ", "            "):
            needle = "\n".join(indent + line if line else "" for line in lines)
            found = source.find(needle, position)
            if found >= 0:
                position = found + len(needle)
                break
        else:
            pytest.fail(f"docs/library.md quotes lines that are not in {path}:\n{part}")


# ---- the guide agrees with the code ----------------------------------------------------


def test_guide_documents_every_public_method() -> None:
    from hokusai import HokusaiModelRegistry

    methods = PUBLIC_METHODS | {
        name
        for name, value in vars(HokusaiModelRegistry).items()
        if not name.startswith("_") and callable(value)
    }
    guide = _guide()
    missing = sorted(m for m in methods if not re.search(rf"\b{m}\(", guide))
    assert not missing, f"docs/library.md does not document: {missing}"


def test_guide_documents_the_constructor_and_attributes() -> None:
    import inspect

    from hokusai import HokusaiModelRegistry

    parameters = set(inspect.signature(HokusaiModelRegistry.__init__).parameters) - {"self"}
    properties = {
        name
        for name, value in vars(HokusaiModelRegistry).items()
        if not name.startswith("_") and isinstance(value, property)
    }
    guide = _guide()
    missing = sorted(name for name in parameters | properties if f"`{name}`" not in guide)
    assert not missing, f"docs/library.md does not document: {missing}"


def test_guide_documents_the_registry_settings() -> None:
    """Every environment variable of the settings the registry reads is in the guide."""
    from pydantic import AliasChoices

    from hokusai.config import Settings

    guide = _guide()
    for name in REGISTRY_SETTINGS:
        field = Settings.model_fields[name]  # a KeyError here: the setting was renamed
        alias = field.validation_alias
        variables = (
            [str(c) for c in alias.choices]
            if isinstance(alias, AliasChoices)
            else [f"HOKUSAI_{name.upper()}"]
        )
        for variable in variables:
            assert f"`{variable}`" in guide, f"docs/library.md does not document {variable}"


def test_guide_documents_every_registry_error_code() -> None:
    from hokusai.errors import HTTP_STATUS

    guide = _guide()
    for code in REGISTRY_ERROR_CODES:
        assert code in HTTP_STATUS, f"error code {code!r} no longer exists; update the guide"
        assert f"| `{code}` |" in guide, f"docs/library.md does not list error code {code!r}"


def test_guide_documents_every_version_tag() -> None:
    from hokusai.registry import records

    tags = {value for name, value in vars(records).items() if name.startswith("TAG_")}
    guide = _guide()
    missing = sorted(tag for tag in tags if f"`{tag}`" not in guide)
    assert not missing, f"docs/library.md does not describe tags {missing}"


def test_guide_cli_commands_exist() -> None:
    """Each `hokusai a b` the guide names is a real command (arguments are in <…> or [--…])."""
    import typer.main

    from hokusai.cli.main import app

    root = typer.main.get_command(app)
    documented = {c.strip() for c in re.findall(r"`hokusai ((?:[a-z]+ ?)+)", _guide())}
    assert documented, "docs/library.md documents no CLI command"
    for command in documented:
        node: Any = root
        for word in command.split():
            commands = getattr(node, "commands", None) or {}
            assert word in commands, f"docs/library.md names `hokusai {command}`: no such command"
            node = commands[word]


_FIELDS_RE = re.compile(r"<!-- fields: (?P<name>[\w.]+) -->\s*\n(?P<table>(?:\|.*\n)+)")


def _documented_fields(doc: Path) -> dict[str, set[str]]:
    tables: dict[str, set[str]] = {}
    for match in _FIELDS_RE.finditer(doc.read_text(encoding="utf-8")):
        rows = match["table"].splitlines()[2:]  # skip the header and the |---| line
        tables[match["name"]] = {
            name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])
        }
    return tables


def test_field_tables_match_the_results(registry: Any, forest: Any, iris: Any) -> None:
    """The guides' field tables list exactly what the registry returns (no more, no fewer)."""
    from hokusai.registry.backfill import BackfillReport

    features, _ = iris
    baseline = registry.register_baseline(
        forest, "classification", {"k": "v"}, input_example=features.head(2)
    )
    improved = registry.register_improved_model(
        forest, baseline["model_id"], {"accuracy": 0.01}, CONTRIBUTOR
    )
    described = registry.get_model(improved["model_id"])
    by_uuid = registry.get_model_by_uuid(improved["model_uuid"])
    assert by_uuid is not None
    assert set(by_uuid) == set(described)
    lineage = registry.get_model_lineage(improved["model_id"])
    contributed = registry.get_contributor_models(CONTRIBUTOR.lower())

    actual = {
        "register_baseline": set(baseline),
        "register_improved_model": set(improved) - set(baseline),
        "get_model": set(described),
        "get_model_lineage": set(lineage[-1]) - set(described),
        "get_contributor_models": set(contributed[0]),
        "BackfillReport": {f.name for f in dataclasses.fields(BackfillReport)},
    }
    assert _documented_fields(GUIDE) == actual
    new_fields = (set(baseline) | set(improved)) - PRE_UPGRADE_RESULT_FIELDS
    assert _documented_fields(MIGRATION_GUIDE) == {"new_result_fields": new_fields}


def test_migration_guide_covers_every_new_parameter() -> None:
    import inspect

    from hokusai import HokusaiModelRegistry

    guide = MIGRATION_GUIDE.read_text(encoding="utf-8")
    for method, old in PRE_UPGRADE_PARAMETERS.items():
        parameters = inspect.signature(getattr(HokusaiModelRegistry, method)).parameters
        for name in sorted(set(parameters) - old):
            assert f"| `{name}` |" in guide, f"migration guide does not describe {method}({name}=)"


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", LINKED_DOCS, ids=lambda p: p.name)
def test_doc_links_resolve(doc: Path) -> None:
    """Relative links point at files that exist, and #anchors at headings that exist."""
    text = doc.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        path_part, _, anchor = target.partition("#")
        linked = (doc.parent / path_part).resolve() if path_part else doc
        assert linked.exists(), f"{doc.name} links {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.MULTILINE)
            assert anchor in {_slug(h) for h in headings}, f"{doc.name}: no anchor {target}"
