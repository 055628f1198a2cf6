"""A hand-written iris classifier, shipped next to the model with ``code_paths``.

Not an example script: ``examples/code_paths.py`` registers :func:`predict` from this file and
passes the file as ``code_paths`` so the logged model can import it wherever it is loaded.
"""

from __future__ import annotations

import pandas as pd

PETAL_LENGTH = "petal length (cm)"
PETAL_WIDTH = "petal width (cm)"


def species(petal_length: float, petal_width: float) -> int:
    """0 setosa, 1 versicolor, 2 virginica, by two petal thresholds."""
    if petal_length < 2.5:
        return 0
    return 1 if petal_width < 1.75 else 2


def predict(model_input: pd.DataFrame) -> list[int]:
    """Classify each row of an iris frame (only the petal columns are used)."""
    return [
        species(float(length), float(width))
        for length, width in zip(model_input[PETAL_LENGTH], model_input[PETAL_WIDTH], strict=True)
    ]
