#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Freeze and restore path of lu-vfiod vs bare kernel calls under luo-emu, at
# 1/16/64/256 VMs x 4 fds, both ABIs, best of $REPEAT runs; daemon RSS at each size.
# Usage: tests/e2e/run-bench.sh BUILD_DIR
set -eu
B=${1:?build dir}
REPEAT=${REPEAT:-3}
EMU=$B/tests/emu/luo-emu
BENCH=$B/tests/e2e/e2e-bench
D=$B/daemon/lu-vfiod
export E2E_DIR=$B/e2e/bench
printf '%-8s %5s | %12s %12s %6s | %12s %12s %6s | %8s | %s\n' abi vms freeze_daemon freeze_bare ratio restore_daemon restore_bare ratio rss_kib "daemon's own freeze/restore (timeline)"
for abi in upstream v4; do
  for n in 1 16 64 256; do
    best() { # mode -> "freeze restore rss" minima
      f=999999; r=999999; rss=0; own=""
      i=0
      while [ $i -lt "$REPEAT" ]; do
        line=$("$EMU" --abi=$abi -- "$BENCH" "$1" $n 4 "$D" 2>/dev/null | grep '^BENCH mode') || { echo "bench failed: $1 $abi $n" >&2; exit 1; }
        lf=$(echo "$line" | sed 's/.* freeze_ms=\([0-9.]*\).*/\1/')
        lr=$(echo "$line" | sed 's/.* restore_ms=\([0-9.]*\).*/\1/')
        rss=$(echo "$line" | sed 's/.*rss_kib=\([0-9]*\).*/\1/')
        case "$line" in *daemon_freeze_ms*) own=$(echo "$line" | sed 's/.*daemon_freeze_ms=\([0-9.]*\) daemon_restore_ms=\([0-9.]*\).*/\1ms\/\2ms/');; esac
        f=$(echo "$f $lf" | awk '{print ($2<$1)?$2:$1}')
        r=$(echo "$r $lr" | awk '{print ($2<$1)?$2:$1}')
        i=$((i+1))
      done
      echo "$f $r $rss $own"
    }
    set -- $(best daemon); df=$1; dr=$2; rss=$3; own=${4:-}
    set -- $(best bare); bf=$1; br=$2
    printf '%-8s %5d | %10.2fms %10.2fms %5.2fx | %10.2fms %10.2fms %5.2fx | %8s | %s\n' $abi $n $df $bf \
      $(echo "$df $bf" | awk '{print $1/$2}') $dr $br $(echo "$dr $br" | awk '{print $1/$2}') $rss "$own"
  done
done
