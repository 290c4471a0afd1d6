#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The kernel's own LUO selftests (built from the same tarball by build-kernel.sh) under
# luo-emu instead of the real kernel: the same rk-init scenario as in the QEMU machine,
# with luo-emu's emulated kexecs between the stages.
#
#   run-emu.sh BUILD_DIR LUO_EMU RK_INIT [LUO-EMU OPTIONS...]   (e.g. --kernel=7.2)
set -euo pipefail

build=$1 luo_emu=$2 rk_init=$3
shift 3
here=$(dirname "$(readlink -f "$0")")
rc=0
kdir=$("$here/build-kernel.sh") || rc=$?
if [ $rc -eq 77 ]; then
        echo "SKIP: the Linux 7.1 tarball cannot be had (tests/real-kernel/fetch-kernel.sh)"
        exit 77
elif [ $rc -ne 0 ]; then
        echo "FAIL: building the kernel and its selftests failed (tests/real-kernel/build-kernel.sh)"
        exit 1
fi
export E2E_DIR=$build/real-kernel/selftests-emu${1:+-${1#--kernel=}}
rm -rf "$E2E_DIR"
# its parent too: this test must not depend on another having run first
mkdir -p "$E2E_DIR"
exec "$luo_emu" --abi=upstream "$@" -- "$rk_init" --emu selftests "$kdir/selftests"
