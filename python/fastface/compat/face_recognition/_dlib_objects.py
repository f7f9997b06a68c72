"""Stand-ins for the dlib objects face_recognition's private helpers return
(``_raw_face_locations`` and friends), with the methods ported code calls on them:
``rectangle`` (``left()``, ``top()``, ``right()``, ``bottom()``, ``width()``,
``height()``, ``area()``, ``center()``, ``is_empty()``), ``mmod_rectangle``
(``.rect``, ``.confidence``), ``point`` (``.x``, ``.y``) and
``full_object_detection`` (``.rect``, ``.num_parts``, ``part(i)``, ``parts()``).

They follow dlib's conventions: integer pixel bounds, ``right`` and ``bottom``
inclusive (``width() == right() - left() + 1``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["full_object_detection", "mmod_rectangle", "point", "points", "rectangle"]


@dataclass(frozen=True)
class point:  # noqa: N801 - dlib's name
    """A pixel position, as dlib's ``point``."""

    x: int
    y: int

    def __iter__(self) -> Iterator[int]:
        return iter((self.x, self.y))


class points(list[point]):  # noqa: N801 - dlib's name
    """A list of :class:`point` (dlib's ``points``)."""


@dataclass(frozen=True)
class rectangle:  # noqa: N801 - dlib's name
    """An axis-aligned box with inclusive integer bounds, as dlib's ``rectangle``."""

    _left: int
    _top: int
    _right: int
    _bottom: int

    def left(self) -> int:
        return self._left

    def top(self) -> int:
        return self._top

    def right(self) -> int:
        return self._right

    def bottom(self) -> int:
        return self._bottom

    def width(self) -> int:
        return 0 if self.is_empty() else self._right - self._left + 1

    def height(self) -> int:
        return 0 if self.is_empty() else self._bottom - self._top + 1

    def area(self) -> int:
        return self.width() * self.height()

    def is_empty(self) -> bool:
        return self._left > self._right or self._top > self._bottom

    def center(self) -> point:
        """dlib's ``center``: the middle pixel, rounded as dlib rounds it."""
        return point((self._left + self._right + 1) // 2, (self._top + self._bottom + 1) // 2)

    def tl_corner(self) -> point:
        return point(self._left, self._top)

    def br_corner(self) -> point:
        return point(self._right, self._bottom)

    def __repr__(self) -> str:
        return f"[({self._left}, {self._top}) ({self._right}, {self._bottom})]"


@dataclass(frozen=True)
class mmod_rectangle:  # noqa: N801 - dlib's name
    """A CNN detection, as dlib's ``mmod_rectangle``: the box and its score."""

    rect: rectangle
    confidence: float


class full_object_detection:  # noqa: N801 - dlib's name
    """A face's box and landmarks, as dlib's ``full_object_detection``."""

    def __init__(self, rect: rectangle, parts: Sequence[tuple[int, int]]) -> None:
        self.rect = rect
        self._parts = points(point(int(x), int(y)) for x, y in parts)

    @property
    def num_parts(self) -> int:
        return len(self._parts)

    def part(self, idx: int) -> point:
        return self._parts[idx]

    def parts(self) -> points:
        return points(self._parts)

    def __repr__(self) -> str:
        return f"<full_object_detection {self.rect!r}, {self.num_parts} parts>"
