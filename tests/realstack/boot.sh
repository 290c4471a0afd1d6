#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The realstack machine's boot: run as luo-emu's COMMAND (luo-emu ... -- boot.sh ROOT CONSOLE),
# it turns each emulated boot into a boot of Debian 12's real systemd as PID 1 of the emulated
# machine, inside the rootfs ROOT (an overlay of the cached base, tests/realstack/machine.sh).
#
# luo-emu has already made this process PID 1 of a fresh PID + mount namespace with the emulated
# /dev (liveupdate, iommu, vfio/devices/*), /sys entries and /proc; the seccomp trap that answers
# the emulated kernel calls (and /proc/cmdline, boot_id) is inherited by everything started here.
# This script only does what a container manager does before exec'ing an init:
#   - a cgroup2 subtree of its own, and a cgroup namespace rooted there (systemd manages it);
#   - fresh net/uts/ipc namespaces (the machine gets its own loopback and hostname);
#   - ROOT's /dev and /sys are luo-emu's (rbind), /sys/fs/cgroup is that cgroup2 subtree, /proc a
#     fresh proc of the machine's PID namespace;
#   - /dev/console is the terminal CONSOLE (console.py's pty, copied to the console log), so
#     systemd's boot and shutdown status lines are captured;
#   - pivot_root into ROOT, exec /lib/systemd/systemd with container=luo-emu.
set -euo pipefail

if [ "${1:-}" = --stage2 ]; then
        root=$2 console=$3
        mount --rbind /dev "$root/dev"
        mount --rbind /sys "$root/sys"
        # The host's (possibly hybrid) cgroup mounts are replaced by our own cgroup2 subtree.
        umount -R "$root/sys/fs/cgroup" 2>/dev/null || true
        mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$root/sys/fs/cgroup"
        mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
        : >>"$root/dev/console"
        mount --bind "$console" "$root/dev/console"
        chmod 0600 "$root/dev/console"
        hostname realstack
        cd "$root"
        mkdir -p .oldroot
        pivot_root . .oldroot
        umount -l /.oldroot
        rmdir /.oldroot 2>/dev/null || true
        exec env -i container=luo-emu PATH=/usr/sbin:/usr/bin:/sbin:/bin \
                /lib/systemd/systemd --show-status=yes --log-target=journal-or-kmsg </dev/null >/dev/console 2>&1
fi

[ $# -eq 2 ] || { echo "usage: boot.sh ROOT CONSOLE (as luo-emu's COMMAND; CONSOLE a terminal, e.g. /dev/pts/N)" >&2; exit 2; }
root=$(readlink -f "$1")
console=$2
[ -x "$root/lib/systemd/systemd" ] || { echo "boot.sh: $root has no /lib/systemd/systemd" >&2; exit 1; }
[ -c "$console" ] || { echo "boot.sh: console $console is not a terminal device" >&2; exit 1; }
echo "=== boot ${LUO_EMU_BOOT:-?} ($(date -u +%FT%TZ)) ===" >>"$console"

# Our own cgroup2 subtree: the unified hierarchy wherever the host mounts it.
cg=$(findmnt -n -t cgroup2 -o TARGET | head -n1)
[ -n "$cg" ] || { echo "boot.sh: no cgroup2 hierarchy mounted on the host" >&2; exit 1; }
sub="$cg/lu-vfiod-realstack/$(basename "$(dirname "$root")")-boot${LUO_EMU_BOOT:-0}"
mkdir -p "$sub"
echo 0 >"$sub/cgroup.procs"
exec unshare --cgroup --net --uts --ipc -- "$0" --stage2 "$root" "$console"
