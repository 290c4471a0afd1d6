# SPDX-License-Identifier: LGPL-2.1-or-later
# The realstack test machine (sourced by the tests/realstack scenarios): a per-run overlay of the
# cached Debian 12 rootfs (mkrootfs.sh) with the project installed, booted by luo-emu with
# boot.sh as its COMMAND, so Debian's real systemd 252 is PID 1 of the emulated machine, with the
# real dbus-daemon and polkitd. Commands run inside through nsenter (rs_exec) or as transient
# units of the machine's own systemd (rs_run), which also puts them under luo-emu's trap.
#
# Needs: RS_DIR (a scratch dir), LUO_EMU, BUILD_ROOT (meson build dir), RS_VMM (example-vmm);
# LU_VFIOD_DEB_DIR or RS_DEB: the built .deb to install (else `meson install` of the build).
here_rs=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

n=0 fail=0
ok()    { n=$((n + 1)); echo "ok $n - $*"; }
bad()   { n=$((n + 1)); echo "not ok $n - $*"; fail=1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
note()  { printf '%s\n' "$*" | sed 's/^/# /'; }
bail()  { echo "Bail out! $*"; rs_diag; exit 1; }
skip_all() { echo "1..0 # SKIP $*"; exit 77; }

# rs_diag: the end of the console and emulator logs, for a failed run
rs_diag() {
        [ -n "${RS_DIR:-}" ] || return 0
        [ -f "$RS_DIR/console.log" ] && tail -n 25 "$RS_DIR/console.log" | sed 's/^/# console: /'
        [ -f "$RS_DIR/emu.log" ] && tail -n 10 "$RS_DIR/emu.log" | sed 's/^/# emu: /'
        return 0
}

# rs_install_project ROOT: the project into ROOT. The Debian package lu-vfiod_*.deb from
# $LU_VFIOD_DEB_DIR (tests/package/build-deb.sh; ./run.sh test builds it first), installed with
# apt-get as an operator would; without one, `meson install --destdir` of BUILD_ROOT.
rs_install_project() {
        local root=$1 stage
        RS_CONF=/etc/lu-vfiod/lu-vfiod.conf
        if [ -z "${RS_DEB:-}" ] && [ -n "${LU_VFIOD_DEB_DIR:-}" ]; then
                RS_DEB=$(ls -t "$LU_VFIOD_DEB_DIR"/lu-vfiod_*.deb 2>/dev/null | head -n1)
        fi
        if [ -n "${RS_DEB:-}" ]; then
                note "installing $(basename "$RS_DEB") with apt-get"
                cp "$RS_DEB" "$root/tmp/" || return 1
                # its dependencies are in the cached base: apt-get downloads nothing
                mount -t proc proc "$root/proc" || return 1
                chroot "$root" sh -c "cd /tmp && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./$(basename "$RS_DEB")" \
                        >"$RS_DIR/install.log" 2>&1
                local rc=$?
                umount "$root/proc"
                rm -f "$root/tmp/$(basename "$RS_DEB")"
                return $rc
        fi
        note "no lu-vfiod .deb (LU_VFIOD_DEB_DIR): installing the build with meson install"
        # where this build's daemon reads its configuration (the prefix's sysconfdir)
        RS_CONF=$(sed -n 's/^#define LU_SYSCONFDIR "\(.*\)"$/\1/p' "$BUILD_ROOT/config.h")/lu-vfiod/lu-vfiod.conf
        stage="$RS_DIR/stage"
        rm -rf "$stage"
        meson install -C "$BUILD_ROOT" --destdir "$stage" --no-rebuild >"$RS_DIR/install.log" 2>&1 || return 1
        # Debian 12 has a merged /usr: /lib is a link to usr/lib
        local l
        for l in lib lib64 bin sbin; do
                if [ -d "$stage/$l" ] && [ ! -L "$stage/$l" ]; then
                        mkdir -p "$stage/usr/$l"
                        cp -a "$stage/$l/." "$stage/usr/$l/" && rm -rf "${stage:?}/$l"
                fi
        done
        cp -a "$stage/." "$root/" || return 1
        # dbus-daemon, polkitd and journalctl's catalog read only /usr (the default prefix is /usr/local)
        for l in share/dbus-1/system.d share/dbus-1/system-services share/polkit-1/actions lib/systemd/catalog; do
                if [ -d "$stage/usr/local/$l" ]; then
                        mkdir -p "$root/usr/$l"
                        cp -a "$stage/usr/local/$l/." "$root/usr/$l/"
                fi
        done
        mkdir -p "$root$(dirname "$RS_CONF")"
        chroot "$root" ldconfig
        chroot "$root" systemctl enable lu-vfiod.socket >>"$RS_DIR/install.log" 2>&1 || return 1
        chroot "$root" journalctl --update-catalog >>"$RS_DIR/install.log" 2>&1 || true
}

# rs_setup: the per-run rootfs RS_DIR/root (overlay on the cached base) with the project in it
rs_setup() {
        local base
        [ "$(id -u)" = 0 ] || skip_all "the realstack machine needs root"
        command -v nsenter >/dev/null && command -v unshare >/dev/null || skip_all "util-linux nsenter/unshare missing"
        findmnt -n -t cgroup2 >/dev/null || skip_all "no cgroup2 hierarchy on this host (systemd needs one)"
        base=$("$here_rs/mkrootfs.sh") || {
                local rc=$?
                [ $rc = 77 ] && skip_all "cannot build the Debian 12 rootfs (see mkrootfs.sh's message above)"
                bail "mkrootfs.sh failed"
        }
        rs_teardown
        mkdir -p "$RS_DIR/upper" "$RS_DIR/work" "$RS_DIR/root"
        mount -t overlay overlay -o "lowerdir=$base,upperdir=$RS_DIR/upper,workdir=$RS_DIR/work" "$RS_DIR/root" ||
                bail "cannot mount the overlay of $base"
        RS_MOUNTED=1
        trap rs_teardown EXIT
        # one machine-id for every boot of this run (journalctl --list-boots reads one directory)
        od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$RS_DIR/root/etc/machine-id"
        echo >>"$RS_DIR/root/etc/machine-id"
        mkdir -p "$RS_DIR/root/var/log/journal"
        rs_install_project "$RS_DIR/root" || { tail -n 20 "$RS_DIR/install.log"; bail "installing the project failed"; }
        # the scenarios' VMMs: the example VMM as a templated service, vm<N> on vfio<N>
        install -m 0755 "$RS_VMM" "$RS_DIR/root/usr/local/bin/example-vmm"
        install -m 0644 "$here_rs/vmm@.service" "$RS_DIR/root/etc/systemd/system/vmm@.service"
        local i
        for i in 0 1 2 3; do
                mkdir -p "$RS_DIR/root/etc/systemd/system/vmm@vm$i.service.d"
                printf '[Service]\nEnvironment=VMM_DEV=%s\n' $i >"$RS_DIR/root/etc/systemd/system/vmm@vm$i.service.d/dev.conf"
        done
        kernel_image "$RS_DIR/root/boot/vmlinuz-next"
        : >"$RS_DIR/console.log"
        rm -f "$RS_DIR/console.pts"
        "$here_rs/console.py" "$RS_DIR/console.log" "$RS_DIR/console.pts" </dev/null >/dev/null 2>&1 &
        RS_CONSOLE_PID=$!
        for _ in $(seq 100); do [ -s "$RS_DIR/console.pts" ] && break; sleep 0.05; done
        [ -s "$RS_DIR/console.pts" ] || bail "the console pty did not come up"
}

# rs_boot [LUO-EMU OPTIONS]: start the machine in the background (its init is boot.sh)
rs_boot() {
        setsid "$LUO_EMU" "$@" -- "$here_rs/boot.sh" "$RS_DIR/root" "$(cat "$RS_DIR/console.pts")" \
                >"$RS_DIR/emu.log" 2>&1 </dev/null &
        RS_EMU_PID=$!
}

# rs_init: the host PID of the machine's current init (systemd), empty if none
rs_init() {
        local c
        c=$(cat "/proc/$RS_EMU_PID/task/$RS_EMU_PID/children" 2>/dev/null) || return 1
        set -- $c
        [ -n "${1:-}" ] && echo "$1"
}

# rs_exec CMD...: run CMD inside the machine (all its namespaces and its root); not under the
# trap, so it reads the host's /proc/cmdline and boot_id: `journalctl -b` belongs in rs_run
rs_exec() {
        local pid
        pid=$(rs_init) || return 125
        [ -n "$pid" ] || return 125
        nsenter -t "$pid" -m -p -n -u -i -C -r -w -- /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# rs_run [systemd-run OPTIONS] -- CMD...: CMD as a transient service of the machine's systemd
# (in the machine's process tree, so under luo-emu's trap), output on our stdout, its exit status
rs_run() { rs_exec systemd-run --quiet --wait --pipe --collect --service-type=exec "$@"; }

# rs_prop NAME: a property of org.luvfiod.LiveUpdate1 on the machine's system bus
rs_prop() {
        rs_exec busctl get-property org.luvfiod.LiveUpdate1 /org/luvfiod/LiveUpdate1 org.luvfiod.LiveUpdate1 "$1" |
                sed -e 's/^[a-z]* //' -e 's/^"\(.*\)"$/\1/'
}

# rs_unit_prop UNIT PROP: systemctl show -P
rs_unit_prop() { rs_exec systemctl show -P "$2" "$1"; }

# rs_wait CMD...: retry CMD for 20 s
rs_wait() {
        for _ in $(seq 80); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
        return 1
}

# rs_wait_up [SECONDS]: until the machine's systemd has finished booting (running or degraded)
rs_wait_up() {
        local s
        for _ in $(seq $((${1:-60} * 4))); do
                s=$(rs_exec systemctl is-system-running 2>/dev/null) || true
                case "$s" in running|degraded) return 0 ;; esac
                kill -0 "$RS_EMU_PID" 2>/dev/null || return 1
                sleep 0.25
        done
        return 1
}

# rs_wait_boot N [SECONDS]: until boot N of the machine is up (after a kexec)
rs_wait_boot() {
        local want=$1
        for _ in $(seq $((${2:-60} * 4))); do
                if grep -q "^=== boot $want " "$RS_DIR/console.log" 2>/dev/null && rs_wait_up 1; then
                        return 0
                fi
                kill -0 "$RS_EMU_PID" 2>/dev/null || return 1
                sleep 0.25
        done
        return 1
}

# rs_poweroff: orderly poweroff of the machine; luo-emu's exit status
rs_poweroff() {
        rs_exec systemctl poweroff >/dev/null 2>&1 || true
        for _ in $(seq 120); do
                kill -0 "$RS_EMU_PID" 2>/dev/null || break
                sleep 0.25
        done
        if kill -0 "$RS_EMU_PID" 2>/dev/null; then
                kill -TERM "$RS_EMU_PID" 2>/dev/null
                wait "$RS_EMU_PID" 2>/dev/null
                return 124
        fi
        wait "$RS_EMU_PID" 2>/dev/null
}

rs_teardown() {
        if [ -n "${RS_EMU_PID:-}" ] && kill -0 "$RS_EMU_PID" 2>/dev/null; then
                kill -TERM "$RS_EMU_PID" 2>/dev/null
                wait "$RS_EMU_PID" 2>/dev/null || true
        fi
        RS_EMU_PID=
        if [ -n "${RS_CONSOLE_PID:-}" ]; then
                kill "$RS_CONSOLE_PID" 2>/dev/null
                wait "$RS_CONSOLE_PID" 2>/dev/null || true
                RS_CONSOLE_PID=
        fi
        if mountpoint -q "$RS_DIR/root" 2>/dev/null; then
                umount -R "$RS_DIR/root" 2>/dev/null || umount -l "$RS_DIR/root"
        fi
        rm -rf "$RS_DIR/upper" "$RS_DIR/work" "$RS_DIR/stage"
        # the machine's cgroups (boot.sh: <cgroup2>/lu-vfiod-realstack/<run>-boot<N>), empty now
        local cg d
        cg=$(findmnt -n -t cgroup2 -o TARGET | head -n1)
        if [ -n "$cg" ]; then
                for d in "$cg/lu-vfiod-realstack/$(basename "$RS_DIR")"-boot*; do
                        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
                done
        fi
        return 0
}

# kernel_image FILE: a 4 KiB image with the bzImage magic "HdrS" at 0x202 that the kexec loader checks
kernel_image() { { head -c 514 /dev/zero; printf HdrS; head -c 3578 /dev/zero; } > "$1"; }
