#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# docs/configuration.md documents every key of conf/lu-vfiod.conf, the shipped file is
# accepted, and the daemon refuses bad files with "file:line: key: problem" and exit 1.
#   test-config-docs.sh SOURCE_ROOT LU_VFIOD
set -uo pipefail
root=$(readlink -f "$1") daemon=$(readlink -f "$2")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 fail=0
ok()  { n=$((n + 1)); echo "ok $n - $*"; }
bad() { n=$((n + 1)); echo "not ok $n - $*"; fail=1; }

keys=$(sed -n 's/^#\([A-Z][A-Za-z]*\)=.*/\1/p' "$root/conf/lu-vfiod.conf" | sort -u)
[ -n "$keys" ] || bad "no keys found in conf/lu-vfiod.conf"
for k in $keys; do
        grep -q "^| \`$k\` |" "$root/docs/configuration.md" && ok "docs/configuration.md documents $k" || bad "$k undocumented"
done
for s in $(sed -n 's/^\[\([A-Za-z]*\)\]$/\1/p' "$root/conf/lu-vfiod.conf"); do
        grep -q "^## \[$s\]" "$root/docs/configuration.md" && ok "section [$s] documented" || bad "section [$s] undocumented"
done

# run CONF: start the daemon on scratch paths; a bad file must stop it before anything else.
# Returns the daemon's exit status, or 100 once it runs (its control socket is there), after
# stopping it with SIGTERM. Not under timeout(1): its SIGCONT after SIGTERM can cancel the
# SIGSTOP of LeakSanitizer's exit-time ptrace attach and hang an ASan daemon for good.
run() {
        rm -f "$tmp/ctl.sock"
        "$daemon" --config="$1" --vmm-socket="$tmp/vmm.sock" --control-socket="$tmp/ctl.sock" \
                --state-dir="$tmp/state" 2>"$tmp/err" &
        local pid=$! i
        for i in $(seq 400); do
                if ! kill -0 "$pid" 2>/dev/null; then wait "$pid"; return; fi
                if [ -S "$tmp/ctl.sock" ]; then kill "$pid"; wait "$pid"; return 100; fi
                sleep 0.05
        done
        kill -9 "$pid"; wait "$pid"
        echo "# the daemon neither exited nor came up within 20 s" >>"$tmp/err"
        return 101
}
run "$root/conf/lu-vfiod.conf"; st=$?
[ $st = 100 ] && ok "the shipped conf/lu-vfiod.conf is accepted" || { sed 's/^/# /' "$tmp/err"; bad "shipped file refused ($st)"; }

printf '[Update]\nPrepareTimeoutSec=5\n\n[Limits]\nMaxFoo=1\n' > "$tmp/a.conf"
run "$tmp/a.conf"; st=$?
[ $st = 1 ] && grep -q "$tmp/a.conf:5: MaxFoo: unknown key in section \[Limits\]" "$tmp/err" \
        && ok "unknown key: exit 1 with file:line: key: problem" || { sed 's/^/# /' "$tmp/err"; bad "unknown key ($st)"; }
printf '[Restore]\nUnclaimedPolicy=sometimes\n' > "$tmp/b.conf"
run "$tmp/b.conf"; st=$?
[ $st = 1 ] && grep -q "$tmp/b.conf:2: UnclaimedPolicy: " "$tmp/err" \
        && ok "bad value: exit 1 naming file, line and key" || { sed 's/^/# /' "$tmp/err"; bad "bad value ($st)"; }
printf '[Update]\nFreezeTimeoutSec=0\n' > "$tmp/c.conf"
run "$tmp/c.conf"; st=$?
[ $st = 1 ] && grep -q "$tmp/c.conf:2: FreezeTimeoutSec: expected seconds" "$tmp/err" \
        && ok "out-of-range duration refused" || { sed 's/^/# /' "$tmp/err"; bad "zero duration ($st)"; }
printf '[Service]\nVMMSocket=relative/vmm.sock\n' > "$tmp/d.conf"
run "$tmp/d.conf"; st=$?
[ $st = 1 ] && grep -q "$tmp/d.conf:2: VMMSocket: expected an absolute path" "$tmp/err" \
        && ok "relative socket path refused" || { sed 's/^/# /' "$tmp/err"; bad "relative path ($st)"; }
printf '[Service]\nKexecMode=firmware\n' > "$tmp/e.conf"
run "$tmp/e.conf"; st=$?
[ $st = 1 ] && grep -q "$tmp/e.conf:2: KexecMode: expected \"direct\" or \"systemd\"" "$tmp/err" \
        && ok "unknown KexecMode refused" || { sed 's/^/# /' "$tmp/err"; bad "KexecMode ($st)"; }
# Paths from the file are used when the command line does not give them.
printf '[Service]\nVMMSocket=%s/from-conf.sock\nDBus=no\n' "$tmp" > "$tmp/f.conf"
"$daemon" --config="$tmp/f.conf" --control-socket="$tmp/ctl2.sock" --state-dir="$tmp/state2" 2>"$tmp/err" &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/from-conf.sock" ] && break; sleep 0.05; done
[ -S "$tmp/from-conf.sock" ] && ok "VMMSocket= from the file is used" || { sed 's/^/# /' "$tmp/err"; bad "VMMSocket not used"; }
grep -q "D-Bus" "$tmp/err" && bad "DBus=no still tried the bus" || ok "DBus=no: no bus connection attempted"
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
run "$tmp/missing.conf"; st=$?
[ $st = 1 ] && ok "a missing --config file is an error" || bad "missing file ($st)"
echo "1..$n"
exit $fail
