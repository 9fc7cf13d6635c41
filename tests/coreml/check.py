"""Checks a Core ML model exported by Lathe against the engine's own predictions.

usage: check.py MODEL.mlmodel PREDICTIONS.jsonl [--tolerance 1e-4] [--min-inputs 20]
                [--truth-from-parent] [--batch 4]
                [--table ROWS.csv | --vectors TERMS.jsonl | --multi-label | --detector]

PREDICTIONS.jsonl is `lathe predict MODEL_DIR INPUT... --json --top K` (K = every label). Inputs:
- images (default: an image classifier; --multi-label: a multi-label NeuralNetwork), already at
  the model's input size (so no resizing differs between the two);
- --table ROWS.csv: the table that was predicted (table models), one prediction per row; each
  cell becomes a Core ML input by the model's documented input contract;
- --vectors TERMS.jsonl: one line per prediction with the engine's own term counts
  ({"terms": {term: count}}, text models);
- --detector: an object detector pipeline; PREDICTIONS.jsonl holds the engine's boxes before NMS
  for images at the model's size (see check_detector; tolerance 1e-3 by default).
- --sound: each prediction line also holds "samples", the clip's decoded 16 kHz samples (clips of
  exactly one window, sound models).
The checker
1. parses the file with coremltools (`utils.load_spec`, `MLModel(path, skip_model_load=True)`);
2. checks the interface: `predictedFeatureName` / `predictedProbabilitiesName` outputs of a
   classifier, metadata present, class labels equal to the engine's labels;
3. runs the spec with the independent numpy evaluator (eval_spec.py) on every input and compares:
   same top label (multi-label: the same labels at or above metadata `threshold`) and max
   |Δp| <= tolerance over every label of every input (regressors: |Δvalue| / max(1, |value|)).
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
    ap.add_argument("--table", help="CSV whose rows were predicted (table models)")
    ap.add_argument("--vectors", help="JSON lines of the engine's feature vectors (text models)")
    ap.add_argument("--multi-label", action="store_true",
                    help="a NeuralNetwork with one probability per label (multi-label images)")
    ap.add_argument("--sound", action="store_true", help="predictions carry their decoded samples (sound models)")
    ap.add_argument("--detector", action="store_true",
                    help="an object detector pipeline; PREDICTIONS.jsonl holds the engine's boxes "
                         "before NMS (see check_detector)")
    ap.add_argument("--tie-tolerance", type=float, default=1e-5,
                    help="detector: a peak decided differently counts as a near tie when the "
                         "engine's neighbour is within this of the cell's probability")
    args = ap.parse_args()
    tolerance = args.tolerance
    if tolerance is None and not args.truth_from_parent:
        tolerance = 1e-3 if args.detector else 1e-4

    import coremltools as ct

    result = {"model": args.model, "ok": True}
    spec = ct.utils.load_spec(args.model)
    ct.models.MLModel(args.model, skip_model_load=True)
    result["specification_version"] = spec.specificationVersion
    result["bytes"] = os.path.getsize(args.model)
    result["type"] = spec.WhichOneof("Type")

    desc = spec.description
    classifier = bool(desc.predictedFeatureName)
    outputs = {o.name: o.type.WhichOneof("Type") for o in desc.output}
    if args.detector:
        return check_detector(spec, args, result, tolerance)
    if args.table is None and args.vectors is None and result["type"] != "neuralNetworkClassifier" \
            and not args.multi_label:
        fail(result, f"model type is {result['type']}, expected neuralNetworkClassifier")
    if classifier:
        if not desc.predictedProbabilitiesName:
            fail(result, "predictedProbabilitiesName missing")
        if outputs.get(desc.predictedFeatureName) != "stringType":
            fail(result, f"output {desc.predictedFeatureName!r} is not a string")
        if outputs.get(desc.predictedProbabilitiesName) != "dictionaryType":
            fail(result, f"output {desc.predictedProbabilitiesName!r} is not a dictionary")
    meta = desc.metadata
    for field in ("shortDescription", "author", "license", "versionString"):
        if not getattr(meta, field):
            fail(result, f"metadata {field} is empty")
    if (classifier or args.multi_label) and "classes" not in meta.userDefined:
        fail(result, "metadata userDefined has no 'classes'")

    with open(args.predictions) as f:
        preds = [json.loads(line) for line in f if line.strip()]
    result["inputs"] = len(preds)
    if len(preds) < args.min_inputs:
        fail(result, f"{len(preds)} inputs, need at least {args.min_inputs}")
    if not preds:
        print(json.dumps(result))
        return 1

    # Every example's Core ML result as (label or None, {label: p} or None, value or None).
    if args.table is not None:
        rows = table_examples(spec, args.table)
        if len(rows) != len(preds):
            fail(result, f"{len(rows)} table rows but {len(preds)} predictions")
            print(json.dumps(result))
            return 1
        coreml = [outputs_of(spec, eval_spec.predict(spec, row), args) for row in rows]
    elif args.vectors is not None:
        with open(args.vectors) as f:
            vectors = [json.loads(line) for line in f if line.strip()]
        if len(vectors) != len(preds):
            fail(result, f"{len(vectors)} vectors but {len(preds)} predictions")
            print(json.dumps(result))
            return 1
        coreml = [outputs_of(spec, eval_spec.predict(spec, vector_features(spec, v)), args)
                  for v in vectors]
    elif args.multi_label or args.sound:
        coreml = []
        for p in preds:
            features = sound_features(spec, p) if args.sound else image_features(spec, p["input"])
            coreml.append(outputs_of(spec, eval_spec.predict(spec, features), args))
    else:
        from PIL import Image

        coreml = []
        for start in range(0, len(preds), args.batch):
            chunk = preds[start : start + args.batch]
            images = [np.asarray(Image.open(p["input"]).convert("RGB")) for p in chunk]
            labels, probs = eval_spec.classify_images(spec, images)
            for row in probs:
                coreml.append((labels[int(np.argmax(row))], dict(zip(labels, row.tolist())), None))

    max_diff = 0.0
    agree = 0
    engine_correct = 0
    coreml_correct = 0
    worst = None
    labels = None
    for p, (top, probs, value) in zip(preds, coreml):
        if value is not None:
            ref = float(p["value"])
            d = abs(ref - value) / max(1.0, abs(ref)) if np.isfinite(value) else float("inf")
            agree += 1
        else:
            engine = p["probabilities"]
            labels = list(probs)
            if set(engine) != set(labels):
                fail(result, f"labels differ: engine {sorted(engine)} vs Core ML {sorted(labels)} "
                             f"(run lathe predict with --top {len(labels)})")
                print(json.dumps(result))
                return 1
            ref = np.array([engine[label] for label in labels], dtype=np.float64)
            row = np.array([probs[label] for label in labels], dtype=np.float64)
            d = float(np.max(np.abs(ref - row))) if np.all(np.isfinite(row)) else float("inf")
            if top is None and args.multi_label:
                # The labels at or above the threshold, most probable first, as the engine lists them.
                threshold = float(meta.userDefined["threshold"])
                top = sorted((lab for lab in labels if probs[lab] >= threshold), key=lambda lab: -probs[lab])
                top, engine_top = sorted(top), sorted(p.get("labels") or [])
            elif top is None:
                top = labels[int(np.argmax(row))]
                engine_top = max(engine, key=engine.get)
            else:
                engine_top = p["label"]
            if top == engine_top:
                agree += 1
            elif len(result.setdefault("disagreements", [])) < 3:
                result["disagreements"].append({"input": p["input"], "engine": engine_top,
                                                "coreml": top, "engine_probabilities": engine,
                                                "coreml_probabilities": probs})
            if args.truth_from_parent:
                truth = os.path.basename(os.path.dirname(p["input"]))
                engine_correct += p["label"] == truth
                coreml_correct += top == truth
        if d > max_diff:
            max_diff, worst = d, p["input"]
    if labels is not None:
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
        if not max_diff <= tolerance:  # also catches NaN / inf
            fail(result, f"max |Δ| = {max_diff:.3g} > {tolerance:g} (worst: {worst})")
    print(json.dumps(finite(result)))
    return 0 if result["ok"] else 1


def check_detector(spec, args, result, tolerance):
    """An object detector: Pipeline[NeuralNetwork -> NonMaximumSuppression] (spec 3).

    Each line of PREDICTIONS.jsonl is the engine's output for one image (at the model's size)
    before NMS: {"input": path, "grid": [H, W], "confidence": [cells x classes] (0 where the cell
    is no peak of the class), "probability": [cells x classes] (every cell's class probability),
    "coordinates": [cells x 4] (centre x, y, width, height relative to the image)}, cells
    row-major; optionally "boxes": the engine's final boxes [[x, y, w, h, class, score], ...]
    (relative, clipped to the image), which are compared with the NMS model's output on the
    network's outputs (reported, not required: Core ML labels a box by its best class and does
    not cap the number of boxes).

    Fails unless the interface is Vision's and max |delta| <= tolerance on coordinates (every
    cell) and confidences. A peak decided differently (a confidence 0 on one side) is accepted
    only as a near tie: a 3x3 neighbour of the engine's probability within --tie-tolerance of
    the cell's. The report counts the engine's peaks, the peak flips and the near ties, and
    gives the max |delta| of confidences where both sides agree on the peak and of coordinates
    where the engine has a box at or above the confidence threshold (elsewhere, background
    cells may predict huge boxes whose size rounds the most)."""
    desc = spec.description
    meta = desc.metadata
    for field in ("shortDescription", "author", "license", "versionString"):
        if not getattr(meta, field):
            fail(result, f"metadata {field} is empty")
    if result["type"] != "pipeline":
        fail(result, f"model type is {result['type']}, expected pipeline")
        print(json.dumps(result))
        return 1
    if spec.specificationVersion != 3:
        fail(result, f"specification version {spec.specificationVersion}, expected 3")
    models = list(spec.pipeline.models)
    kinds = [m.WhichOneof("Type") for m in models]
    if kinds != ["neuralNetwork", "nonMaximumSuppression"]:
        fail(result, f"pipeline models are {kinds}, expected neuralNetwork then nonMaximumSuppression")
        print(json.dumps(result))
        return 1
    nn, nms = models
    classes = json.loads(meta.userDefined.get("classes", "[]"))
    labels = list(nms.nonMaximumSuppression.stringClassLabels.vector)
    result["labels"] = labels
    if labels != classes or not labels:
        fail(result, f"NMS class labels {labels} differ from metadata classes {classes}")
    inputs = {f.name: f for f in desc.input}
    images = [f for f in desc.input if f.type.WhichOneof("Type") == "imageType"]
    if len(images) != 1:
        fail(result, "expected exactly one image input")
    for name in ("iouThreshold", "confidenceThreshold"):
        f = inputs.get(name)
        if f is None or f.type.WhichOneof("Type") != "doubleType" or not f.type.isOptional:
            fail(result, f"input {name!r} is missing or not an optional double")
    if [o.name for o in desc.output] != ["confidence", "coordinates"]:
        fail(result, f"outputs are {[o.name for o in desc.output]}, expected confidence, coordinates")
    n = nms.nonMaximumSuppression
    nn_outputs = {o.name: list(o.type.multiArrayType.shape) for o in nn.description.output}
    if set(nn_outputs) != {n.confidenceInputFeatureName, n.coordinatesInputFeatureName}:
        fail(result, f"network outputs {sorted(nn_outputs)} do not feed the NMS inputs")
    if n.iouThresholdInputFeatureName != "iouThreshold" \
            or n.confidenceThresholdInputFeatureName != "confidenceThreshold":
        fail(result, "NMS does not read the iouThreshold / confidenceThreshold inputs")
    result["iou_threshold"] = n.iouThreshold
    result["confidence_threshold"] = n.confidenceThreshold
    if not result["ok"]:
        print(json.dumps(result))
        return 1

    with open(args.predictions) as f:
        preds = [json.loads(line) for line in f if line.strip()]
    result["inputs"] = len(preds)
    if len(preds) < args.min_inputs:
        fail(result, f"{len(preds)} inputs, need at least {args.min_inputs}")
    from PIL import Image

    worst = {"coordinates": (0.0, None), "confidence": (0.0, None)}
    agreeing = 0.0  # max |delta| of confidences where both sides agree on the peak
    flips = near_ties = peaks = 0
    coords_at_boxes = 0.0  # max |delta| of coordinates where the engine has a box to keep
    boxes = {"engine": 0, "coreml": 0, "matched": 0, "engine_second_class_of_a_box": 0}
    c = len(labels)
    for start in range(0, len(preds), args.batch):
        chunk = preds[start : start + args.batch]
        raw = eval_spec.network_outputs(
            nn, [np.asarray(Image.open(p["input"]).convert("RGB")) for p in chunk])
        for b, p in enumerate(chunk):
            conf = np.asarray(raw[n.confidenceInputFeatureName][b], dtype=np.float64)
            coords = np.asarray(raw[n.coordinatesInputFeatureName][b], dtype=np.float64)
            gh, gw = p["grid"]
            e_conf = np.asarray(p["confidence"], dtype=np.float64).reshape(gh * gw, c)
            e_prob = np.asarray(p["probability"], dtype=np.float64).reshape(gh, gw, c)
            e_coords = np.asarray(p["coordinates"], dtype=np.float64).reshape(gh * gw, 4)
            if conf.shape != e_conf.shape or coords.shape != e_coords.shape:
                fail(result, f"Core ML gives {conf.shape} and {coords.shape}, the engine "
                             f"{e_conf.shape} and {e_coords.shape}: {p['input']}")
                print(json.dumps(finite(result)))
                return 1
            d = float(np.max(np.abs(coords - e_coords))) if np.all(np.isfinite(coords)) \
                else float("inf")
            if d > worst["coordinates"][0]:
                worst["coordinates"] = (d, p["input"])
            at_boxes = e_conf.max(axis=1) >= n.confidenceThreshold if c else np.zeros(0, bool)
            if np.any(at_boxes):
                d = float(np.max(np.abs(coords[at_boxes] - e_coords[at_boxes])))
                coords_at_boxes = max(coords_at_boxes, d if np.isfinite(d) else float("inf"))
            diff = np.abs(conf - e_conf)
            diff[~np.isfinite(conf)] = np.inf
            flipped = (conf == 0) != (e_conf == 0)
            peaks += int(np.count_nonzero(e_conf))
            same = diff[~flipped]
            agreeing = max(agreeing, float(same.max()) if same.size else 0.0)
            for k, cls in zip(*np.nonzero(flipped)):
                flips += 1
                i, j = divmod(int(k), gw)
                q = e_prob[i, j, cls]
                gap = e_prob[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2, cls].max() - q
                if gap <= args.tie_tolerance \
                        and abs(max(conf[k, cls], e_conf[k, cls]) - q) <= tolerance:
                    near_ties += 1
                    diff[k, cls] = 0.0
            d = float(np.max(diff)) if diff.size else 0.0
            if d > worst["confidence"][0]:
                worst["confidence"] = (d, p["input"])
            if "boxes" in p:
                # The NMS model on the network's outputs, as the pipeline wires them; the
                # engine clips its final boxes to the image, so these are clipped too.
                out = eval_spec.predict(nms, {n.confidenceInputFeatureName: conf,
                                              n.coordinatesInputFeatureName: coords})
                got = clip_boxes(np.asarray(out[n.coordinatesOutputFeatureName]).reshape(-1, 4))
                got_conf = np.asarray(out[n.confidenceOutputFeatureName]).reshape(len(got), c)
                got_labels = got_conf.argmax(axis=1) if len(got) else []
                boxes["engine"] += len(p["boxes"])
                boxes["coreml"] += len(got)
                # A cell that peaks for two classes is two engine boxes but one Core ML box.
                cells = [tuple(e[:4]) for e in p["boxes"]]
                boxes["engine_second_class_of_a_box"] += len(cells) - len(set(cells))
                for e in p["boxes"]:
                    if any(int(e[4]) == int(lab) and eval_spec.box_iou(e[:4], g) > 0.99
                           for g, lab in zip(got, got_labels)):
                        boxes["matched"] += 1
    result["max_abs_diff_coordinates"] = worst["coordinates"][0]
    result["max_abs_diff_confidence"] = worst["confidence"][0]
    result["max_abs_diff"] = max(worst["coordinates"][0], worst["confidence"][0])
    result["worst_input"] = max(worst.values(), key=lambda w: w[0])[1]
    result["max_abs_diff_confidence_same_peaks"] = agreeing
    result["max_abs_diff_coordinates_at_boxes"] = coords_at_boxes
    result["engine_peaks"] = peaks
    result["peak_flips"] = flips
    result["near_tie_peaks"] = near_ties
    if boxes["engine"] or boxes["coreml"]:
        result["boxes_after_nms"] = boxes
    result["tolerance"] = tolerance
    if not result["max_abs_diff"] <= tolerance:
        fail(result, f"max |Δ| = {result['max_abs_diff']:.3g} > {tolerance:g} "
                     f"(worst: {result['worst_input']})")
    print(json.dumps(finite(result)))
    return 0 if result["ok"] else 1


def clip_boxes(boxes):
    """Boxes (centre x, y, width, height, relative) clipped to the image [0, 1]²."""
    x0 = np.clip(boxes[:, 0] - boxes[:, 2] / 2, 0, 1)
    y0 = np.clip(boxes[:, 1] - boxes[:, 3] / 2, 0, 1)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2] / 2, 0, 1)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3] / 2, 0, 1)
    return np.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], axis=1)


def finite(obj):
    """`obj` with NaN / infinities as strings, so the report stays valid JSON."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite(v) for v in obj]
    return obj


