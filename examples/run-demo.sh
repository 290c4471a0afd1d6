#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The lu-vfiod demo: an emulated machine (luo-emu) runs the real daemon and three example
# VMMs (two hand their guest RAM and VFIO device to the daemon, one keeps its own LUO
# session), prepares and commits a live update, kexecs, and in the new boot every VMM
# reclaims its memory and device, verifies them and reports restored. Ends with the
# daemon's timeline of the update.
# Usage: examples/run-demo.sh [BUILD_DIR] [upstream|v4]
set -eu
B=${1:-build}
ABI=${2:-upstream}
export E2E_DIR="$B/e2e/demo-run"
exec "$B/tests/emu/luo-emu" --abi="$ABI" --vfio=3 --bind-delay=50 -- \
        "$B/tests/e2e/e2e-driver" demo "$B/daemon/lu-vfiod" "$B/tests/e2e/example-vmm"
