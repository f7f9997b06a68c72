"""Imported first by the package: numpy loaded with its OpenBLAS threads told
not to spin.

numpy's OpenBLAS starts its threads as numpy is imported, and they spin for
about 0.1 s waiting for work that fastface never gives them, holding a core
the start needs (2 cores, back to back: `import fastface` 0.30 -> 0.22 s, a
warm start to the first embedding 0.59 -> 0.50 s). Told before numpy loads,
they sleep after OpenBLAS's shortest spin instead; how many there are, and
what numpy computes, stay the same. A value the user set is kept, numpy
already loaded is left alone, and the variable is gone again once numpy is
loaded, so child processes do not inherit it.
"""

from __future__ import annotations

import os
import sys

_SETTING = "OPENBLAS_THREAD_TIMEOUT"
# OpenBLAS's shortest spin: 2**4 cycles.
_SHORTEST = "4"

if "numpy" not in sys.modules and _SETTING not in os.environ:
    os.environ[_SETTING] = _SHORTEST
    try:
        import numpy  # noqa: F401
    finally:
        del os.environ[_SETTING]
