#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds and tests the Rust crate with Debian's toolchain (/usr/bin/cargo, /usr/bin/rustc),
# offline, from Debian's packaged crates (.cargo/config.toml), never a rustup toolchain
# that may sit earlier in PATH: CI on a fresh Debian 12 machine has only Debian's.
#   cargo.sh TARGET_DIR check          exit 0 if the toolchain and crates are installed
#   cargo.sh TARGET_DIR build OUTPUT   build examples/example-vmm.rs, copy it to OUTPUT
#   cargo.sh TARGET_DIR test           cargo test (unit tests against a scripted daemon, doc tests)
set -eu
crate=$(dirname "$(readlink -f "$0")")
target=$(readlink -f "$1") what=$2
out=${3:+$(readlink -f "$3")}
cd "$crate"
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO_TARGET_DIR="$target" CARGO_HOME="$target/cargo-home"
case $what in
check)
        missing=""
        for f in /usr/bin/cargo /usr/bin/rustc /usr/bin/rustdoc; do [ -x "$f" ] || missing="$missing $f"; done
        for c in libc serde_json serde itoa ryu; do
                ls -d /usr/share/cargo/registry/$c-[0-9]* >/dev/null 2>&1 || missing="$missing crate:$c"
        done
        [ -z "$missing" ] || { echo "missing:$missing (apt-get install cargo librust-libc-dev librust-serde-json-dev)"; exit 1; }
        ;;
build)
        # the dev profile: the same build of the dependencies as cargo test, built once
        /usr/bin/cargo build --offline --quiet --example example-vmm
        cp "$target/debug/examples/example-vmm" "$out"
        ;;
test)
        exec /usr/bin/cargo test --offline
        ;;
*)
        echo "usage: cargo.sh TARGET_DIR check|build OUTPUT|test" >&2
        exit 2
        ;;
esac
