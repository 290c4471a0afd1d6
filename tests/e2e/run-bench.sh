#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Freeze and restore path of lu-vfiod vs bare kernel calls under luo-emu, at
# 1/16/64/256 VMs x 4 fds, both ABIs, best of $REPEAT runs; daemon RSS at each size.
# Freeze is given twice: to the reboot(KEXEC) call ("call") and to the first instruction of
# the next boot ("boot", which includes the emulator tearing down the old machine).
# "floor" is bare plus the least IPC with one process per VM (e2e-bench.c, floor_spawn()).
# Usage: tests/e2e/run-bench.sh BUILD_DIR   (SIZES="1 16" ABIS=v4 to narrow it)
# E2E_BENCH_FDSTORE=1: the daemon runs with a $NOTIFY_SOCKET and so keeps its fds in an fd
# store, as under systemd with the shipped unit (e2e-bench.c, notify_sink_start(): a stand-in
# that receives and holds them); bare and floor have no counterpart of it.
set -eu
B=${1:?build dir}
REPEAT=${REPEAT:-3}
SIZES=${SIZES:-1 16 64 256}
ABIS=${ABIS:-upstream v4}
EMU=$B/tests/emu/luo-emu
BENCH=$B/tests/e2e/e2e-bench
D=$B/daemon/lu-vfiod
export E2E_DIR=$B/e2e/bench
field() { echo "$1" | sed -n "s/.* $2=\([0-9.-]*\).*/\1/p"; }
min() { echo "$1 $2" | awk '{print ($2<$1)?$2:$1}'; }
ratio() { echo "$1 $2" | awk '{printf "%.2f", $1/$2}'; }
printf '| ABI | VMs | freeze→call daemon | bare | floor | ×bare | ×floor | freeze→boot daemon | bare | ×bare | restore daemon | bare | floor | ×bare | ×floor | RSS KiB | own freeze / restore ms |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
for abi in $ABIS; do
  for n in $SIZES; do
    best() { # mode -> "call boot restore rss own"
      c=999999; f=999999; r=999999; rss=0; own=-
      i=0
      while [ $i -lt "$REPEAT" ]; do
        line=$("$EMU" --abi=$abi -- "$BENCH" "$1" $n 4 "$D" 2>/dev/null | grep '^BENCH mode') || { echo "bench failed: $1 $abi $n" >&2; exit 1; }
        c=$(min "$c" "$(field "$line" to_reboot_call_ms)")
        f=$(min "$f" "$(field "$line" freeze_ms)")
        r=$(min "$r" "$(field "$line" restore_ms)")
        rss=$(field "$line" rss_kib)
        case "$line" in *daemon_freeze_ms*) own="$(field "$line" daemon_freeze_ms) / $(field "$line" daemon_restore_ms)";; esac
        i=$((i+1))
      done
      echo "$c $f $r $rss $own"
    }
    set -- $(best daemon); dc=$1; df=$2; dr=$3; rss=$4; shift 4; own="$*"
    set -- $(best bare); bc=$1; bf=$2; br=$3
    set -- $(best floor); fc=$1; fr=$3
    printf '| %s | %d | %s | %s | %s | %s× | %s× | %s | %s | %s× | %s | %s | %s | %s× | %s× | %s | %s |\n' $abi $n \
      $dc $bc $fc $(ratio $dc $bc) $(ratio $dc $fc) $df $bf $(ratio $df $bf) \
      $dr $br $fr $(ratio $dr $br) $(ratio $dr $fr) $rss "$own"
  done
done
