"""``report [ROWS]``: simulate ROWS sales (default 10000) and print per-region statistics as CSV."""

import sys

import numpy as np
import pandas as pd

REGIONS = ["north", "south", "east", "west"]
SEED = 42


def simulate(rows: int, *, seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "region": rng.choice(REGIONS, size=rows),
            "units": rng.poisson(3, size=rows),
            "price": rng.lognormal(mean=3.0, sigma=0.5, size=rows).round(2),
        }
    )


def summarise(sales: pd.DataFrame) -> pd.DataFrame:
    sales = sales.assign(revenue=sales["units"] * sales["price"])
    return sales.groupby("region").agg(
        orders=("units", "size"), units=("units", "sum"), revenue=("revenue", "sum")
    ).round(2)


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    summarise(simulate(rows)).to_csv(sys.stdout)
