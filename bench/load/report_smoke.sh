#!/bin/sh
# isar-bench with its baselines at smoke size, then report.py on its JSON:
# the Markdown must have the baseline table, the leg-lines table with a row
# per leg count (the report reads records of several shapes) and the compact
# GCM mode's rows (its outputs decrypted and checked like every mode's), and
# the raw engine at the run's leg counts with an AES-CM row divided by it,
# and every row's ratio to the forwarder (and an SRTP row's to its engine)
# run between its repetitions, and the room the SRTP target leaves.
# Then fan-out and TURN with --tx-free worker (ring_port.h): the worker frees
# what it sent, the outputs are still checked, nothing is left over.
# usage: report_smoke.sh ISAR_BENCH REPORT_PY
set -eu
bench=$1
report=$2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
"$bench" --smoke --no-control --modes plain,transcrypt-gcm128-compact,transcrypt-cm80 --out "$d/r.json" >"$d/log" 2>&1 || {
    cat "$d/log"
    exit 1
}
python3 "$report" "$d/r.json" "$d/r.md" "$d/r.svg"
fail=0
for want in '| dpdk-forwarder | 160 |' 'best ratio with this floor' '| 1 | 0.0 |' '| 100 | 0.0 |' \
    '| transcrypt-gcm128-compact | 160 | 100 |'; do
    if ! grep -qF -- "$want" "$d/r.md"; then
        echo "report_smoke: the report lacks '$want'"
        fail=1
    fi
done
if [ $fail -ne 0 ]; then
    cat "$d/r.md"
    exit 1
fi
grep -F 'baseline leg-lines' "$d/log"
# The engine at the run's leg counts (crypto_legs.cc): both suites at 100
# legs, every round trip authentic (a failed one is an error record).
python3 - "$d/r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
at = {(c["suite"], c["legs"]): c for c in r["crypto_at_legs"]}
for s in ("AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"):
    c = at.get((s, 100))
    assert c and "error" not in c, (s, c)
    assert c["transcrypt_cycles"] > 0 and c["verify_cycles"] > 0, c
assert (("AES_CM_128_HMAC_SHA1_80", 1) not in at), "1 leg is the raw-crypto baseline"
print("report_smoke: raw crypto at legs", sorted(at))
PY
# The forwarder ran between every row's drain repetitions (load_phases.cc):
# each row has its cycles and the median ratio, and the report prints it.
python3 - "$d/r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for x in r["results"]:
    assert x.get("fwd_alongside_cycles", 0) > 0, x
    assert 0 < x["fwd_alongside_ratio"] < 5, x
    # SRTP rows: the relay's engine alone between the repetitions too.
    srtp = x["mode"] != "plain"
    assert ("raw_alongside_ratio" in x) == srtp, x
    assert not srtp or (x["raw_alongside_cycles"] > 0 and 0 < x["raw_alongside_ratio"] < 5), x
print("report_smoke: forwarder alongside", [(x["mode"], x["legs"], round(x["fwd_alongside_ratio"], 2))
                                            for x in r["results"]])
PY
# A ratio in the report: the cell `back` columns from the end of the row
# that starts with `row` must be a number with two decimals.
ratio() {
    line=$(grep -F -m1 "$1" "$d/r.md" || true) # the modes table, before the room table
    v=$(printf '%s' "$line" | awk -F'|' -v k="$2" '{print $(NF-k)}' | tr -d ' ')
    case "$v" in
    [0-9]*.[0-9][0-9]) echo "report_smoke: $1 $3 $v" ;;
    *)
        echo "report_smoke: no '$3' ratio in: $line"
        exit 1
        ;;
    esac
}
ratio '| plain | 160 | 100 |' 5 '/ fwd alongside'
ratio '| transcrypt-cm80 | 160 | 100 |' 2 '/ raw alongside'
# ... and the report divides an SRTP row of those legs by it ("/ raw @legs").
ratio '| transcrypt-cm80 | 160 | 100 |' 1 '/ raw @legs'
# The room the SRTP target leaves (report.py, srtp_room_table): a row per
# SRTP row, each with plain's own work at its legs and payload.
python3 - "$d/r.json" "$d/r.md" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
md = open(sys.argv[2]).read()
srtp = [x for x in r["results"] if x["mode"] != "plain"]
assert srtp
for x in srtp:
    e, f = x["raw_alongside_cycles"], x["fwd_alongside_cycles"]
    want = f"| {x['mode']} | {x['payload']} | {x['legs']} | {e:.0f} | {f:.0f} | {e / (e + f):.2f} | {e / 0.8 - e - f:.0f} |"
    line = next((l for l in md.splitlines() if l.startswith(want)), None)
    assert line, ("no room row", want)
    assert re.search(r"\| -?\d+ \| -?\d+ \| (\d+\.\d\d \| \d\.\d\d|- \| -) \|$", line), ("no own-work cells", line)
    # The engine at the run's 100 legs slows it by k (crypto_legs.cc): there
    # the row has k and the bound it gives.
    if x["legs"] == 100 and "compact" not in x["mode"]:
        assert line.endswith(" |") and not line.endswith("- | - |"), ("no k at 100 legs", line)
print("report_smoke: SRTP room rows", len(srtp))
PY
"$bench" --smoke --no-control --tx-free worker --turn-allocs 0 --modes plain,fanout10,turn-channeldata \
    --out "$d/w.json" >"$d/wlog" 2>&1 || {
    cat "$d/wlog"
    exit 1
}
python3 - "$d/w.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["tx_free"] == "worker", r["tx_free"]
assert not r["errors"], r["errors"]
modes = {x["mode"] for x in r["results"]} | {x["mode"] for x in r["turn"]}
assert {"plain", "fanout10", "turn-channeldata"} <= modes, modes
fw = [b for b in r["baselines"] if b["name"] == "dpdk-forwarder"]
assert fw and all(b["cycles_per_packet"] > 0 for b in fw), fw
# The forwarder alongside frees what it sent the same way (TURN rows too).
assert all(x.get("fwd_alongside_ratio", 0) > 0 for x in r["results"] + r["turn"]), r
print("report_smoke: --tx-free worker ran", sorted(modes))
PY
