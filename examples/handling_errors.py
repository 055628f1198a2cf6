"""Catch the registry's typed errors and read their stable codes.

Shows that invalid input raises a subclass of ``hokusai.errors.ValidationError`` before anything
is written, each with a machine-readable ``.code``; that every validation error is still a
``ValueError``, so code written for the pre-upgrade registry keeps working; that looking up a
missing version raises ``ModelNotFoundError``; and that a registration that fails part-way is
rolled back and raises ``RegistrationError``, leaving no version behind.

Run it with ``python examples/handling_errors.py``; it writes to the embedded store under
``HOKUSAI_HOME`` (default ``./.hokusai``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from hokusai import HokusaiModelRegistry
from hokusai.errors import (
    HokusaiError,
    InvalidContributorError,
    ModelNotFoundError,
    RegistrationError,
    SignatureMismatchError,
    ValidationError,
)

# The EIP-55 test vector 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed with one letter's case flipped.
MISTYPED_ADDRESS = "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
LOWERCASE_ADDRESS = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"  # no checksum to fail: valid
MISSING_VERSION = "hokusai_classification_baseline/999"


def main() -> None:
    features, target = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(features, target)
    registry = HokusaiModelRegistry()
    baseline = registry.register_baseline(model, "classification", {"dataset": "iris"})

    # Catch one error by its class and read its stable code.
    try:
        registry.register_improved_model(
            model, baseline["model_id"], {"accuracy": 0.01}, MISTYPED_ADDRESS
        )
    except InvalidContributorError as exc:
        print(f"{type(exc).__name__} code={exc.code}: {exc}")

    # Or catch every invalid input at once: ValidationError is the category.
    invalid_calls: dict[str, Callable[[], object]] = {
        "model_type": lambda: registry.register_baseline(model, "Lead Scoring", {}),
        "baseline_id": lambda: registry.register_improved_model(
            model, MISSING_VERSION, {"accuracy": 0.01}, LOWERCASE_ADDRESS
        ),
        "metadata": lambda: registry.register_baseline(model, "classification", {"at": object()}),
        "delta_metrics": lambda: registry.register_improved_model(
            model, baseline["model_id"], {"accuracy": float("nan")}, LOWERCASE_ADDRESS
        ),
    }
    for argument, call in invalid_calls.items():
        try:
            call()
        except ValidationError as exc:
            is_value_error = isinstance(exc, ValueError)
            print(f"{argument}: {type(exc).__name__} code={exc.code} ValueError={is_value_error}")

    # The signature check names the offending column.
    signature = infer_signature(features, model.predict(features))
    renamed = features.head(2).rename(columns={"petal width (cm)": "petal_width"})
    try:
        registry.register_baseline(
            model, "classification", {}, signature=signature, input_example=renamed
        )
    except SignatureMismatchError as exc:
        print(f"{type(exc).__name__} code={exc.code} column={exc.column!r}")

    # Code written against the pre-upgrade registry caught ValueError; it still works.
    try:
        registry.get_model(MISSING_VERSION)
    except ValueError as exc:
        is_not_found = isinstance(exc, ModelNotFoundError)
        print(f"except ValueError caught {type(exc).__name__} (not found: {is_not_found})")

    # A failure after MLflow was written to (here a registration hook) is rolled back.
    def refuse(result: dict[str, Any]) -> None:
        raise RuntimeError(f"downstream refused {result['model_id']}")

    failing = HokusaiModelRegistry(hooks=[refuse])
    try:
        failing.register_baseline(model, "rollback_demo", {})
    except RegistrationError as exc:
        print(f"{type(exc).__name__} code={exc.code}: {exc}")
    left = registry.client.search_model_versions("name = 'hokusai_rollback_demo_baseline'")
    print(f"versions of hokusai_rollback_demo_baseline left behind: {len(left)}")

    # Every error the project raises on purpose is a HokusaiError.
    print(f"HokusaiError is the base of all of them: {issubclass(RegistrationError, HokusaiError)}")


if __name__ == "__main__":
    main()
