#!/usr/bin/env python3
"""Port ownership on a port without RSS on the UDP destination (issue #13).

net_af_packet with qpairs=3 and 2 workers: the kernel's fanout hash spreads
the flows over the three RX queues, and af_packet has no L4_DST_ONLY (no RSS
at all), so isard falls back to ports owned in pairs and hands packets off
between workers. What must hold: isard says so at start (the ownership log
line), calls work whichever worker receives them, and the handoff is COUNTED:
`isarctl stats` (JSON and text) reports the handoff share per worker and in
all, equal to handoff_out / rx_pkts, and /metrics has
isar_worker_handoff_ratio and isar_port_ownership_info.
"""
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import test_ops_common as oc  # noqa: E402

SESSIONS = 8
N = 40


def body(env):
    port = oc.free_tcp_port()
    oc.patch_config(env, sections=f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    env.start()
    with open(env.isard_log, errors="replace") as f:
        log = f.read()
    it.check("packets cross workers by handoff" in log and "no RSS" in log,
             "start-up log names the fallback (spread by the driver's own hash, handoff)")

    calls = []
    for i in range(SESSIONS):
        sid = f"r{i}"
        locs, _ = env.create(sid, "a", "b")
        calls.append((sid, locs, env.udp(it.A_IP, 4100 + i), env.udp(it.B_IP, 5100 + i)))
    for sid, locs, a, b in calls:
        b.sendto(it.rtp_packet(1, 0, 0xB, b"\0" * 40), locs["b"])
    for sid, locs, a, b in calls:
        it.wait_for(lambda: env.leg(sid, "b")["remote"], 3, f"{sid}: leg b to latch")
    for i, (sid, locs, a, b) in enumerate(calls):
        sa = it.make_stream(0xA10 + i, N, 160, seq0=10)
        sb = it.make_stream(0xB10 + i, N, 160, seq0=20)
        it.send_paced(a, sa, locs["a"])
        it.expect_stream(b, sa, locs["b"], f"{sid}: A->B")
        it.send_paced(b, sb, locs["b"])
        it.expect_stream(a, sb, locs["a"], f"{sid}: B->A")

    st = env.stats()
    t = st["total"]
    it.check(t["handoff_out"] > 0, f"packets were handed off ({t['handoff_out']}): the kernel's "
             "hash and the port pairs disagree for some flows")
    it.check_eq(t["handoff_out"], t["handoff_in"], "handoff_out == handoff_in")
    for w in st["workers"] + [t]:
        want = w["handoff_out"] / w["rx_pkts"] if w["rx_pkts"] else 0.0
        it.check(abs(w["handoff_share"] - want) < 1e-9,
                 f"handoff_share {w['handoff_share']:.3f} = handoff_out / rx_pkts ({want:.3f})")
    it.check(0 < t["handoff_share"] < 1, f"total handoff share {t['handoff_share']:.1%}")
    own = st["ownership"]
    it.check_eq(len(own), 1, "stats: ownership of the one interface")
    it.check_eq(own[0]["mode"], "port pairs + handoff", "stats: ownership mode")

    p = env.ctl("stats", as_json=False)
    it.check(p.returncode == 0 and "handoff:" in p.stdout and "ownership: interface 0" in p.stdout,
             "isarctl stats (text) shows the handoff share and the ownership")
    print(p.stdout, end="")

    m = oc.scrape(port)
    for w in st["workers"]:
        r = oc.val(m, "isar_worker_handoff_ratio", worker=str(w["worker"]))
        it.check(r is not None and 0 <= r <= 1, f"/metrics: handoff ratio of worker {w['worker']}: {r}")
    it.check_eq(oc.val(m, "isar_port_ownership_info", port="0", mode="port pairs + handoff"), 1.0,
                "/metrics: port ownership info")

    for sid, _l, _a, _b in calls:
        env.ctl_json("session", "delete", sid)
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "rss_handoff", workers=2))
