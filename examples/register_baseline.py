"""Register a baseline model: a RandomForest with a signature, an input example, nested metadata
and evaluation metrics.

Shows ``HokusaiModelRegistry.register_baseline`` and the result it returns: one new version of
``hokusai_classification_baseline`` with its ``model_uuid`` (``m-…``), ``model_uri``, flavors,
signature and the metadata exactly as it was passed (nested structure preserved).

Run it with ``python examples/register_baseline.py``; it writes to the embedded store under
``HOKUSAI_HOME`` (default ``./.hokusai``).
"""

from __future__ import annotations

import json
from typing import Any

from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from hokusai import HokusaiModelRegistry


def main() -> None:
    features, target = load_iris(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.3, random_state=0, stratify=target
    )
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(x_train, y_train)
    accuracy = round(float(accuracy_score(y_test, model.predict(x_test))), 4)

    # Metadata may be any JSON-serialisable mapping: nested, lists, any size.
    metadata: dict[str, Any] = {
        "dataset": {"name": "iris", "rows": len(features), "features": list(features.columns)},
        "training": {"estimator": "RandomForestClassifier", "n_estimators": 10, "seed": 0},
        "owner": "hokusai-examples",
    }

    registry = HokusaiModelRegistry()  # embedded store under HOKUSAI_HOME
    result = registry.register_baseline(
        model,
        "classification",
        metadata,
        signature=infer_signature(x_train, model.predict(x_train)),
        input_example=x_train.head(3),
        metrics={"accuracy": accuracy},
    )

    print(f"Registered {result['model_id']} (model_type={result['model_type']})")
    print(f"  model_uuid:  {result['model_uuid']}")
    print(f"  model_uri:   {result['model_uri']}")
    print(f"  run_id:      {result['run_id']}")
    print(f"  registered:  {result['registration_timestamp']}")
    print(f"  flavors:     {', '.join(result['flavors'])}")
    print(f"  metrics:     {result['metrics']}")
    print(f"  git_commit:  {result['git_commit']}")
    print(f"  signature:   {result['signature'].splitlines()[1].strip()}")
    print(f"  metadata:    {json.dumps(result['metadata'])}")
    print(f"  metadata round-trips unchanged: {result['metadata'] == metadata}")


if __name__ == "__main__":
    main()
