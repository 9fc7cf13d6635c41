"""An independent numpy evaluator of Core ML NeuralNetwork specifications.

Core ML itself only runs on Apple platforms, so Lathe checks its exports on Linux by computing
what a spec says, layer by layer, straight from the protobuf (parsed by coremltools), in float64,
and comparing with the engine's own predictions. Nothing here is shared with the Rust exporter:
the layer semantics are written from Apple's NeuralNetwork.proto documentation.

Blobs are numpy arrays shaped [N, C, H, W] (a batch of N). Supported: the image scaler and mean
image preprocessing; convolution (groups, valid/same padding, no dilation), padding, activation,
unary, pooling (global or windowed), inner product, softmax, scale, bias, add, multiply
(with the spec's limited broadcasting), batchnorm, concat, flatten, upsample (nearest), slice,
reshape, permute, reduce. Unknown layers raise, so a model using one cannot pass silently. Whole
models (`predict`): pipelines, feature engineering, tree ensembles, GLMs, neural networks and
NonMaximumSuppression.
"""

import numpy as np


def weights(wp, what="weights"):
    """WeightParams as float64: fp32 values or little-endian fp16 bytes."""
    if len(wp.floatValue):
        return np.asarray(wp.floatValue, dtype=np.float64)
    if len(wp.float16Value):
        return np.frombuffer(wp.float16Value, dtype="<f2").astype(np.float64)
    if len(wp.rawValue) or len(wp.int8RawValue):
        raise NotImplementedError(f"quantized {what} are not supported by this evaluator")
    return np.zeros(0, dtype=np.float64)


def _pad_hw(x, top, bottom, left, right, value=0.0, mode="constant"):
    widths = ((0, 0), (0, 0), (top, bottom), (left, right))
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=value)
    return np.pad(x, widths, mode=mode)


def _border(amounts):
    """BorderAmounts → (top, bottom, left, right)."""
    b = list(amounts.borderAmounts)
    if not b:
        return 0, 0, 0, 0
    if len(b) != 2:
        raise ValueError("borderAmounts must have 2 entries [H, W]")
    return b[0].startEdgeSize, b[0].endEdgeSize, b[1].startEdgeSize, b[1].endEdgeSize


def _same_padding(size, kernel, stride, top_left_heavy):
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + kernel - size)
    small = total // 2
    return (total - small, small) if top_left_heavy else (small, total - small)


def _windows(x, kh, kw, sh, sw):
    """Yields (i, j, view) with view = x[..., i::sh, j::sw] cropped to the output size."""
    h, w = x.shape[2], x.shape[3]
    ho = (h - kh) // sh + 1
    wo = (w - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"kernel {kh}x{kw} larger than padded input {h}x{w}")
    for i in range(kh):
        for j in range(kw):
            yield i, j, x[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]


def convolution(p, x):
    if p.isDeconvolution:
        raise NotImplementedError("deconvolution")
    if any(d != 1 for d in p.dilationFactor):
        raise NotImplementedError("dilated convolution")
    kh, kw = list(p.kernelSize) or [3, 3]
    sh, sw = list(p.stride) or [1, 1]
    groups = p.nGroups or 1
    cout, kc = p.outputChannels, p.kernelChannels
    cin = x.shape[1]
    if kc * groups != cin:
        raise ValueError(f"convolution expects {kc * groups} input channels, got {cin}")
    w = weights(p.weights).reshape(cout, kc, kh, kw)
    kind = p.WhichOneof("ConvolutionPaddingType")
    if kind == "same":
        top_left = p.same.asymmetryMode == 1
        t, b = _same_padding(x.shape[2], kh, sh, top_left)
        l, r = _same_padding(x.shape[3], kw, sw, top_left)
    else:
        t, b, l, r = _border(p.valid.paddingAmounts)
    x = _pad_hw(x, t, b, l, r)
    per_group = cout // groups
    if kc == 1 and per_group == 1:
        # Depthwise: one filter per channel.
        out = None
        for i, j, v in _windows(x, kh, kw, sh, sw):
            term = v * w[:, 0, i, j][None, :, None, None]
            out = term if out is None else out + term
    else:
        outs = []
        for g in range(groups):
            xg = x[:, g * kc : (g + 1) * kc]
            wg = w[g * per_group : (g + 1) * per_group]
            acc = None
            for i, j, v in _windows(xg, kh, kw, sh, sw):
                # [N, kc, Ho, Wo] x [per_group, kc] -> [N, Ho, Wo, per_group]
                term = np.tensordot(v, wg[:, :, i, j], axes=([1], [1]))
                acc = term if acc is None else acc + term
            outs.append(acc.transpose(0, 3, 1, 2))
        out = np.concatenate(outs, axis=1)
    if p.hasBias:
        out = out + weights(p.bias, "bias")[None, :, None, None]
    return out


