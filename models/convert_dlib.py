"""Convert dlib's two public-domain face models for fastface, without dlib.

* ``dlib_face_recognition_resnet_model_v1.dat`` (the face-descriptor ResNet) -> ONNX,
  written with the ``onnx`` helper API (``convert``);
* ``shape_predictor_5_face_landmarks.dat`` (the 5-point ensemble of regression trees) -> a
  flat little-endian binary that ``src/shape_predictor.rs`` reads (``convert_shape_predictor``).

Both ``.dat`` files are dlib's own ``serialize`` of the C++ objects; this module reads them
with numpy alone.

dlib's serialisation, as far as this file uses it
--------------------------------------------------
* integers: one byte ``size | 0x80 if negative``, then ``size`` little-endian magnitude bytes;
* strings: an integer length, then the bytes; ``bool``: the character ``'1'`` or ``'0'``;
* ``float``/``double``: two integers, a mantissa and a base-2 exponent;
* tensors: integer version 2, four integers ``num_samples, k, nr, nc``, then that many
  little-endian float32 values; ``alias_tensor``: version 1 and the four sizes (no data);
* a network is nested: each layer writes its version, then its whole sub-network, then its
  own details and state. So the file starts with the version of every layer from the loss
  inwards (2 for a computational layer, 1 for a tag or skip layer, 3 for the layer over the
  input), then the input layer, then the details of each computational layer from the input
  outwards. Tags and skips store nothing else: the topology is dlib's published ``anet_type``
  (dlib's ``dnn_face_recognition_ex.cpp``), rebuilt below and checked against the file's
  version sequence, layer names, kernel sizes, strides and paddings.

The network (input 150x150 RGB, ``(pixel - channel mean) / 256`` with the means stored in the
file) is ``conv 7x7/2 (32) -> affine -> relu -> max pool 3x3/2``, then residual blocks of two
3x3 convolutions with 32, 64, 128, 256, 256 filters (the first block of each width after 32
downsamples: stride-2 convolution, and an average-pooled 2x2/2 shortcut), global average pooling
and a 256 -> 128 fully connected layer without bias. dlib's residual ``add_prev`` adds tensors of
different shapes by zero-padding both to the larger one at the end of each axis (the shortcut
has fewer channels; at 8x8 the pooled shortcut is 4x4 while the strided convolution gives 3x3);
the graph pads explicitly. ``affine`` layers (batch norm folded by dlib at the end of training)
follow every convolution and are folded into its weights and bias here. Padding is 0 for the
strided convolutions and pools and 1 for the 3x3 stride-1 convolutions (dlib's defaults).

The graph takes RGB float32 pixels in 0..255 as ``[N, 3, 150, 150]`` (the normalisation is an
explicit ``Sub``/``Mul`` at the input) and outputs dlib's raw 128-d descriptor ``[N, 128]``
(face_recognition compares these unnormalised; their norms are close to, not exactly, 1).

The bytes are deterministic: fixed producer, opset 13, IR version 8, nodes and initialisers in
layer order.

The shape predictor file holds ``version 1``, the initial shape (a float column matrix,
``x0 y0 x1 y1 ...`` in box-normalised coordinates), the cascades (each a list of trees; a tree
is its split list ``(idx1, idx2, threshold)`` in heap order and its leaf list of shape deltas),
then per cascade the feature pixels' anchor landmark indices and their offsets. Matrices are
stored as ``-rows, -cols`` and the elements. The binary written here (``SHAPE_MAGIC``) is::

    magic, u32 version, u32 parts, u32 cascades, u32 trees per cascade,
    u32 splits per tree, u32 feature pixels per cascade,
    f32[2 * parts] initial shape,
    per cascade: u32[pixels] anchors, f32[2 * pixels] deltas (x, y),
    per cascade, per tree: splits as (u32 idx1, u32 idx2, f32 threshold),
                           f32[(splits + 1) * 2 * parts] leaf values

Usage: ``python models/convert_dlib.py dlib_face_recognition_resnet_model_v1.dat OUT.onnx``
       ``python models/convert_dlib.py shape_predictor_5_face_landmarks.dat OUT.bin``
"""

from __future__ import annotations

