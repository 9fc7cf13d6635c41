"""scikit-learn reference for Lathe's tabular benchmarks: HistGradientBoostingClassifier /
Regressor with default settings (max_iter=100, early stopping on 10% of train when > 10k rows),
string columns as native categoricals, on the same train/test CSVs Lathe trains on.
Prints one JSON line: metric, value, fit_secs (wall), fit_cpu_secs.

The optional fifth argument picks another model to set next to Lathe's other candidates:
  hgb  HistGradientBoosting* (the default, above)
  rf   RandomForest* (100 trees, sqrt(p) features per split for classes, all for numbers as
       scikit-learn's default; string columns ordinal-encoded, NaN handled natively)
  mlp  MLP* (hidden 128, 64; Adam; early stopping on 10%) on median-imputed standardized
       numbers and one-hot strings

usage: python benches/reference/tabular.py TRAIN.csv TEST.csv TARGET classify|regress [hgb|rf|mlp]"""
import json
import sys
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler


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
    kind = sys.argv[5] if len(sys.argv) > 5 else "hgb"
    x, y, tx, ty = frames(train_path, test_path, target)
    classify = mode == "classify"
    cats = [c for c in x.columns if isinstance(x[c].dtype, pd.CategoricalDtype)]
    nums = [c for c in x.columns if c not in cats]
    if kind == "hgb":
        cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        model = cls(categorical_features="from_dtype", random_state=0)
    elif kind == "rf":
        enc = ColumnTransformer([("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                                        encoded_missing_value=-1), cats)],
                                remainder="passthrough")
        cls = RandomForestClassifier if classify else RandomForestRegressor
        model = make_pipeline(enc, cls(n_estimators=100, random_state=0))
    else:
        enc = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), nums),
            ("cat", OneHotEncoder(handle_unknown="ignore"), cats)])
        cls = MLPClassifier if classify else MLPRegressor
        net = cls(hidden_layer_sizes=(128, 64), early_stopping=True, random_state=0, max_iter=200)
        if not classify:
            from sklearn.compose import TransformedTargetRegressor
            net = TransformedTargetRegressor(regressor=net, transformer=StandardScaler())
        model = make_pipeline(enc, net)
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
                      "iterations": int(getattr(model, "n_iter_", 0)), "model": kind, "rows": len(x)}))


if __name__ == "__main__":
    main()
