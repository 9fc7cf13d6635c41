"""Checks eval_spec.py against plain-loop references on specs written by coremltools' own
NeuralNetworkBuilder and tree_ensemble builders (Apple's tool, so the conventions are Apple's,
not Lathe's).

usage: python -m unittest tests/coreml/test_eval_spec.py   (needs coremltools, numpy)
"""

import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval_spec  # noqa: E402

from coremltools.models import datatypes  # noqa: E402
from coremltools.models.neural_network import NeuralNetworkBuilder  # noqa: E402


def builder(c, h, w):
    return NeuralNetworkBuilder(
        [("data", datatypes.Array(c, h, w))], [("out", None)], disable_rank5_shape_mapping=False
    )


def f32(a):
    """Values as Core ML stores fp32 weights."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def naive_conv(x, w, b, stride, pads, groups):
    """x [C,H,W], w [O, C/groups, kh, kw], pads (top, bottom, left, right)."""
    t, bo, l, r = pads
    x = np.pad(x, ((0, 0), (t, bo), (l, r)))
    o, kc, kh, kw = w.shape
    ho = (x.shape[1] - kh) // stride + 1
    wo = (x.shape[2] - kw) // stride + 1
    y = np.zeros((o, ho, wo))
    per = o // groups
    for oc in range(o):
        g = oc // per
        for i in range(ho):
            for j in range(wo):
                patch = x[g * kc : (g + 1) * kc, i * stride : i * stride + kh, j * stride : j * stride + kw]
                y[oc, i, j] = np.sum(patch * w[oc]) + b[oc]
    return y


class EvaluatorMatchesReferences(unittest.TestCase):
    def setUp(self):
        self.rng = np.random.default_rng(7)

    def run_net(self, b, x):
        blobs = eval_spec.run_layers(b.spec.neuralNetwork.layers, {"data": x[None]})
        return blobs["out"][0]

    def conv_case(self, groups, kc, out, stride, pads=(0, 0, 0, 0), mode="valid"):
        c, h, w = kc * groups, 7, 8
        x = self.rng.normal(size=(c, h, w))
        wt = f32(self.rng.normal(size=(out, kc, 3, 3)))
        bias = f32(self.rng.normal(size=out))
        b = builder(c, h, w)
        b.add_convolution(
            "conv", kc, out, 3, 3, stride, stride, mode, groups,
            wt.transpose(2, 3, 1, 0), bias, True, input_name="data", output_name="out",
            padding_top=pads[0], padding_bottom=pads[1], padding_left=pads[2], padding_right=pads[3],
        )
        return self.run_net(b, x), x, wt, bias

    def test_dense_convolution_with_asymmetric_valid_padding(self):
        got, x, wt, bias = self.conv_case(1, 4, 5, 2, pads=(1, 0, 0, 2))
        np.testing.assert_allclose(got, naive_conv(x, wt, bias, 2, (1, 0, 0, 2), 1), atol=1e-9)

    def test_depthwise_and_grouped_convolution(self):
        got, x, wt, bias = self.conv_case(4, 1, 4, 1, pads=(1, 1, 1, 1))
        np.testing.assert_allclose(got, naive_conv(x, wt, bias, 1, (1, 1, 1, 1), 4), atol=1e-9)
        got, x, wt, bias = self.conv_case(2, 3, 4, 2, pads=(1, 1, 1, 1))
        np.testing.assert_allclose(got, naive_conv(x, wt, bias, 2, (1, 1, 1, 1), 2), atol=1e-9)

    def test_same_padding_is_bottom_right_heavy(self):
        # 7x8 input, k=3, s=2: H pads (1, 1), W pads (0, 1).
        got, x, wt, bias = self.conv_case(1, 2, 3, 2, mode="same")
        np.testing.assert_allclose(got, naive_conv(x, wt, bias, 2, (1, 1, 0, 1), 1), atol=1e-9)

    def test_relu6_as_two_thresholds_padding_scale_add(self):
        x = self.rng.normal(scale=5, size=(3, 4, 4))
        b = builder(3, 4, 4)
        b.add_unary("u1", "data", "neg", "threshold", alpha=-6.0, scale=-1.0)
        b.add_unary("u2", "neg", "r6", "threshold", alpha=0.0, scale=-1.0)
        b.add_padding("pad", left=0, right=1, top=2, bottom=0, value=0, input_name="r6", output_name="p")
        b.add_scale("s", np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.0, -1.0]), True,
                    input_name="p", output_name="sc", shape_scale=[3], shape_bias=[3])
        b.add_elementwise("add", ["sc", "p"], "out", "ADD")
        got = self.run_net(b, x)
        p = np.pad(np.clip(x, 0, 6), ((0, 0), (2, 0), (0, 1)))
        want = p * np.array([1.0, 2.0, 3.0])[:, None, None] + np.array([0.5, 0.0, -1.0])[:, None, None] + p
        np.testing.assert_allclose(got, want, atol=1e-12)

    def test_global_pool_inner_product_softmax_and_fp16_weights(self):
        x = self.rng.normal(size=(4, 3, 3))
        w = f32(self.rng.normal(size=(2, 4)))
        bias = f32(self.rng.normal(size=2))
        b = builder(4, 3, 3)
        b.add_pooling("gap", 1, 1, 1, 1, "AVERAGE", "VALID", input_name="data", output_name="f",
                      is_global=True)
        b.add_inner_product("fc", w, bias, 4, 2, True, input_name="f", output_name="logits")
        b.add_softmax("sm", "logits", "out")
        got = self.run_net(b, x).reshape(-1)
        z = w @ x.mean(axis=(1, 2)) + bias
        np.testing.assert_allclose(got, np.exp(z) / np.exp(z).sum(), atol=1e-12)
        # The same weights stored as fp16 bytes read back as their half-precision values.
        fc = b.spec.neuralNetwork.layers[1].innerProduct
        fc.weights.float16Value = w.astype("<f2").tobytes()
        del fc.weights.floatValue[:]
        got16 = eval_spec.weights(fc.weights)
        np.testing.assert_array_equal(got16, w.astype(np.float16).astype(np.float64).reshape(-1))

    def test_reshape_permute_reduce_slice(self):
        # The sound front end's shape moves: a row of samples, a (band, time) → (time, band)
        # permute, reductions over time, and slices of rows / columns.
        x = self.rng.normal(size=(12, 1, 1))
        b = builder(12, 1, 1)
        b.add_reshape("r", "data", "row", (1, 3, 4), 0)
        b.add_reshape("r2", "row", "last", (2, 3, 2), 1)
        b.add_permute("p", (0, 2, 3, 1), "row", "perm")
        b.add_reduce("mean", "perm", "m", "H", "AVG")
        b.add_reduce("max", "perm", "mx", "H", "MAX")
        b.add_reduce("sq", "perm", "sq", "CHW", "SUMSQUARE")
        b.add_slice("s", "perm", "sl", "height", start_index=1, end_index=4, stride=2)
        b.add_slice("s2", "perm", "out", "channel", start_index=1, end_index=3, stride=1)
        blobs = eval_spec.run_layers(b.spec.neuralNetwork.layers, {"data": x[None]})
        row = x.reshape(1, 3, 4)
        np.testing.assert_array_equal(blobs["row"][0], row)
        # CHANNEL_LAST: values read in H, W, C order (C = 1 here), written as [H, W, C].
        np.testing.assert_array_equal(blobs["last"][0], x.reshape(3, 2, 2).transpose(2, 0, 1))
        perm = row.transpose(1, 2, 0)  # output dim i = input dim axis[i]: [H, W, C]
        self.assertEqual(blobs["perm"].shape, (1, 3, 4, 1))
        np.testing.assert_array_equal(blobs["perm"][0], perm)
        np.testing.assert_allclose(blobs["m"][0], perm.mean(axis=1, keepdims=True), atol=1e-12)
        np.testing.assert_array_equal(blobs["mx"][0], perm.max(axis=1, keepdims=True))
        self.assertAlmostEqual(float(blobs["sq"].reshape(-1)[0]), float((x ** 2).sum()), places=10)
        np.testing.assert_array_equal(blobs["sl"][0], perm[:, 1:4:2])
        np.testing.assert_array_equal(blobs["out"][0], perm[1:3])

    def test_strided_row_convolution_power_log_and_max_pool(self):
        # A 1×k kernel striding along W only (the DFT as a convolution), x², log(x + shift),
        # and 2×2 max pooling in floor mode on an odd size.
        x = self.rng.normal(size=(1, 1, 23))
        w = f32(self.rng.normal(size=(4, 1, 1, 5)))
        b = builder(1, 1, 23)
        b.add_convolution("dft", 1, 4, 1, 5, 1, 3, "valid", 1, w.transpose(2, 3, 1, 0), None, False,
                          input_name="data", output_name="spec")
        b.add_unary("pow", "spec", "power", "power", alpha=2.0)
        b.add_unary("log", "power", "log", "log", shift=1e-3)
        b.add_reshape("img", "log", "img", (1, 4, 7), 0)
        b.add_pooling("pool", 2, 2, 2, 2, "MAX", "VALID", input_name="img", output_name="out")
        got = self.run_net(b, x)
        frames = np.stack([x[0, 0, 3 * t : 3 * t + 5] for t in range(7)])  # [7, 5]
        spec = w[:, 0, 0, :] @ frames.T  # [4, 7]
        logp = np.log(spec ** 2 + float(np.float32(1e-3)))  # the shift is stored as fp32
        self.assertEqual(got.shape, (1, 2, 3))
        want = np.array([[logp[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].max() for j in range(3)]
                         for i in range(2)])
        np.testing.assert_allclose(got[0], want, atol=1e-12)

    def test_multiply_and_add_broadcast_only_as_the_spec_allows(self):
        x = self.rng.normal(size=(3, 2, 4))
        b = builder(3, 2, 4)
        b.add_reduce("mean", "data", "m", "C", "AVG")  # [1, 2, 4]
        b.add_unary("inv", "m", "inv", "inverse", epsilon=1e-8)
        b.add_elementwise("mul", ["data", "inv"], "scaled", "MULTIPLY")
        b.add_elementwise("add", ["scaled", "m"], "out", "ADD")
        got = self.run_net(b, x)
        m = x.mean(axis=0, keepdims=True)
        np.testing.assert_allclose(got, x / (m + 1e-8) + m, rtol=1e-10)
        bad = builder(3, 2, 4)
        bad.add_reduce("mean", "data", "m", "W", "AVG")  # [3, 2, 1]: not a broadcast Core ML knows
        bad.add_elementwise("mul", ["data", "m"], "out", "MULTIPLY")
        with self.assertRaises(ValueError):
            self.run_net(bad, x)

    def test_unknown_layers_are_refused(self):
        b = builder(1, 2, 2)
        b.add_elementwise("max", ["data", "data"], "out", "MAX")
        with self.assertRaises(NotImplementedError):
            self.run_net(b, np.zeros((1, 2, 2)))


class DetectorLayersMatchReferences(unittest.TestCase):
    """The layers a detector export uses, against loops over explicit indices."""

    def setUp(self):
        self.rng = np.random.default_rng(11)

    def run_net(self, b, x, out="out"):
        blobs = eval_spec.run_layers(b.spec.neuralNetwork.layers, {"data": x[None]})
        return blobs[out][0]

    def test_upsample_concat_slice(self):
        x = self.rng.normal(size=(2, 3, 4))
        b = builder(2, 3, 4)
        b.add_upsample("up", 2, 3, "data", "up", mode="NN")
        b.add_slice("sl", "up", "sl", "channel", start_index=1, end_index=2)
        b.add_elementwise("cat", ["up", "sl"], "out", "CONCAT")
        got = self.run_net(b, x)
        self.assertEqual(got.shape, (3, 6, 12))
        for c in range(2):
            for i in range(6):
                for j in range(12):
                    self.assertEqual(got[c, i, j], x[c, i // 2, j // 3])
        np.testing.assert_array_equal(got[2], got[1])
        # Slicing the width from the end: -1 is the last index, exclusive.
        b = builder(2, 3, 4)
        b.add_slice("sl", "data", "out", "width", start_index=1, end_index=-1)
        np.testing.assert_array_equal(self.run_net(b, x), x[:, :, 1:3])

    def test_reshape_and_permute_to_rows_per_cell(self):
        # [C, H, W] -> [C, H*W, 1] -> permute (0, 2, 1, 3) -> [H*W, C, 1]: row k = cell k.
        c, h, w = 3, 2, 4
        x = self.rng.normal(size=(c, h, w))
        b = builder(c, h, w)
        b.add_reshape("flat", "data", "flat", (c, h * w, 1), 0)
        b.add_permute("perm", (0, 2, 1, 3), "flat", "out")
        got = self.run_net(b, x)
        self.assertEqual(got.shape, (h * w, c, 1))
        for k in range(h * w):
            for ch in range(c):
                self.assertEqual(got[k, ch, 0], x[ch, k // w, k % w])
        # CHANNEL_LAST reshape reads the input in H, W, C order.
        b = builder(c, h, w)
        b.add_reshape("flat", "data", "out", (1, 1, c * h * w), 1)
        got = self.run_net(b, x)
        np.testing.assert_array_equal(got.reshape(-1), x.transpose(1, 2, 0).reshape(-1))

    def test_windowed_max_pool_threshold_scale_and_multiply(self):
        x = self.rng.uniform(size=(2, 4, 5))
        b = builder(2, 4, 5)
        b.add_padding("pad", left=1, right=1, top=1, bottom=1, value=0, input_name="data",
                      output_name="p")
        b.add_pooling("max", 3, 3, 1, 1, "MAX", "VALID", input_name="p", output_name="m")
        b.add_unary("t", "m", "t", "threshold", alpha=-0.5, scale=-2.0)
        b.add_elementwise("mul", ["t", "data"], "out", "MULTIPLY")
        got = self.run_net(b, x)
        m = np.zeros_like(x)
        for c in range(2):
            for i in range(4):
                for j in range(5):
                    m[c, i, j] = x[c, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2].max()
        np.testing.assert_allclose(got, np.maximum(-2.0 * m, -0.5) * x, atol=1e-12)

    def test_bias_of_a_whole_map_and_exp_with_scale(self):
        x = self.rng.normal(size=(2, 3, 3))
        grid = self.rng.normal(size=(2, 3, 3))
        b = builder(2, 3, 3)
        b.add_bias("b", f32(grid), "data", "b", shape_bias=[2, 3, 3])
        b.add_unary("e", "b", "out", "exp", scale=-1.0)
        np.testing.assert_allclose(self.run_net(b, x), np.exp(-(x + f32(grid))), rtol=1e-12)


def nms_spec(per_class, iou=0.5, confidence=0.3, optional_inputs=True):
    """A NonMaximumSuppression model written field by field from the proto."""
    from coremltools.proto import Model_pb2

    m = Model_pb2.Model()
    m.specificationVersion = 3
    n = m.nonMaximumSuppression
    n.pickTop.perClass = per_class
    n.iouThreshold = iou
    n.confidenceThreshold = confidence
    n.confidenceInputFeatureName = "raw_confidence"
    n.coordinatesInputFeatureName = "raw_coordinates"
    n.confidenceOutputFeatureName = "confidence"
    n.coordinatesOutputFeatureName = "coordinates"
    n.stringClassLabels.vector.extend(["a", "b"])
    for name in ("raw_confidence", "raw_coordinates"):
        f = m.description.input.add()
        f.name = name
        f.type.multiArrayType.dataType = Model_pb2.ArrayFeatureType.DOUBLE
    if optional_inputs:
        n.iouThresholdInputFeatureName = "iouThreshold"
        n.confidenceThresholdInputFeatureName = "confidenceThreshold"
        for name in ("iouThreshold", "confidenceThreshold"):
            f = m.description.input.add()
            f.name = name
            f.type.doubleType.SetInParent()
            f.type.isOptional = True
    for name in ("confidence", "coordinates"):
        f = m.description.output.add()
        f.name = name
        f.type.multiArrayType.dataType = Model_pb2.ArrayFeatureType.DOUBLE
    return m


class NonMaximumSuppressionMatchesHandComputedBoxes(unittest.TestCase):
    # Boxes (cx, cy, w, h): 0 and 1 (labels a and b) overlap with IoU 0.82, 2 is far away, 3
    # overlaps 0 and is below the confidence threshold.
    coords = np.array([[0.5, 0.5, 0.2, 0.2], [0.5, 0.52, 0.2, 0.2], [0.1, 0.1, 0.1, 0.1],
                       [0.52, 0.5, 0.2, 0.2]])
    conf = np.array([[0.9, 0.0], [0.0, 0.8], [0.4, 0.1], [0.2, 0.1]])

    def test_iou(self):
        # Same size, shifted by 0.02 of 0.2: intersection 0.2 * 0.18, union 2 * 0.04 - that.
        i = 0.2 * 0.18
        self.assertAlmostEqual(eval_spec.box_iou(self.coords[0], self.coords[1]), i / (0.08 - i))
        self.assertEqual(eval_spec.box_iou(self.coords[0], self.coords[2]), 0.0)

    def test_per_class_keeps_overlapping_boxes_of_other_labels(self):
        out = eval_spec.predict(nms_spec(True), {"raw_confidence": self.conf,
                                                 "raw_coordinates": self.coords})
        np.testing.assert_array_equal(out["confidence"], self.conf[[0, 1, 2]])
        np.testing.assert_array_equal(out["coordinates"], self.coords[[0, 1, 2]])

    def test_class_agnostic_and_threshold_overrides(self):
        feats = {"raw_confidence": self.conf, "raw_coordinates": self.coords}
        out = eval_spec.predict(nms_spec(False), feats)
        np.testing.assert_array_equal(out["coordinates"], self.coords[[0, 2]])
        # Overrides through the optional inputs: IoU 0.9 keeps box 1; confidence 0.5 drops box 2.
        out = eval_spec.predict(nms_spec(False), dict(feats, iouThreshold=0.9,
                                                      confidenceThreshold=0.5))
        np.testing.assert_array_equal(out["coordinates"], self.coords[[0, 1]])
        out = eval_spec.predict(nms_spec(False), dict(feats, confidenceThreshold=0.1))
        self.assertEqual(len(out["coordinates"]), 2)  # box 3 (0.2) overlaps box 0


class PipelineWithOptionalInputs(unittest.TestCase):
    def test_network_then_nms_runs_without_the_optional_inputs(self):
        from coremltools.proto import Model_pb2

        # A network that passes [2, 2] confidences and [2, 4] coordinates through (linear).
        b = NeuralNetworkBuilder([("c_in", datatypes.Array(2, 2, 1)), ("x_in", datatypes.Array(2, 4, 1))],
                                 [("raw_confidence", None), ("raw_coordinates", None)],
                                 disable_rank5_shape_mapping=False)
        b.add_activation("c", "LINEAR", "c_in", "raw_confidence", params=[1.0, 0.0])
        b.add_activation("x", "LINEAR", "x_in", "raw_coordinates", params=[1.0, 0.0])
        for o, shape in zip(b.spec.description.output, ([2, 2], [2, 4])):
            o.type.multiArrayType.shape[:] = shape
        p = Model_pb2.Model()
        p.specificationVersion = 3
        p.pipeline.models.add().CopyFrom(b.spec)
        p.pipeline.models.add().CopyFrom(nms_spec(True))
        conf = np.array([[0.9, 0.0], [0.0, 0.1]])
        coords = np.array([[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1]])
        for name in ("confidence", "coordinates"):
            p.description.output.add().name = name
        out = eval_spec.predict(p, {"c_in": conf.reshape(2, 2, 1), "x_in": coords.reshape(2, 4, 1)})
        np.testing.assert_array_equal(out["coordinates"], coords[:1])
        np.testing.assert_array_equal(out["confidence"], conf[:1])


class WholeModelsMatchReferences(unittest.TestCase):
    """Tree ensembles written by coremltools' own tree_ensemble builders."""

    def test_tree_regressor_branch_modes_and_missing_values(self):
        from coremltools.models.tree_ensemble import TreeEnsembleRegressor

        t = TreeEnsembleRegressor([("x", datatypes.Array(2))], "y")
        t.set_default_prediction_value(0.5)
        # tree 0: x0 <= 1 ? (x1 == 3 ? 10 : 20) : 30 — NaN in x0 goes to the true child.
        t.add_branch_node(0, 0, 0, 1.0, "BranchOnValueLessThanEqual", 1, 2,
                          missing_value_tracks_true_child=True)
        t.add_branch_node(0, 1, 1, 3.0, "BranchOnValueEqual", 3, 4)
        t.add_leaf_node(0, 3, 10.0)
        t.add_leaf_node(0, 4, 20.0)
        t.add_leaf_node(0, 2, 30.0)
        # tree 1: x1 > 0 ? 1 : -1, NaN to the false child.
        t.add_branch_node(1, 0, 1, 0.0, "BranchOnValueGreaterThan", 1, 2)
        t.add_leaf_node(1, 1, 1.0)
        t.add_leaf_node(1, 2, -1.0)
        for x, want in [((0.5, 3.0), 0.5 + 10 + 1), ((1.0, 2.0), 0.5 + 20 + 1),
                        ((1.5, -2.0), 0.5 + 30 - 1), ((float("nan"), 3.0), 0.5 + 10 + 1),
                        ((5.0, float("nan")), 0.5 + 30 - 1)]:
            got = eval_spec.predict(t.spec, {"x": np.array(x)})["y"]
            self.assertAlmostEqual(got, want, places=12, msg=str(x))

    def test_tree_classifier_softmax_and_logistic(self):
        from coremltools.models.tree_ensemble import TreeEnsembleClassifier

        t = TreeEnsembleClassifier([("x", datatypes.Array(1))], ["a", "b", "c"], "label")
        t.set_default_prediction_value([0.0, 0.0, 0.0])
        t.set_post_evaluation_transform("Classification_SoftMax")
        t.add_branch_node(0, 0, 0, 0.0, "BranchOnValueLessThan", 1, 2)
        t.add_leaf_node(0, 1, {0: 2.0, 2: 1.0})
        t.add_leaf_node(0, 2, {1: 3.0})
        out = eval_spec.predict(t.spec, {"x": np.array([-1.0])})
        z = np.array([2.0, 0.0, 1.0])
        p = np.exp(z) / np.exp(z).sum()
        self.assertEqual(out["label"], "a")
        np.testing.assert_allclose([out["classProbability"][k] for k in "abc"], p, atol=1e-12)

        b = TreeEnsembleClassifier([("x", datatypes.Array(1))], ["no", "yes"], "label")
        b.set_default_prediction_value([0.0])
        b.set_post_evaluation_transform("Regression_Logistic")
        b.add_leaf_node(0, 0, 0.7)
        out = eval_spec.predict(b.spec, {"x": np.array([0.0])})
        p = 1 / (1 + np.exp(-0.7))
        self.assertEqual(out["label"], "yes")
        self.assertAlmostEqual(out["classProbability"]["yes"], p, places=12)
        self.assertAlmostEqual(out["classProbability"]["no"], 1 - p, places=12)

    def test_network_regressor_must_name_its_prediction(self):
        b = NeuralNetworkBuilder([("x", datatypes.Array(2))], [("y", datatypes.Double())],
                                 mode="regressor")
        b.add_inner_product("ip", np.array([[2.0, -1.0]]), np.array([0.5]), 2, 1, True, "x", "y")
        if not b.spec.description.predictedFeatureName:
            b.spec.description.predictedFeatureName = "y"
        out = eval_spec.predict(b.spec, {"x": np.array([1.0, 3.0])})
        self.assertAlmostEqual(out["y"], 2.0 - 3.0 + 0.5, places=12)
        b.spec.description.predictedFeatureName = ""
        with self.assertRaises(ValueError):
            eval_spec.predict(b.spec, {"x": np.array([1.0, 3.0])})


if __name__ == "__main__":
    unittest.main()