# Cell texts the engine reads as missing (engine/src/data/table.rs), compared after trimming.
MISSING_TOKENS = {"", "NA", "N/A", "n/a", "NaN", "nan", "NAN", "null", "NULL", "Null", "None",
                  "none", "?"}


def table_examples(spec, path):
    """The Core ML inputs of every row of a CSV, by the input contract of a table model:
    numeric → float (NaN when missing or unreadable), boolean → 1/0 (NaN), categorical → the
    trimmed text ('' when missing). Column kinds come from metadata userDefined['columns']."""
    import csv

    columns = json.loads(spec.description.metadata.userDefined["columns"])
    kinds = {c["name"]: c["kind"] for c in columns}
    with open(path, newline="") as f:
        sample = f.read(4096)
        f.seek(0)
        delimiter = max([",", ";", "\t"], key=sample.split("\n")[0].count)
        reader = csv.DictReader(f, delimiter=delimiter)
        reader.fieldnames = [h.strip() for h in reader.fieldnames]
        rows = []
        for record in reader:
            features = {}
            for inp in spec.description.input:
                cell = (record.get(inp.name) or "").strip()
                missing = cell in MISSING_TOKENS
                kind = kinds[inp.name]
                if kind == "categorical":
                    features[inp.name] = "" if missing else cell
                elif kind == "boolean":
                    low = cell.lower()
                    features[inp.name] = (1.0 if low in ("true", "yes", "t", "y") else
                                          0.0 if low in ("false", "no", "f", "n") else float("nan"))
                else:
                    try:
                        v = float("nan") if missing else float(cell)
                    except ValueError:
                        v = float("nan")
                    features[inp.name] = v
            rows.append(features)
    return rows


