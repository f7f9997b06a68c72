"""Convert the MTCNN weights of the ``mtcnn==0.1.1`` wheel to three ONNX graphs.

The source is ``mtcnn/data/mtcnn_weights.npy`` (a pickled dict ``{'pnet', 'rnet',
'onet'}`` of Keras weight lists in layer order; load it only from the checked file)
and the architecture of ``mtcnn/network/factory.py`` in the same wheel.

How the reference feeds the networks, and what the graphs absorb
----------------------------------------------------------------
``mtcnn/mtcnn.py`` normalises with ``(x - 127.5) * 0.0078125`` and feeds every
network a *transposed* image (``np.transpose(img, (0, 2, 1, 3))``: height and
width swapped, as the original Caffe weights expect), then transposes P-Net's
output maps back. The graphs written here absorb both steps so that every model
takes plain RGB ``float32`` pixels in ``0..255`` as ``[N, 3, H, W]`` in normal
orientation and answers in normal orientation:

* the normalisation is an explicit ``Sub``/``Mul`` at the input;
* the transposition is folded into the weights: a convolution of the transposed
  image with kernel ``K[i, j]`` is the transpose of a convolution of the image with
  ``K[j, i]``, so the conv kernels get their two spatial axes swapped
  (``(kh, kw, in, out) -> (out, in, kw, kh)``); max pooling with square windows is
  symmetric (TF "same" pads ``total // 2`` before and the rest after on both
  axes); Keras flattens the transposed ``[W, H, C]`` map before the dense layers,
  so the dense kernel's rows are permuted from ``(x, y, c)`` order to the
  ``(c, y, x)`` order of ONNX ``Flatten`` on ``[N, C, H, W]``.

Outputs (names fixed; everything else follows the reference's interpretation):

* ``mtcnn_pnet.onnx``: input ``[N, 3, H, W]`` (any ``H, W >= 12``); ``prob``
  ``[N, 2, h, w]`` softmax over (not face, face) and ``reg`` ``[N, 4, h, w]``
  (dx1, dy1, dx2, dy2 of the 12x12 window at stride 2), ``h = ceil((H-2)/2) - 4``.
* ``mtcnn_rnet.onnx``: input ``[N, 3, 24, 24]``; ``prob`` ``[N, 2]``, ``reg`` ``[N, 4]``.
* ``mtcnn_onet.onnx``: input ``[N, 3, 48, 48]``; ``prob`` ``[N, 2]``, ``reg``
  ``[N, 4]``, ``landmarks`` ``[N, 10]`` (x1..x5 then y1..y5 relative to the box:
  left eye, right eye, nose, mouth left, mouth right as seen in the image).

The bytes are deterministic: fixed producer, opset 13, IR version 8, nodes and
initialisers in layer order, weights only reshaped/transposed (no arithmetic).

Usage: ``python models/convert_mtcnn.py mtcnn_weights.npy OUT_DIR``
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 8
PRODUCER_NAME = "fastface-models"
PRODUCER_VERSION = "1"
INPUT_NAME = "input"
MEAN = 127.5
SCALE = 0.0078125

__all__ = ["convert", "build_pnet", "build_rnet", "build_onet", "load_weights"]


class ConversionError(RuntimeError):
    """The weight file does not have the layout this converter expects."""


class _Graph:
    def __init__(self, name: str):
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(
            numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name)
        )
        return name

    def node(self, op: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        self.count += 1
        out = out or f"{op.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self.count}", **attrs))
        return out

    def normalise(self, x: str) -> str:
        mean = self.const("norm_mean", np.array(MEAN, dtype=np.float32))
        scale = self.const("norm_scale", np.array(SCALE, dtype=np.float32))
        return self.node("Mul", [self.node("Sub", [x, mean]), scale])

    def conv(self, x: str, kernel: np.ndarray, bias: np.ndarray, tag: str) -> str:
        if kernel.ndim != 4 or bias.shape != (kernel.shape[3],):
            raise ConversionError(
                f"{self.name}/{tag}: unexpected conv weights {kernel.shape}, {bias.shape}"
            )
        # Keras (kh, kw, in, out) on the transposed image == ONNX (out, in, kw, kh) on the image.
        w = self.const(f"{tag}_w", np.transpose(kernel, (3, 2, 1, 0)))
        b = self.const(f"{tag}_b", bias)
        kh, kw = kernel.shape[1], kernel.shape[0]
        return self.node(
            "Conv", [x, w, b], kernel_shape=[kh, kw], strides=[1, 1], pads=[0, 0, 0, 0]
        )

    def prelu(self, x: str, alpha: np.ndarray, tag: str, spatial: bool = True) -> str:
        a = alpha.reshape(-1)
        if spatial:
            a = a.reshape(-1, 1, 1)
        return self.node("PRelu", [x, self.const(f"{tag}_alpha", a)])

    def maxpool(self, x: str, k: int, s: int, same: bool, size: int | None) -> str:
        """Keras MaxPooling2D. 'same' is TF's: pad ``total // 2`` before and the
        rest after (padded cells never win). With a known input size the pads are
        explicit; for P-Net (dynamic size) ``auto_pad=SAME_UPPER`` is the same rule."""
        if not same:
            return self.node("MaxPool", [x], kernel_shape=[k, k], strides=[s, s], pads=[0, 0, 0, 0])
        if size is None:
            return self.node(
                "MaxPool", [x], kernel_shape=[k, k], strides=[s, s], auto_pad="SAME_UPPER"
            )
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        lo, hi = total // 2, total - total // 2
        return self.node("MaxPool", [x], kernel_shape=[k, k], strides=[s, s], pads=[lo, lo, hi, hi])

    def dense(
        self, x: str, kernel: np.ndarray, bias: np.ndarray, tag: str, out: str | None = None
    ) -> str:
        w = self.const(f"{tag}_w", kernel)
        b = self.const(f"{tag}_b", bias)
        return self.node("Add", [self.node("MatMul", [x, w]), b], out)

    def model(self, inputs, outputs) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, inputs, outputs, self.inits)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name=PRODUCER_NAME,
            producer_version=PRODUCER_VERSION,
        )
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model


def _flatten_rows(kernel: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Dense kernel rows in Keras' flatten order of the transposed map, ``(x, y, c)``,
    reordered to ONNX ``Flatten`` order on ``[C, H, W]``, ``(c, y, x)``."""
    if kernel.shape[0] != size * size * channels:
        raise ConversionError(
            f"dense kernel has {kernel.shape[0]} rows, expected {size}*{size}*{channels}"
        )
    k = kernel.reshape(size, size, channels, -1)  # (x, y, c, out)
    return np.transpose(k, (2, 1, 0, 3)).reshape(size * size * channels, -1)


