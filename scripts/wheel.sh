#!/usr/bin/env bash
# Builds the release wheel: every bundled model, a stripped extension module,
# linked by zig against glibc 2.28 so it carries the manylinux_2_28 tag the
# package index accepts (the floor of onnxruntime's own Linux wheels too).
#
#     bash scripts/wheel.sh [OUT_DIR]        (default: dist/)
#
# Needs what scripts/setup.sh installs (.venv with maturin) plus ziglang from
# PyPI, installed here on first use. The build has its own cargo target folder
# (target/wheel): zig as the C compiler and linker would otherwise invalidate
# the development build in target/ and the other way round. From scratch it
# takes as long as the first development build (tract dominates).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
python="${PYTHON:-.venv/bin/python}"
# maturin runs zig as `python3 -m ziglang`: that must be this environment's python
export PATH="$(cd "$(dirname "$python")" && pwd):$PATH"
"$python" -c "import ziglang" 2>/dev/null || "$python" -m pip install --quiet 'ziglang>=0.13'
"$python" models/build.py --out python/fastface/models --samples python/fastface/samples
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/wheel}" "$python" -m maturin build --release \
    --strip --zig --compatibility manylinux_2_28 --interpreter "$python" --out "$out"
