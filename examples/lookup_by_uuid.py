"""Find a registered version by its model UUID.

Shows ``HokusaiModelRegistry.get_model_by_uuid``: the ``model_uuid`` a registration returns
(MLflow 3's logged-model id, ``m-…``) is all another service needs to find the model name,
version, run, stage, aliases and metadata again. The lookup reads two primary keys, so it costs
the same at any registry size. An unknown UUID gives ``None``, not an exception.

Run it with ``python examples/lookup_by_uuid.py``; it writes to the embedded store under
``HOKUSAI_HOME`` (default ``./.hokusai``).
"""

from __future__ import annotations

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from hokusai import HokusaiModelRegistry


def main() -> None:
    features, target = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(features, target)

    registry = HokusaiModelRegistry()
    registered = registry.register_baseline(
        model, "classification", {"dataset": {"name": "iris", "rows": len(features)}}
    )
    model_uuid = registered["model_uuid"]

    # Later, possibly in another process: the UUID is enough to find the version again.
    found = registry.get_model_by_uuid(model_uuid)
    if found is None:
        raise SystemExit(f"{model_uuid} was just registered but is not found")
    print(f"{model_uuid} -> {found['model_id']}")
    for field in ("model_name", "version", "run_id", "stage", "aliases", "model_uri", "metadata"):
        print(f"  {field:<11} {found[field]!r}")

    missing = registry.get_model_by_uuid("m-00000000000000000000000000000000")
    print(f"unknown uuid -> {missing!r}")


if __name__ == "__main__":
    main()
