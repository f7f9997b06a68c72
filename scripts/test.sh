#!/usr/bin/env bash
# Sets everything up, then runs the linters, the Rust tests and the Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export PATH="$PWD/.venv/bin:$PATH"
cargo fmt --check
cargo clippy --release --all-targets -- -D warnings
cargo clippy --release --all-targets --features python -- -D warnings
# The demo's build (scripts/setup.sh without `test`) leaves tract out.
cargo clippy --release --all-targets --no-default-features --features python -- -D warnings
ruff check python tests benches models build_backend
ruff format --check python tests benches models build_backend
mypy
python -m mypy.stubtest fastface._core --allowlist tests/stubtest_allowlist.txt
# With the extension's features, the tests reuse the release build that setup.sh
# made: without them pyo3's proc-macro dependencies resolve other features and
# all of tract compiles again (about 10 minutes here). Needs libpython, as the
# development install does; plain `cargo test` needs no Python at all.
cargo test --release --lib --features python
# The slowest tests are listed, to keep CI within its 45 minutes; a test skipped
# for a reason tests/skip_guard.py does not allow fails the run.
python -m pytest -q --durations=25 --strict-skips "$@"