import dataclasses
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
OUTPUT_NAME = "embedding"
CHIP_SIZE = 150
EMBEDDING_DIM = 128

__all__ = [
    "convert",
    "convert_shape_predictor",
    "build_model",
    "read_network",
    "ConversionError",
]
SHAPE_MAGIC = b"FFDLIBSP"
SHAPE_VERSION = 1


class ConversionError(RuntimeError):
    """The file is not the dlib network this converter expects."""


# --------------------------------------------------------------------------- reading


class _Reader:
    """Sequential reader of dlib's ``serialize`` encoding."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ConversionError(f"file ends early (wanted {n} bytes at offset {self.pos})")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        head = self._take(1)[0]
        size = head & 0x0F
        if size > 8:
            raise ConversionError(f"bad integer header {head:#x} at offset {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if head & 0x80 else value

    def string(self) -> str:
        return self._take(self.int()).decode("latin-1")

    def bool(self) -> bool:
        c = self._take(1)
        if c not in (b"0", b"1"):
            raise ConversionError(f"bad bool {c!r} at offset {self.pos - 1}")
        return c == b"1"

    def real(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        if abs(exponent) >= 30000:  # dlib's codes for inf and nan
            raise ConversionError(f"non-finite number at offset {self.pos}")
        return float(np.ldexp(float(mantissa), exponent))

    def float_column(self) -> np.ndarray:
        rows, cols = -self.int(), -self.int()
        if rows < 0 or cols != 1:
            raise ConversionError(f"expected a column matrix, found {rows}x{cols}")
        return np.array([self.real() for _ in range(rows)], dtype=np.float32)

    def tensor(self) -> np.ndarray:
        self.expect_int(2, "tensor version")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self._take(4 * count), dtype="<f4")
        return values.reshape(shape).astype(np.float32)

    def alias_shape(self) -> tuple[int, ...]:
        self.expect_int(1, "alias_tensor version")
        return tuple(self.int() for _ in range(4))

    def expect_int(self, want: int, what: str) -> None:
        got = self.int()
        if got != want:
            raise ConversionError(f"{what}: expected {want}, found {got} (offset {self.pos})")

    def expect_string(self, want: str) -> None:
        got = self.string()
        if got != want:
            raise ConversionError(f"expected layer {want!r}, found {got!r} (offset {self.pos})")


# --------------------------------------------------------------------------- topology


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer of dlib's network type, outermost first as in dlib's template nesting."""

    kind: str  # con, affine, relu, max_pool, avg_pool, tag, skip, add_prev, gap, fc
    filters: int = 0
    size: int = 0
    stride: int = 1
    tag: int = 0

    @property
    def padding(self) -> int:
        # dlib's default: no padding when strided, else half the window
        return 0 if self.stride != 1 else self.size // 2


def _block(n: int, stride: int) -> list[Layer]:
    # affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUB>>>>>
    return [
        Layer("affine"),
        Layer("con", n, 3, 1),
        Layer("relu"),
        Layer("affine"),
        Layer("con", n, 3, stride),
    ]


def _ares(n: int) -> list[Layer]:
    # relu<add_prev1<block<N,affine,1,tag1<SUB>>>>
    return [Layer("relu"), Layer("add_prev", tag=1), *_block(n, 1), Layer("tag", tag=1)]


def _ares_down(n: int) -> list[Layer]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUB>>>>>>>
    return [
        Layer("relu"),
        Layer("add_prev", tag=2),
        Layer("avg_pool", size=2, stride=2),
        Layer("skip", tag=1),
        Layer("tag", tag=2),
        *_block(n, 2),
        Layer("tag", tag=1),
    ]


def anet_layers() -> list[Layer]:
    """dlib's ``anet_type`` below the loss layer, outermost first."""
    levels = (
        _ares_down(256)  # alevel0
        + _ares(256)
        + _ares(256)
        + _ares_down(256)  # alevel1
        + _ares(128)
        + _ares(128)
        + _ares_down(128)  # alevel2
        + _ares(64)
        + _ares(64)
        + _ares(64)
        + _ares_down(64)  # alevel3
        + _ares(32)
        + _ares(32)
        + _ares(32)  # alevel4
    )
    return [
        Layer("fc", EMBEDDING_DIM),
        Layer("gap"),
        *levels,
        Layer("max_pool", size=3, stride=2),
        Layer("relu"),
        Layer("affine"),
        Layer("con", 32, 7, 2),
    ]


