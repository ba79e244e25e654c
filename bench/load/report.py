#!/usr/bin/env python3
"""isar-bench JSON -> Markdown table + SVG bar chart (no plotting library).

usage: report.py RESULT.json OUT.md OUT.svg
"""
import json
import sys

TARGETS = "plain >= 20 Mpps at 100k legs, >= 12 at 1M; transcrypt >= 80% of the fastest raw engine; p99 < 20 us at 50% load"


# --tx-free (bench/load/ring_port.h): who frees what the worker sent.
# It covers the modes' table, the forwarder and the TURN modes, not the RSS modes or leg-lines.
TX_FREE = {"sink": "the sink on the main lcore (the forwarder and the worker free only what they drop)",
           "worker": "the worker as it transmits, as a NIC's TX completion does (--tx-free worker)"}

def fmt(v, d=2):
    return "-" if v is None else f"{v:.{d}f}"


def leg_lines_table(ll, fwd, res):
    """The per-flow memory floor next to plain's cost at the same leg count."""
    f0 = fwd.get(160, {}).get("cycles_per_packet")
    rows = {x["legs"]: x for x in res
            if x["mode"] == "plain" and x["payload"] == 160 and "error" not in x}
    plain = {l: x["cycles_per_packet"] for l, x in rows.items()}
    L = ["What reaching a leg's two lines (line 0 and the RTP line) costs here, random legs, "
         "nothing else done (`leg-lines`, bench/load/mem_floor.cc); a relay that reads them per "
         "packet pays at least the prefetched figure on top of the forwarder. Ratios in cycles, "
         "160 B, this run; the forwarder is the one run alongside plain at that leg count "
         "where there is one, else the baseline run.",
         "",
         "| legs | MiB | cycles/visit | prefetched (16 ahead) | forwarder + floor | best ratio with this floor | plain cycles/pkt | plain ratio |",
         "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for b in ll:
        pf = b["cycles_per_visit_prefetched"]
        f = rows.get(b["legs"], {}).get("fwd_alongside_cycles") or f0
        cap = f + pf if f else None
        p = plain.get(b["legs"])
        L.append(f"| {b['legs']} | {b['bytes'] / 1048576:.1f} | {fmt(b['cycles_per_visit'], 1)} | {fmt(pf, 1)} | "
                 f"{fmt(cap, 0)} | {fmt(f / cap if cap else None)} | {fmt(p, 0)} | "
                 f"{fmt(f / p if f and p else None)} |")
    L.append("")
    return L


def srtp_room_table(res, raw_at, suite_of, crypto):
    """What the 0.8 target leaves a relay beyond its engine and the bare
    forwarder, next to what the relay and a plain leg take, all from the
    repetitions run alongside each row (medians)."""
    plain = {(x["legs"], x["payload"]): x for x in res
             if x["mode"] == "plain" and "error" not in x and x.get("fwd_alongside_cycles")}
    rows = [x for x in res if "error" not in x and x.get("raw_alongside_cycles")
            and x.get("fwd_alongside_cycles")]
    if not rows:
        return []
    L = ["What the SRTP target (0.8× the engine) leaves the relay, in cycles a packet: the engine "
         "alone takes E (`/ raw alongside`'s loop), the bare forwarder F (`/ fwd alongside`'s); a "
         "relay that did nothing else would reach E / (E + F), and 0.8 leaves E / 0.8 − E − F "
         "cycles for all the rest (classify, lookup, checks, rewrite, checksum, counters). The "
         "relay's own work is its cycles − E − F; plain's is a plain row's cycles − its forwarder "
         "alongside, at the same legs and payload: what a relay does for a packet without crypto. "
         "Where the room is less than plain's own work, no relay that does a plain relay's work "
         "can reach 0.8 on this machine. With many legs the engine itself slows down: k is its "
         "cycles with as many context pairs as legs (`/ raw @legs`' run) over its cycles with "
         "one pair (the raw crypto baseline), both measured the same way, and E / (k·E + F) "
         "what a relay as slowed would reach: an estimate, not a floor (that loop is not the "
         "relay's pipeline, which has run faster than it).",
         "",
         "| mode | payload | legs | engine E | forwarder F | best ratio E/(E+F) | room at 0.8 | relay's own work | plain's own work | engine at these legs, k | best ratio E/(k·E+F) |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for x in rows:
        e, f, c = x["raw_alongside_cycles"], x["fwd_alongside_cycles"], x["cycles_per_packet"]
        p = plain.get((x["legs"], x["payload"]))
        pw = p["cycles_per_packet"] - p["fwd_alongside_cycles"] if p else None
        key = "verify_cycles" if x["mode"] == "srtp-pass" else "transcrypt_cycles"
        at = raw_at.get((suite_of.get(x["mode"]), x["payload"], x["legs"]))
        if "compact" in x["mode"]:
            at = None # not the engine that run measured
        one = crypto.get((at["engine"], at["suite"], at["payload"])) if at else None
        k = at[key] / one[key] if one and one.get(key) else None
        L.append(f"| {x['mode']} | {x['payload']} | {x['legs']} | {e:.0f} | {f:.0f} | "
                 f"{e / (e + f):.2f} | {e / 0.8 - e - f:.0f} | {c - e - f:.0f} | "
                 f"{fmt(pw, 0)} | {fmt(k)} | {fmt(e / (k * e + f) if k else None)} |")
    L.append("")
    return L


def main():
    src, md_out, svg_out = sys.argv[1:4]
    r = json.load(open(src))
    res = r["results"]
    base = r["baselines"]
    fwd = {b["payload"]: b for b in base if b["name"] == "dpdk-forwarder"}
    kern = {b["payload"]: b for b in base if b["name"] == "kernel-udp-relay"}
    raw = {}
    for c in r.get("crypto", []):
        if "error" in c:
            continue
        k = (c["suite"], c["payload"])
        if k not in raw or c["transcrypt_mpps"] > raw[k]["transcrypt_mpps"]:
            raw[k] = c
    # The relay's engine with as many context pairs as legs (crypto_legs.cc);
    # not for the compact GCM rows, whose engine it is not.
    raw_at = {(c["suite"], c["payload"], c["legs"]): c
              for c in r.get("crypto_at_legs", []) if "error" not in c}
    suite_of = {"transcrypt-cm80": "AES_CM_128_HMAC_SHA1_80", "srtp-pass": "AES_CM_128_HMAC_SHA1_80",
                "transcrypt-gcm128": "AEAD_AES_128_GCM", "transcrypt-gcm128-compact": "AEAD_AES_128_GCM",
                "transcrypt-gcm128+udp-cksum": "AEAD_AES_128_GCM"}
    L = []
    L.append(f"isar-bench on **{r['cpu']}** (TSC {r['tsc_hz']/1e9:.2f} GHz), {r.get('date','')}, "
             f"commit {r.get('commit','?')}, memory {r['memory']}, load average at end "
             f"`{r.get('loadavg_at_end','?')}`. One worker lcore; generator and sink on the main lcore. "
             f"CPU isolation: {r.get('isolation', 'not recorded')}. "
             f"Sent mbufs (modes, forwarder, TURN) freed by {TX_FREE.get(r.get('tx_free', 'sink'), '?')}.")
    L.append("")
    L.append("`/ ceiling` divides a row's Mpps by the forwarder's baseline run, measured minutes "
             "apart; `/ fwd alongside` is the median, over the row's drain repetitions, of the "
             "forwarder's cycles per packet in a repetition run right after each one on the same "
             "lcore, over the row's: both sides in the same state of the machine. `/ raw alongside` "
             "does the same for SRTP rows with the relay's engine alone (one context pair, "
             "run_crypto's loop: decrypt and encrypt, verify for pass-through), while "
             "`/ raw crypto` divides by the fastest engine's baseline run.")
    L.append("")
    L.append("| mode | payload | legs | Mpps/core | capacity Mpps | cycles/pkt | Gbit/s | p50 / p99 µs @50% | main lcore stalls @50% (max ms) | p99 µs @90% | mem B/leg | / ceiling | / fwd alongside | / kernel | / raw crypto | / raw alongside | / raw @legs |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for x in res:
        if "error" in x:
            L.append(f"| {x['mode']} | {x['payload']} | {x['legs']} | **error**: {x['error']} ||||||||||||||")
            continue
        p = x["payload"]
        c = f"{x['mpps_per_core']/fwd[p]['mpps_per_core']:.2f}" if p in fwd else "-"
        k = f"{x['mpps_per_core']/kern[p]['mpps_per_core']:.1f}x" if p in kern else "-"
        s = suite_of.get(x["mode"])
        rc = "-"
        if s and (s, p) in raw:
            ref = raw[(s, p)]["verify_mpps"] if x["mode"] == "srtp-pass" else raw[(s, p)]["transcrypt_mpps"]
            rc = f"{x['mpps_per_core']/ref:.2f}"
        ra = "-"
        at = raw_at.get((s, p, x["legs"])) if "compact" not in x["mode"] else None
        if at and x.get("cycles_per_packet"):
            ref = at["verify_cycles"] if x["mode"] == "srtp-pass" else at["transcrypt_cycles"]
            ra = f"{ref/x['cycles_per_packet']:.2f}"
        L.append(f"| {x['mode']} | {p} | {x['legs']} | {fmt(x['mpps_per_core'])} | {fmt(x['capacity_mpps'])} | "
                 f"{fmt(x['cycles_per_packet'],0)} | {fmt(x['gbps'])} | {fmt(x['p50_us'],1)} / {fmt(x['p99_us'],1)} | "
                 f"{x.get('main_lcore_stalls_50', '-')} ({fmt(x.get('main_lcore_max_gap_us_50', 0) / 1000, 1)}) | {fmt(x['p99_us_90'],1)} | "
                 f"{fmt(x['mem_bytes_per_leg'],0)} | {c} | {fmt(x.get('fwd_alongside_ratio'))} | {k} | {rc} | "
                 f"{fmt(x.get('raw_alongside_ratio'))} | {ra} |")
    v6 = [x for x in res if x["mode"] in ("plain6", "bridge46")]
    if v6:
        L.append("")
        L.append("IPv6 and v4↔v6 bridging next to `plain` of the same run (same legs and payload; "
                 "`plain6`: IPv6 legs both sides; `bridge46`: leg a IPv4, leg b IPv6, so half the "
                 "packets go v4→v6 and half v6→v4; these sessions are installed with flow commands, "
                 "so mem B/leg has no control-plane records).")
        L.append("")
        L.append("| mode | payload | legs | cycles/pkt | plain cycles/pkt | × plain (cycles) | extra cycles/pkt | Mpps/core | × plain (Mpps) |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for x in v6:
            vp = x.get("vs_plain")
            if "error" in x or not vp:
                why = x.get("error", "no plain run with the same legs and payload")
                L.append(f"| {x['mode']} | {x['payload']} | {x['legs']} | {why} ||||||")
                continue
            L.append(f"| {x['mode']} | {x['payload']} | {x['legs']} | {fmt(x['cycles_per_packet'],0)} | "
                     f"{fmt(vp['plain_cycles_per_packet'],0)} | {fmt(vp['cycles_ratio'])} | "
                     f"{vp['extra_cycles_per_packet']:+.0f} | {fmt(x['mpps_per_core'])} | {fmt(vp['mpps_ratio'])} |")
    L.append("")
    L.append("| baseline | payload | Mpps/core | cycles/pkt |")
    L.append("|---|---:|---:|---:|")
    for b in base:
        if b["name"] == "leg-lines":
            continue
        L.append(f"| {b['name']} | {b['payload']} | {fmt(b['mpps_per_core'])} | {fmt(b.get('cycles_per_packet'),0)} |")
    L.append("")
    ll = [b for b in base if b["name"] == "leg-lines"]
    if ll:
        L.extend(leg_lines_table(ll, fwd, res))
    crypto = {(c["engine"], c["suite"], c["payload"]): c for c in r.get("crypto", []) if "error" not in c}
    L.extend(srtp_room_table(res, raw_at, suite_of, crypto))
    for m, c in r.get("control", {}).items():
        L.append(f"Control plane ({m}): **{c['creates_per_s']:.0f} session creates/s** "
                 f"({c['sessions']} two-leg sessions through `commands::handle_line`, worker forwarding "
                 f"{c['background_mpps']:.2f} Mpps meanwhile); create acknowledged → first packet forwarded "
                 f"p50 {c['first_packet_p50_us']:.1f} µs, p99 {c['first_packet_p99_us']:.1f} µs"
                 + (f" — **error**: {c['error']}" if 'error' in c else "") + ".  ")
    turn = r.get("turn", [])
    if turn:
        L.append("")
        L.append("| TURN mode (50/50 client→peer, peer→client) | payload | allocations | Mpps/core | capacity Mpps | cycles/pkt | Gbit/s | / DPDK forwarder | / fwd alongside | checked |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for x in turn:
            if "error" in x:
                L.append(f"| {x['mode']} | {x['payload']} | {x['allocations']} | **error**: {x['error']} |||||||")
                continue
            L.append(f"| {x['mode']} | {x['payload']} | {x['allocations']} | {fmt(x['mpps_per_core'])} | "
                     f"{fmt(x['capacity_mpps'])} | {fmt(x['cycles_per_packet'],0)} | {fmt(x['gbps'])} | "
                     f"{fmt(x.get('fwd_ratio'))} | {fmt(x.get('fwd_alongside_ratio'))} | "
                     f"{x.get('checked', '-')} |")
    rss = r.get("rss", [])
    if rss:
        L.append("")
        L.append("| 2 workers, software RSS | payload | legs | worker 0 Mpps | worker 1 Mpps | total Mpps | wall Mpps | handoff share |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for x in rss:
            if "error" in x:
                L.append(f"| {x['mode']} | {x['payload']} | {x['legs']} | **error**: {x['error']} |||||")
                continue
            w = x["workers"]
            L.append(f"| {x['mode']} | {x['payload']} | {x['legs']} | {fmt(w[0]['mpps'])} | "
                     f"{fmt(w[1]['mpps'])} | {fmt(x['mpps_total'])} | {fmt(x['mpps_wall'])} | "
                     f"{x['handoff_share'] * 100:.1f} % |")
        L.append("")
        L.append("Per-worker Mpps: forwarded packets per busy second of that worker; total: their sum; "
                 "wall: with the generator and both workers sharing this machine's cores.")
    ta = r.get("turn_allocations")
    if ta:
        L.append("")
        if "error" in ta:
            L.append(f"TURN allocations: **error**: {ta['error']}")
        else:
            L.append(f"TURN: **{ta['allocations_per_s']:.0f} allocations/s** ({ta['allocations_done']} "
                     f"Allocate → 401 → authenticated Allocate exchanges through the worker and "
                     f"`ctl::turn_manager`, 256 clients in flight, {ta['seconds']:.2f} s).")
    ct = r.get("coturn_baseline")
    if ct:
        c, i = ct.get("coturn", {}), ct.get("isar", {})
        L.append("")
        L.append("| end to end, same client (turnutils_uclient, coturn_baseline.py) | relayed pkts | server CPU s | relayed / CPU-second | allocations/s (Python client) | allocations / server CPU-second |")
        L.append("|---|---:|---:|---:|---:|---:|")
        for name, x in (("coturn turnserver", c), ("isard (net_af_packet, idle_sleep_us=100)", i)):
            if "error" in x:
                L.append(f"| {name} | **error**: {x['error']} |||||")
                continue
            a = x.get("allocs", {})
            L.append(f"| {name} | {x.get('relayed_pkts')} | {fmt(x.get('cpu_s'))} | {fmt(x.get('relayed_per_cpu_s'),0)} | "
                     f"{fmt(a.get('allocations_per_s'),0)} | {fmt(a.get('allocations_per_server_cpu_s'),0)} |")
        if ct.get("isar_over_coturn_per_cpu_s"):
            L.append("")
            L.append(f"Isar / coturn, relayed packets per CPU-second with the same uclient load: "
                     f"{ct['isar_over_coturn_per_cpu_s']:.2f}. coturn per CPU-second vs Isar's in-process "
                     f"Mpps per worker core: see the TURN mode table above.")
    L.append("")
    L.append(f"Targets (printed, never asserted): {TARGETS}; ≥ 50k session creates/s; 1M SRTP legs < 4 GiB.")
    if r.get("errors"):
        L.append("")
        L.append("Errors: " + "; ".join(r["errors"]))
    open(md_out, "w").write("\n".join(L) + "\n")

    # SVG: grouped bars, Mpps per mode, one bar per (legs, payload)
    ok = [x for x in res if "error" not in x]
    modes = []
    for x in ok:
        if x["mode"] not in modes:
            modes.append(x["mode"])
    series = sorted({(x["legs"], x["payload"]) for x in ok})
    colors = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896"]
    vmax = max([x["mpps_per_core"] for x in ok] + [b["mpps_per_core"] for b in fwd.values()] + [1])
    W, H, left, top, bottom = 960, 420, 60, 50, 90
    gw = (W - left - 20) / max(1, len(modes))
    bw = gw * 0.8 / max(1, len(series))
    y = lambda v: top + (H - top - bottom) * (1 - v / vmax)
    S = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W/2}" y="18" text-anchor="middle" font-size="14">isar-bench: Mpps per worker core ({r["cpu"]}, {r.get("date","")}, {r["memory"]})</text>']
    for i in range(6):
        v = vmax * i / 5
        S.append(f'<line x1="{left}" x2="{W-20}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        S.append(f'<text x="{left-5}" y="{y(v)+4:.1f}" text-anchor="end">{v:.1f}</text>')
    for p, b in fwd.items():
        S.append(f'<line x1="{left}" x2="{W-20}" y1="{y(b["mpps_per_core"]):.1f}" y2="{y(b["mpps_per_core"]):.1f}" stroke="#888" stroke-dasharray="4 3"/>')
        S.append(f'<text x="{W-22}" y="{y(b["mpps_per_core"])-3:.1f}" text-anchor="end" fill="#666">DPDK forwarder ceiling {p} B</text>')
    for mi, m in enumerate(modes):
        x0 = left + mi * gw + gw * 0.1
        for si, s in enumerate(series):
            rec = next((x for x in ok if x["mode"] == m and (x["legs"], x["payload"]) == s), None)
            if not rec:
                continue
            v = rec["mpps_per_core"]
            S.append(f'<rect x="{x0+si*bw:.1f}" y="{y(v):.1f}" width="{bw-1:.1f}" height="{y(0)-y(v):.1f}" fill="{colors[si % len(colors)]}"><title>{m} {s[0]} legs {s[1]} B: {v:.2f} Mpps</title></rect>')
        S.append(f'<text x="{left+mi*gw+gw/2:.1f}" y="{H-bottom+15}" text-anchor="middle">{m}</text>')
    for si, s in enumerate(series):
        lx = left + (si % 4) * 220
        ly = H - 45 + (si // 4) * 16
        S.append(f'<rect x="{lx}" y="{ly-9}" width="10" height="10" fill="{colors[si % len(colors)]}"/>')
        S.append(f'<text x="{lx+14}" y="{ly}">{s[0]} legs, {s[1]} B</text>')
    S.append("</svg>")
    open(svg_out, "w").write("\n".join(S) + "\n")


if __name__ == "__main__":
    main()
