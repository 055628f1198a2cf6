"""Run the ```` ```bash ```` blocks of a Markdown document top to bottom, as a reader would.

The blocks of one document become one ``bash -euo pipefail`` script, run in a temporary copy of
the repository (so ``examples/…`` resolves and nothing is written into the checkout), in a
clean environment: no inherited ``HOKUSAI_*``/``MLFLOW_*``/serving variables, ``HOKUSAI_HOME``
and ``TMPDIR`` in the temporary directory, the venv's ``bin`` first on ``PATH`` (as after
``source .venv/bin/activate``) and free ports in ``HOKUSAI_API_PORT``/``HOKUSAI_SERVING_PORT``
with ``HOKUSAI_URL``/``HOKUSAI_SERVING_URL`` pointing at them.

A block that holds nothing but one long-running server command (``make run``,
``hokusai server …``, ``hokusai serve …``, ``hokusai webhooks worker …``,
``python -m uvicorn …``) is what a reader starts in another terminal: the script starts it in
the background, in its own process group, with its output in a log, and waits until it answers
(``/ready``) or, for a worker, says it is delivering. Every server is stopped with SIGTERM when
the script ends, however it ends; its exit status is recorded.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: What a reader's environment must not leak into a run: the project's settings, MLflow's, and
#: the prediction server's un-prefixed ones.
SCRUBBED_PREFIXES = ("HOKUSAI_", "MLFLOW_", "MODEL_")
SCRUBBED_NAMES = {"CONFIG_PATH", "VIRTUAL_ENV"}

_BLOCK_RE = re.compile(r"^```bash\n(.*?)^```$", flags=re.DOTALL | re.MULTILINE)
_SERVER_RE = re.compile(
    r"""^(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*   # VAR=value prefixes
    (?P<command>make\ run|hokusai\ server|hokusai\ serve|hokusai\ webhooks\ worker
                |python\ -m\ uvicorn)(?:\s|$)""",
    flags=re.VERBOSE,
)
#: How the script knows a server block is up: the URL it polls (``/ready`` of the registry API
#: or of the prediction server), or a line of its log.
READY_URL = {"api": "HOKUSAI_URL", "serving": "HOKUSAI_SERVING_URL"}
READY_LOG = {"worker": "delivering from"}
SERVER_TIMEOUT = 120.0


def logical_lines(block: str) -> list[str]:
    """The block's commands: comments and blank lines dropped, ``\\`` continuations joined."""
    joined = re.sub(r"\\\n", " ", block)
    return [
        line.strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def server_kind(command: str) -> str | None:
    """``api``, ``serving`` or ``worker`` when the command line starts a server, else None."""
    match = _SERVER_RE.match(command)
    if match is None:
        return None
    name = match["command"]
    if name in ("make run", "hokusai server"):
        return "api"
    if name == "hokusai webhooks worker":
        return "worker"
    if name == "python -m uvicorn" and "hokusai.rest" in command:
        return "api"
    return "serving"


@dataclass(frozen=True)
class Block:
    """One ```bash block: the document, its position (0-based) and first line, its text."""

    doc: str
    index: int
    line: int
    text: str

    @property
    def server(self) -> str | None:
        """The kind of server this block starts, when it is nothing but a server command."""
        lines = logical_lines(self.text)
        return server_kind(lines[0]) if len(lines) == 1 else None

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line} (bash block {self.index})"


def blocks(doc: Path) -> list[Block]:
    """Every ```bash block of ``doc``, with the line where its code starts."""
    text = doc.read_text(encoding="utf-8")
    name = doc.relative_to(ROOT).as_posix() if doc.is_relative_to(ROOT) else doc.name
    return [
        Block(name, i, text.count("\n", 0, m.start(1)) + 1, m.group(1))
        for i, m in enumerate(_BLOCK_RE.finditer(text))
    ]


def documents() -> list[Path]:
    """README.md and docs/*.md: the documents whose shell blocks must run."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def venv() -> Path:
    """The virtual environment running the tests (``.venv`` under ``make test``)."""
    return Path(sys.prefix)


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The test's environment without Hokusai/MLflow/serving settings, on ``home``, the venv's
    ``bin`` first on ``PATH``, and this checkout's ``src`` on ``PYTHONPATH`` (a no-op where
    the venv has the checkout installed in editable mode; it makes a shared venv run the code
    under test)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(SCRUBBED_PREFIXES) and k not in SCRUBBED_NAMES
    }
    env["HOKUSAI_HOME"] = str(home)
    env["PATH"] = os.pathsep.join([str(venv() / "bin"), env.get("PATH", "")])
    env["PYTHONPATH"] = str(ROOT / "src")
    return {**env, **extra}


def copy_repository(target: Path) -> Path:
    """Copy the checkout's tracked files (and new files git does not ignore) to ``target``,
    with a ``.venv`` whose entries link to the running venv. The copy's ``.venv/.installed`` is
    newer than its ``pyproject.toml``, so ``make`` in the copy never reinstalls anything."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.exists():  # deleted in the work tree, not yet in the index
            continue
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination, follow_symlinks=False)
    linked = target / ".venv"
    linked.mkdir()
    for entry in venv().iterdir():
        if entry.name != ".installed":
            (linked / entry.name).symlink_to(entry)
    (linked / ".installed").touch()
    return target