def _check(weights: list[np.ndarray], shapes: list[tuple[int, ...]], net: str) -> None:
    got = [tuple(w.shape) for w in weights]
    if got != shapes:
        raise ConversionError(
            f"{net}: weight shapes {got} differ from the mtcnn 0.1.1 layout {shapes}"
        )


PNET_SHAPES = [
    (3, 3, 3, 10),
    (10,),
    (1, 1, 10),
    (3, 3, 10, 16),
    (16,),
    (1, 1, 16),
    (3, 3, 16, 32),
    (32,),
    (1, 1, 32),
    (1, 1, 32, 2),
    (2,),
    (1, 1, 32, 4),
    (4,),
]
RNET_SHAPES = [
    (3, 3, 3, 28),
    (28,),
    (1, 1, 28),
    (3, 3, 28, 48),
    (48,),
    (1, 1, 48),
    (2, 2, 48, 64),
    (64,),
    (1, 1, 64),
    (576, 128),
    (128,),
    (128,),
    (128, 2),
    (2,),
    (128, 4),
    (4,),
]
ONET_SHAPES = [
    (3, 3, 3, 32),
    (32,),
    (1, 1, 32),
    (3, 3, 32, 64),
    (64,),
    (1, 1, 64),
    (3, 3, 64, 64),
    (64,),
    (1, 1, 64),
    (2, 2, 64, 128),
    (128,),
    (1, 1, 128),
    (1152, 256),
    (256,),
    (256,),
    (256, 2),
    (2,),
    (256, 4),
    (4,),
    (256, 10),
    (10,),
]


