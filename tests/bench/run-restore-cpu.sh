#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Where the CPU goes on the restore path: tests/e2e/e2e-bench in "daemon" and "floor" mode,
# alternately, $REPEAT times per size; each run reports the CPU time (user + system, from
# getrusage/schedstat, so not in whole ticks) used inside the restore window by
#   custodian: lu-vfiod (from its fork) / the floor program (from its exec)
#   VMMs:      all VM processes together, each from its wait for the restore to its end
#   bench:     daemon mode only: the bench's own process (starting the daemon, waiting)
# and the VM processes' minor page faults (per VM). luo-emu's own CPU (the trapped calls) is in
# no column. The table gives the median of the runs per cell, and the restore's wall time.
#   tests/bench/run-restore-cpu.sh BUILD_DIR    (SIZES="64 256" ABIS=upstream REPEAT=3)
set -eu
B=$(readlink -f "${1:?build dir}")
SIZES=${SIZES:-64 256}
ABIS=${ABIS:-upstream}
REPEAT=${REPEAT:-3}
work=$(mktemp -d /var/tmp/lu-vfiod-cpu.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
field() { echo "$1" | sed -n "s/.* $2=\([0-9.-]*\).*/\1/p"; }
median() { printf '%s\n' $1 | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
printf '| ABI | VMs | restore ms daemon | floor | custodian CPU ms daemon | floor | ×floor | VMMs CPU ms daemon | floor | ×floor | bench CPU ms | faults per VM daemon | floor |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
for abi in $ABIS; do
        for n in $SIZES; do
                dr="" fr="" dc="" fc="" dv="" fv="" db="" dfl="" ffl=""
                i=0
                while [ $i -lt "$REPEAT" ]; do
                        for mode in daemon floor; do
                                rm -rf "$work/e2e"
                                line=$(E2E_DIR=$work/e2e "$B/tests/emu/luo-emu" --abi="$abi" -- \
                                        "$B/tests/e2e/e2e-bench" $mode "$n" 4 "$B/daemon/lu-vfiod" 2>/dev/null | grep '^BENCH mode') ||
                                        { echo "run-restore-cpu.sh: bench failed ($mode, $abi, $n VMs)" >&2; exit 1; }
                                echo "RUN $line" >&2
                                r=$(field "$line" restore_ms) c=$(field "$line" cpu_custodian_ms)
                                v=$(field "$line" cpu_vmms_ms) f=$(field "$line" vmm_faults)
                                if [ $mode = daemon ]; then
                                        dr="$dr $r" dc="$dc $c" dv="$dv $v" dfl="$dfl $f" db="$db $(field "$line" cpu_bench_ms)"
                                else
                                        fr="$fr $r" fc="$fc $c" fv="$fv $v" ffl="$ffl $f"
                                fi
                        done
                        i=$((i + 1))
                done
                set -- "$(median "$dr")" "$(median "$fr")" "$(median "$dc")" "$(median "$fc")" "$(median "$dv")" "$(median "$fv")"
                printf '| %s | %d | %s | %s | %s | %s | %.2f× | %s | %s | %.2f× | %s | %s | %s |\n' "$abi" "$n" "$1" "$2" "$3" "$4" \
                        "$(echo "$3 $4" | awk '{print $1 / $2}')" "$5" "$6" "$(echo "$5 $6" | awk '{print $1 / $2}')" \
                        "$(median "$db")" "$(median "$dfl")" "$(median "$ffl")"
        done
done