def padding(p, x):
    t, b, l, r = _border(p.paddingAmounts)
    kind = p.WhichOneof("PaddingType")
    if kind == "constant":
        return _pad_hw(x, t, b, l, r, value=p.constant.value)
    if kind == "reflection":
        return _pad_hw(x, t, b, l, r, mode="reflect")
    if kind == "replication":
        return _pad_hw(x, t, b, l, r, mode="edge")
    raise NotImplementedError(f"padding type {kind}")


def activation(p, x):
    kind = p.WhichOneof("NonlinearityType")
    if kind == "ReLU":
        return np.maximum(x, 0.0)
    if kind == "linear":
        return p.linear.alpha * x + p.linear.beta
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if kind == "tanh":
        return np.tanh(x)
    if kind == "leakyReLU":
        return np.where(x >= 0, x, p.leakyReLU.alpha * x)
    if kind == "sigmoidHard":
        return np.clip(p.sigmoidHard.alpha * x + p.sigmoidHard.beta, 0.0, 1.0)
    if kind == "softplus":
        return np.logaddexp(0.0, x)
    raise NotImplementedError(f"activation {kind}")


def unary(p, x):
    scale = p.scale if p.scale != 0 else 1.0
    x = scale * x + p.shift
    eps = p.epsilon if p.epsilon != 0 else 1e-6
    op = p.type
    # Operation enum: SQRT 0, RSQRT 1, INVERSE 2, POWER 3, EXP 4, LOG 5, ABS 6, THRESHOLD 7.
    if op == 0:
        return np.sqrt(x)
    if op == 1:
        return 1.0 / np.sqrt(x + eps)
    if op == 2:
        return 1.0 / (x + eps)
    if op == 3:
        return np.power(x, p.alpha)
    if op == 4:
        return np.exp(x)
    if op == 5:
        return np.log(x)
    if op == 6:
        return np.abs(x)
    if op == 7:
        return np.maximum(x, p.alpha)
    raise NotImplementedError(f"unary operation {op}")


def pooling(p, x):
    # PoolingType: MAX 0, AVERAGE 1, L2 2.
    if p.globalPooling:
        if p.type == 0:
            return x.max(axis=(2, 3), keepdims=True)
        if p.type == 1:
            return x.mean(axis=(2, 3), keepdims=True)
        raise NotImplementedError("L2 pooling")
    kh, kw = list(p.kernelSize) or [3, 3]
    sh, sw = list(p.stride) or [1, 1]
    kind = p.WhichOneof("PoolingPaddingType")
    if kind != "valid":
        raise NotImplementedError(f"pooling padding {kind}")
    t, b, l, r = _border(p.valid.paddingAmounts)
    if p.type == 0:
        xp = _pad_hw(x, t, b, l, r, value=-np.inf)
        return np.max(np.stack([v for _, _, v in _windows(xp, kh, kw, sh, sw)]), axis=0)
    if p.type == 1:
        xp = _pad_hw(x, t, b, l, r)
        total = sum(v for _, _, v in _windows(xp, kh, kw, sh, sw))
        if p.avgPoolExcludePadding:
            ones = _pad_hw(np.ones((1, 1) + x.shape[2:]), t, b, l, r)
            count = sum(v for _, _, v in _windows(ones, kh, kw, sh, sw))
            return total / count
        return total / (kh * kw)
    raise NotImplementedError("L2 pooling")


def inner_product(p, x):
    n = x.shape[0]
    flat = x.reshape(n, -1)
    if flat.shape[1] != p.inputChannels:
        raise ValueError(f"innerProduct expects {p.inputChannels} inputs, got {flat.shape[1]}")
    w = weights(p.weights).reshape(p.outputChannels, p.inputChannels)
    y = flat @ w.T
    if p.hasBias:
        y = y + weights(p.bias, "bias")[None, :]
    return y.reshape(n, p.outputChannels, 1, 1)


def softmax(_p, x):
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _broadcast(values, shape, c, h, w):
    shape = list(shape)
    if shape in ([1], []):
        return values.reshape(1, 1, 1, 1)
    if shape == [c]:
        return values.reshape(1, c, 1, 1)
    if len(shape) == 3:
        return values.reshape(1, *shape)
    raise ValueError(f"unsupported scale/bias shape {shape}")


def scale(p, x):
    _, c, h, w = x.shape
    y = x * _broadcast(weights(p.scale, "scale"), p.shapeScale, c, h, w)
    if p.hasBias:
        y = y + _broadcast(weights(p.bias, "bias"), p.shapeBias, c, h, w)
    return y


