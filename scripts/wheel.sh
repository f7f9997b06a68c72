#!/usr/bin/env bash
# Builds the release wheel: every bundled model, a stripped extension module,
# linked by zig against glibc 2.28 so it carries the manylinux_2_28 tag the
# package index accepts (the floor of onnxruntime's own Linux wheels too).
#
#     bash scripts/wheel.sh [--target aarch64] [OUT_DIR]        (default: dist/)
#
# Without --target it builds for this machine (x86-64). `--target aarch64`
# cross-compiles the aarch64 wheel for 64-bit ARM boards (Raspberry Pi 4/5,
# Jetson, ...) on this x86-64 machine: rustup's aarch64-unknown-linux-gnu
# standard library plus the same zig, which links against an aarch64 glibc 2.28
# of its own, so no cross gcc or sysroot is needed. The models are the same
# files on every platform.
#
# Needs what `scripts/setup.sh test` installs (.venv with maturin) plus ziglang from
# PyPI, installed here on first use. Each target has its own cargo target folder
# (target/wheel, target/wheel-aarch64): zig as the C compiler and linker would
# otherwise invalidate the development build in target/ and the other way round.
# From scratch it takes as long as the first development build (tract dominates).
set -euo pipefail
cd "$(dirname "$0")/.."
target=""
if [ "${1:-}" = "--target" ]; then
    target="${2:?--target needs an architecture: aarch64}"
    shift 2
fi
out="${1:-dist}"
python="${PYTHON:-.venv/bin/python}"
# maturin runs zig as `python3 -m ziglang`: that must be this environment's python
export PATH="$(cd "$(dirname "$python")" && pwd):$PATH"
"$python" -c "import ziglang" 2>/dev/null || "$python" -m pip install --quiet 'ziglang>=0.13'
"$python" models/build.py --out python/fastface/models --samples python/fastface/samples
case "$target" in
    "")
        CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/wheel}" "$python" -m maturin build \
            --release --strip --zig --compatibility manylinux_2_28 --interpreter "$python" \
            --out "$out"
        ;;
    aarch64)
        rustup target add aarch64-unknown-linux-gnu >/dev/null
        # abi3: one wheel serves CPython 3.10 and later, so no aarch64
        # interpreter is needed to build it.
        CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/wheel-aarch64}" "$python" -m maturin build \
            --release --strip --zig --compatibility manylinux_2_28 \
            --target aarch64-unknown-linux-gnu --out "$out"
        ;;
    *)
        echo "wheel.sh: unknown target '$target' (known: aarch64)" >&2
        exit 2
        ;;
esac
