"""The web console: server time of its pages on a registry of 1,000 versions.

A real registry (a family of a baseline and 20 chained improvements, and one contributor's four
improvements, registered through ``HokusaiModelRegistry``) grown to ``--versions`` by the bulk
inserts of ``index.py`` (MLflow's tables and the registry index alike), then the REST service
(``create_app``, its index keeper running) answers the console's pages to a signed-in read key.
The time measured is the server's: an ASGI wrapper around the app clocks each request from its
arrival to its last body byte (the in-process client's own cost is not counted). Timed, median
of ``--reps`` each: the models listing (first page, a later page, a search), the contributor
leaderboard (every improved version aggregated), the 21-version family's lineage page (SVG),
the contributor page. Goal: the models page in under 300 ms (issue #14). See bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _common as common
import index as index_bench
from _common import fmt_ms, goal, progress, summarize

NAME = "console"
GOAL_MODELS_S = 0.300


class ServerClock:
    """ASGI wrapper: the duration of every request, arrival to last body byte."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.samples: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def clocked(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.samples.append(time.perf_counter() - started)

        await self.app(scope, receive, clocked)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = common.Parser(__doc__)
    parser.sized("--versions", 300, 1_000, "registry size in versions")
    parser.sized("--reps", 10, 40, "timed requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the filler")
    args = parser.parse(argv)
    parser.require(args.versions >= 100, "--versions must be ≥ 100")
    parser.require(args.reps >= 3, "--reps must be ≥ 3")
    return args


def build(folder: Path, versions: int, seed: int) -> tuple[Any, dict[str, Any]]:
    """The registry: real registrations, then grown by bulk inserts."""
    url = f"sqlite:///{folder / 'hokusai.db'}"
    progress("registering 26 real versions through the library")
    registry = index_bench.open_registry(folder, url)
    real = index_bench.register_real(registry, 21)
    registry.index.engine.dispose()
    progress(f"growing the store to {versions:,} versions by bulk inserts")
    fill = index_bench.fill_direct(
        folder / "mlflow.db", {"sqlite": url}, versions, random.Random(seed)
    )
    return real, {"versions": versions, "fill": fill.as_json()}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from hokusai.config import Settings
    from hokusai.rest.app import create_app

    with common.temp_home(NAME, keep=args.keep_store) as folder:
        real, store = build(folder, args.versions, args.seed)
        settings = Settings(
            home=folder,
            tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
            database_url=f"sqlite:///{folder / 'hokusai.db'}",
            webhook_background=False,
            rate_limit_per_minute=1_000_000,
            rate_limit_burst=100_000,
        )
        app = create_app(settings, deliver_webhooks=False)
        key = app.state.components.keys.create(name="bench", scope="read")[1]
        index = app.state.components.registry.index
        clock = ServerClock(app)
        leaf = real.family[-1]
        contributor = index_bench.CONTRIBUTOR
        pages = {
            "models": "/ui/models",
            "models_page_10": "/ui/models?page=10",
            "models_search": f"/ui/models?q={contributor.lower()}",
            "leaderboard": "/ui/contributors",
            "lineage_21": f"/ui/lineage/{leaf}",
            "contributor": f"/ui/contributors/{contributor}",
        }
        results: dict[str, Any] = {}
        with TestClient(clock) as client:
            form = client.get("/ui/sign-in").text
            csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            signed = client.post("/ui/sign-in", data={"csrf": csrf, "api_key": key})
            assert signed.status_code == 200, signed.text[:300]
            index_answers = index is not None and index.answers()  # the O(answer) reads
            listing = client.get("/ui/models").text
            shown = listing.count("<tr>") - 1
            assert f"{args.versions:,}".replace(",", "") in listing.replace(",", "")
            for name, path in pages.items():
                progress(f"timing {path}")
                for _ in range(args.warmup):
                    assert client.get(path).status_code == 200, path
                clock.samples.clear()
                sizes = []
                for _ in range(args.reps):
                    answer = client.get(path)
                    assert answer.status_code == 200, path
                    sizes.append(len(answer.content))
                results[name] = {
                    "path": path,
                    "stats_s": summarize(list(clock.samples)),
                    "bytes": statistics.median(sizes),
                }
        median = results["models"]["stats_s"]["median"]
        goals = {
            "models": goal(
                f"models page at {args.versions:,} versions: median server time < 300 ms",
                median < GOAL_MODELS_S and index_answers,
                median_s=median,
                goal_s=GOAL_MODELS_S,
            )
        }
        return {
            "parameters": {"versions": args.versions, "reps": args.reps, "page_size": 50},
            "environment": common.environment() | {"load_average_at_start": args.load_at_start},
            "store": store,
            "rows_on_the_models_page": shown,
            "index_answers": index_answers,
            "pages": results,
            "goals": goals,
            "goals_met": all(g["met"] for g in goals.values()),
        }


def report(payload: dict[str, Any], args: argparse.Namespace) -> None:
    versions = payload["parameters"]["versions"]
    print(f"console pages, server time, registry of {versions:,} versions:")
    rows = [
        [name, part["path"], fmt_ms(part["stats_s"]["median"]), fmt_ms(part["stats_s"]["p90"])]
        for name, part in payload["pages"].items()
    ]
    common.print_table(["page", "path", "median", "p90"], rows)
    common.print_goals(payload["goals"])


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_main(NAME, parse_args(argv), measure, report)


if __name__ == "__main__":
    sys.exit(main())