def vector_features(spec, v):
    """A text model's input from the engine's own features: {"terms": {term: count}} (the
    engine's in-vocabulary term counts, for a dictionary input) or {"dim", "indices", "values"}
    (a sparse row, for a multi-array input)."""
    inp = spec.description.input[0]
    if "terms" in v:
        return {inp.name: {k: float(c) for k, c in v["terms"].items()}}
    dense = np.zeros(int(v["dim"]), dtype=np.float64)
    dense[np.asarray(v["indices"], dtype=np.int64)] = np.asarray(v["values"], dtype=np.float64)
    return {inp.name: dense}


def image_features(spec, path):
    from PIL import Image

    inp = spec.description.input[0]
    return {inp.name: np.asarray(Image.open(path).convert("RGB"))}


def sound_features(spec, p):
    """A sound model's input: the 16 kHz samples the engine decoded from the clip, added to each
    prediction line as {"samples": [...]} (the clip must be exactly one window long, so the
    engine's prediction is that one window's)."""
    inp = spec.description.input[0]
    if "samples" not in p:
        raise ValueError(f"prediction of {p.get('input')} has no 'samples' (the decoded clip)")
    x = np.asarray(p["samples"], dtype=np.float32).astype(np.float64)
    want = list(inp.type.multiArrayType.shape)
    if [len(x)] != want and len(x) != int(np.prod(want)):  # rank-3 windows come flattened
        raise ValueError(f"{p.get('input')}: {len(x)} samples, the model takes {want}")
    return {inp.name: x}


def outputs_of(spec, out, args):
    """(top label or None, {label: p} or None, value or None) from a model's outputs."""
    desc = spec.description
    if desc.predictedFeatureName:
        return out[desc.predictedFeatureName], out[desc.predictedProbabilitiesName], None
    if args.multi_label or args.sound:
        classes = json.loads(desc.metadata.userDefined["classes"])
        probs = np.asarray(out[desc.output[0].name], dtype=np.float64).reshape(-1)
        if len(probs) != len(classes):
            raise ValueError(f"{len(probs)} outputs for {len(classes)} classes")
        return None, dict(zip(classes, probs.tolist())), None
    return None, None, float(out[desc.output[0].name])


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, NotImplementedError, OSError) as e:
        print(json.dumps({"ok": False, "errors": [f"{type(e).__name__}: {e}"]}))
        sys.exit(1)
