"""Register a plain Python callable whose code lives in a helper module, shipped with
``code_paths``, and load it back in a fresh interpreter that has never seen the helper.

Shows ``register_baseline(..., code_paths=[...], pip_requirements=[...])``: the helper file is
copied into the logged model (``code/iris_rules.py``) and put on ``sys.path`` when the model is
loaded. Passing ``pip_requirements`` skips MLflow's requirement inference (a subprocess that
takes ~4 s) for a callable, whose dependencies the registry cannot know.

Run it with ``python examples/code_paths.py``; it writes to the embedded store under
``HOKUSAI_HOME`` (default ``./.hokusai``).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
from sklearn.datasets import load_iris

from hokusai import HokusaiModelRegistry

HELPER = Path(__file__).resolve().parent / "helpers" / "iris_rules.py"

LOAD_AND_PREDICT = """
import sys, mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
rows = pd.DataFrame({"petal length (cm)": [1.4, 4.5, 6.0], "petal width (cm)": [0.2, 1.5, 2.1]})
import iris_rules
print("predictions", list(model.predict(rows)), "from", iris_rules.__file__)
"""


def main() -> None:
    # The helper is importable as a top-level module here, as it will be inside the model.
    sys.path.insert(0, str(HELPER.parent))
    iris_rules = importlib.import_module(HELPER.stem)

    features, _ = load_iris(return_X_y=True, as_frame=True)
    example = features[[iris_rules.PETAL_LENGTH, iris_rules.PETAL_WIDTH]].head(3)

    registry = HokusaiModelRegistry()
    result = registry.register_baseline(
        iris_rules.predict,  # a plain one-argument callable becomes a pyfunc model
        "iris_rules",
        {"kind": "rule-based", "helper": HELPER.name},
        input_example=example,
        code_paths=[HELPER],
        pip_requirements=[f"mlflow=={mlflow.__version__}", f"pandas=={pd.__version__}"],
    )
    print(f"Registered {result['model_id']} ({', '.join(result['flavors'])})")
    print(f"  code_paths: {result['code_paths']}")
    print(f"  signature:  {result['signature'].splitlines()[1].strip()}")

    # A fresh interpreter, without examples/helpers on sys.path: the model brings its own copy.
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, registry.tracking_uri, result["model_uri"]],
        capture_output=True,
        text=True,
        check=True,
    )
    print(f"  loaded elsewhere: {loaded.stdout.strip()}")


if __name__ == "__main__":
    main()
