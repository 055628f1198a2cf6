"""Four processes registering through one tracking server at the same instant, with
Hokusai's tables in MLflow's database: distinct versions, one event each."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tests.stack.registrars import registering_at_once
from tests.stack.stack import TrackingServer

PROCESSES = 4


def test_processes_registering_at_once_get_distinct_versions_and_one_event_each(
    tmp_path: Path, tracking: TrackingServer, logistic, model_type
):
    settings = {
        "home": str(tmp_path / "home"),
        "tracking_uri": tracking.url,
        "database_url": tracking.database_url,
        "webhook_background": False,
    }
    with registering_at_once(PROCESSES, settings, logistic, model_type) as results:
        errors = [message for state, message, _ in results if state != "ok"]
        assert errors == []
    name = f"hokusai_{model_type}_baseline"
    model_ids = sorted(model_id for _, model_id, _ in results)
    assert model_ids == [f"{name}/{version}" for version in range(1, PROCESSES + 1)]
    assert len({uuid for _, _, uuid in results}) == PROCESSES

    engine = sa.create_engine(tracking.database_url)
    try:
        with engine.connect() as conn:
            events = conn.execute(
                sa.text(
                    "SELECT model_version FROM hokusai_webhook_events "
                    "WHERE model_name = :name AND event_type = 'model_registered'"
                ),
                {"name": name},
            ).scalars()
            assert sorted(events, key=int) == [str(v) for v in range(1, PROCESSES + 1)]
    finally:
        engine.dispose()
