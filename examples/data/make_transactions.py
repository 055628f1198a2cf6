"""Write ``transactions.csv`` beside this script: 1,000 synthetic card transactions.

Deterministic (a fixed seed and Python's own generator, no third-party code), so running it again
rewrites the committed file byte for byte. Columns: ``age``, ``income`` and ``amount`` (written
as floats, so JSON integers sent to the prediction server validate against the float signature
of a model trained on them) and the label ``is_fraud`` (0/1). Fraud is likelier the larger the
amount is against the customer's monthly income, and for young customers, with noise: a model
learns it well above the majority rate without being perfect.

    python examples/data/make_transactions.py
"""

from __future__ import annotations

import math
import random
from pathlib import Path

ROWS = 1000
SEED = 20240601
OUT = Path(__file__).resolve().with_name("transactions.csv")


def rows(count: int = ROWS, seed: int = SEED) -> list[tuple[float, float, float, int]]:
    """``(age, income, amount, is_fraud)`` rows."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        age = float(rng.randint(18, 80))
        income = round(math.exp(rng.gauss(10.8, 0.45)), 2)  # yearly, median about 49,000
        amount = round(math.exp(rng.gauss(4.2, 1.1)), 2)  # median about 67
        share = amount / (income / 12)  # of a month's income
        score = 2.0 * math.log(share / 0.06) + (1.5 if age < 25 else 0.0) + rng.gauss(0.0, 0.5)
        out.append((age, income, amount, int(score > 0)))
    return out


def write(path: Path = OUT) -> Path:
    lines = ["age,income,amount,is_fraud"]
    lines += [
        f"{age:.1f},{income:.2f},{amount:.2f},{label}" for age, income, amount, label in rows()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
