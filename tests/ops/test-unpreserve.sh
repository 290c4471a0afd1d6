#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Unpreserve and forget with the fd store active (luo-emu's COMMAND):
#   test-unpreserve.sh LU_VFIOD FAKE_SYSTEMD CLIENT   ($OPS_DIR)
set -uo pipefail
daemon=$1 fake=$2 client=$3
dir=${OPS_DIR:?}
rm -rf "$dir" && mkdir -p "$dir" || { echo "Bail out! $dir"; exit 1; }
printf '[Service]\nDBus=no\n' > "$dir/lu-vfiod.conf"
"$fake" --log="$dir/fake-systemd.log" --max-restarts=0 -- "$daemon" --vmm-socket="$dir/vmm.sock" \
        --control-socket="$dir/control.sock" --state-dir="$dir/state" --config="$dir/lu-vfiod.conf" 2>>"$dir/daemon.log" &
fake_pid=$!
for _ in $(seq 200); do grep -q "^MSG READY=1" "$dir/fake-systemd.log" 2>/dev/null && break; sleep 0.05; done
"$client" "$dir/vmm.sock" | grep -v '^1\.\.' > "$dir/client.tap"
st=${PIPESTATUS[0]}
cat "$dir/client.tap"
n=$(grep -c '^ok\|^not ok' "$dir/client.tap")
kill -TERM "$fake_pid"; wait "$fake_pid"
sleep 0.1
stored=$(sed -n 's/^END status=[0-9]* stored=\([0-9]*\)$/\1/p' "$dir/fake-systemd.log")
n=$((n + 1))
# Everything the VM had is gone from the store too (forget), so nothing keeps a session alive.
if [ "$stored" = 0 ]; then echo "ok $n - fd store empty after forget"; else echo "not ok $n - fd store still holds $stored fd(s)"; st=1; fi
echo "1..$n"
exit $st
