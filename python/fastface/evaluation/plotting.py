"""The ROC curve and distance histograms as a PNG, drawn with OpenCV."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from .metrics import as_inputs, roc_auc, roc_curve

_BLACK = (0, 0, 0)
_GREY = (200, 200, 200)
_BLUE = (200, 90, 20)  # BGR
_GREEN = (60, 160, 40)
_RED = (40, 40, 210)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img: npt.NDArray[np.uint8], s: str, xy: tuple[int, int], scale: float = 0.45) -> None:
    cv2.putText(img, s, xy, _FONT, scale, _BLACK, 1, cv2.LINE_AA)


def _axes(
    img: npt.NDArray[np.uint8],
    box: tuple[int, int, int, int],
    xticks: Sequence[tuple[float, str]],
    yticks: Sequence[tuple[float, str]],
    title: str,
    xlabel: str,
    ylabel: str,
) -> None:
    """Frame, grid and labels; ticks are (fraction of the axis, label)."""
    x0, y0, x1, y1 = box
    for f, label in xticks:
        x = int(round(x0 + f * (x1 - x0)))
        cv2.line(img, (x, y0), (x, y1), _GREY, 1)
        _text(img, label, (x - 12, y1 + 18), 0.4)
    for f, label in yticks:
        y = int(round(y1 - f * (y1 - y0)))
        cv2.line(img, (x0, y), (x1, y), _GREY, 1)
        _text(img, label, (x0 - 42, y + 4), 0.4)
    cv2.rectangle(img, (x0, y0), (x1, y1), _BLACK, 1)
    _text(img, title, (x0, y0 - 12), 0.55)
    _text(img, xlabel, ((x0 + x1) // 2 - 40, y1 + 40))
    if ylabel:
        _text(img, ylabel, ((x0 + x1) // 2 - 50, (y0 + y1) // 2))


def plot(
    distances: npt.ArrayLike,
    same: npt.ArrayLike,
    path: str | os.PathLike[str],
    *,
    threshold: float | None = None,
    title: str = "",
) -> None:
    """Writes a PNG (drawn with OpenCV; no matplotlib): the ROC curve (TAR against
    FAR, FAR on a log axis from 1e-3 to 1) and the histograms of the distances of
    same and different pairs, with ``threshold`` marked."""
    d, s = as_inputs(distances, same)
    width, height = 1200, 520
    img = np.full((height, width, 3), 255, np.uint8)
    if title:
        _text(img, title, (20, 24), 0.6)

    # ROC, log FAR axis
    x0, y0, x1, y1 = 70, 70, 560, 450
    lo = -3.0
    xt = [((e - lo) / -lo, f"1e{e:d}" if e < 0 else "1") for e in range(-3, 1)]
    yt = [(v, f"{v:.1f}") for v in np.linspace(0, 1, 6)]
    _axes(img, (x0, y0, x1, y1), xt, yt, "ROC", "false accept rate", "true accept rate")
    far, tar, _ = roc_curve(d, s)
    fx = np.log10(np.clip(far, 10**lo, 1.0))
    fx = np.where(far <= 0, lo, fx)
    px = x0 + (fx - lo) / -lo * (x1 - x0)
    py = y1 - tar * (y1 - y0)
    pts = np.stack([px, py], axis=1).round().astype(np.int32)
    cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, _BLUE, 2, cv2.LINE_AA)
    _text(img, f"AUC {roc_auc(d, s):.4f}", (x1 - 110, y1 - 12))

    # histograms
    hx0, hy0, hx1, hy1 = 660, 70, 1160, 450
    top = max(2.0, float(d.max()))
    edges = np.linspace(0.0, top, 61)
    hs, _ = np.histogram(d[s], edges)
    hd, _ = np.histogram(d[~s], edges)
    ps = hs / max(int(s.sum()), 1)
    pd = hd / max(int((~s).sum()), 1)
    peak = max(float(ps.max()), float(pd.max()), 1e-9)
    xt2 = [(v / top, f"{v:.1f}") for v in np.arange(0, top + 1e-9, 0.5)]
    yt2 = [(v, f"{v * peak:.2f}") for v in np.linspace(0, 1, 5)]
    _axes(img, (hx0, hy0, hx1, hy1), xt2, yt2, "distance histograms", "distance", "")
    bin_w = (hx1 - hx0) / (len(edges) - 1)
    for values, colour in ((pd, _RED), (ps, _GREEN)):
        for i, v in enumerate(values):
            if v <= 0:
                continue
            left = int(round(hx0 + i * bin_w)) + 1
            right = int(round(hx0 + (i + 1) * bin_w)) - 1
            ytop = int(round(hy1 - v / peak * (hy1 - hy0)))
            overlay = img.copy()
            cv2.rectangle(overlay, (left, ytop), (right, hy1 - 1), colour, -1)
            cv2.addWeighted(overlay, 0.55, img, 0.45, 0, img)
    cv2.rectangle(img, (hx0 + 10, hy0 + 10), (hx0 + 24, hy0 + 24), _GREEN, -1)
    _text(img, f"same ({int(s.sum())})", (hx0 + 30, hy0 + 22))
    cv2.rectangle(img, (hx0 + 10, hy0 + 32), (hx0 + 24, hy0 + 46), _RED, -1)
    _text(img, f"different ({int((~s).sum())})", (hx0 + 30, hy0 + 44))
    if threshold is not None and 0 <= threshold <= top:
        tx = int(round(hx0 + threshold / top * (hx1 - hx0)))
        cv2.line(img, (tx, hy0), (tx, hy1), _BLACK, 2)
        _text(img, f"threshold {threshold:.3f}", (min(tx + 4, hx1 - 120), hy0 + 64))

    out = Path(path)
    ok, encoded = cv2.imencode(out.suffix or ".png", img)
    if not ok:
        raise ValueError(f"cannot encode a plot as {out.suffix!r}; use .png")
    out.write_bytes(encoded.tobytes())
