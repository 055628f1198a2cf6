"""``python models/train.py --model-type xgboost``: the documented entry point of ``hokusai train``.

Run from the repository root; options and behaviour are those of ``hokusai train --help``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("hokusai") is None:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hokusai.cli.train import main

if __name__ == "__main__":
    main()
