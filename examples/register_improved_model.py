"""Register improved models: a contributor's data improves a baseline, and a second contributor
improves on that (a chain of two improvements).

Shows ``HokusaiModelRegistry.register_improved_model``: each call names the model it improves
(``baseline_id``, any earlier Hokusai version), the contributor's Ethereum address and the delta
metrics measured against that parent. The address may be given in lowercase; the result carries
it in EIP-55 checksum form.

Run it with ``python examples/register_improved_model.py``; it writes to the embedded store under
``HOKUSAI_HOME`` (default ``./.hokusai``).
"""

from __future__ import annotations

from typing import Any

from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from hokusai import HokusaiModelRegistry

ALICE = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"  # lowercase: carries no checksum
BOB = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"  # EIP-55 checksum form


def main() -> None:
    features, target = load_digits(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.3, random_state=0, stratify=target
    )

    def train(fraction: float) -> tuple[Any, float]:
        """Fit on the first ``fraction`` of the training rows; return model and test accuracy."""
        rows = int(len(x_train) * fraction)
        model = RandomForestClassifier(n_estimators=20, random_state=0)
        model.fit(x_train[:rows], y_train[:rows])
        return model, float(accuracy_score(y_test, model.predict(x_test)))

    registry = HokusaiModelRegistry()

    # The baseline sees 20% of the data; each contributor's data adds more.
    baseline_model, baseline_accuracy = train(0.2)
    baseline = registry.register_baseline(
        baseline_model,
        "classification",
        {"dataset": "digits", "fraction": 0.2},
        metrics={"accuracy": baseline_accuracy},
    )
    print(f"baseline  {baseline['model_id']}  accuracy={baseline_accuracy:.4f}")

    alice_model, alice_accuracy = train(0.5)
    first = registry.register_improved_model(
        alice_model,
        baseline["model_id"],
        {"accuracy": round(alice_accuracy - baseline_accuracy, 4)},
        ALICE,
        metadata={"dataset": "digits", "fraction": 0.5},
        metrics={"accuracy": alice_accuracy},
    )
    print(
        f"improved  {first['model_id']} improves {first['baseline_id']}: "
        f"contributor={first['contributor']} delta_metrics={first['delta_metrics']}"
    )

    bob_model, bob_accuracy = train(1.0)
    second = registry.register_improved_model(
        bob_model,
        first["model_id"],  # an improvement of an improvement: a chain
        {"accuracy": round(bob_accuracy - alice_accuracy, 4)},
        BOB,
        metadata={"dataset": "digits", "fraction": 1.0},
        metrics={"accuracy": bob_accuracy},
    )
    print(
        f"improved  {second['model_id']} improves {second['baseline_id']}: "
        f"contributor={second['contributor']} delta_metrics={second['delta_metrics']}"
    )
    print(f"model_uuid of the newest version: {second['model_uuid']}")


if __name__ == "__main__":
    main()