def bias(p, x):
    _, c, h, w = x.shape
    return x + _broadcast(weights(p.bias, "bias"), p.shape, c, h, w)


def batchnorm(p, x):
    if p.computeMeanVar:
        raise NotImplementedError("batchnorm with computed statistics")
    eps = p.epsilon if p.epsilon != 0 else 1e-5
    shape = (1, -1, 1, 1)
    g, b = weights(p.gamma).reshape(shape), weights(p.beta).reshape(shape)
    m, v = weights(p.mean).reshape(shape), weights(p.variance).reshape(shape)
    return g * (x - m) / np.sqrt(v + eps) + b


def l2normalize(p, x):
    eps = p.epsilon if p.epsilon != 0 else 1e-6
    n = x.shape[0]
    norm = np.sqrt((x.reshape(n, -1) ** 2).sum(axis=1) + eps)
    return x / norm.reshape(n, 1, 1, 1)


def flatten(p, x):
    n = x.shape[0]
    if p.mode == 1:  # CHANNEL_LAST
        x = x.transpose(0, 2, 3, 1)
    return x.reshape(n, -1, 1, 1)


def upsample(p, x):
    # InterpolationMode: NN 0, BILINEAR 1. Nearest neighbour: y[i, j] = x[i // fh, j // fw].
    if len(p.fractionalScalingFactor):
        raise NotImplementedError("fractional upsampling")
    if p.mode != 0:
        raise NotImplementedError("bilinear upsampling")
    fh, fw = list(p.scalingFactor) or [1, 1]
    return np.repeat(np.repeat(x, fh, axis=2), fw, axis=3)


def reshape(p, x):
    """ReshapeLayer: targetShape [C, H, W] (or [1, C, H, W]: sequence length 1) per example.
    CHANNEL_FIRST reads and writes in C, H, W order; CHANNEL_LAST reads in H, W, C order and
    writes [H, W, C] before moving C first."""
    target = list(p.targetShape)
    if len(target) == 4:
        if target[0] != 1:
            raise NotImplementedError("reshape to a sequence length other than 1")
        target = target[1:]
    if len(target) != 3:
        raise ValueError(f"reshape targetShape must have 3 or 4 entries, has {len(target)}")
    n = x.shape[0]
    if int(np.prod(target)) != x[0].size:
        raise ValueError(f"cannot reshape {list(x.shape[1:])} to {target}")
    if p.mode == 1:  # CHANNEL_LAST
        c, h, w = target
        return x.transpose(0, 2, 3, 1).reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return x.reshape(n, *target)


def permute(p, x):
    """PermuteLayer: `axis` orders [Seq, C, H, W]; output dimension i is input dimension axis[i].
    Blobs here have sequence length 1, so axis[0] must stay 0."""
    axis = list(p.axis) or [0, 1, 2, 3]
    if sorted(axis) != [0, 1, 2, 3]:
        raise ValueError(f"permute axis {axis} is not a permutation of [0, 1, 2, 3]")
    if axis[0] != 0:
        raise NotImplementedError("permute that moves the sequence axis")
    return x.transpose(0, axis[1], axis[2], axis[3])


# ReduceAxis: CHW 0, HW 1, C 2, H 3, W 4 → numpy axes of [N, C, H, W].
_REDUCE_AXES = {0: (1, 2, 3), 1: (2, 3), 2: (1,), 3: (2,), 4: (3,)}


def reduce(p, x):
    """ReduceLayer over `axis`, keeping the reduced dimensions as 1."""
    axes = _REDUCE_AXES.get(p.axis)
    if axes is None:
        raise ValueError(f"reduce axis {p.axis}")
    eps = p.epsilon if p.epsilon != 0 else 1e-6
    mode = p.mode
    # ReduceOperation: SUM 0, AVG 1, PROD 2, LOGSUM 3, SUMSQUARE 4, L1 5, L2 6, MAX 7, MIN 8.
    if mode == 0:
        return x.sum(axis=axes, keepdims=True)
    if mode == 1:
        return x.mean(axis=axes, keepdims=True)
    if mode == 2:
        return x.prod(axis=axes, keepdims=True)
    if mode == 3:
        return np.log(x + eps).sum(axis=axes, keepdims=True)
    if mode == 4:
        return (x * x).sum(axis=axes, keepdims=True)
    if mode == 5:
        return np.abs(x).sum(axis=axes, keepdims=True)
    if mode == 6:
        return np.sqrt((x * x).sum(axis=axes, keepdims=True))
    if mode == 7:
        return x.max(axis=axes, keepdims=True)
    if mode == 8:
        return x.min(axis=axes, keepdims=True)
    raise NotImplementedError(f"reduce mode {mode}")


