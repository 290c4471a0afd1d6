#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Prints the directory the integration tests keep their work files in (sockets, bus, logs).
# Several tests run their clients as uid nobody, which must reach those sockets: under the
# build directory when every directory above it lets others through, otherwise (a checkout in
# root's 0700 home, or under `mktemp -d`) in a directory of its own under /var/tmp, named after
# the build directory so that two builds never share one.
#   work-dir.sh BUILD_ROOT
set -eu
build=$1 p=$1
while [ "$p" != / ]; do
        mode=$(stat -L -c %a "$p")
        if [ $((0$mode & 1)) -ne 1 ]; then
                echo "/var/tmp/lu-vfiod-tests/$(printf %s "$build" | sha256sum | cut -c1-12)"
                exit 0
        fi
        p=$(dirname "$p")
done
echo "$build"
