"""Boxes with a label drawn on a copy of a photo or frame: what
``fastface identify --annotate`` and ``fastface watch --annotate`` write."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np
import numpy.typing as npt

NAMED = (40, 180, 40)  # BGR
UNKNOWN = (40, 40, 220)


def draw_labelled_boxes(
    image: npt.NDArray[np.uint8], boxes: Iterable[tuple[Sequence[float], str, bool]]
) -> npt.NDArray[np.uint8]:
    """A BGR copy of the RGB ``image`` with each ``(box, text, named)`` drawn:
    the box, and the text on a band above it (below where there is no room),
    green for a named face and red for an unknown one; line width and text
    size follow the image's size."""
    out = np.ascontiguousarray(image[..., ::-1])
    h, w = out.shape[:2]
    thick = max(2, int(round(min(h, w) / 250)))
    scale = max(0.45, min(h, w) / 700)
    for box, text, named in boxes:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        x1, y1 = max(0, min(x1, w - 1)), max(0, min(y1, h - 1))
        x2, y2 = max(0, min(x2, w - 1)), max(0, min(y2, h - 1))
        colour = NAMED if named else UNKNOWN
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else min(h - 1, y2 + th + base + 4)
        cv2.rectangle(out, (x1, ty - th - base), (min(w - 1, x1 + tw + 4), ty + 2), colour, -1)
        cv2.putText(
            out, text, (x1 + 2, ty - base + 1), cv2.FONT_HERSHEY_SIMPLEX, scale,
            (255, 255, 255), 1, cv2.LINE_AA,
        )  # fmt: skip
    return out