def slice_layer(p, x):
    """SliceLayer: [startIndex, endIndex) with `stride` along C (0), H (1) or W (2); negative
    indices count from the end (-1 is N - 1)."""
    axis = {0: 1, 1: 2, 2: 3}.get(p.axis)
    if axis is None:
        raise ValueError(f"slice axis {p.axis}")
    size = x.shape[axis]
    start = p.startIndex + size if p.startIndex < 0 else p.startIndex
    end = p.endIndex + size if p.endIndex < 0 else p.endIndex
    stride = p.stride or 1
    if not 0 <= start < end <= size:
        raise ValueError(f"slice [{p.startIndex}, {p.endIndex}) of a dimension of {size}")
    index = [slice(None)] * 4
    index[axis] = slice(start, end, stride)
    return x[tuple(index)]


def _broadcastable(xs):
    """Elementwise layers broadcast only [1,1,1], [C,1,1] and [1,H,W] against [C,H,W]."""
    full = max(xs, key=lambda a: a[0].size).shape[1:]
    for a in xs:
        s = a.shape[1:]
        ok = s == full or s == (1, 1, 1) or s == (full[0], 1, 1) or s == (1,) + full[1:]
        if not ok:
            raise ValueError(f"shapes {[list(a.shape[1:]) for a in xs]} are not broadcastable")
    if xs[0].shape[1:] != full:
        # The output has the first input's shape, so only later inputs may be broadcast.
        raise ValueError(f"first input {list(xs[0].shape[1:])} is smaller than {list(full)}")


def run_layers(layers, blobs):
    """Runs `layers` in order over `blobs` (a dict name → array), adding their outputs."""
    single = {
        "convolution": convolution,
        "padding": padding,
        "activation": activation,
        "unary": unary,
        "pooling": pooling,
        "innerProduct": inner_product,
        "softmax": softmax,
        "scale": scale,
        "bias": bias,
        "batchnorm": batchnorm,
        "flatten": flatten,
        "l2normalize": l2normalize,
        "upsample": upsample,
        "reshape": reshape,
        "permute": permute,
        "reduce": reduce,
        "slice": slice_layer,
    }
    for layer in layers:
        kind = layer.WhichOneof("layer")
        try:
            xs = [blobs[name] for name in layer.input]
        except KeyError as e:
            raise ValueError(f"layer {layer.name} reads blob {e} that no layer wrote") from None
        if kind in single:
            if len(xs) != 1:
                raise ValueError(f"layer {layer.name} ({kind}) needs exactly one input")
            y = single[kind](getattr(layer, kind), xs[0])
        elif kind == "add":
            if len(xs) > 1:
                _broadcastable(xs)
                y = xs[0]
                for other in xs[1:]:
                    y = y + other
            else:
                y = xs[0] + layer.add.alpha
        elif kind == "multiply":
            if len(xs) > 1:
                _broadcastable(xs)
                y = xs[0]
                for other in xs[1:]:
                    y = y * other
            else:
                y = xs[0] * layer.multiply.alpha
        elif kind == "concat":
            y = np.concatenate(xs, axis=1)
        else:
            raise NotImplementedError(f"layer {layer.name}: type {kind} is not supported")
        if len(layer.output) != 1:
            raise NotImplementedError(f"layer {layer.name} has {len(layer.output)} outputs")
        blobs[layer.output[0]] = y
    return blobs


def image_array(spec, feature, images):
    """Stacks HxWx3 uint8 RGB images into the [N, C, H, W] blob an image input gives."""
    t = feature.type.imageType
    # ColorSpace: GRAYSCALE 10, RGB 20, BGR 30.
    batch = []
    for img in images:
        img = np.asarray(img)
        if img.shape[:2] != (t.height, t.width):
            raise ValueError(
                f"image is {img.shape[1]}x{img.shape[0]}, the model takes {t.width}x{t.height}"
            )
        if t.colorSpace == 10:
            gray = img if img.ndim == 2 else img[..., :3] @ np.array([0.299, 0.587, 0.114])
            batch.append(np.asarray(gray, dtype=np.float64)[None])
        elif t.colorSpace in (20, 30):
            chw = np.asarray(img[..., :3], dtype=np.float64).transpose(2, 0, 1)
            batch.append(chw[::-1] if t.colorSpace == 30 else chw)
        else:
            raise NotImplementedError(f"color space {t.colorSpace}")
    return np.stack(batch)


