#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Instructions the daemon executes on the freeze path and on the restore path, counted by
# callgrind (a figure that does not wander with the machine's load, unlike milliseconds).
#   freeze path:  manager_commit() entered -> kexec_reboot() entered (--zero-before/--dump-before)
#   restore path: the next boot's exec of lu-vfiod -> the restore complete (its malloc_trim())
# The workload is tests/e2e/e2e-bench's "daemon" mode (N VMs x 4 memfds, one VMM process
# each, every VMM acknowledging). Each size runs $REPEAT times; both counts per run are
# printed, then a table with the per-VM figures: total / N, and the marginal cost per VM
# between the two largest sizes.
# The daemon runs under valgrind with tests/bench/vg-kexec-shim.so preloaded: valgrind
# 3.19 does not know kexec_file_load(2) or reboot(2), so the shim has a native helper make
# those two calls (see the shim's header comment).
#   tests/bench/run-instructions.sh BUILD_DIR    (SIZES="64 256" ABIS="upstream v4" REPEAT=2)
set -eu
B=$(readlink -f "${1:?build dir}")
SIZES=${SIZES:-64 256}
ABIS=${ABIS:-upstream v4}
REPEAT=${REPEAT:-2}
command -v valgrind >/dev/null || { echo "run-instructions.sh: valgrind is not installed" >&2; exit 1; }
work=$(mktemp -d /var/tmp/lu-vfiod-instr.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
cat > "$work/cg-daemon" <<EOT
#!/bin/sh
export VG_KEXEC_HELPER=$B/tests/bench/vg-kexec-helper
export LD_PRELOAD=$B/tests/bench/libvg-kexec-shim.so
exec valgrind --tool=callgrind --callgrind-out-file=$work/out/cg.%p --dump-instr=no --collect-jumps=no \\
        --zero-before=manager_commit --dump-before=kexec_reboot --dump-before=malloc_trim \\
        --log-file=$work/out/vg.%p.log $B/daemon/lu-vfiod "\$@"
EOT
chmod 755 "$work/cg-daemon"
# count TRIGGER: the instructions of the dump that TRIGGER wrote (exactly one must exist)
count() {
        files=$(grep -l "^desc: Trigger: --dump-before=$1\$" "$work"/out/cg.* 2>/dev/null || true)
        [ "$(echo "$files" | grep -c .)" = 1 ] || { echo "run-instructions.sh: expected one dump before $1, got: $files" >&2; exit 1; }
        sed -n 's/^summary: //p' $files
}
results=""
for abi in $ABIS; do
        for n in $SIZES; do
                i=0
                while [ $i -lt "$REPEAT" ]; do
                        rm -rf "$work/out" "$work/e2e" && mkdir -p "$work/out"
                        E2E_DIR=$work/e2e "$B/tests/emu/luo-emu" --abi="$abi" -- \
                                "$B/tests/e2e/e2e-bench" daemon "$n" 4 "$work/cg-daemon" > "$work/bench.log" 2>&1 ||
                                { cat "$work/bench.log" >&2; echo "run-instructions.sh: bench failed ($abi, $n VMs)" >&2; exit 1; }
                        f=$(count kexec_reboot) r=$(count malloc_trim)
                        echo "RUN abi=$abi vms=$n freeze_instr=$f restore_instr=$r"
                        results="$results$abi $n $f $r
"
                        i=$((i + 1))
                done
        done
done
printf '%s' "$results" | awk -v sizes="$SIZES" '
        { k = $1 " " $2; f[k] = f[k] " " $3; r[k] = r[k] " " $4; abis[$1] = 1 }
        function lo(s,  a, n, i, m) { n = split(s, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] < m) m = a[i]; return m }
        function hi(s,  a, n, i, m) { n = split(s, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
        function spread(s) { return lo(s) ? sprintf("%.2f%%", (hi(s) - lo(s)) * 100 / lo(s)) : "-" }
        END {
                ns = split(sizes, sz, " ")
                print "| ABI | VMs | freeze path instr | per VM | spread | restore path instr | per VM | spread |"
                print "|---|---|---|---|---|---|---|---|"
                for (a in abis) for (i = 1; i <= ns; i++) {
                        k = a " " sz[i]
                        printf "| %s | %d | %d | %d | %s | %d | %d | %s |\n", a, sz[i], lo(f[k]), lo(f[k]) / sz[i], spread(f[k]),
                                lo(r[k]), lo(r[k]) / sz[i], spread(r[k])
                }
                if (ns >= 2) {
                        print ""
                        print "| ABI | marginal instr per VM, " sz[ns-1] " -> " sz[ns] " VMs | freeze path | restore path |"
                        print "|---|---|---|---|"
                        for (a in abis) {
                                k1 = a " " sz[ns-1]; k2 = a " " sz[ns]
                                printf "| %s | | %d | %d |\n", a, (lo(f[k2]) - lo(f[k1])) / (sz[ns] - sz[ns-1]),
                                        (lo(r[k2]) - lo(r[k1])) / (sz[ns] - sz[ns-1])
                        }
                }
        }'
