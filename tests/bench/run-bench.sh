#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs the benchmarks against a build directory and prints the results as
# "metric value" lines; docs/performance.md records a run and explains each number.
#   tests/bench/run-bench.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
emu=$build/tests/emu/luo-emu
bench=$build/tests/bench/bench-emu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "# floor: a bare seccomp-notification round trip, outside the emulator"
"$bench" floor 20000
echo "# emulator: trapped vs untrapped ioctl (upstream ABI)"
"$emu" --vfio=1 -- "$bench" ioctl 20000
echo "# emulator: trapped vs untrapped ioctl (v4 ABI)"
"$emu" --abi=v4 --vfio=1 -- "$bench" ioctl 20000 v4
echo "# emulator: full kexec cycle (kexec_file_load + reboot + freeze + new boot)"
"$emu" -- "$bench" reboot 50 "$tmp/state"