def preprocess(network, name, x, color_space):
    """Applies the network's preprocessing for input `name`."""
    for pre in network.preprocessing:
        if pre.featureName not in (name, ""):
            continue
        kind = pre.WhichOneof("preprocessor")
        if kind == "scaler":
            s = pre.scaler
            if color_space == 10:
                bias = np.array([s.grayBias])
            elif color_space == 30:
                bias = np.array([s.blueBias, s.greenBias, s.redBias])
            else:
                bias = np.array([s.redBias, s.greenBias, s.blueBias])
            x = x * s.channelScale + bias[None, :, None, None]
        elif kind == "meanImage":
            x = x - np.asarray(pre.meanImage.meanImage, dtype=np.float64).reshape(x.shape[1:])[None]
    return x


def network_of(spec):
    kind = spec.WhichOneof("Type")
    if kind not in ("neuralNetworkClassifier", "neuralNetwork", "neuralNetworkRegressor"):
        raise NotImplementedError(f"model type {kind}")
    return kind, getattr(spec, kind)


def classify_images(spec, images):
    """Runs a NeuralNetworkClassifier with one image input on `images` (HxWx3 uint8 RGB).

    Returns (labels, probabilities [N, K]) in the spec's class-label order."""
    kind, nn = network_of(spec)
    if kind != "neuralNetworkClassifier":
        raise ValueError(f"not a classifier: {kind}")
    inputs = list(spec.description.input)
    if len(inputs) != 1 or inputs[0].type.WhichOneof("Type") != "imageType":
        raise ValueError("expected exactly one image input")
    feature = inputs[0]
    x = image_array(spec, feature, images)
    x = preprocess(nn, feature.name, x, feature.type.imageType.colorSpace)
    blobs = run_layers(nn.layers, {feature.name: x})
    which = nn.WhichOneof("ClassLabels")
    labels = list(getattr(nn, which).vector)
    name = nn.labelProbabilityLayerName
    if name not in blobs:
        raise ValueError(f"labelProbabilityLayerName {name!r} is not a blob of the network")
    probs = blobs[name].reshape(len(images), -1)
    if probs.shape[1] != len(labels):
        raise ValueError(f"{probs.shape[1]} probabilities for {len(labels)} labels")
    return labels, probs


def network_outputs(spec, images):
    """Runs a NeuralNetwork with one image input on a batch of `images` (HxWx3 uint8 RGB);
    returns {output name: array [N, *declared shape]}."""
    kind, nn = network_of(spec)
    inputs = list(spec.description.input)
    if len(inputs) != 1 or inputs[0].type.WhichOneof("Type") != "imageType":
        raise ValueError("expected exactly one image input")
    feature = inputs[0]
    x = image_array(spec, feature, images)
    blobs = run_layers(nn.layers, {feature.name: preprocess(nn, feature.name, x,
                                                            feature.type.imageType.colorSpace)})
    out = {}
    for o in spec.description.output:
        if o.name not in blobs:
            raise ValueError(f"output {o.name!r} is not a blob of the network")
        shape = list(o.type.multiArrayType.shape)
        out[o.name] = blobs[o.name].reshape(len(images), *shape) if shape else blobs[o.name]
    return out


# ---- Whole models: pipelines, feature engineering, tree ensembles, GLMs, networks ----
#
# `predict(spec, features)` runs any supported model on one example: `features` maps input
# names to Python values (float for Double, int for Int64, str for String, dict for
# Dictionary, numpy array for MultiArray, HxWx3 uint8 array for Image) and it returns every
# output of the model the same way (classifier probabilities as a dict label -> probability).


def _labels(m):
    which = m.WhichOneof("ClassLabels")
    if which is None:
        raise ValueError("classifier without class labels")
    return list(getattr(m, which).vector)


def _classifier_outputs(spec, labels, probs):
    desc = spec.description
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} probabilities for {len(labels)} labels")
    out = {}
    if desc.predictedFeatureName:
        out[desc.predictedFeatureName] = labels[int(np.argmax(probs))]
    if desc.predictedProbabilitiesName:
        out[desc.predictedProbabilitiesName] = dict(zip(labels, probs.tolist()))
    return out


def _single_input(spec, features):
    inputs = list(spec.description.input)
    if len(inputs) != 1:
        raise ValueError(f"{spec.WhichOneof('Type')} needs exactly one input, has {len(inputs)}")
    return features[inputs[0].name]


def _one_output_name(spec):
    outputs = list(spec.description.output)
    if len(outputs) != 1:
        raise ValueError(f"{spec.WhichOneof('Type')} needs exactly one output, has {len(outputs)}")
    return outputs[0].name


