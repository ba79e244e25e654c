#!/usr/bin/env bash
# tools/fuzz.sh — runs the libFuzzer targets of tests/fuzz (frame
# classification, SRTP/SRTCP, control requests, TOML config, STUN/TURN, TURN
# stream framing) with ASan and UBSan, each for a bounded time over a copy of
# its seed corpus.
# The main build uses gcc, so this keeps a clang build of its own: $FUZZ_DIR
# is a meson build directory configured with CC=clang-14 CXX=clang++-14
# -Dfuzz=enabled -Db_sanitize=address,undefined (the whole tree is compiled
# with -fsanitize=fuzzer-no-link, so coverage guides the fuzzers through the
# product code, not only the target's own file); only the fuzz targets are
# compiled in it.
#   FUZZ_SECONDS=20       how long to fuzz each target (libFuzzer -max_total_time)
#   FUZZ_TARGETS="classify srtp control config stun stream"   which ones
#   FUZZ_JOBS=1           parallel fuzzing processes per target (libFuzzer -fork)
#   FUZZ_PARALLEL=nproc   targets fuzzed at the same time
#   FUZZ_DIR=build-fuzz   the clang build; working corpora in $FUZZ_DIR/work/<target>,
#                         crashes in $FUZZ_DIR/crashes/<target>-crash-<sha1>
# Prints one line per target: "fuzz.sh: RESULT <target> ok|FAIL execs=N ..."
# (tools/isar test counts them). Exit status: 0 all ok, 1 a target failed
# (crash, leak, timeout, build error), 77 clang-14 or libFuzzer missing (skip).
# A crash: fix it, then copy the input into tests/fuzz/corpus/<target>/ so the
# unit suite replays it from then on; until it is fixed keep it in
# tests/fuzz/crashes-to-fix/ (replayed by nobody). The committed corpora are
# never written to; tests/fuzz/make_seeds.py, make_stun_seeds.py and
# make_stream_seeds.py write them.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="${FUZZ_DIR:-$top/build-fuzz}"
seconds="${FUZZ_SECONDS:-20}"
jobs="${FUZZ_JOBS:-1}"
parallel="${FUZZ_PARALLEL:-$(nproc 2>/dev/null || echo 1)}"
case "$parallel" in '' | *[!0-9]* | 0) echo "fuzz.sh: FUZZ_PARALLEL=$parallel: not a count" >&2; exit 2 ;; esac
targets="${FUZZ_TARGETS:-classify srtp control config stun stream}"
cc="${CC_FUZZ:-clang-14}"
cxx="${CXX_FUZZ:-clang++-14}"

say() { printf 'fuzz.sh: %s\n' "$*" >&2; }

if ! command -v "$cxx" >/dev/null || ! command -v "$cc" >/dev/null; then
    say "$cxx not found (apt-get install clang-14 libfuzzer-14-dev): skipped"
    exit 77
fi
if ! "$cxx" -print-file-name=libclang_rt.fuzzer-x86_64.a | grep -q /; then
    say "libFuzzer runtime not found (apt-get install libfuzzer-14-dev): skipped"
    exit 77
fi

if [ ! -f "$out/build.ninja" ]; then
    say "configuring $out ($cxx, -Dfuzz=enabled, ASan+UBSan)"
    CC="$cc" CXX="$cxx" meson setup "$out" "$top" -Dfuzz=enabled \
        -Db_sanitize=address,undefined -Db_lundef=false -Dbench=disabled >"$out.setup.log" 2>&1 ||
        { cat "$out.setup.log" >&2; say "RESULT build FAIL"; exit 1; }
fi
exes=()
for t in $targets; do exes+=("fuzz_$t"); done
say "building ${exes[*]} in $out"
if ! meson compile -C "$out" "${exes[@]}" >"$out/fuzz-build.log" 2>&1; then
    grep -E 'error|FAILED' "$out/fuzz-build.log" | head -40 >&2
    say "RESULT build FAIL (log: $out/fuzz-build.log)"
    exit 1
fi

# UBSan reports are errors; DPDK's EAL keeps memory until exit, which the
# targets release with rte_eal_cleanup() at exit, so leak checking stays on.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="abort_on_error=0:detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

declare -A maxlen=([classify]=2048 [srtp]=1500 [control]=4096 [config]=4096 [stun]=4096 [stream]=16384)
# fuzz_control covers nlohmann::json and the whole control plane: libFuzzer's
# entropic scheduling then costs most of the time (65 vs 300 inputs/s).
declare -A extra=([control]="-entropic=0")
# One target's run; its result line is printed by the caller, in order.
fuzz_one() {
    local t=$1 work="$out/work/$1" log="$out/fuzz-$1.log" fork=() r
    mkdir -p "$work" "$out/crashes"
    cp -n "$top/tests/fuzz/corpus/$t"/* "$work/" 2>/dev/null || true
    [ "$jobs" -gt 1 ] && fork=(-fork="$jobs")
    # shellcheck disable=SC2086
    (cd "$out" && "./tests/fuzz/fuzz_$t" "${fork[@]}" ${extra[$t]:-} -max_total_time="$seconds" \
        -max_len="${maxlen[$t]:-4096}" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$out/crashes/$t-" "$work") >"$log" 2>&1
    r=$?
    echo "$r" >"$out/fuzz-$t.rc"
}
# Targets run `parallel` at a time (one per CPU by default): each is one
# process, so on two CPUs six targets take three rounds of $seconds.
# An interrupted run takes its fuzzers with it.
trap 'kill $(jobs -p) 2>/dev/null; exit 130' INT TERM
running=0
for t in $targets; do
    rm -f "$out/fuzz-$t.rc"
    if [ "$running" -ge "$parallel" ]; then
        wait -n
        running=$((running - 1))
    fi
    say "fuzzing $t for ${seconds}s"
    fuzz_one "$t" &
    running=$((running + 1))
done
wait
rc=0
for t in $targets; do
    log="$out/fuzz-$t.log"
    r=$(cat "$out/fuzz-$t.rc" 2>/dev/null || echo 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    if [ "$r" -eq 0 ]; then
        say "RESULT $t ok execs=${execs:-0} cov=${cov:-?} corpus=$(ls "$out/work/$t" | wc -l)"
    else
        rc=1
        tail -60 "$log" >&2
        say "RESULT $t FAIL execs=${execs:-0} (exit $r; log $log; inputs: $(ls "$out/crashes" | grep "^$t-" | tr '\n' ' '))"
    fi
done
exit $rc
