#!/usr/bin/env bash
# bench/load/instructions.sh — instructions per packet of the worker's
# per-packet code (worker::process_burst and what it calls), counted by
# valgrind's callgrind while isar-bench drains its rings.
#
# Cycles on these VMs swing by tens of percent between runs of the same
# binary; the number of instructions a packet executes does not. It is the
# measure of the in-cache work (at 1k legs the worker is bound by it), not of
# cache misses (those need the cycles of isar-bench, alternating A/B runs).
#
#   bench/load/instructions.sh [-b BUILD] [MODE[:LEGS[:PAYLOAD]] ...]
#   each argument one row; defaults: build/, plain:1000:160
#   e.g.  bench/load/instructions.sh plain:1000 srtp-pass:1000 transcrypt-gcm128:1000:1200
# Prints "MODE PAYLOAD B LEGS legs: N instructions a packet (P packets)".
# Needs valgrind (apt-get install valgrind). Runs with --no-huge, one worker
# (not the rss-* modes, which need two); about a minute a row for plain at 1k
# legs on this VM, several for SRTP and fan-out (the crypto under valgrind).
# What is counted: process_burst, with the TX flushes it makes when a burst
# buffer fills, but not the flush at the end of each poll - so compare rows
# of the same mode and burst sizes (A/B), not across modes.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build="$top/build"
if [ "${1:-}" = "-b" ]; then
    build=$(cd "$2" && pwd)
    shift 2
fi
bin="$build/bench/load/isar-bench"
[ -x "$bin" ] || { echo "instructions.sh: $bin not built (tools/isar build)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind missing (apt-get install valgrind)" >&2; exit 1; }
[ $# -gt 0 ] || set -- plain:1000:160
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for row in "$@"; do
    IFS=: read -r mode legs payload <<<"$row"
    legs=${legs:-1000}
    payload=${payload:-160}
    # Only the worker's per-packet code is counted (--toggle-collect); the
    # packets are the calls of classify_one, one per packet received.
    if ! valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
        --toggle-collect='isar::dp::worker::process_burst*' \
        "$bin" --drain 8192 --drain-only --no-control --no-baselines --phase 0.05 \
        --modes "$mode" --legs "$legs" --payloads "$payload" --out "$work/r.json" -- \
        --no-pci --no-huge -m 1024 --file-prefix "isarinstr$$" --lcores 0@0,1@1 \
        --log-level '*:warning' >"$work/out.txt" 2>&1; then
        tail -20 "$work/out.txt" >&2
        echo "instructions.sh: $mode $legs legs: isar-bench failed under valgrind" >&2
        exit 1
    fi
    python3 - "$work/cg.out" "$mode" "$legs" "$payload" <<'PY'
import re, sys
path, mode, legs, payload = sys.argv[1:]
names, cur, packets, total = {}, None, 0, None
with open(path) as f:
    for line in f:
        m = re.match(r'(c?)fn=\((\d+)\)(?: (.*))?', line)
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3)
            cur = names.get(m.group(2), '') if m.group(1) else None
            continue
        m = re.match(r'calls=(\d+)', line)
        if m and cur and 'isar::dp::classify_one(' in cur:
            packets += int(m.group(1))
        m = re.match(r'summary: (\d+)', line) or re.match(r'totals: (\d+)', line)
        if m:
            total = int(m.group(1))
if not packets or total is None:
    sys.exit(f"instructions.sh: {mode} {legs} legs: no packets counted "
             "(classify_one inlined, as in an LTO build? use the default -O2 build)")
print(f"{mode} {payload} B {legs} legs: {total / packets:.1f} instructions a packet ({packets} packets)")
PY
done
