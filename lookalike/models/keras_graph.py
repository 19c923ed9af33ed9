"""The ONNX graph of a Keras model, built layer by layer (used by :mod:`.keras_onnx`).

:class:`GraphBuilder` turns each supported Keras layer into ONNX nodes and
initializers, keeping image tensors in ``NCHW`` (see :mod:`.keras_onnx` for the
tensor layout and the supported layer types); :class:`UnsupportedModelError` is
what every step raises on a layer type, option or structure it does not handle.
Kept apart from the h5 reading and the config walking so each module stays short.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["GraphBuilder", "Tensor", "UnsupportedModelError"]


class UnsupportedModelError(ValueError):
    """The h5 file uses a layer type, option or structure this converter does not handle."""


@dataclass
class Tensor:
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


class GraphBuilder:
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

    def activation(self, tensor: Tensor, activation: str, out: str, layer: str) -> Tensor:
        """Apply a Keras activation by name (the channel axis is 1 in NCHW and flat)."""
        if activation == "linear":
            if tensor.name != out:
                self.node("Identity", [tensor.name], out)
            return Tensor(out, tensor.shape)
        ops = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
        if activation in ops:
            self.node(ops[activation], [tensor.name], out)
        elif activation == "softmax":
            # Keras softmaxes the last (channel) axis; in NCHW and in [N, F] that is axis 1.
            self.node("Softmax", [tensor.name], out, axis=1)
        else:
            raise UnsupportedModelError(f"layer {layer!r}: unsupported activation {activation!r}")
        return Tensor(out, tensor.shape)

    @staticmethod
    def check_channels_last(cfg: Mapping[str, Any], layer: str) -> None:
        """Only ``channels_last`` Keras models are supported."""
        fmt = cfg.get("data_format", "channels_last")
        if fmt not in (None, "channels_last"):
            raise UnsupportedModelError(f"layer {layer!r}: data_format={fmt!r} (only channels_last)")

    def spatial(
        self, x: Tensor, cfg: Mapping[str, Any], layer: str, kernel: tuple[int, int],
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

    def conv2d(self, layer: str, cfg: Mapping[str, Any], x: Tensor) -> Tensor:
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
        return self.activation(Tensor(conv_out, (cout, oh, ow)), activation, layer, layer)

    def separable_conv2d(self, layer: str, cfg: Mapping[str, Any], x: Tensor) -> Tensor:
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
        return self.activation(Tensor(pw_out, (cout, oh, ow)), activation, layer, layer)

    def batch_norm(self, layer: str, cfg: Mapping[str, Any], x: Tensor) -> Tensor:
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
        return Tensor(layer, x.shape)

    def zero_pad2d(self, layer: str, cfg: Mapping[str, Any], x: Tensor) -> Tensor:
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
        return Tensor(layer, (c, h + top + bottom, w + left + right))

    def pool2d(self, layer: str, cfg: Mapping[str, Any], x: Tensor, op: str) -> Tensor:
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
        return Tensor(layer, (x.shape[0], oh, ow))

    def global_avg_pool(self, layer: str, cfg: Mapping[str, Any], x: Tensor) -> Tensor:
        """Keras ``GlobalAveragePooling2D`` -> ``GlobalAveragePool`` + ``Flatten`` ([N, C])."""
        self.check_channels_last(cfg, layer)
        if cfg.get("keepdims", False):
            raise UnsupportedModelError(f"layer {layer!r}: keepdims=True is not supported")
        pooled = self.node("GlobalAveragePool", [x.name], self.fresh(layer))
        self.node("Flatten", [pooled], layer, axis=1)
        return Tensor(layer, (x.shape[0],))

    def flatten(self, layer: str, cfg: Mapping[str, Any], x: Tensor) -> Tensor:
        """Keras ``Flatten``: back to NHWC first so the (H, W, C) order matches Keras."""
        self.check_channels_last(cfg, layer)
        src = x.name
        if len(x.shape) == 3:
            src = self.node("Transpose", [x.name], self.fresh(f"{layer}_nhwc"), perm=[0, 2, 3, 1])
        self.node("Flatten", [src], layer, axis=1)
        return Tensor(layer, (int(np.prod(x.shape)),))

    def dense(self, layer: str, cfg: Mapping[str, Any], x: Tensor) -> Tensor:
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
        return self.activation(Tensor(out, (kernel.shape[1],)), activation, layer, layer)

    def add(self, layer: str, cfg: Mapping[str, Any], xs: Sequence[Tensor]) -> Tensor:
        """Keras ``Add`` -> ONNX ``Sum`` (shapes must match exactly; no broadcasting)."""
        shapes = {t.shape for t in xs}
        if len(shapes) != 1:
            raise UnsupportedModelError(f"layer {layer!r}: Add of different shapes {sorted(shapes)}")
        self.node("Sum", [t.name for t in xs], layer)
        return Tensor(layer, xs[0].shape)
