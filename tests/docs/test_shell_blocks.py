"""Every ```bash block of README.md and docs/*.md runs, as written, top to bottom, against real
servers (see ``runner.py``), so a document cannot drift from what works. Each document's run
must print its key lines; a block the run did not reach fails the test, and the only blocks
not run are the ones listed in ``EXEMPT``, with the reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.runner import ROOT, Block, blocks, documents, logical_lines, run_doc, server_kind

CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
SECOND_CONTRIBUTOR = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"

#: (document, exact block text) → why it cannot run in a test. Keep this list minimal.
EXEMPT: dict[tuple[str, str], str] = {
    (
        "README.md",
        "make test   # creates .venv if needed, installs, runs the whole test suite\n",
    ): "it is the test suite itself, this test included",
}


def registered(kind: str, model_id: str) -> re.Pattern[str]:
    """How ``hokusai quickstart`` reports a registration: kind, model id, uuid (on one line or
    wrapped)."""
    return re.compile(rf"{kind}\s+{re.escape(model_id)}\s+uuid m-")


#: What each document's run must print (on stdout), in any order: a line containing the string,
#: or matching the compiled pattern. (A replay "since today, UTC" run across midnight would
#: queue nothing: a one-in-thousands flake that keeps the docs' example honest.)
EXPECTED: dict[str, list[str | re.Pattern[str]]] = {
    "README.md": [
        # the library tour, then the version by name/version and by uuid
        registered("baseline", "hokusai_quickstart_cancer_baseline/1"),
        '"model_id": "hokusai_quickstart_cancer_improved/1"',
        "scanned 2: would tag 0, already tagged 2, not Hokusai 0, failed 0",
        "status    up to date",
        # hokusai doctor on the embedded store: an artifact written and read back
        re.compile(r"^ok +artifacts +file://\S+: wrote and read back 64 bytes$", re.M),
        # the tour through the API `make run` started, and a lookup there
        registered("baseline", "hokusai_quickstart_cancer_baseline/2"),
        registered("improved", "hokusai_quickstart_cancer_improved/2"),
        re.compile(r"^hokusai_quickstart_cancer_improved/1$", re.M),
        # an endpoint added late gets the four registrations replayed
        "queued 4 delivery(ies)",
        "Webhook deliveries",
        # train, then serve the champion
        "hokusai_fraud_baseline/1",
        "models:/hokusai_fraud_baseline@champion",
        re.compile(r'^\{"predictions":\[[^,\]]+\]\}$', re.M),
    ],
    "docs/benchmarks.md": [
        # the CSV, then the same rows shuffled as Parquet: one benchmark, one content hash
        re.compile(r'^\s*"num_rows": 569,$', re.M),
        re.compile(r'^\s*"content_hash": "0x[0-9a-f]{64}",$', re.M),
        re.compile(r"^│ cancer-v1 +│ roc_auc +│ higher +│ 569 ", re.M),
    ],
    "docs/verification.md": [
        # --check on a threshold the gain does not reach, then the default threshold
        "decision    NOT ACCEPTED (threshold 5000 bps): below_threshold",
        "check failed: exit 1",
        re.compile(r"^accuracy +baseline 0\.\d{4} +candidate 0\.\d{4} +delta \+0\.\d{4} ", re.M),
        re.compile(r"^roc_auc .* guardrail ±0\.01: passed$", re.M),
        "claim       +0.0500 accuracy: reproduced",
        "decision    ACCEPTED (threshold 100 bps)",
        re.compile(r'^\s*"reused": true,$', re.M),
        re.compile(r'^\s*"accepted": true,$', re.M),
        # Python: the planned id is the recorded one; the gains and the lineage's measured sum
        re.compile(r"^plan (ver_[0-9a-f]{24}) recorded \1 True$", re.M),
        "verifications of the version: 2",
        re.compile(r"^gain hokusai_cancer_improved/1 [1-9]\d* bps reproduced$", re.M),
        re.compile(r"^verified bps along the lineage: \[0, [1-9]\d*\]$", re.M),
    ],
    "docs/library.md": [
        "Registered hokusai_classification_baseline/1 (model_type=classification)",
        "metadata round-trips unchanged: True",
        registered("improved", "hokusai_quickstart_cancer_improved/1"),
        '"model_id": "hokusai_quickstart_cancer_improved/1"',
        "scanned 2: would tag 0, already tagged 2, not Hokusai 0, failed 0",
    ],
    "docs/migration-guide.md": [
        "scanned 0: would tag 0, already tagged 0, not Hokusai 0, failed 0",
        "scanned 0: tagged 0, already tagged 0, not Hokusai 0, failed 0",
    ],
    "docs/protocol-mlflow.md": [
        "hokusai_fraud_baseline/1",
        "/ping 200",
        "/health 200",
        re.compile(r"^x-hokusai-version: \d+\.\d+", re.M | re.I),
        "/version is the installed MLflow's version",
        # the four JSON formats, params, CSV and Parquet: two rows each, the same answer
        re.compile(r'(?:^\{"predictions":\[[^,\]]+,[^,\]]+\]\}$(?:.*\n)*?){7}', re.M),
        "the four JSON formats answer the same",
        "params ignored by a model without a params schema",
        "CSV answers as JSON does",
        "Parquet answers as JSON does",
        "text/plain → 415",
        "application/json; charset=latin-1 → 415",
        "application/json; format=pandas-split → 415",
        "no content-type → 200",
        # MLflow's error fields and Hokusai's, with Hokusai's status codes
        re.compile(r'"error_code":"BAD_REQUEST".*"code":"invalid_input".*amount.* 422$', re.M),
        re.compile(r'"error_code":"BAD_REQUEST".*"code":"unsupported_media_type".* 415$', re.M),
        # MLflow's own client, and predictions equal to pyfunc's
        re.compile(r"^server on MLflow \d+\.\d+", re.M),
        re.compile(r"^ScoringServerClient predictions \[\d, \d\] equal pyfunc's$", re.M),
        re.compile(
            r'^hokusai_serving_requests_total\{protocol="mlflow",.*status="200"\} [1-9]', re.M
        ),
    ],
    "docs/protocol-v2.md": [
        "hokusai_fraud_baseline/1",
        re.compile(r'^\{"live": ?true\}$', re.M),
        re.compile(r'^\{"ready": ?true\}$', re.M),
        re.compile(r'"extensions": ?\["binary_tensor_data"\]'),
        re.compile(r'^\{"name": ?"hokusai_fraud_baseline", ?"ready": ?true\}$', re.M),
        '"platform": "mlflow-xgboost"',
        '"datatype": "FP64"',
        # per-column tensors and one 2-D tensor answer alike; then tritonclient's binary tensors
        re.compile(r"^both layouts: predict INT64 \[2\] \[\d, \d\]$", re.M),
        re.compile(r"^tritonclient predictions \[\d, \d\] equal pyfunc's$", re.M),
        "binary input answers as JSON input does",
        # errors: a missing column, data short of its shape, an unknown version, an unknown name
        re.compile(r'^\{"error":.*amount.*"code":.* 422$', re.M),
        re.compile(r'^\{"error":.*"code":.* 400$', re.M),
        re.compile(r'^\{"error":.*"code":.* 404$(?:.*\n)*?^\{"error":.*"code":.* 404$', re.M),
        re.compile(
            r'^hokusai_serving_requests_total\{protocol="v2",route="/v2/models/\{name\}/infer",'
            r'status="200"\} [1-9]',
            re.M,
        ),
    ],
    "docs/rest-api.md": [
        # the health document: every service by the deployment's name, healthy
        "{'mlflow': 'healthy', 'database': 'healthy', 'message_queue': 'healthy'}",
        # 1. keys: 401 without one, 403 with a write key on an admin route
        "no key: 401",
        "write key on /webhooks: 403",
        # 3-5. registration, lookup, improvements, the 422 of a bad contributor
        "baseline hokusai_iris_baseline/1 uuid m-",
        "unknown uuid: 404",
        f"improved: hokusai_iris_improved/1 by {CONTRIBUTOR}, hokusai_iris_improved/2 on top",
        '"code":"invalid_contributor"',
        # 6. lineage: the chain, each credited, improvements adding up
        "0 hokusai_iris_baseline/1 None {'total_improvements': 0",
        f"1 hokusai_iris_improved/1 {CONTRIBUTOR} {{'accuracy': 0.04, 'total_improvements': 1",
        f"2 hokusai_iris_improved/2 {SECOND_CONTRIBUTOR} {{'accuracy': 0.06",
        # 7. promote then roll back
        '"alias":"champion","version":"2","previous_version":null',
        '"alias":"champion","version":"1","previous_version":"2"',
        "deleted alias: 204",
        # 8. a benchmark, a verification asked for (202), polled to success; the same inputs
        # again (200, same id), bad inputs refused with their codes; the verified gains
        "benchmark iris-v1 accuracy 150 rows",
        re.compile(r"^verification: 202 /api/v1/verifications/ver_[0-9a-f]{24}$", re.M),
        re.compile(r"^ver_[0-9a-f]{24} succeeded$", re.M),
        re.compile(r"^accuracy baseline \d\.\d{4} candidate \d\.\d{4} [+-]\d+ bps ", re.M),
        re.compile(r"^same inputs: 200 ver_[0-9a-f]{24} succeeded$", re.M),
        re.compile(r'"code":"not_an_improvement".* 422$', re.M),
        re.compile(r'"code":"benchmark_not_found".* 404$', re.M),
        re.compile(r"^verified hokusai_iris_improved/1 ver_[0-9a-f]{24} -?\d+ bps$", re.M),
        # 9. webhooks: a ping that could not connect, the promotion's delivery, redelivery
        '"status_code":null',
        "model_promoted hokusai_iris_improved/2 pending 0 None",
        "ping None dead 1 ",
        '{"requeued":1}',
        "deleted endpoint: 204",
        '{"data":[],"count":0}',
        'hokusai_registrations_total{kind="baseline"} 1.0',
        'hokusai_registrations_total{kind="improved"} 2.0',
        "walkthrough complete",
    ],
    "docs/serving.md": [
        "hokusai_fraud_baseline/1",
        # the four scoring formats of /invocations (two rows, then one each), then /predict:
        # five answers with predictions, the first with two
        re.compile(r'^\{"predictions":\[[^,\]]+,[^,\]]+\]\}$', re.M),
        re.compile(r'(?:^\{"predictions":\[.*\n(?:.*\n)*?){5}', re.M),
        re.compile(r"^x-model-source: MODEL_VARIANT\r?$", re.M | re.I),
        re.compile(r"^x-model-name: hokusai_fraud_baseline\r?$", re.M | re.I),
        # bad input: a string where a number goes, then malformed JSON
        re.compile(r'"code":"invalid_input".*age.* 422$', re.M),
        re.compile(r'"code":"invalid_json".* 400$', re.M),
        # the runbook: v1 serves, v2 is promoted and serves, the REST PUT rolls back to v1
        "hokusai_fraud_baseline/2",
        re.compile(r"1 → (?:version )?2"),
        '"alias":"champion","version":"1","previous_version":"2"',
        re.compile(
            r"^x-model-version: 1$(?:.*\n)*?^x-model-version: 2$(?:.*\n)*?^x-model-version: 1$",
            re.M | re.I,
        ),
        "serving hokusai_fraud_baseline 1 swaps 2",
    ],
    "docs/webhooks.md": [
        # the verification events' schemas, fetched from the package
        "improvement.verified https://hokusai.ai/schemas/webhooks/improvement_verified.v1.json",
        "deltaone.accepted https://hokusai.ai/schemas/webhooks/deltaone_accepted.v1.json 22 ",
        "events: deltaone.accepted",
        "ping → ConnectError: marketplace.example does not resolve",
        "ping failed: exit 1",
        registered("improved", "hokusai_quickstart_cancer_improved/1"),
        re.compile(r"│ ping +│ ep_\w+ +│ dead +│ 1 "),
        re.compile(r"│ hokusai_quickstart_cancer_baseline/1 +│ ep_\w+ +│ \w+ +│ [12] "),
        "Attempts of dlv_",
        "re-queued 1 delivery(ies)",
        re.compile(r"^pending=\d+ delivering=\d+ delivered=0 failed=0 ", re.M),
        "queued 2 delivery(ies)",
        "queued 0 delivery(ies)",
        "removed endpoint ep_",
    ],
}


def _doc_names() -> list[str]:
    return [path.relative_to(ROOT).as_posix() for path in documents() if blocks(path)]


def _exempt(doc: str) -> dict[str, str]:
    return {text: reason for (name, text), reason in EXEMPT.items() if name == doc}


def _missing(expected: list[str | re.Pattern[str]], out: str) -> list[str]:
    return [
        str(want)
        for want in expected
        if (want.search(out) is None if isinstance(want, re.Pattern) else want not in out)
    ]


def _all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks(path)]


# ---- fast: the conventions that make the runs possible ------------------------------------


def test_every_document_with_shell_blocks_has_its_key_lines():
    assert "README.md" in _doc_names()
    assert sorted(EXPECTED) == sorted(_doc_names())


def test_every_exemption_names_a_block_that_exists():
    """A stale exemption would hide nothing today and let a changed block go unrun tomorrow."""
    texts = {(block.doc, block.text) for block in _all_blocks()}
    assert set(EXEMPT) <= texts, set(EXEMPT) - texts


def test_a_server_command_stands_alone_in_its_block():
    """The runner starts a block in the background only when it is just the server command;
    a server command among other commands would hang the run."""
    mixed = [
        block.where
        for block in _all_blocks()
        if block.server is None and any(server_kind(line) for line in logical_lines(block.text))
    ]
    assert not mixed, mixed


def test_shell_is_written_in_bash_blocks():
    """``sh``/``shell`` blocks, or an indented ``bash`` fence (in a list item), would silently
    escape the runner: commands go in ``bash`` blocks at the start of a line, transcripts (``$``
    prompts, output) in ``console``, synopses in ``text``."""
    fenced = [
        f"{path.name}:{text.count(chr(10), 0, m.start()) + 1}"
        for path in documents()
        for text in [path.read_text(encoding="utf-8")]
        for m in re.finditer(r"^(?:[ \t]*```(?:sh|shell|zsh)|[ \t]+```bash)\s*$", text, flags=re.M)
    ]
    assert not fenced, fenced


def test_the_runner_stops_at_the_first_failing_block(tmp_path: Path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        '```bash\nexport GREETING=hello\n```\n\n```bash\necho "$GREETING from $HOKUSAI_HOME"\n'
        "false\n```\n\n```bash\necho never\n```\n"
    )
    run = run_doc(doc, tmp_path)
    assert run.returncode == 1
    assert run.ran == [0]
    assert [b.index for b in run.not_run] == [1, 2]
    assert run.stdout == f"hello from {tmp_path / 'home'}\n"


# ---- slow: every document, run ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("doc", _doc_names())
def test_the_document_runs_as_written(doc: str, tmp_path: Path):
    run = run_doc(ROOT / doc, tmp_path, skip=_exempt(doc), timeout=600)
    assert run.returncode == 0, run.report()
    assert not run.not_run, run.report()
    missing = _missing(EXPECTED[doc], run.stdout)
    assert not missing, f"missing {missing} in:\n{run.report()}"
    for server in run.servers:
        assert server.alive_at_stop, run.report()
        # Stopped by SIGTERM: a clean exit, or the signal re-raised after a graceful shutdown.
        assert server.status in (0, 143), run.report()
        if server.kind != "worker":
            assert "Application shutdown complete" in server.log, run.report()