def _pipeline(spec, p, features):
    env = dict(features)
    for sub in p.models:
        sub_inputs = {}
        for f in sub.description.input:
            if f.name not in env and f.type.isOptional:
                continue
            if f.name not in env:
                raise ValueError(f"pipeline model reads {f.name!r}, which nothing before it wrote")
            sub_inputs[f.name] = env[f.name]
        env.update(predict(sub, sub_inputs))
    return {o.name: env[o.name] for o in spec.description.output}


def _categorical_mapping(spec, m, features):
    x = _single_input(spec, features)
    kind = m.WhichOneof("MappingType")
    table = dict(getattr(m, kind).map)
    if kind == "stringToInt64Map":
        x = str(x)
    else:
        x = int(x)
    if x in table:
        y = table[x]
    else:
        unknown = m.WhichOneof("ValueOnUnknown")
        if unknown is None:
            raise ValueError(f"categorical mapping: unknown input {x!r} and no default")
        y = getattr(m, unknown)
    return {_one_output_name(spec): y}


def _feature_vectorizer(spec, m, features):
    parts = []
    for col in m.inputList:
        v = np.asarray(features[col.inputColumn], dtype=np.float64).reshape(-1)
        if len(v) != col.inputDimensions:
            raise ValueError(f"feature vectorizer: {col.inputColumn} has {len(v)} values, "
                             f"declared {col.inputDimensions}")
        parts.append(v)
    return {_one_output_name(spec): np.concatenate(parts) if parts else np.zeros(0)}


def _imputer(spec, m, features):
    x = _single_input(spec, features)
    replace = m.WhichOneof("ReplaceValue")
    target = getattr(m, replace) if replace else float("nan")
    imputed = m.WhichOneof("ImputedValue")
    if imputed is None:
        raise ValueError("imputer without an imputed value")

    def is_target(v):
        if isinstance(target, float) and np.isnan(target):
            return np.isnan(v)
        return v == target

    if imputed == "imputedDoubleArray":
        x = np.asarray(x, dtype=np.float64).reshape(-1).copy()
        fill = np.asarray(m.imputedDoubleArray.vector, dtype=np.float64)
        if len(fill) != len(x):
            raise ValueError(f"imputer: {len(fill)} values for an array of {len(x)}")
        mask = is_target(x)
        x[mask] = fill[mask]
        y = x
    elif imputed == "imputedDoubleValue":
        y = m.imputedDoubleValue if is_target(float(x)) else float(x)
    elif imputed == "imputedInt64Value":
        y = m.imputedInt64Value if x == target else x
    elif imputed == "imputedStringValue":
        y = m.imputedStringValue if x == target else x
    else:
        raise NotImplementedError(f"imputer {imputed}")
    return {_one_output_name(spec): y}


_BRANCH = {
    0: lambda x, v: x <= v,  # BranchOnValueLessThanEqual
    1: lambda x, v: x < v,   # BranchOnValueLessThan
    2: lambda x, v: x >= v,  # BranchOnValueGreaterThanEqual
    3: lambda x, v: x > v,   # BranchOnValueGreaterThan
    4: lambda x, v: x == v,  # BranchOnValueEqual
    5: lambda x, v: x != v,  # BranchOnValueNotEqual
}
_LEAF = 6


def _tree_input(spec, features):
    """The feature vector of a tree ensemble / GLM: one array input, or several scalars in order."""
    inputs = list(spec.description.input)
    values = [np.asarray(features[f.name], dtype=np.float64).reshape(-1) for f in inputs]
    return np.concatenate(values)


def _tree_scores(t, x):
    """Raw scores of TreeEnsembleParameters `t` on feature vector `x`."""
    trees = {}
    for n in t.nodes:
        nodes = trees.setdefault(n.treeId, {})
        if n.nodeId in nodes:
            raise ValueError(f"tree {n.treeId}: node {n.nodeId} is defined twice")
        nodes[n.nodeId] = n
    scores = np.zeros(t.numPredictionDimensions, dtype=np.float64)
    base = np.asarray(t.basePredictionValue, dtype=np.float64)
    if len(base):
        if len(base) != len(scores):
            raise ValueError("basePredictionValue does not match numPredictionDimensions")
        scores += base
    for tree_id, nodes in trees.items():
        children = {c for n in nodes.values() if n.nodeBehavior != _LEAF
                    for c in (n.trueChildNodeId, n.falseChildNodeId)}
        roots = [i for i in nodes if i not in children]
        if len(roots) != 1:
            raise ValueError(f"tree {tree_id} has {len(roots)} roots")
        node = nodes[roots[0]]
        steps = 0
        while node.nodeBehavior != _LEAF:
            steps += 1
            if steps > len(nodes):
                raise ValueError(f"tree {tree_id} has a cycle")
            if node.branchFeatureIndex >= len(x):
                raise ValueError(f"tree {tree_id} reads feature {node.branchFeatureIndex} of {len(x)}")
            v = x[node.branchFeatureIndex]
            if np.isnan(v):
                go_true = node.missingValueTracksTrueChild
            else:
                go_true = _BRANCH[node.nodeBehavior](v, node.branchFeatureValue)
            child = node.trueChildNodeId if go_true else node.falseChildNodeId
            if child not in nodes:
                raise ValueError(f"tree {tree_id}: node {node.nodeId} points to missing node {child}")
            node = nodes[child]
        for e in node.evaluationInfo:
            scores[e.evaluationIndex] += e.evaluationValue
    return scores


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softmax_vec(z):
    e = np.exp(z - np.max(z))
    return e / e.sum()


