"""The ONNX checker: validates an exported model with `onnx.checker.check_model(full_check=True)`
and runs it in ONNX Runtime (CPU) on the given inputs, printing one JSON object:
`{"outputs": {name: nested list}, "metadata": {key: value}, "opsets": {domain: version},
"inputs": [{"name", "type", "shape"}]}`.

Inputs come from a JSON spec file: `{"<input name>": {"dtype": "float32" | "uint8",
"shape": [...], "file": "<raw little-endian values>"}}` (raw files carry NaN exactly, which JSON
cannot). Usage: `python check.py MODEL.onnx --inputs SPEC.json` (without `--inputs` it only
checks and describes the model). With `--rows`, each input is cut along its first axis and the
model runs once per row (models with a fixed batch of 1: the sound classifier's window of
samples, the detector's image): the outputs of row i are `"rows"[i]` (`{name: nested list}`),
boxes of any count per row included. The Rust tests (engine/tests/onnx_export.rs) call it with the
python of scripts/onnx-env.sh.
"""

import argparse
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("--inputs", help="JSON spec of the inputs (see the module docstring)")
    ap.add_argument(
        "--rows", action="store_true", help="run once per row of the inputs' first axis"
    )
    args = ap.parse_args()

    model = onnx.load(args.model)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    result = {
        "metadata": {p.key: p.value for p in model.metadata_props},
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "ir_version": model.ir_version,
        "inputs": [
            {"name": i.name, "type": i.type, "shape": [str(d) for d in i.shape]}
            for i in session.get_inputs()
        ],
        "outputs": {},
    }
    if args.inputs:
        with open(args.inputs) as f:
            spec = json.load(f)
        feeds = {}
        for name, s in spec.items():
            data = np.fromfile(s["file"], dtype=np.dtype(s["dtype"]).newbyteorder("<"))
            feeds[name] = data.reshape(s["shape"]).astype(np.dtype(s["dtype"]))
        names = [o.name for o in session.get_outputs()]

        def run(feeds):
            out = {}
            for name, value in zip(names, session.run(names, feeds)):
                value = np.asarray(value)
                if value.dtype.kind in "OUS":
                    out[name] = value.astype(str).tolist()
                else:
                    out[name] = value.astype(np.float64).tolist()
            return out

        if args.rows:
            count = min(len(v) for v in feeds.values())
            result["rows"] = [
                run({k: v[i : i + 1] for k, v in feeds.items()}) for i in range(count)
            ]
        else:
            result["outputs"] = run(feeds)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
