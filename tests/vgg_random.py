"""DeepFace's VGG-Face architecture with generated (random) weights, as the ONNX graph
DeepFace's onnx engine loads (``vgg_face_weights.onnx``).

The real weights download from GitHub, which this machine cannot reach. So the layers are
read from DeepFace's own source (``base_model()`` in
``deepface/models/facial_recognition/tf/VGGFace.py``, parsed, never copied), cut where
DeepFace cuts its 4096-d descriptor (``Flatten()(model.layers[-5].output)``), filled with
He-scaled random weights and converted by lookalike's own Keras -> ONNX converter. The
vectors it makes are 4096-d and deterministic, but they do not recognise anyone: a test
using it proves the 4096-d plumbing (reduction, index, re-rank), not accuracy.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np

FILE_NAME = "vgg_face_weights.onnx"


def deepface_layers() -> list[tuple[str, list, dict]]:
    """(class name, positional args, keyword args) of each ``model.add(...)`` in base_model()."""
    spec = importlib.util.find_spec("deepface")
    source = Path(spec.submodule_search_locations[0]) / "models" / "facial_recognition" / "tf" / "VGGFace.py"
    tree = ast.parse(source.read_text())
    func = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "base_model")
    layers = []
    for stmt in func.body:  # in source order
        node = stmt.value if isinstance(stmt, ast.Expr) else None
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add"
                and node.args and isinstance(node.args[0], ast.Call)):
            call = node.args[0]
            layers.append((call.func.id, [ast.literal_eval(a) for a in call.args],
                           {k.arg: ast.literal_eval(k.value) for k in call.keywords}))
    return layers


def descriptor_config(layers: list[tuple[str, list, dict]]) -> dict:
    """Keras 2 functional config of DeepFace's descriptor: layers up to ``[-5]`` + Flatten."""
    kept = layers[:-4]  # drop Dropout, Conv(2622), Flatten, Activation("softmax")
    assert kept[-1][0] == "Convolution2D" and kept[-1][1][0] == 4096, kept[-1]
    out, prev = [], "input"
    shape = kept[0][2].get("input_shape", (224, 224, 3))
    out.append({"name": "input", "class_name": "InputLayer",
                "config": {"batch_input_shape": [None, *shape]}, "inbound_nodes": []})
    for i, (kind, args, kwargs) in enumerate(kept):
        name = f"{kind.lower()}_{i}"
        if kind == "ZeroPadding2D":
            cfg = {"padding": list(args[0])}
        elif kind == "Convolution2D":
            kind, cfg = "Conv2D", {"filters": args[0], "kernel_size": list(args[1]),
                                   "activation": kwargs.get("activation", "linear"), "padding": "valid"}
        elif kind == "MaxPooling2D":
            cfg = {"pool_size": list(args[0]), "strides": list(kwargs.get("strides", args[0])), "padding": "valid"}
        elif kind == "Dropout":
            cfg = {"rate": args[0]}
        else:
            raise AssertionError(f"DeepFace's VGG-Face has a layer this helper does not know: {kind}")
        out.append({"name": name, "class_name": kind, "config": cfg, "inbound_nodes": [[[prev, 0, 0, {}]]]})
        prev = name
    out.append({"name": "descriptor", "class_name": "Flatten", "config": {},
                "inbound_nodes": [[[prev, 0, 0, {}]]]})
    return {"class_name": "Model", "config": {"name": "vgg_face_descriptor", "layers": out,
                                              "input_layers": [["input", 0, 0]],
                                              "output_layers": [["descriptor", 0, 0]]}}


def random_weights(config: dict, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """He-scaled normal kernels (activations neither vanish nor explode over 15 layers)."""
    rng = np.random.default_rng(seed)
    weights, channels = {}, 3
    for layer in config["config"]["layers"]:
        if layer["class_name"] != "Conv2D":
            continue
        kh, kw = layer["config"]["kernel_size"]
        filters = layer["config"]["filters"]
        fan_in = kh * kw * channels
        kernel = rng.standard_normal((kh, kw, channels, filters), dtype=np.float32) * np.float32(np.sqrt(2 / fan_in))
        weights[layer["name"]] = {"kernel": kernel, "bias": np.zeros(filters, dtype=np.float32)}
        channels = filters
    return weights


def write(folder: Path) -> Path:
    """Write ``vgg_face_weights.onnx`` (about 540 MB) into ``folder``; returns its path."""
    import onnx

    from lookalike.models.keras_onnx import build_onnx_model

    config = descriptor_config(deepface_layers())
    model = build_onnx_model(config, random_weights(config), {"weights": "random (test only)"})
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(folder / FILE_NAME))
    return folder / FILE_NAME