@dataclass
class ServerRun:
    """A server block as it ran: its kind, log, and how it ended."""

    block: Block
    kind: str
    log: str
    status: int | None  # exit status after SIGTERM (143: killed by it), None: never stopped
    alive_at_stop: bool


@dataclass
class DocRun:
    """What running one document did."""

    doc: str
    blocks: list[Block]
    skipped: dict[int, str]
    ran: list[int]
    returncode: int | None  # None: timed out
    stdout: str
    stderr: str
    servers: list[ServerRun] = field(default_factory=list)

    @property
    def not_run(self) -> list[Block]:
        return [b for b in self.blocks if b.index not in self.ran and b.index not in self.skipped]

    def report(self) -> str:
        """Everything a failure needs: where it stopped, the output, the server logs."""
        parts = [f"{self.doc}: exit {self.returncode}; ran blocks {self.ran}"]
        if self.not_run:
            parts.append(f"first block not run: {self.not_run[0].where}:\n{self.not_run[0].text}")
        parts += [f"--- stdout\n{self.stdout}", f"--- stderr\n{self.stderr}"]
        for server in self.servers:
            parts.append(
                f"--- {server.kind} server of {server.block.where}, exit {server.status}"
                f"{'' if server.alive_at_stop else ' (had exited before the end)'}\n{server.log}"
            )
        return "\n".join(parts)


_PRELUDE = r"""
__docs_started=""
__docs_wait() {  # INDEX PID URL LOG PATTERN: until URL answers 2xx or LOG has PATTERN
  local deadline=$((SECONDS + %(timeout)d))
  while :; do
    if ! kill -0 "$2" 2>/dev/null; then
      echo "server block $1 exited before it was ready:" >&2; cat "$4" >&2; return 1
    fi
    if [ -n "$3" ] && curl -fsS -o /dev/null --max-time 2 "$3" 2>/dev/null; then return 0; fi
    if [ -n "$5" ] && grep -q -- "$5" "$4"; then return 0; fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "server block $1 not ready after %(timeout)ds:" >&2; cat "$4" >&2; return 1
    fi
    sleep 0.2
  done
}
__docs_stop() {  # SIGTERM every server's process group, wait (bounded), record the status
  local entry index pid alive status waited
  for entry in $__docs_started; do
    index=${entry%%:*}; pid=${entry#*:}; alive=yes
    kill -0 "$pid" 2>/dev/null || alive=no
    kill -TERM -- "-$pid" 2>/dev/null || true
    waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 300 ]; do
      sleep 0.1; waited=$((waited + 1))
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    status=0; wait "$pid" 2>/dev/null || status=$?
    printf '%%s %%s %%s\n' "$index" "$status" "$alive" >> %(dir)s/stopped
  done
}
trap '__docs_rc=$?; set +e; __docs_stop; exit $__docs_rc' EXIT
"""