@dataclasses.dataclass
class Network:
    """What the file holds: input means, and per layer (outermost first) its parameters."""

    means: tuple[float, float, float]
    layers: list[Layer]
    params: list[dict[str, np.ndarray]]


def _read_trailer(r: _Reader, over_input: bool) -> None:
    """The add_layer state after its details: flags and (empty) cached tensors."""
    r.bool()  # this_layer_setup_called
    r.bool()  # gradient_input_is_stale
    r.bool()  # get_output_and_gradient_input_disabled
    for _ in range(3):  # x_grad, cached_output, params_grad (grad_final over the input)
        r.tensor()
    if over_input:
        r.int()  # _sample_expansion_factor


def _read_details(r: _Reader, layer: Layer) -> dict[str, np.ndarray]:
    if layer.kind == "con":
        r.expect_string("con_4")
        params = r.tensor().reshape(-1)
        r.expect_int(layer.filters, "con num_filters")
        r.expect_int(layer.size, "con nr")
        r.expect_int(layer.size, "con nc")
        r.expect_int(layer.stride, "con stride_y")
        r.expect_int(layer.stride, "con stride_x")
        r.expect_int(layer.padding, "con padding_y")
        r.expect_int(layer.padding, "con padding_x")
        filters = r.alias_shape()
        biases = r.alias_shape()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.real()
        n_w = int(np.prod(filters))
        if params.size != n_w + int(np.prod(biases)) or filters[0] != layer.filters:
            raise ConversionError(f"con_ parameter sizes {filters} {biases} do not add up")
        return {"weight": params[:n_w].reshape(filters), "bias": params[n_w:]}
    if layer.kind == "affine":
        r.expect_string("affine_")
        params = r.tensor().reshape(-1)
        gamma = r.alias_shape()
        r.alias_shape()  # beta, the same shape
        r.expect_int(0, "affine mode (CONV_MODE)")
        k = int(np.prod(gamma))
        if params.size != 2 * k:
            raise ConversionError(f"affine_ holds {params.size} values for {k} channels")
        return {"gamma": params[:k], "beta": params[k:]}
    if layer.kind == "relu":
        r.expect_string("relu_")
        return {}
    if layer.kind in ("max_pool", "avg_pool", "gap"):
        r.expect_string("avg_pool_2" if layer.kind != "max_pool" else "max_pool_2")
        for what in ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"):
            want = {"nr": layer.size, "nc": layer.size, "padding_y": 0, "padding_x": 0}.get(
                what, layer.stride
            )
            r.expect_int(want, f"{layer.kind} {what}")
        return {}
    if layer.kind == "add_prev":
        r.expect_string("add_prev_")
        return {}
    if layer.kind == "fc":
        r.expect_string("fc_2")
        r.expect_int(layer.filters, "fc num_outputs")
        num_inputs = r.int()
        params = r.tensor().reshape(-1)
        weights = r.alias_shape()
        r.alias_shape()  # biases (unused: no-bias mode)
        r.expect_int(1, "fc bias mode (FC_NO_BIAS)")
        for _ in range(4):
            r.real()
        if params.size != num_inputs * layer.filters or int(np.prod(weights)) != params.size:
            raise ConversionError(f"fc_ holds {params.size} values for {num_inputs} inputs")
        return {"weight": params.reshape(num_inputs, layer.filters)}
    raise AssertionError(layer.kind)


