"""Splits the benchmark tables 80/20 with seed 0 (stratified for classes) into train.csv and
test.csv per set, so Lathe and the scikit-learn reference see exactly the same rows.
Used by scripts/fetch-tabular.sh."""
import argparse
import os

import pandas as pd
from sklearn.model_selection import train_test_split


def write(df, out, name, stratify=None):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    train, test = train_test_split(
        df, test_size=0.2, random_state=0, stratify=None if stratify is None else df[stratify]
    )
    train.to_csv(os.path.join(d, "train.csv"), index=False)
    test.to_csv(os.path.join(d, "test.csv"), index=False)
    print(f"{name}: {len(train)} train, {len(test)} test rows")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--penguins", required=True)
    ap.add_argument("--diamonds", required=True)
    ap.add_argument("--flights", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    # keep_default_na=False + na_values: NA cells stay empty in the output CSV
    penguins = pd.read_csv(a.penguins)
    write(penguins, a.out, "penguins", "species")
    diamonds = pd.read_csv(a.diamonds).iloc[:, 1:]  # drop R's row-name column
    write(diamonds, a.out, "diamonds", "cut")
    flights = pd.read_json(a.flights)
    flights["delayed"] = (flights["delay"] > 15).map({True: "yes", False: "no"})
    flights = flights.drop(columns=["delay"])
    write(flights, a.out, "flights", "delayed")


if __name__ == "__main__":
    main()
