#!/usr/bin/env bash
# tools/fuzz.sh — fuzzes the STUN/TURN codec (turn/) with libFuzzer, ASan and
# UBSan for a bounded time. The main build uses gcc, so this compiles the
# target and the turn/ sources directly with clang into build-fuzz/.
#   FUZZ_SECONDS=30   how long to fuzz (libFuzzer -max_total_time)
#   FUZZ_JOBS=1       parallel fuzzing processes (libFuzzer -fork)
#   FUZZ_DIR=build-fuzz   where the binary, working corpus and crashes go
#   FUZZ_MAX_LEN=4096 longest input libFuzzer tries
# A crash leaves crash-<sha1> in $FUZZ_DIR and a non-zero exit: fix it, then
# copy the file into tests/fuzz/corpus/stun/ so the unit suite replays it.
# New inputs found stay in $FUZZ_DIR/corpus; the committed corpus is not touched.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="${FUZZ_DIR:-$top/build-fuzz}"
seconds="${FUZZ_SECONDS:-30}"
jobs="${FUZZ_JOBS:-1}"
cxx="${CXX_FUZZ:-clang++-14}"
arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
bssl="/usr/lib/$arch/android"

command -v "$cxx" >/dev/null || { echo "fuzz.sh: $cxx not found (apt-get install clang-14 libfuzzer-14-dev)" >&2; exit 1; }
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
echo "fuzz.sh: building $out/fuzz_stun with $cxx" >&2
"$cxx" "${flags[@]}" -I"$top" -isystem /usr/include/android \
    "$top"/turn/*.cc "$top/tests/fuzz/fuzz_stun.cc" \
    -L"$bssl" -lcrypto -lz -Wl,-rpath,"$bssl" -o "$out/fuzz_stun"

# Fuzz a copy of the corpus: libFuzzer writes what it finds into it.
mkdir -p "$out/corpus"
cp -n "$top"/tests/fuzz/corpus/stun/* "$out/corpus/" 2>/dev/null || true
cd "$out"
fork=()
[ "$jobs" -gt 1 ] && fork=(-fork="$jobs")
exec ./fuzz_stun "${fork[@]}" -max_total_time="$seconds" -max_len="${FUZZ_MAX_LEN:-4096}" -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$out/" corpus