def _script(
    run_dir: Path, doc_blocks: list[Block], skip: Mapping[int, str], env: Mapping[str, str]
) -> str:
    quoted_dir = shlex.quote(str(run_dir))
    parts = [_PRELUDE % {"timeout": SERVER_TIMEOUT, "dir": quoted_dir}]
    for block in doc_blocks:
        parts.append(f"# ---- {block.where}")
        if block.index in skip:
            parts.append(f"# not run: {skip[block.index]}")
            continue
        kind = block.server
        if kind is None:
            parts.append(block.text)
        else:
            log = shlex.quote(str(run_dir / f"server-{block.index}.log"))
            url = f"{env[READY_URL[kind]]}/ready" if kind in READY_URL else ""
            pattern = READY_LOG.get(kind, "")
            parts += [
                "set -m  # its own process group, stopped as a whole",
                f"(\n{block.text}) > {log} 2>&1 < /dev/null &",
                f'__docs_started="$__docs_started {block.index}:$!"',
                f"printf '%s\\n' $! >> {quoted_dir}/started",
                "set +m",
                f"__docs_wait {block.index} $! {shlex.quote(url)} {log} {shlex.quote(pattern)}",
            ]
        parts.append(f"printf '%s\\n' {block.index} >> {quoted_dir}/ran")
    return "\n".join(parts) + "\n"


def run_doc(
    doc: Path, tmp_path: Path, *, skip: Mapping[str, str] | None = None, timeout: float = 600
) -> DocRun:
    """Run the ```bash blocks of ``doc`` in a copy of the repository under ``tmp_path``.

    ``skip`` maps the exact text of a block that must not run to the reason. The result says
    which blocks ran (a block whose command failed, and every block after it, did not).
    """
    doc_blocks = blocks(doc)
    skipped = {b.index: (skip or {})[b.text] for b in doc_blocks if b.text in (skip or {})}
    repo = copy_repository(tmp_path / "repo")
    run_dir = tmp_path / "run"
    (tmp_path / "tmp").mkdir()
    run_dir.mkdir()
    api_port = serving_port = free_port()
    while serving_port == api_port:
        serving_port = free_port()
    env = clean_env(
        tmp_path / "home",
        TMPDIR=str(tmp_path / "tmp"),
        # A wide terminal: rich does not wrap the ids in its tables.
        COLUMNS="200",
        HOKUSAI_API_PORT=str(api_port),
        HOKUSAI_URL=f"http://127.0.0.1:{api_port}",
        HOKUSAI_SERVING_PORT=str(serving_port),
        HOKUSAI_SERVING_URL=f"http://127.0.0.1:{serving_port}",
    )
    script = _script(run_dir, doc_blocks, skipped, env)
    (run_dir / "script.sh").write_text(script)
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", str(run_dir / "script.sh")],
        cwd=repo,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    returncode: int | None
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        returncode = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        returncode = None
    finally:
        _kill_leftovers(run_dir)
    return DocRun(
        doc=doc_blocks[0].doc if doc_blocks else doc.name,
        blocks=doc_blocks,
        skipped=skipped,
        ran=_numbers(run_dir / "ran"),
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
        servers=_servers(run_dir, doc_blocks),
    )


def _numbers(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _servers(run_dir: Path, doc_blocks: list[Block]) -> list[ServerRun]:
    stopped: dict[int, tuple[int, bool]] = {}
    if (run_dir / "stopped").exists():
        for line in (run_dir / "stopped").read_text().splitlines():
            index, status, alive = line.split()
            stopped[int(index)] = (int(status), alive == "yes")
    found = []
    for block in doc_blocks:
        log = run_dir / f"server-{block.index}.log"
        if block.server is not None and log.exists():
            status, alive = stopped.get(block.index, (None, False))
            found.append(ServerRun(block, block.server, log.read_text(), status, alive))
    return found


def _kill_leftovers(run_dir: Path) -> None:
    """A script killed on timeout had no chance to stop its servers: kill what is left of
    their process groups (after a normal end they are gone already)."""
    for pid in _numbers(run_dir / "started"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
