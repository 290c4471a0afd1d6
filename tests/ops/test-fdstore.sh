#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The fd store helpers against fake-systemd: store, SIGKILL, get everything back.
#   test-fdstore.sh FAKE_SYSTEMD CLIENT
set -uo pipefail
fake=$1 client=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$fake" --log="$tmp/log" --max-restarts=1 -- "$client" | grep -v '^1\.\.' > "$tmp/out"
st=${PIPESTATUS[0]}
n=0 fail=0
# Re-number the client's checks of both generations into one TAP stream.
while IFS= read -r line; do
        case $line in
        "ok "*|"not ok "*)
                n=$((n + 1)); desc=${line#* - }
                [[ $line == not* ]] && { echo "not ok $n - $desc"; fail=1; } || echo "ok $n - $desc" ;;
        *) echo "$line" ;;
        esac
done < "$tmp/out"
sed 's/^/# log: /' "$tmp/log"
chk() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fail=1; fi; }
chk "fake-systemd logged READY and STATUS" 'grep -q "^MSG READY=1" "$tmp/log" && grep -q "^MSG STATUS=generation 0 stored" "$tmp/log"'
chk "four FDSTORE, one FDSTOREREMOVE" '[ "$(grep -c "^FDSTORE name=" "$tmp/log")" = 4 ] && grep -q "^FDSTOREREMOVE name=ses/luvf/vm-2/0 dropped=1" "$tmp/log"'
chk "SIGKILL seen, restarted with 3 fds" 'grep -q "^KILLED .*signal=9" "$tmp/log" && grep -q "^START generation=1 .*listen_fds=3" "$tmp/log"'
chk "second generation recovered and exited 0" 'grep -q "^MSG STATUS=generation 1 recovered" "$tmp/log" && [ "$st" = 0 ]'
echo "1..$n"
exit $fail
