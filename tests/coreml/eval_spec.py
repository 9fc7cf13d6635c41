"""An independent numpy evaluator of Core ML NeuralNetwork specifications.

Core ML itself only runs on Apple platforms, so Lathe checks its exports on Linux by computing
what a spec says, layer by layer, straight from the protobuf (parsed by coremltools), in float64,
and comparing with the engine's own predictions. Nothing here is shared with the Rust exporter:
the layer semantics are written from Apple's NeuralNetwork.proto documentation.

Blobs are numpy arrays shaped [N, C, H, W] (a batch of N). Supported: the image scaler and mean
image preprocessing; convolution (groups, valid/same padding, no dilation), padding, activation,
unary, pooling (global or windowed), inner product, softmax, scale, bias, add, multiply,
batchnorm, concat, flatten. Unknown layers raise, so a model using one cannot pass silently.
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


def flatten(p, x):
    n = x.shape[0]
    if p.mode == 1:  # CHANNEL_LAST
        x = x.transpose(0, 2, 3, 1)
    return x.reshape(n, -1, 1, 1)


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
            y = sum(xs) if len(xs) > 1 else xs[0] + layer.add.alpha
        elif kind == "multiply":
            y = np.prod(xs, axis=0) if len(xs) > 1 else xs[0] * layer.multiply.alpha
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
