"""scikit-learn reference for Lathe's tabular benchmarks: HistGradientBoostingClassifier /
Regressor with default settings (max_iter=100, early stopping on 10% of train when > 10k rows),
string columns as native categoricals, on the same train/test CSVs Lathe trains on.
Prints one JSON line: metric, value, fit_secs (wall), fit_cpu_secs.

usage: python benches/reference/tabular.py TRAIN.csv TEST.csv TARGET classify|regress"""
import json
import sys
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor


def frames(train_path, test_path, target):
    train = pd.read_csv(train_path)
    test = pd.read_csv(test_path)
    y_train, y_test = train.pop(target), test.pop(target)
    for c in train.columns:
        if not pd.api.types.is_numeric_dtype(train[c]):
            cats = pd.Categorical(train[c]).categories
            train[c] = pd.Categorical(train[c], categories=cats)
            test[c] = pd.Categorical(test[c], categories=cats)
    return train, y_train, test, y_test


def main():
    train_path, test_path, target, mode = sys.argv[1:5]
    x, y, tx, ty = frames(train_path, test_path, target)
    if mode == "classify":
        model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    else:
        model = HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=0)
    start, cpu_start = time.perf_counter(), time.process_time()
    model.fit(x, y)
    fit_secs = time.perf_counter() - start
    fit_cpu_secs = time.process_time() - cpu_start
    pred = model.predict(tx)
    if mode == "classify":
        metric, value = "accuracy", float(np.mean(pred == ty.to_numpy()))
    else:
        metric, value = "rmse", float(np.sqrt(np.mean((pred - ty.to_numpy()) ** 2)))
    print(json.dumps({"metric": metric, "value": value, "fit_secs": fit_secs, "fit_cpu_secs": fit_cpu_secs,
                      "iterations": int(model.n_iter_), "rows": len(x)}))


if __name__ == "__main__":
    main()
