#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The journal catalog: journalctl indexes it, and its ids are exactly daemon/common/message-ids.h's.
#   test-catalog.sh CATALOG MESSAGE_IDS_H
set -uo pipefail
cat=$(readlink -f "$1") ids=$(readlink -f "$2")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 fail=0
ok()  { n=$((n + 1)); echo "ok $n - $*"; }
bad() { n=$((n + 1)); echo "not ok $n - $*"; fail=1; }

mkdir -p "$tmp/usr/lib/systemd/catalog" "$tmp/var/lib/systemd/catalog"
cp "$cat" "$tmp/usr/lib/systemd/catalog/"
if journalctl --root="$tmp" --update-catalog 2>"$tmp/err" && [ ! -s "$tmp/err" ]; then
        ok "journalctl --update-catalog accepts the catalog"
else
        sed 's/^/# /' "$tmp/err"; bad "journalctl --update-catalog"
fi
listed=$(journalctl --root="$tmp" --list-catalog | awk '{ print $1 }' | sort)
header=$(sed -n 's/^#define LU_MESSAGE_[A-Z_]* *"\([0-9a-f]\{32\}\)"$/\1/p' "$ids" | sort)
[ -n "$header" ] && [ "$listed" = "$header" ] && ok "catalog ids = message-ids.h ids ($(wc -l <<<"$header"))" \
        || { diff <(echo "$listed") <(echo "$header") | sed 's/^/# /'; bad "catalog and message-ids.h differ"; }
[ "$(sort <<<"$header" | uniq -d)" = "" ] && ok "ids unique" || bad "duplicate ids"
for id in $header; do
        journalctl --root="$tmp" --dump-catalog "$id" | grep -q "^Subject: ." || bad "no subject for $id"
done
ok "every entry has a Subject"
echo "1..$n"
exit $fail
