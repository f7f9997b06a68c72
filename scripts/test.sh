#!/usr/bin/env bash
# Sets everything up, then runs the linters, the Rust tests and the Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
cargo fmt --check
cargo clippy --release --all-targets -- -D warnings
cargo clippy --release --all-targets --features python -- -D warnings
ruff check python tests benches models build_backend
ruff format --check python tests benches models build_backend
mypy
python -m mypy.stubtest fastface._core --allowlist tests/stubtest_allowlist.txt
cargo test --release
python -m pytest -q "$@"
