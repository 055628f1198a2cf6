"""Documented entry point: ``python -m uvicorn api.app:app --port 8000`` from the repo root.

A thin module over the package: the prediction server configured from the environment
(``MODEL_VARIANT``, ``MODEL_RUN_ID``, ``MODEL_RUN_NAME``, ``CONFIG_PATH``, …).
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import hokusai  # noqa: F401 - installed (make install / pip install -e .)
except ModuleNotFoundError:  # running from a bare checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hokusai.serving.app import create_app

app = create_app()
