#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Bounded fuzz run of lu-vfiod's input parsers (docs/reliability.md):
#   tests/fuzz/run-fuzz.sh [SECONDS]     default 60 seconds per target
#
# Builds the libFuzzer targets with clang in build-fuzz (FUZZ_BUILD_DIR) if needed, runs
# each target (FUZZ_TARGETS, default "protocol registry config") on a copy of its seed
# corpus plus a temporary directory for what it discovers, and prints executions and
# coverage per target. Exits non-zero if any target crashed, leaked, hung (-timeout),
# ran out of memory (-rss_limit_mb) or failed a check; the failing input is kept in
# <build>/fuzz-artifacts/ for corpus/<target>/crashes/.
#
# Inputs in corpus/<target>/crashes/ (open bugs) are not fuzzed from; checks for known
# bugs are off unless LU_FUZZ_STRICT=1 (see fuzz.h).
set -euo pipefail

secs=${1:-60}
case "$secs" in
''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

here=$(dirname "$(readlink -f "$0")")
root=$(readlink -f "$here/../..")
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
read -ra targets <<< "${FUZZ_TARGETS:-protocol registry config}"
rss_limit_mb=${FUZZ_RSS_LIMIT_MB:-2048}
timeout_s=${FUZZ_TIMEOUT:-10}

# libFuzzer's runtime comes with clang (libclang-rt-14-dev on Debian 12).
command -v clang >/dev/null || { echo "run-fuzz.sh: clang is not installed" >&2; exit 1; }
rtdir=$(clang -print-runtime-dir)
if [ ! -f "$rtdir/libclang_rt.fuzzer-x86_64.a" ]; then
        echo "run-fuzz.sh: no libFuzzer runtime in $rtdir (install libclang-rt-14-dev)" >&2
        exit 1
fi

if [ ! -f "$build/build.ninja" ]; then
        # Without -Dwerror: this build exists for the fuzzers, whose own code has no warnings.
        CC=clang meson setup "$build" "$root" >/dev/null
fi
build_targets=$(meson introspect --targets "$build")
if ! grep -q '"name": "fuzz-protocol"' <<< "$build_targets"; then
        echo "run-fuzz.sh: $build is not a clang build with libFuzzer (remove it or set FUZZ_BUILD_DIR)" >&2
        exit 1
fi
ninja -C "$build" "${targets[@]/#/tests/fuzz/fuzz-}" >/dev/null

work=$(mktemp -d /tmp/lu-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer || echo /usr/lib/llvm-14/bin/llvm-symbolizer)}

rc=0
summary=()
for t in "${targets[@]}"; do
        seeds=$work/$t-seeds new=$work/$t-new log=$work/$t.log
        mkdir -p "$seeds" "$new"
        # Top-level files only: crashes/ holds open bugs, not seeds.
        find "$here/corpus/$t" -maxdepth 1 -type f -exec cp -t "$seeds" {} +
        n_seeds=$(find "$seeds" -type f | wc -l)
        n_open=0
        if [ -d "$here/corpus/$t/crashes" ]; then
                n_open=$(find "$here/corpus/$t/crashes" -type f | wc -l)
        fi

        echo "==> fuzz-$t: ${secs}s, $n_seeds seeds ($n_open open reproducers in crashes/ not used)"
        r=0
        "$build/tests/fuzz/fuzz-$t" \
                -max_total_time="$secs" -rss_limit_mb="$rss_limit_mb" -timeout="$timeout_s" \
                -dict="$here/$t.dict" -artifact_prefix="$artifacts/$t-" \
                -print_final_stats=1 -detect_leaks=1 \
                "$new" "$seeds" >"$log" 2>&1 || r=$?

        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        done_line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED)' "$log" | tail -1 || true)
        cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$done_line")
        ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$done_line")
        n_new=$(find "$new" -type f | wc -l)
        line="fuzz-$t: ${execs:-?} execs in ${secs}s, cov ${cov:-?} ft ${ft:-?}, $n_new new corpus inputs"
        if [ "$r" -ne 0 ]; then
                rc=1
                line="$line, FAILED (exit $r)"
                echo "--- fuzz-$t output (last 60 lines):"
                tail -n 60 "$log"
                grep -h '^artifact_prefix\|Test unit written to' "$log" || true
        fi
        echo "$line"
        summary+=("$line")
done

echo "==> fuzz summary"
printf '  %s\n' "${summary[@]}"
if [ "$rc" -ne 0 ]; then
        echo "run-fuzz.sh: a target failed; reproduce with <build>/tests/fuzz/fuzz-<target> <input>" >&2
fi
exit "$rc"
