"""List every model version a contributor's data went into, whatever the letter case of the
address you have.

Shows ``HokusaiModelRegistry.get_contributor_models``: the address may be lowercase, uppercase
or EIP-55 checksummed (a mixed-case address must be a valid checksum); versions are returned
oldest first with the address in checksum form.

Run it with ``python examples/contributor_models.py``; it writes to the embedded store under
``HOKUSAI_HOME`` (default ``./.hokusai``).
"""

from __future__ import annotations

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from hokusai import HokusaiModelRegistry

CONTRIBUTOR = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"  # EIP-55 checksum form
OTHER = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"


def main() -> None:
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=200).fit(features.iloc[:, :5], target)

    registry = HokusaiModelRegistry()
    baseline = registry.register_baseline(model, "diagnosis", {"dataset": "breast_cancer"})
    first = registry.register_improved_model(model, baseline["model_id"], {"f1": 0.02}, CONTRIBUTOR)
    registry.register_improved_model(model, first["model_id"], {"f1": 0.01}, OTHER)
    registry.register_improved_model(model, first["model_id"], {"f1": 0.015}, CONTRIBUTOR)

    for address in (CONTRIBUTOR.lower(), CONTRIBUTOR.upper().replace("0X", "0x")):
        models = registry.get_contributor_models(address)
        print(f"{address}: {len(models)} versions")
        for entry in models:
            print(
                f"  {entry['model_id']:<30} improves {entry['baseline_id']:<30} "
                f"contributor={entry['contributor']} delta={entry['delta_metrics']}"
            )


if __name__ == "__main__":
    main()
