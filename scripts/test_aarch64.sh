#!/usr/bin/env bash
# fastface on aarch64 (64-bit ARM boards), tested on this x86-64 machine under
# qemu-user emulating a Raspberry Pi 4's core, a Cortex-A72 (ARMv8.0: no
# dot-product, fp16 or LSE atomics), so that an instruction a Pi 4 lacks faults
# here instead of on the board. Emulation checks correctness only, never speed.
#
#     bash scripts/test_aarch64.sh          everything below
#     bash scripts/test_aarch64.sh --core   the core's cargo tests only (what CI runs)
#
# 1. The core's `cargo test` for aarch64-unknown-linux-gnu, cross-compiled with
#    Debian's gcc-aarch64-linux-gnu and run by qemu: the search tests compare every
#    NEON kernel with the scalar reference; the int8 search tests run again as a
#    Cortex-A76 (Raspberry Pi 5), whose dot-product kernel the A72 lacks.
# 2. The aarch64 wheel, from `scripts/wheel.sh --target aarch64`.
# 3. An arm64 Debian root (debootstrap from Debian's registry, cached under
#    .cache/aarch64/root), a Python venv in it, the aarch64 wheels of fastface's
#    dependencies downloaded on this machine and installed offline (pip is slow
#    under emulation), then the edge subset of the pytest suite, tests/test_edge.py,
#    run there from the installed wheel.
# Ends with one summary line in pytest's form. Needs root (apt-get, mount,
# chroot) and network access to crates.io, PyPI and Debian's registry.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
cache="$repo/.cache/aarch64"
root="$cache/root"
suite="trixie"
target="aarch64-unknown-linux-gnu"
mkdir -p "$cache"
# Every emulated process below runs as a Cortex-A72 (qemu reads QEMU_CPU).
export QEMU_CPU=cortex-a72

need_debian_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# "test result: ok. 62 passed; 0 failed; ..." -> "62 0"
cargo_counts() {
    sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$1" |
        awk '{p += $1; f += $2} END {print p + 0, f + 0}'
}

core_tests() {
    need_debian_packages qemu-user-static gcc-aarch64-linux-gnu
    rustup target add "$target" >/dev/null
    cross_cargo_test 2>&1 | tee "$cache/cargo-test.log" || true
    # The int8 search once more as a Cortex-A76 (a Raspberry Pi 5's core), which
    # has the dot-product extension: its `sdot` kernel runs there besides NEON's.
    QEMU_CPU=cortex-a76 cross_cargo_test int8:: 2>&1 | tee -a "$cache/cargo-test.log" || true
}

# `cargo test` of the core for aarch64 under qemu, with the test filter given.
cross_cargo_test() {
    # Its own target folder: the cross build shares nothing with the x86-64 one.
    # Compiled for the tests' sake: fastface optimised (opt-level 2, debug
    # assertions kept; unoptimised, the search tests take minutes under qemu),
    # its dependencies not and no debug info (a quarter of the CPU time of the
    # usual dev profile; tract runs only tiny products here).
    CARGO_TARGET_DIR=target/aarch64 \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -L /usr/aarch64-linux-gnu" \
        cargo test --target "$target" --lib --config profile.dev.opt-level=2 \
        --config 'profile.dev.package."*".opt-level=0' --config profile.dev.debug=false "$@"
}

# A run that never reached its result line (a build error, a crash) counts as
# one failure, so the summary cannot read as a pass: two cargo runs, two lines.
summary() {
    local passed=0 failed=0 p f runs
    runs=$(grep -c '^test result: ' "$cache/cargo-test.log" || true)
    read -r p f < <(cargo_counts "$cache/cargo-test.log")
    passed=$((passed + p)) failed=$((failed + f + 2 - (runs < 2 ? runs : 2)))
    if [ "$1" = all ]; then
        if grep -q ' passed\| failed' "$cache/pytest.log"; then
            p=$(tail -1 "$cache/pytest.log" | grep -o '[0-9]* passed' | cut -d' ' -f1)
            f=$(tail -1 "$cache/pytest.log" | grep -o '[0-9]* \(failed\|error\|errors\)' |
                awk '{s += $1} END {print s + 0}')
            passed=$((passed + ${p:-0})) failed=$((failed + f))
        else
            failed=$((failed + 1))
        fi
    fi
    echo "aarch64 (qemu $QEMU_CPU, int8 also cortex-a76): $passed passed, $failed failed"
}