def _io(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def build_pnet(w: list[np.ndarray]) -> onnx.ModelProto:
    _check(w, PNET_SHAPES, "pnet")
    g = _Graph("mtcnn_pnet")
    x = g.normalise(INPUT_NAME)
    x = g.prelu(g.conv(x, w[0], w[1], "conv1"), w[2], "prelu1")
    x = g.maxpool(x, 2, 2, same=True, size=None)
    x = g.prelu(g.conv(x, w[3], w[4], "conv2"), w[5], "prelu2")
    x = g.prelu(g.conv(x, w[6], w[7], "conv3"), w[8], "prelu3")
    logits = g.conv(x, w[9], w[10], "conv4_1")
    g.node("Softmax", [logits], "prob", axis=1)
    g.conv(x, w[11], w[12], "conv4_2")
    g.nodes[-1].output[0] = "reg"
    return g.model(
        [_io(INPUT_NAME, ["N", 3, "H", "W"])],
        [_io("prob", ["N", 2, "h", "w"]), _io("reg", ["N", 4, "h", "w"])],
    )


def build_rnet(w: list[np.ndarray]) -> onnx.ModelProto:
    _check(w, RNET_SHAPES, "rnet")
    g = _Graph("mtcnn_rnet")
    x = g.normalise(INPUT_NAME)
    x = g.prelu(g.conv(x, w[0], w[1], "conv1"), w[2], "prelu1")  # 22
    x = g.maxpool(x, 3, 2, same=True, size=22)  # 11
    x = g.prelu(g.conv(x, w[3], w[4], "conv2"), w[5], "prelu2")  # 9
    x = g.maxpool(x, 3, 2, same=False, size=9)  # 4
    x = g.prelu(g.conv(x, w[6], w[7], "conv3"), w[8], "prelu3")  # 3
    x = g.node("Flatten", [x], axis=1)
    x = g.prelu(
        g.dense(x, _flatten_rows(w[9], 3, 64), w[10], "fc1"), w[11], "prelu4", spatial=False
    )
    g.node("Softmax", [g.dense(x, w[12], w[13], "fc2_1")], "prob", axis=1)
    g.dense(x, w[14], w[15], "fc2_2", out="reg")
    return g.model(
        [_io(INPUT_NAME, ["N", 3, 24, 24])], [_io("prob", ["N", 2]), _io("reg", ["N", 4])]
    )


def build_onet(w: list[np.ndarray]) -> onnx.ModelProto:
    _check(w, ONET_SHAPES, "onet")
    g = _Graph("mtcnn_onet")
    x = g.normalise(INPUT_NAME)
    x = g.prelu(g.conv(x, w[0], w[1], "conv1"), w[2], "prelu1")  # 46
    x = g.maxpool(x, 3, 2, same=True, size=46)  # 23
    x = g.prelu(g.conv(x, w[3], w[4], "conv2"), w[5], "prelu2")  # 21
    x = g.maxpool(x, 3, 2, same=False, size=21)  # 10
    x = g.prelu(g.conv(x, w[6], w[7], "conv3"), w[8], "prelu3")  # 8
    x = g.maxpool(x, 2, 2, same=True, size=8)  # 4
    x = g.prelu(g.conv(x, w[9], w[10], "conv4"), w[11], "prelu4")  # 3
    x = g.node("Flatten", [x], axis=1)
    x = g.prelu(
        g.dense(x, _flatten_rows(w[12], 3, 128), w[13], "fc1"), w[14], "prelu5", spatial=False
    )
    g.node("Softmax", [g.dense(x, w[15], w[16], "fc2_1")], "prob", axis=1)
    g.dense(x, w[17], w[18], "fc2_2", out="reg")
    g.dense(x, w[19], w[20], "fc2_3", out="landmarks")
    return g.model(
        [_io(INPUT_NAME, ["N", 3, 48, 48])],
        [_io("prob", ["N", 2]), _io("reg", ["N", 4]), _io("landmarks", ["N", 10])],
    )


def load_weights(npy_path: pathlib.Path) -> dict[str, list[np.ndarray]]:
    """The pickled weight dict. Only ever call this on the sha256-checked file."""
    data = np.load(npy_path, allow_pickle=True).item()
    if not isinstance(data, dict) or not {"pnet", "rnet", "onet"} <= set(data):
        raise ConversionError(f"{npy_path}: expected a dict with 'pnet', 'rnet', 'onet'")
    return {k: [np.asarray(a, dtype=np.float32) for a in data[k]] for k in ("pnet", "rnet", "onet")}


def convert(npy_path: pathlib.Path, out_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    """Writes ``mtcnn_{pnet,rnet,onet}.onnx`` into ``out_dir``; returns
    ``{'mtcnn_pnet': path, 'mtcnn_rnet': path, 'mtcnn_onet': path}``."""
    npy_path, out_dir = pathlib.Path(npy_path), pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    w = load_weights(npy_path)
    paths = {}
    for name, build in (("pnet", build_pnet), ("rnet", build_rnet), ("onet", build_onet)):
        path = out_dir / f"mtcnn_{name}.onnx"
        path.write_bytes(build(w[name]).SerializeToString(deterministic=True))
        paths[f"mtcnn_{name}"] = path
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    for name, path in convert(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])).items():
        print(f"{name}: {path}")
