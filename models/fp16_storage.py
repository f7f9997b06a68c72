"""Store an ONNX model's large float32 weights as float16, widened in the graph.

    python models/fp16_storage.py IN.onnx OUT.onnx

Each float32 initializer of at least ``MIN_ELEMENTS`` elements is replaced by a
float16 copy and a ``Cast`` back to float32 under the original name, so every
node still computes in float32 on float32 weights (the weights rounded to the
nearest float16). Both engines fold the casts into constants when they load the
graph (onnxruntime's constant folding; tract's constant propagation), so
inference runs exactly as fast as before. Small tensors (biases) stay float32.

tract folds a constant only while its result stays within 4 MiB (or within the
size of its inputs): SFace's last layer, 128 x 50176 weights (25.7 MB as
float32), was cast and packed again on every run: about 19 of the 52 ms tract
took per face on one thread.
A weight over that size is therefore stored as slices along its first axis,
each cast on its own (each within 4 MiB) and joined by a ``Concat`` of the
casts, which tract folds too (its result is no larger than its inputs).

Why: the wheel must stay under the package index's 100 MB per-file limit with
every bundled model. Deflated in the wheel, FaceNet takes 84.6 MB as float32 and
42.2 MB this way, SFace 35.9 and 17.9 MB. The manifest marks which models are
stored so (``"weights": "float16"``) and records their measured effect; dlib's
ResNet stays float32, so that it keeps matching dlib itself to 1e-6.

Build time only (needs the ``onnx`` package); deterministic.
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MIN_ELEMENTS = 1024
SUFFIX = "__float16"
# tract-core's CONST_FOLD_MEM_BUDGET: the largest constant result it always folds.
TRACT_FOLD_BYTES = 4 << 20


def store_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its large float32 weights stored as float16 (modified in place)."""
    graph = model.graph
    initializers, widen = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < MIN_ELEMENTS:
            initializers.append(init)
            continue
        weights = numpy_helper.to_array(init).astype(np.float16)
        slices = _slices(weights)
        if len(slices) == 1:
            half = numpy_helper.from_array(weights, init.name + SUFFIX)
            initializers.append(half)
            widen.append(_widen(half.name, init.name))
            continue
        parts = []
        for number, part in enumerate(slices):
            half = numpy_helper.from_array(part, f"{init.name}{SUFFIX}_{number}")
            initializers.append(half)
            widen.append(_widen(half.name, f"{init.name}__part_{number}"))
            parts.append(f"{init.name}__part_{number}")
        widen.append(helper.make_node("Concat", parts, [init.name], axis=0, name=init.name))
    nodes = widen + list(graph.node)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


def _widen(half: str, name: str) -> onnx.NodeProto:
    return helper.make_node("Cast", [half], [name], to=TensorProto.FLOAT, name=name + SUFFIX)


def _slices(weights: np.ndarray) -> list[np.ndarray]:
    """``weights`` cut along axis 0 into slices whose float32 size tract folds."""
    row_bytes = 4 * int(np.prod(weights.shape[1:]))
    if weights.ndim == 0 or 4 * weights.size <= TRACT_FOLD_BYTES or row_bytes > TRACT_FOLD_BYTES:
        return [weights]
    rows = TRACT_FOLD_BYTES // row_bytes
    return [weights[start : start + rows] for start in range(0, weights.shape[0], rows)]


def convert_file(source: pathlib.Path, dest: pathlib.Path) -> None:
    onnx.save(store_fp16(onnx.load(str(source))), str(dest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=pathlib.Path)
    parser.add_argument("dest", type=pathlib.Path)
    args = parser.parse_args()
    convert_file(args.source, args.dest)


if __name__ == "__main__":
    main()