# binfmt_misc lets the kernel hand aarch64 programs to qemu, inside the chroot too
# (Debian registers qemu with the F flag: the interpreter is opened once, here).
enable_binfmt() {
    need_debian_packages qemu-user-static binfmt-support
    mountpoint -q /proc/sys/fs/binfmt_misc ||
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
}

debian_root() {
    if [ ! -f "$root/.complete" ]; then
        need_debian_packages debootstrap
        rm -rf "$root"
        debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv \
            "$suite" "$root" http://deb.debian.org/debian
        touch "$root/.complete"
    fi
    # pip inside the root trusts what this machine trusts.
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
}

# qemu-user shows the host's x86 /proc/cpuinfo, which onnxruntime's CPU probe
# cannot parse (it crashes on import); inside the root a Cortex-A72's text (the
# fields a Raspberry Pi 4 reports) is bound over it, one entry per CPU.
cpuinfo_text() {
    local cpu
    for cpu in $(seq 0 $(($(nproc) - 1))); do
        printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$cpu"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\n'
        printf 'CPU part\t: 0xd08\nCPU revision\t: 3\n\n'
    done
}

mount_root() {
    unmount_root # whatever an interrupted run left mounted
    cpuinfo_text >"$cache/cpuinfo"
    mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
    mount --bind "$cache/cpuinfo" "$root/proc/cpuinfo"
    # onnxruntime's CPU probe also reads the CPU lists under /sys.
    mountpoint -q "$root/sys" || mount --bind /sys "$root/sys"
    mkdir -p "$root/opt/wheels" "$root/opt/tests"
    mount --bind "$cache/wheels" "$root/opt/wheels"
    mount --bind "$repo/tests" "$root/opt/tests"
    trap unmount_root EXIT
}

unmount_root() {
    local path
    for path in opt/tests opt/wheels sys proc/cpuinfo proc; do
        umount "$root/$path" 2>/dev/null || true
    done
}

in_root() {
    chroot "$root" env -i HOME=/root PATH=/opt/venv/bin:/usr/bin:/bin QEMU_CPU="$QEMU_CPU" \
        PYTHONDONTWRITEBYTECODE=1 PIP_NO_INDEX=1 PIP_FIND_LINKS=/opt/wheels "$@"
}

wheel_tests() {
    local python wheel
    python=".venv/bin/python"
    rm -rf "$cache/dist"
    bash scripts/wheel.sh --target aarch64 "$cache/dist"
    wheel=$(ls "$cache"/dist/fastface-*-manylinux_2_28_aarch64.whl)
    # The extension inside must be an aarch64 ELF (e_machine 0xb7 = EM_AARCH64).
    "$python" - "$wheel" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    (name,) = [n for n in wheel.namelist() if n.startswith("fastface/_core") and n.endswith(".so")]
    header = wheel.read(name)[:20]
assert header[:4] == b"\x7fELF" and header[18:20] == b"\xb7\x00", f"{name} is not an aarch64 ELF"
print(f"{name}: aarch64 ELF")
PY
    enable_binfmt
    debian_root
    # The root's CPython decides which wheels fit it.
    local version
    version=$(chroot "$root" python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    mkdir -p "$cache/wheels"
    rm -f "$cache"/wheels/fastface-*.whl
    cp "$wheel" "$cache/wheels/"
    "$python" -m pip download --quiet --dest "$cache/wheels" --only-binary=:all: \
        --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 \
        --platform manylinux2014_aarch64 --implementation cp --python-version "$version" \
        "$wheel" pytest
    mount_root
    [ -x "$root/opt/venv/bin/python" ] || in_root python3 -m venv /opt/venv
    in_root python -m pip install --quiet --force-reinstall --no-deps /opt/wheels/"$(basename "$wheel")"
    in_root python -m pip install --quiet "/opt/wheels/$(basename "$wheel")" pytest
    in_root python -c 'import fastface, platform; print("fastface", fastface.__version__, "on", platform.machine())'
    # Nothing is written into the bound tests/ folder (no cache, no bytecode); the
    # suite's conftest.py sets up hypothesis, which the edge subset does not use.
    in_root python -m pytest -q -p no:cacheprovider --noconftest --rootdir /opt/tests \
        /opt/tests/test_edge.py 2>&1 | tee "$cache/pytest.log" || true
}

scope=all
[ "${1:-}" = "--core" ] && scope=core
rm -f "$cache/pytest.log"
core_tests
[ "$scope" = all ] && wheel_tests
line=$(summary "$scope")
echo "$line"
case "$line" in
    *" 0 failed") exit 0 ;;
    *) exit 1 ;;
esac
