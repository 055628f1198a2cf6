"""The helpers that keep credentials and paths out of what is printed, logged or answered."""

from __future__ import annotations

import pytest

from hokusai.config import mask_secrets, public_location, public_text

KEY = "hk_AbCdEfGhIjKl_" + "S" * 43


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "postgresql+psycopg://app:s3cr%2Ft@db:5432/hokusai",
            "postgresql+psycopg://app:***@db:5432/hokusai",
        ),
        ("http://ops:pw@mlflow:5000", "http://ops:***@mlflow:5000"),
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("https://mlflow.example.com/#/experiments", "https://mlflow.example.com/#/experiments"),
        ("GET /x?api_key=abc&max_results=5", "GET /x?api_key=***&max_results=5"),
        ("/x?page=2&access_token=abc#top", "/x?page=2&access_token=***#top"),
        ("host=db user=app password=hunter2", "host=db user=app password=***"),
        (f"Bearer {KEY}", "Bearer hk_AbCdEfGhIjKl_***"),
        ("sqlite:////srv/hokusai/mlflow.db", "sqlite:////srv/hokusai/mlflow.db"),
    ],
)
def test_mask_secrets(text: str, masked: str):
    assert mask_secrets(text) == masked


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:////srv/hokusai/mlflow.db", "sqlite (embedded)"),
        ("sqlite:///relative.db", "sqlite (embedded)"),
        ("file:///srv/mlruns", "file store (embedded)"),
        ("/srv/mlruns", "file store (embedded)"),
        ("./mlruns", "file store (embedded)"),
        ("databricks", "databricks"),
        ("http://ops:pw@mlflow:5000/prefix", "http://mlflow:5000"),
        ("postgresql+psycopg://app:pw@db:5432/hokusai", "postgresql+psycopg://db:5432"),
        ("https://mlflow.example.com", "https://mlflow.example.com"),
    ],
)
def test_public_location(url: str, shown: str):
    assert public_location(url) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/srv/app/models/xgb_model.pkl does not exist", "…/xgb_model.pkl does not exist"),
        ("pickle:/srv/app/x.pkl:123:456", "pickle:…/x.pkl:123:456"),
        ("file:///srv/home/artifacts/1/m", "file:///…/m"),
        ("unable to open (/var/lib/h.db)", "unable to open (…/h.db)"),
        (r"C:\Users\ops\model.pkl missing", "…\\model.pkl missing"),
        ("models:/fraud@champion", "models:/fraud@champion"),
        ("models:/fraud/3", "models:/fraud/3"),
        ("runs:/0123abcd/model", "runs:/0123abcd/model"),
        ("http://mlflow:5000/api/2.0/x", "http://mlflow:5000/api/2.0/x"),
        ("relative/path/x.pkl", "relative/path/x.pkl"),
        ("GET /health says why", "GET /health says why"),
        ("http://ops:pw@mlflow:5000", "http://ops:***@mlflow:5000"),
    ],
)
def test_public_text(text: str, shown: str):
    assert public_text(text) == shown