def read_network(data: bytes) -> Network:
    """Parse the serialised ``anet_type`` (with its ``loss_metric`` on top)."""
    r = _Reader(data)
    r.expect_int(1, "loss layer version")
    r.expect_string("loss_metric_2")
    r.real()  # margin
    r.real()  # distance threshold
    layers = anet_layers()
    for i, layer in enumerate(layers):
        want = 3 if i == len(layers) - 1 else (1 if layer.kind in ("tag", "skip") else 2)
        r.expect_int(want, f"version of layer {i} ({layer.kind})")
    r.expect_string("input_rgb_image_sized")
    means = (r.real(), r.real(), r.real())
    r.expect_int(CHIP_SIZE, "input rows")
    r.expect_int(CHIP_SIZE, "input columns")
    params: list[dict[str, np.ndarray]] = [{} for _ in layers]
    for i in reversed(range(len(layers))):
        if layers[i].kind in ("tag", "skip"):
            continue
        params[i] = _read_details(r, layers[i])
        _read_trailer(r, over_input=i == len(layers) - 1)
    if r.pos != len(data):
        raise ConversionError(f"{len(data) - r.pos} unread bytes after the network")
    return Network(means, layers, params)


# --------------------------------------------------------------------------- graph


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray, dtype: type = np.float32) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name


def _conv_out(size: int, layer: Layer) -> int:
    return (size + 2 * layer.padding - layer.size) // layer.stride + 1


