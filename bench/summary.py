"""One page over every benchmark: ``bench/results/summary.md``, made from the results' JSON files.

Each script's headline figures, ours embedded and (where measured) on the deployed stack beside
the reference each compares with, the goal and whether it was met — all read from
``<results dir>/*.json``, never typed in, so the page cannot drift from the results. Every
script's run rewrites it (``_common.run_main``); ``make bench`` runs this at the end too, and it
runs alone:

    python bench/summary.py [--results-dir DIR]

A results file whose shape this does not know shows as a row saying so (the other rows are
still written); a missing file is listed as not run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, fmt_ms

SUMMARY_NAME = "summary.md"


@dataclass(frozen=True)
class Row:
    measure: str
    embedded: str = "—"
    stack: str = "—"
    reference: str = "—"
    goal: str = "—"
    met: bool | None = None


Doc = Mapping[str, Any]


# ---- formatting ----------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    return "—" if seconds is None else fmt_ms(seconds)


def rate(per_s: float | None) -> str:
    return "—" if per_s is None else f"{per_s:,.0f}/s" if per_s >= 10 else f"{per_s:,.2f}/s"


def times(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}×" if value < 100 else f"{value:,.0f}×"


def met_of(doc: Doc, *goals: str) -> bool:
    return all(doc["goals"][name]["met"] for name in goals)


# ---- each benchmark's headline figures -----------------------------------------------------


def registration_rows(doc: Doc) -> list[Row]:
    rows = []
    for key, label in (
        ("explicit_pip_requirements", "register_baseline median, both with explicit pins"),
        ("defaults", "register_baseline median, defaults (MLflow infers requirements)"),
    ):
        comparison = doc["comparisons"][key]
        ours = comparison["ours"]["stats_s"]["median"]
        bare = comparison["reference"]["stats_s"]["median"]
        ratio_text = times(comparison["ratios"]["median"])
        goal = f"≤ {comparison['goal']['max_ratio']:g}× bare MLflow"
        reference = f"bare MLflow {ms(bare)} (ours {ratio_text})"
        rows.append(Row(label, ms(ours), "—", reference, goal, comparison["goal_met"]))
    return rows


def lookup_rows(doc: Doc) -> list[Row]:
    goal = doc["goals"]["p50_at_largest"]
    size = str(goal["evaluated_at_versions"])
    cell = doc["sizes"][size][goal["measurement"]]
    ours, tag_search = cell["ours"]["stats_s"]["p50"], cell["reference"]["stats_s"]["p50"]
    growth = doc["goals"]["growth"]["value"]
    return [
        Row(
            f"get_model_by_uuid p50 at {int(size):,} versions (growth from 1,000: {times(growth)})",
            ms(ours),
            reference=f"search_model_versions on the tag {ms(tag_search)}",
            goal=f"≤ {ms(goal['max_s'])}, growth ≤ {doc['goals']['growth']['max']:g}×",
            met=met_of(doc, "p50_at_largest", "growth"),
        )
    ]


def webhooks_rows(doc: Doc) -> list[Row]:
    goals, mlflow = doc["goals"], doc["mlflow"]
    mlflow_p50 = (mlflow.get("latency_from_write_call_s") or {}).get("p50")
    rows = [
        Row(
            "outbox deliveries/s, one dispatcher",
            rate(goals["throughput"]["value_per_s"]),
            goal=f"≥ {goals['throughput']['min_per_s']:,.0f}/s",
            met=goals["throughput"]["met"],
        )
    ]
    for mode, label in (
        ("worker_process", "write → receipt p50, worker process"),
        ("background_sender", "write → receipt p50, background sender"),
    ):
        entry = goals[f"latency_{mode}"]
        reference = f"mlflow server's webhooks {ms(mlflow_p50)}" if mlflow["ran"] else "—"
        goal = f"≤ {ms(entry['max_s'])}"
        rows.append(Row(label, ms(entry["value_s"]), "—", reference, goal, entry["met"]))
    announce = goals["announce"]
    rows.append(
        Row(
            "announce_registration (outbox write) median",
            ms(announce["value_s"]),
            goal=f"≤ {ms(announce['max_s'])}",
            met=announce["met"],
        )
    )
    return rows


def serving_rows(doc: Doc) -> list[Row]:
    single = doc["xgboost"]["load"]["single"]
    ours, mlflow = single["ours"], single["mlflow"]
    goals = doc["goals"]
    cold = goals["cold_start_after_import"]
    return [
        Row(
            "prediction requests/s (XGBoost, 1 row, 8 connections)",
            rate(ours["requests_per_s"]),
            reference=f"mlflow models serve {rate(mlflow['requests_per_s'])} "
            f"(ours {times(single['requests_per_s_ratio'])})",
            goal=f"≥ {goals['single_row_throughput']['target']:g}×",
            met=goals["single_row_throughput"]["met"],
        ),
        Row(
            "prediction p99 (same load)",
            ms(ours["p99_s"]),
            reference=f"MLflow's p50 {ms(mlflow['p50_s'])}",
            goal="≤ MLflow's p50",
            met=goals["single_row_p99_vs_mlflow_p50"]["met"],
        ),
        Row(
            "prediction server start → ready, minus `import mlflow`",
            ms(cold["value_s"]),
            goal=f"≤ {ms(cold['target_s'])}",
            met=cold["met"],
        ),
    ]


def protocols_rows(doc: Doc) -> list[Row]:
    load, goals = doc["load"], doc["goals"]
    ours, mlserver = load["ours_v2"], load["mlserver_v2"]
    ratios = doc["ratios"]
    return [
        Row(
            "V2 inference requests/s (XGBoost, 1 row, 8 connections)",
            rate(ours["requests_per_s"]),
            reference=f"MLServer {rate(mlserver['requests_per_s'])} "
            f"(ours {times(ratios['requests_per_s_ours_v2_to_mlserver'])})",
            goal=f"≥ {goals['v2_throughput_vs_mlserver']['target']:g}×",
            met=goals["v2_throughput_vs_mlserver"]["met"],
        ),
        Row(
            "V2 inference p99 (same load)",
            ms(ours["p99_s"]),
            reference=f"MLServer's p50 {ms(mlserver['p50_s'])}",
            goal="< MLServer's p50",
            met=goals["v2_p99_below_mlserver_p50"]["met"],
        ),
    ]


def api_rows(doc: Doc) -> list[Row]:
    results, goals = doc["results"], doc["goals"]
    one, eight = results["1"], results["8"]
    return [
        Row(
            "REST GET by-uuid p50, 1 connection (10,000 versions)",
            ms(one["ours"]["latency_stats_s"]["p50"]),
            reference=f"mlflow server tag search {ms(one['mlflow']['latency_stats_s']['p50'])}",
            goal=f"≤ {ms(goals['p50_latency']['max_s'])}",
            met=goals["p50_latency"]["met"],
        ),
        Row(
            "REST GET by-uuid requests/s, 8 connections",
            rate(eight["ours"]["requests_per_s"]),
            reference=f"mlflow server {rate(eight['mlflow']['requests_per_s'])} "
            f"(ours {times(doc['ratios']['8']['requests_per_s_ours_to_mlflow'])})",
            goal=f"≥ {goals['throughput']['min_per_s']:,.0f}/s and "
            f"≥ {goals['throughput_ratio']['min']:g}×",
            met=met_of(doc, "throughput", "throughput_ratio"),
        ),
        Row(
            "REST GET by-uuid p99, 8 connections",
            ms(eight["ours"]["latency_stats_s"]["p99"]),
            reference=f"mlflow server {ms(eight['mlflow']['latency_stats_s']['p99'])}",
            goal=f"≤ {ms(goals['p99_under_load']['max_s'])}",
            met=goals["p99_under_load"]["met"],
        ),
    ]


def index_rows(doc: Doc) -> list[Row]:
    largest = str(max(int(size) for size in doc["reads"]["uuid"]["sizes"]))
    labels = {
        "lineage": "lineage of a 21-version family p50",
        "contributor": "contributor listing p50",
        "uuid": "uuid lookup p50",
    }
    rows = []
    for read, label in labels.items():
        cell = doc["reads"][read]["sizes"][largest]
        postgres = cell.get("index_postgresql_stats_s")
        rows.append(
            Row(
                f"index: {label} at {int(largest):,} versions",
                ms(cell["index_sqlite_stats_s"]["p50"]),
                f"{ms(postgres['p50'])} ¹" if postgres else "—",
                f"MLflow path {ms(cell['mlflow_path_stats_s']['p50'])}",
                f"≤ {ms(doc['goals'][f'{read}_p50_sqlite']['max_s'])}",
                all(g["met"] for k, g in doc["goals"].items() if k.startswith(f"{read}_")),
            )
        )
    sqlite, postgres = (
        doc["goals"]["registration_sqlite"],
        doc["goals"].get("registration_postgresql"),
    )
    rows.append(
        Row(
            f"index: a registration's row + event p50 at {int(largest):,} versions",
            ms(sqlite["value_s"]),
            f"{ms(postgres['value_s'])} ¹" if postgres else "—",
            goal=f"≤ {ms(sqlite['max_s'])}",
            met=sqlite["met"] and (postgres is None or postgres["met"]),
        )
    )
    return rows


def cli_rows(doc: Doc) -> list[Row]:
    commands, goals = doc["commands"], doc["goals"]
    reads = ("models_get", "models_lineage", "contributors_models")
    medians = " / ".join(ms(commands[key]["stats_s"]["median"]) for key in reads)
    return [
        Row(
            "`hokusai --help` median",
            ms(commands["help"]["stats_s"]["median"]),
            goal=f"≤ {ms(commands['help']['goal_s'])}",
            met=goals["help"]["met"],
        ),
        Row(
            "`hokusai models get` / `models lineage` / `contributors models` medians",
            medians,
            reference=f"bare MLflow read {ms(doc['floors']['mlflow_read']['stats_s']['median'])}",
            goal=f"≤ {ms(commands['models_get']['goal_s'])} each",
            met=met_of(doc, *reads),
        ),
    ]


def console_rows(doc: Doc) -> list[Row]:
    pages, versions = doc["pages"], doc["parameters"]["versions"]
    return [
        Row(
            f"console: models page at {versions:,} versions, median server time",
            ms(pages["models"]["stats_s"]["median"]),
            goal="< 300 ms",
            met=met_of(doc, "models"),
        ),
        Row(
            "console: leaderboard / 21-version lineage (SVG) / contributor page medians",
            " / ".join(
                ms(pages[key]["stats_s"]["median"])
                for key in ("leaderboard", "lineage_21", "contributor")
            ),
        ),
    ]


def stack_rows(doc: Doc) -> list[Row]:
    rows = []
    checks = doc["goals"]

    def pair(label: str, part: Doc, *, met: bool | None = None, goal: str = "—") -> Row:
        embedded = ms(part["embedded"]["stats_s"]["median"])
        stack = (
            f"{ms(part['stack']['stats_s']['median'])} ({times(part['median_stack_to_embedded'])})"
        )
        return Row(label, embedded, stack, goal=goal, met=met)

    for kind, part in doc["registration"].items():
        rows.append(pair(f"{kind} median (RandomForest)", part))
    lineage_length = doc["read_checks"]["stack"]["lineage_length"]
    labels = {
        "get_model_by_uuid": "get_model_by_uuid median",
        "get_model_lineage": f"get_model_lineage median ({lineage_length} versions)",
    }
    read_check = checks["reads_answer"]["met"]
    for read, label in labels.items():
        rows.append(pair(label, doc["reads"][read], met=read_check, goal="right answers"))
    rows.append(
        pair("the index's sync with MLflow (at most every 5 s) median", doc["reads"]["index_sync"])
    )
    delivery = doc["registration_to_delivery"]
    p50 = {
        side: (delivery[side].get("latency_from_registration_return_s") or {}).get("p50")
        for side in ("embedded", "stack")
    }
    stack_p50 = ms(p50["stack"])
    if p50["embedded"] and p50["stack"] is not None:
        stack_p50 += f" ({times(p50['stack'] / p50['embedded'])})"
    rows.append(
        Row(
            "registration → webhook delivery p50 (worker process)",
            ms(p50["embedded"]),
            stack_p50,
            goal="each delivered once, verified",
            met=checks["every_registration_delivered"]["met"],
        )
    )
    bursts = doc["webhook_bursts"]
    events = doc["parameters"]["burst_events"]
    rows.append(
        Row(
            f"burst of {events} events: deliveries/s, one dispatcher",
            rate(bursts["embedded"]["deliveries_per_s"]),
            f"{rate(bursts['stack']['deliveries_per_s'])} "
            f"({times(doc['burst_deliveries_per_s_stack_to_embedded'])})",
            goal="each delivered once, verified",
            met=checks["bursts_delivered"]["met"],
        )
    )
    for count, part in doc["registering_processes"].items():
        processes = f"{count} process" + ("es" if count != "1" else "")
        rows.append(
            Row(
                f"registrations/s through the tracking server, {processes} at once",
                stack=f"{rate(part['registrations_per_s'])} (n = {part['timed_registrations']})",
                goal="distinct versions, one event each",
                met=part["ok"],
            )
        )
    return rows


def verification_rows(doc: Doc) -> list[Row]:
    params, goals = doc["params"], doc["goals"]
    ours, reference = doc["ours"], doc["reference"]
    return [
        Row(
            f"verify_improvement, {params['rows']:,} rows × {params['features']} features, "
            "two XGBoost models, accuracy + ROC AUC with intervals, median",
            f"{ours['seconds']['median']:.1f} s",
            reference=f"mlflow.models.evaluate on both {reference['seconds']['median']:.1f} s "
            f"(ours {times(doc['speedup'])} faster)",
            goal=f"≤ {goals['seconds']['max_s']:g} s and ≥ {goals['speedup']['min']:g}× faster",
            met=met_of(doc, "seconds", "speedup"),
        ),
        Row(
            "verification peak memory (its own process, median)",
            f"{ours['peak_rss_mb']['median']:,.0f} MB",
            reference=f"mlflow.models.evaluate {reference['peak_rss_mb']['median']:,.0f} MB",
            goal="scores equal MLflow's",
            met=goals["scores_agree"]["met"],
        ),
    ]


# Display order: what a registry does first (register, look up), then delivery, serving, the
# REST API, the index at scale, the CLI, the web console, and the deployed stack.
SOURCES: dict[str, tuple[str, Callable[[Doc], list[Row]]]] = {
    "registration": ("registration", registration_rows),
    "lookup": ("uuid lookup", lookup_rows),
    "webhooks": ("webhooks", webhooks_rows),
    "serving": ("serving", serving_rows),
    "protocols": ("V2 protocol", protocols_rows),
    "api": ("REST API", api_rows),
    "index": ("registry index", index_rows),
    "cli": ("CLI", cli_rows),
    "console": ("web console", console_rows),
    "stack": ("deployed stack", stack_rows),
    "verification": ("verification", verification_rows),
}


# ---- the page ------------------------------------------------------------------------------


def _first(doc: Doc, key: str) -> Any:
    """``key`` at the top level, in ``environment`` or in ``parameters`` (scripts differ)."""
    for where in (doc, doc.get("environment") or {}, doc.get("parameters") or {}):
        if where.get(key) is not None:
            return where[key]
    return None


def _loads(value: Any) -> str:
    return "/".join(f"{x:g}" for x in value) if isinstance(value, list) else "—"


def source_line(name: str, doc: Doc) -> str:
    environment = doc.get("environment") or {}
    commit = (environment.get("git_commit") or "")[:9] or "—"
    dirty = " (src/ modified)" if environment.get("git_uncommitted_changes_in_src") else ""
    goals = doc.get("goals") or {}
    met = sum(1 for g in goals.values() if g.get("met"))
    verdict = (
        f"goals met {met}/{len(goals)}" if goals else f"goals met: {_yes(doc.get('goals_met'))}"
    )
    quick = " — **--quick run: indicative only**" if _first(doc, "quick") else ""
    duration = doc.get("duration_s")
    took = "—"
    if isinstance(duration, (int, float)):
        took = f"{duration / 60:.0f} min" if duration >= 120 else f"{duration:.0f} s"
    return (
        f"- `{name}.json`: {doc.get('generated_at', '—')}, commit {commit}{dirty}, {took}, "
        f"load {_loads(_first(doc, 'load_average_at_start'))} → "
        f"{_loads(environment.get('load_average_at_end'))}, {verdict}{quick}"
    )


def _yes(flag: Any) -> str:
    return "—" if flag is None else "yes" if flag else "no"


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(results_dir: Path) -> str:
    """The page for the JSON files in ``results_dir``."""
    lines = [
        "# Benchmarks at a glance",
        "",
        "Generated by `bench/summary.py` from `bench/results/*.json` — do not edit; rerun a",
        "benchmark (or `python bench/summary.py`) instead. What each figure means, and how it is",
        "measured: bench/README.md. Numbers come from a shared 2-core machine, each script run",
        "alone, at the load averages listed under the table.",
        "",
        "*embedded*: the library on SQLite with local artifacts. *stack*: the deployed shape on",
        "loopback — `mlflow server` on PostgreSQL (one database for MLflow and Hokusai), artifacts",
        "proxied to an S3 server. *reference*: what MLflow (or MLServer) offers for the same job.",
        "",
        "| benchmark | measure | embedded | stack | reference | goal | met |",
        "| --- | --- | ---: | ---: | --- | --- | :---: |",
    ]
    sources: list[str] = []
    missing: list[str] = []
    for name, (title, extract) in SOURCES.items():
        path = results_dir / f"{name}.json"
        if not path.exists():
            missing.append(name)
            continue
        doc = json.loads(path.read_text(encoding="utf-8"))
        try:
            rows = extract(doc)
        except (KeyError, TypeError, ValueError) as exc:
            rows = [
                Row(f"(results in a shape this page does not know: {type(exc).__name__} {exc})")
            ]
        for row in rows:
            met = {True: "yes", False: "**no**", None: "—"}[row.met]
            cells = [title, row.measure, row.embedded, row.stack, row.reference, row.goal, met]
            lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
        sources.append(source_line(name, doc))
    lines += [
        "",
        "¹ index.py's PostgreSQL figures: the registry index (in Hokusai's project database) on",
        "PostgreSQL, MLflow's store embedded; the reads never touch MLflow once the index answers.",
        "The deployed stack's figures in parentheses are stack / embedded (medians, same run).",
        "",
        "Results (generated at, commit, duration, load averages 1/5/15 min at start → end):",
        "",
        *sources,
    ]
    if missing:
        lines += ["", "Not run yet: " + ", ".join(f"`bench/{name}.py`" for name in missing) + "."]
    return "\n".join(lines) + "\n"


def write_summary(results_dir: Path = RESULTS_DIR) -> Path:
    """Write ``<results_dir>/summary.md`` from the JSON files there; returns its path."""
    target = results_dir / SUMMARY_NAME
    target.write_text(render(results_dir), encoding="utf-8")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = "the folder of the results, where summary.md is written (default bench/results)"
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=where)
    args = parser.parse_args(argv)
    print(f"summary: {write_summary(args.results_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