def _post_transform(transform, scores, num_labels):
    """TreeEnsemblePostEvaluationTransform (also GLM's logit) → class probabilities."""
    if transform == 1:  # Classification_SoftMax
        return _softmax_vec(scores)
    if transform == 2:  # Regression_Logistic
        p = _sigmoid(scores)
        if len(p) == 1 and num_labels == 2:
            return np.array([1.0 - p[0], p[0]])
        return p
    if transform == 3:  # Classification_SoftMaxWithZeroClassReference
        return _softmax_vec(np.concatenate([[0.0], scores]))
    return scores


def _tree_ensemble(spec, m, features, classifier):
    x = _tree_input(spec, features)
    scores = _tree_scores(m.treeEnsemble, x)
    if classifier:
        labels = _labels(m)
        return _classifier_outputs(spec, labels, _post_transform(m.postEvaluationTransform, scores, len(labels)))
    y = _post_transform(m.postEvaluationTransform, scores, 0)
    return {_one_output_name(spec): float(y[0]) if len(y) == 1 else y}


def _glm_classifier(spec, m, features):
    x = _tree_input(spec, features)
    w = np.array([list(a.value) for a in m.weights], dtype=np.float64)
    z = w @ x + np.asarray(m.offset, dtype=np.float64)
    labels = _labels(m)
    logit = m.postEvaluationTransform == 1
    if m.classEncoding == 0 and len(labels) == 2:  # ReferenceClass, binary
        p = _sigmoid(z[0]) if logit else z[0]
        probs = np.array([1.0 - p, p])
    else:  # OneVsRest
        probs = _sigmoid(z) if logit else z
        probs = probs / probs.sum()
    return _classifier_outputs(spec, labels, probs)


def _glm_regressor(spec, m, features):
    x = _tree_input(spec, features)
    w = np.array([list(a.value) for a in m.weights], dtype=np.float64)
    y = w @ x + np.asarray(m.offset, dtype=np.float64)
    return {_one_output_name(spec): float(y[0]) if len(y) == 1 else y}


def _dict_vectorizer(spec, m, features):
    d = _single_input(spec, features)
    kind = m.WhichOneof("Map")
    keys = list(getattr(m, kind).vector)
    index = {k: i for i, k in enumerate(keys)}
    out = np.zeros(len(keys), dtype=np.float64)
    for k, v in d.items():
        if k in index:
            out[index[k]] = v
    return {_one_output_name(spec): out}


def _as_blob(feature, value):
    """An input value as the [1, C, H, W] blob a neural network sees."""
    ty = feature.type.WhichOneof("Type")
    if ty == "multiArrayType":
        a = np.asarray(value, dtype=np.float64)
        shape = list(feature.type.multiArrayType.shape) or list(a.shape)
        a = a.reshape(shape)
        if a.ndim == 1:
            return a.reshape(1, -1, 1, 1)
        if a.ndim == 3:
            return a[None]
        raise NotImplementedError(f"multi-array input of rank {a.ndim}")
    if ty in ("doubleType", "int64Type"):
        return np.full((1, 1, 1, 1), float(value))
    raise NotImplementedError(f"neural network input of type {ty}")


