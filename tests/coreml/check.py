"""Checks a Core ML image classifier exported by Lathe against the engine's own predictions.

usage: check.py MODEL.mlmodel PREDICTIONS.jsonl [--tolerance 1e-4] [--min-inputs 20]
                [--truth-from-parent] [--batch 4]

PREDICTIONS.jsonl is `lathe predict MODEL_DIR IMAGE... --json --top K` (K = every label) on
images already at the model's input size (so no resizing differs between the two). The checker
1. parses the file with coremltools (`utils.load_spec`, `MLModel(path, skip_model_load=True)`);
2. checks the interface: one RGB image input, `predictedFeatureName` / `predictedProbabilitiesName`
   outputs, string class labels equal to the engine's labels, metadata present;
3. runs the spec with the independent numpy evaluator (eval_spec.py) on every image and compares:
   same top label and max |Δp| <= tolerance over every label of every input.
Prints one JSON object; exits 0 when everything agrees, 1 otherwise (2 on wrong usage).
With --truth-from-parent, the parent folder of each image is its true label and the accuracy of
both the engine and the Core ML model is reported (no tolerance check on probabilities then
unless --tolerance is given explicitly).
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval_spec  # noqa: E402


def fail(result, message):
    result["ok"] = False
    result.setdefault("errors", []).append(message)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("predictions")
    ap.add_argument("--tolerance", type=float, default=None)
    ap.add_argument("--min-inputs", type=int, default=20)
    ap.add_argument("--truth-from-parent", action="store_true")
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    tolerance = args.tolerance
    if tolerance is None and not args.truth_from_parent:
        tolerance = 1e-4

    import coremltools as ct
    from PIL import Image

    result = {"model": args.model, "ok": True}
    spec = ct.utils.load_spec(args.model)
    ct.models.MLModel(args.model, skip_model_load=True)
    result["specification_version"] = spec.specificationVersion
    result["bytes"] = os.path.getsize(args.model)

    desc = spec.description
    if spec.WhichOneof("Type") != "neuralNetworkClassifier":
        fail(result, f"model type is {spec.WhichOneof('Type')}, expected neuralNetworkClassifier")
    if not desc.predictedFeatureName or not desc.predictedProbabilitiesName:
        fail(result, "predictedFeatureName / predictedProbabilitiesName missing")
    outputs = {o.name: o.type.WhichOneof("Type") for o in desc.output}
    if outputs.get(desc.predictedFeatureName) != "stringType":
        fail(result, f"output {desc.predictedFeatureName!r} is not a string")
    if outputs.get(desc.predictedProbabilitiesName) != "dictionaryType":
        fail(result, f"output {desc.predictedProbabilitiesName!r} is not a dictionary")
    meta = desc.metadata
    for field in ("shortDescription", "author", "license", "versionString"):
        if not getattr(meta, field):
            fail(result, f"metadata {field} is empty")
    for key in ("classes",):
        if key not in meta.userDefined:
            fail(result, f"metadata userDefined has no {key!r}")

    with open(args.predictions) as f:
        preds = [json.loads(line) for line in f if line.strip()]
    result["inputs"] = len(preds)
    if len(preds) < args.min_inputs:
        fail(result, f"{len(preds)} inputs, need at least {args.min_inputs}")
    if not preds:
        print(json.dumps(result))
        return 1

    labels = None
    max_diff = 0.0
    agree = 0
    engine_correct = 0
    coreml_correct = 0
    worst = None
    for start in range(0, len(preds), args.batch):
        chunk = preds[start : start + args.batch]
        images = [np.asarray(Image.open(p["input"]).convert("RGB")) for p in chunk]
        labels, probs = eval_spec.classify_images(spec, images)
        for p, row in zip(chunk, probs):
            engine = p["probabilities"]
            if set(engine) != set(labels):
                fail(result, f"labels differ: engine {sorted(engine)} vs Core ML {sorted(labels)} "
                             f"(run lathe predict with --top {len(labels)})")
                print(json.dumps(result))
                return 1
            ref = np.array([engine[label] for label in labels], dtype=np.float64)
            d = float(np.max(np.abs(ref - row)))
            if d > max_diff:
                max_diff, worst = d, p["input"]
            top = labels[int(np.argmax(row))]
            agree += top == p["label"]
            if args.truth_from_parent:
                truth = os.path.basename(os.path.dirname(p["input"]))
                engine_correct += p["label"] == truth
                coreml_correct += top == truth
    result["labels"] = labels
    result["max_abs_diff"] = max_diff
    result["worst_input"] = worst
    result["top_label_agreement"] = agree
    if args.truth_from_parent:
        n = len(preds)
        result["engine_accuracy"] = engine_correct / n
        result["coreml_accuracy"] = coreml_correct / n
    if tolerance is not None:
        result["tolerance"] = tolerance
        if agree != len(preds):
            fail(result, f"top label differs on {len(preds) - agree} of {len(preds)} inputs")
        if not max_diff <= tolerance:
            fail(result, f"max |Δp| = {max_diff:.3g} > {tolerance:g} (worst: {worst})")
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, NotImplementedError, OSError) as e:
        print(json.dumps({"ok": False, "errors": [f"{type(e).__name__}: {e}"]}))
        sys.exit(1)
