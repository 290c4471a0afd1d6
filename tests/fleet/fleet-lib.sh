# SPDX-License-Identifier: LGPL-2.1-or-later
# The simulated fleet (sourced by the tests/fleet drivers, docs/fleet.md): N emulated hosts, each
# its own luo-emu machine running tests/fleet/fleet-host.sh (own system bus, lu-vfiod, VMMs, sockets
# under $fdir/hostNN), an Ansible inventory reaching them, and ansible-playbook runs of the
# collection in contrib/ansible. Needs: $luo_emu $daemon $vmm $policy $ctl $collections $dir set.
fleet_pids=()
# meson passes paths relative to the build directory; the hosts and Ansible need them absolute
for _v in luo_emu daemon vmm policy ctl; do
        eval "$_v=\$(readlink -f \"\${$_v}\")" || bail "cannot resolve \$$_v"
done
unset _v

# fleet_start N [HOST:WHAT...]: N hosts with two VMs each (vm0, vm1 with an emulated VFIO
# device and guest RAM); vm1 of each HOST refuses WHAT (prepare or freeze), or with WHAT "lost"
# its VMM does not come back after the kexec.
fleet_start() {
        local count=$1; shift
        fdir=$dir/fleet
        rm -rf "$fdir" && mkdir -p "$fdir" || bail "cannot create $fdir"
        kernel_image "$fdir/vmlinuz-next"
        hosts=()
        for i in $(seq "$count"); do
                local h; h=$(printf 'host%02d' "$i")
                hosts+=("$h")
                mkdir -p "$fdir/$h"
                printf 'vm0\nvm1%s\n' "$(for v in "$@"; do
                        [ "${v%%:*}" = "$h" ] || continue
                        if [ "${v#*:}" = lost ]; then printf ' fleet:boot0-only'; else printf ' --veto=%s' "${v#*:}"; fi
                done)" > "$fdir/$h/vms"
                printf '[Update]\nPrepareTimeoutSec=10\nFreezeTimeoutSec=10\n[Restore]\nBindTimeoutSec=10\nReclaimGraceSec=120\n' \
                        > "$fdir/$h/lu-vfiod.conf"
                "$luo_emu" --vfio=2 -- "$(dirname "$0")/fleet-host.sh" "$fdir/$h" "$daemon" "$vmm" "$policy" \
                        >"$fdir/$h/luo-emu.log" 2>&1 &
                fleet_pids+=($!)
        done
        {
                echo "# the simulated fleet: every host is reached on this machine (ansible_connection=local);"
                echo "# the modules run lu-vfioctl against that host's own system bus"
                echo "[hypervisors]"
                for h in "${hosts[@]}"; do echo "$h lu_vfiod_bus_address=unix:path=$fdir/$h/bus.sock"; done
                echo "[hypervisors:vars]"
                echo "ansible_connection=local"
                echo "ansible_python_interpreter=$(command -v python3)"
                echo "lu_vfioctl=$ctl"
                echo "live_update_kernel=$fdir/vmlinuz-next"
        } > "$fdir/inventory.ini"
        for h in "${hosts[@]}"; do
                for _ in $(seq 1200); do [ -e "$fdir/$h/up" ] && break; sleep 0.1; done
                [ -e "$fdir/$h/up" ] || bail "$h did not come up: $(tail -3 "$fdir/$h/luo-emu.log")"
        done
}

fleet_stop() {
        [ -n "${fdir:-}" ] || return 0
        for h in "${hosts[@]}"; do touch "$fdir/$h/poweroff"; done
        for p in "${fleet_pids[@]}"; do
                for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
                kill "$p" 2>/dev/null
                wait "$p" 2>/dev/null
        done
        fleet_pids=()
}

# hctl HOST ARGS...: lu-vfioctl on HOST's bus
hctl() { local h=$1; shift; DBUS_SYSTEM_BUS_ADDRESS=unix:path=$fdir/$h/bus.sock "$ctl" "$@"; }
# hjson HOST PYEXPR ARGS...: lu-vfioctl --json ARGS on HOST, PYEXPR (of d) true
hjson() {
        local h=$1 e=$2; shift 2
        hctl "$h" --json "$@" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($e) else 1)"
}
boot_of() { cat "$fdir/$1/boot"; }

# play NAME [ansible-playbook options...]: runs the sample playbook on the fleet; sets play_rc,
# play_out (the log) and play_s (wall seconds)
play() {
        local name=$1; shift
        play_out=$dir/play-$name.log
        local t0; t0=$(date +%s.%N)
        ANSIBLE_COLLECTIONS_PATH=$collections ANSIBLE_LOCAL_TEMP=$dir/ansible-tmp ANSIBLE_REMOTE_TEMP=$dir/ansible-tmp \
        ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=false ANSIBLE_HOST_KEY_CHECKING=false \
        ANSIBLE_DEPRECATION_WARNINGS=false ANSIBLE_LOCALHOST_WARNING=false \
                ansible-playbook -i "$fdir/inventory.ini" "$collections/examples/rolling-update.yml" "$@" \
                > "$play_out" 2>&1 </dev/null
        play_rc=$?
        play_s=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
        note "ansible-playbook $name: exit $play_rc in ${play_s}s"
        note "$(sed -n '/^PLAY RECAP/,$p' "$play_out")"
}

# recap HOST FIELD: the number after FIELD= in HOST's PLAY RECAP line of the last play
recap() { sed -n "/^PLAY RECAP/,\$ s/^$1 *:.* $2=\([0-9]*\).*/\1/p" "$play_out"; }

# host_is HOST BOOT PYEXPR: HOST is in emulated boot BOOT and its status satisfies PYEXPR (of d)
host_is() { [ "$(boot_of "$1")" = "$2" ] && hjson "$1" "$3" status; }

# batches: the hosts of each batch (PLAY section) of the last play, "h1,h2 h3,h4 ..."
batches() {
        python3 - "$play_out" <<'PY'
import re, sys
text = open(sys.argv[1]).read().split("PLAY RECAP")[0]
out = []
for sec in re.split(r"^PLAY \[.*$", text, flags=re.M)[1:]:
    out.append(",".join(sorted(set(re.findall(r"\[(host\d\d)\]", sec)))))
print(" ".join(out))
PY
}

# adhoc HOST MODULE ARGS: one module run with ansible(1) on HOST; prints its output, returns its exit code
adhoc() {
        ANSIBLE_COLLECTIONS_PATH=$collections ANSIBLE_LOCAL_TEMP=$dir/ansible-tmp ANSIBLE_REMOTE_TEMP=$dir/ansible-tmp \
        ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=false \
                ansible -o "$1" -i "$fdir/inventory.ini" -m "luvfiod.liveupdate.$2" -a "$3" -e lu_vfioctl="$ctl" </dev/null 2>&1
}