def _network(spec, kind, nn, features):
    if kind == "neuralNetworkRegressor" and not spec.description.predictedFeatureName:
        # Core ML's validator (validateRegressorInterface) refuses such a model.
        raise ValueError("neural network regressor without predictedFeatureName")
    blobs = {}
    for f in spec.description.input:
        if f.type.WhichOneof("Type") == "imageType":
            x = image_array(spec, f, [features[f.name]])
            blobs[f.name] = preprocess(nn, f.name, x, f.type.imageType.colorSpace)
        else:
            blobs[f.name] = preprocess(nn, f.name, _as_blob(f, features[f.name]), None)
    run_layers(nn.layers, blobs)
    if kind == "neuralNetworkClassifier":
        name = nn.labelProbabilityLayerName
        if name not in blobs:
            raise ValueError(f"labelProbabilityLayerName {name!r} is not a blob of the network")
        return _classifier_outputs(spec, _labels(nn), blobs[name])
    out = {}
    for o in spec.description.output:
        if o.name not in blobs:
            raise ValueError(f"output {o.name!r} is not a blob of the network")
        v = blobs[o.name][0]
        if o.type.WhichOneof("Type") == "doubleType":
            if v.size != 1:
                raise ValueError(f"output {o.name!r} is declared Double but has {v.size} values")
            v = float(v.reshape(-1)[0])
        else:
            shape = list(o.type.multiArrayType.shape)
            v = v.reshape(shape) if shape else v.reshape(-1)
        out[o.name] = v
    return out


def box_iou(a, b):
    """IoU of two boxes given as (centre x, centre y, width, height)."""
    ax0, ay0, ax1, ay1 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx0, by0, bx1, by1 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _non_maximum_suppression(spec, m, features):
    """PickTop as NonMaximumSuppression.proto describes it: drop boxes whose best confidence is
    below the threshold, then repeatedly keep the most confident box and drop the others that
    overlap it by more than the IoU threshold (only those of its label, argmax of the row, when
    perClass is set). Outputs the kept rows, most confident first."""
    if m.WhichOneof("SuppressionMethod") != "pickTop":
        raise NotImplementedError(f"suppression method {m.WhichOneof('SuppressionMethod')}")
    conf = np.asarray(features[m.confidenceInputFeatureName], dtype=np.float64)
    coords = np.asarray(features[m.coordinatesInputFeatureName], dtype=np.float64)
    if conf.ndim != 2 or coords.shape != (conf.shape[0], 4):
        raise ValueError(f"NMS inputs must be [N, C] and [N, 4], got {conf.shape} and {coords.shape}")
    iou_t = float(features.get(m.iouThresholdInputFeatureName, m.iouThreshold)) \
        if m.iouThresholdInputFeatureName else m.iouThreshold
    conf_t = float(features.get(m.confidenceThresholdInputFeatureName, m.confidenceThreshold)) \
        if m.confidenceThresholdInputFeatureName else m.confidenceThreshold
    best = conf.max(axis=1) if conf.shape[1] else np.zeros(len(conf))
    label = conf.argmax(axis=1) if conf.shape[1] else np.zeros(len(conf), dtype=int)
    order = [int(i) for i in np.argsort(-best, kind="stable") if best[i] >= conf_t]
    kept = []
    for i in order:
        if not any((not m.pickTop.perClass or label[k] == label[i])
                   and box_iou(coords[k], coords[i]) > iou_t for k in kept):
            kept.append(i)
    return {m.confidenceOutputFeatureName: conf[kept].reshape(len(kept), conf.shape[1]),
            m.coordinatesOutputFeatureName: coords[kept].reshape(len(kept), 4)}


def predict(spec, features):
    """Runs `spec` on one example; returns its outputs (see the comment above)."""
    kind = spec.WhichOneof("Type")
    if kind in ("pipeline", "pipelineClassifier", "pipelineRegressor"):
        p = getattr(spec, kind)
        return _pipeline(spec, p.pipeline if kind != "pipeline" else p, features)
    if kind == "categoricalMapping":
        return _categorical_mapping(spec, spec.categoricalMapping, features)
    if kind == "featureVectorizer":
        return _feature_vectorizer(spec, spec.featureVectorizer, features)
    if kind == "imputer":
        return _imputer(spec, spec.imputer, features)
    if kind == "dictVectorizer":
        return _dict_vectorizer(spec, spec.dictVectorizer, features)
    if kind == "treeEnsembleClassifier":
        return _tree_ensemble(spec, spec.treeEnsembleClassifier, features, True)
    if kind == "treeEnsembleRegressor":
        return _tree_ensemble(spec, spec.treeEnsembleRegressor, features, False)
    if kind == "glmClassifier":
        return _glm_classifier(spec, spec.glmClassifier, features)
    if kind == "glmRegressor":
        return _glm_regressor(spec, spec.glmRegressor, features)
    if kind in ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor"):
        return _network(spec, kind, getattr(spec, kind), features)
    if kind == "nonMaximumSuppression":
        return _non_maximum_suppression(spec, spec.nonMaximumSuppression, features)
    raise NotImplementedError(f"model type {kind}")