def build_model(net: Network) -> onnx.ModelProto:
    g = _Graph()
    mean = np.array(net.means, dtype=np.float32).reshape(1, 3, 1, 1)
    x = g.node("Sub", [INPUT_NAME, g.const("input.mean", mean)], "input.centred")
    x = g.node("Mul", [x, g.const("input.scale", np.float32(1.0 / 256.0))], "input.scaled")
    shape = (3, CHIP_SIZE, CHIP_SIZE)  # (channels, rows, cols) of the current tensor
    tagged: dict[int, tuple[str, tuple[int, int, int]]] = {}
    layers, params = net.layers, net.params
    i = len(layers) - 1
    n_conv = 0
    while i >= 0:
        layer = layers[i]
        if layer.kind == "con":
            n_conv += 1
            name = f"conv{n_conv}"
            w, b = params[i]["weight"], params[i]["bias"]
            # dlib puts an affine layer right after every convolution: fold it in.
            if i == 0 or layers[i - 1].kind != "affine":
                raise ConversionError(f"{name}: no affine layer after the convolution")
            gamma, beta = params[i - 1]["gamma"], params[i - 1]["beta"]
            w = w * gamma.reshape(-1, 1, 1, 1)
            b = b * gamma + beta
            p = layer.padding
            x = g.node(
                "Conv",
                [x, g.const(f"{name}.weight", w), g.const(f"{name}.bias", b)],
                name,
                kernel_shape=[layer.size, layer.size],
                strides=[layer.stride, layer.stride],
                pads=[p, p, p, p],
            )
            side = _conv_out(shape[1], layer)
            shape = (layer.filters, side, side)
            i -= 2  # the affine is consumed
            continue
        if layer.kind == "relu":
            x = g.node("Relu", [x], f"{x}.relu")
        elif layer.kind in ("max_pool", "avg_pool"):
            op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
            x = g.node(
                op,
                [x],
                f"{x}.{layer.kind}",
                kernel_shape=[layer.size, layer.size],
                strides=[layer.stride, layer.stride],
            )
            side = _conv_out(shape[1], layer)
            shape = (shape[0], side, side)
        elif layer.kind == "tag":
            tagged[layer.tag] = (x, shape)
        elif layer.kind == "skip":
            x, shape = tagged[layer.tag]
        elif layer.kind == "add_prev":
            other, other_shape = tagged[layer.tag]
            target = tuple(max(a, b) for a, b in zip(shape, other_shape, strict=True))
            lhs = _pad_to(g, x, shape, target)
            rhs = _pad_to(g, other, other_shape, target)
            x = g.node("Add", [lhs, rhs], f"add{i}")
            shape = target
        elif layer.kind == "gap":
            x = g.node("GlobalAveragePool", [x], "gap")
            x = g.node("Flatten", [x], "gap.flat", axis=1)
            shape = (shape[0], 1, 1)
        elif layer.kind == "fc":
            x = g.node("MatMul", [x, g.const("fc.weight", params[i]["weight"])], "fc")
        else:
            raise AssertionError(layer.kind)
        i -= 1
    g.nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name=OUTPUT_NAME))

    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, TensorProto.FLOAT, ["N", 3, CHIP_SIZE, CHIP_SIZE]
            )
        ],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", EMBEDDING_DIM])],
        g.inits,
    )
    model = helper.make_model(
        graph,
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _pad_to(g: _Graph, x: str, shape: tuple[int, int, int], target: tuple[int, int, int]) -> str:
    """Zero-pad ``x`` at the end of the channel, row and column axes up to ``target``."""
    if shape == target:
        return x
    ends = [t - s for s, t in zip(shape, target, strict=True)]
    pads = np.array([0, 0, 0, 0, 0, *ends], dtype=np.int64)
    return g.node("Pad", [x, g.const(f"{x}.pads", pads, np.int64)], f"{x}.padded")


def convert(dat_path: pathlib.Path, out_path: pathlib.Path) -> pathlib.Path:
    net = read_network(pathlib.Path(dat_path).read_bytes())
    model = build_model(net)
    out_path = pathlib.Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(model.SerializeToString())
    return out_path


# --------------------------------------------------------------------------- landmarks


def _read_shape_predictor(data: bytes) -> bytes:
    """Parse dlib's ``shape_predictor`` and return it in the flat binary layout."""
    r = _Reader(data)
    r.expect_int(1, "shape_predictor version")
    initial = r.float_column()
    parts = initial.size // 2
    cascades: list[list[tuple[np.ndarray, np.ndarray]]] = []
    for _ in range(r.int()):
        trees = []
        for _ in range(r.int()):
            splits = np.array(
                [(r.int(), r.int(), r.real()) for _ in range(r.int())], dtype=np.float64
            )
            leaves = np.stack([r.float_column() for _ in range(r.int())])
            trees.append((splits, leaves))
        cascades.append(trees)
    anchors = [np.array([r.int() for _ in range(r.int())], dtype="<u4") for _ in range(r.int())]
    deltas = [
        np.array([(r.real(), r.real()) for _ in range(r.int())], dtype="<f4")
        for _ in range(r.int())
    ]
    if r.pos != len(data):
        raise ConversionError(f"{len(data) - r.pos} unread bytes after the shape predictor")

    n_trees = len(cascades[0])
    n_splits = len(cascades[0][0][0])
    n_pixels = anchors[0].size
    for trees in cascades:
        for splits, leaves in trees:
            if len(trees) != n_trees or len(splits) != n_splits:
                raise ConversionError("cascades of unequal size")
            if leaves.shape != (n_splits + 1, 2 * parts):
                raise ConversionError(f"tree with leaves {leaves.shape}")
            if splits[:, :2].max() >= n_pixels:
                raise ConversionError("split refers to a feature pixel that does not exist")
    if len(anchors) != len(cascades) or any(
        a.size != n_pixels or d.shape != (n_pixels, 2) or a.max() >= parts
        for a, d in zip(anchors, deltas, strict=True)
    ):
        raise ConversionError("feature pixel lists do not match the cascades")

    header = np.array(
        [SHAPE_VERSION, parts, len(cascades), n_trees, n_splits, n_pixels], dtype="<u4"
    )
    out = [SHAPE_MAGIC, header.tobytes(), initial.astype("<f4").tobytes()]
    out += [a.tobytes() + d.tobytes() for a, d in zip(anchors, deltas, strict=True)]
    split_dtype = np.dtype([("idx1", "<u4"), ("idx2", "<u4"), ("thresh", "<f4")])
    for trees in cascades:
        for splits, leaves in trees:
            packed = np.empty(len(splits), dtype=split_dtype)
            packed["idx1"], packed["idx2"] = splits[:, 0], splits[:, 1]
            packed["thresh"] = splits[:, 2]
            out += [packed.tobytes(), leaves.astype("<f4").tobytes()]
    return b"".join(out)


def convert_shape_predictor(dat_path: pathlib.Path, out_path: pathlib.Path) -> pathlib.Path:
    blob = _read_shape_predictor(pathlib.Path(dat_path).read_bytes())
    out_path = pathlib.Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(blob)
    return out_path


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.rsplit("Usage: ", 1)[1].strip())
    source, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    if target.suffix == ".onnx":
        convert(source, target)
    else:
        convert_shape_predictor(source, target)
