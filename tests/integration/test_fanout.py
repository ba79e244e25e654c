#!/usr/bin/env python3
"""Fan-out: a 3-leg session (a conference); one sender reaches both others.

- `--leg a --leg b --leg c` (default targets: every other leg): A's stream
  arrives at B from b's relay port and at C from c's relay port, intact; the
  same from B and from C. Per-leg in/out counters add up (out of a leg = what
  the two others sent).
- `targets=` limits where a leg forwards: with `--leg a,targets=b`, A reaches B
  only; C receives nothing, while B and C still reach everyone.
- The copies made for fan-out are all freed (mbufs_in_use back to ~0).
"""
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402

N = 100


def body(env):
    env.start()
    eps = {"a": env.udp(it.A_IP, 4000), "b": env.udp(it.B_IP, 4000),
           "c": env.udp(it.C_IP, 4000)}
    addrs = {"a": f"{it.A_IP}:4000", "b": f"{it.B_IP}:4000", "c": f"{it.C_IP}:4000"}

    def latch_all(sid, locs):
        for name in ("a", "b", "c"):
            eps[name].sendto(it.rtp_packet(1, 0, 0x99, b"latch" * 4), locs[name])
            it.wait_for(lambda: env.leg(sid, name)["remote"] == addrs[name], 3,
                        f"{sid}: leg {name} to latch")
        # The latch packets reached whoever was already latched: discard.
        for s in eps.values():
            it.drain(s, 0.2)

    # ---- default targets: everyone hears everyone ---------------------------
    locs, r = env.create("conf", "a", "b", "c")
    it.check_eq(len(r["legs"]), 3, "three legs created")
    it.check_eq(len(set(locs.values())), 3, "three distinct relay ports")
    s = env.show("conf")
    it.check_eq({l["name"]: l["targets"] for l in s["legs"]},
                {"a": ["b", "c"], "b": ["a", "c"], "c": ["a", "b"]}, "default targets")
    latch_all("conf", locs)
    base = {l["name"]: (l["in"]["packets"], l["out"]["packets"]) for l in env.show("conf")["legs"]}

    for i, src in enumerate(("a", "b", "c")):
        pk = it.make_stream(0x100 + i, N, 160, seq0=1000 * (i + 1))
        it.send_paced(eps[src], pk, locs[src])
        for dst in ("a", "b", "c"):
            if dst == src:
                continue
            it.expect_stream(eps[dst], pk, locs[dst], f"{src.upper()}->{dst.upper()} (fan-out)")
        it.expect_nothing(eps[src], f"{src.upper()} (no echo to the sender)", quiet=0.1)

    def counted():
        legs = {l["name"]: l for l in env.show("conf")["legs"]}
        ok = all(legs[n]["in"]["packets"] - base[n][0] == N and
                 legs[n]["out"]["packets"] - base[n][1] == 2 * N for n in legs)
        return legs if ok else None
    legs = it.wait_for(counted, 3, "fan-out counters: in = N, out = 2N per leg")
    for n, l in legs.items():
        it.check_eq((l["in"]["packets"] - base[n][0], l["out"]["packets"] - base[n][1]),
                    (N, 2 * N), f"leg {n} in/out packets during the streams")
    it.check_eq(env.total_drops().get("no_mbuf", 0), 0, "no fan-out copy failed (no_mbuf)")
    env.ctl_json("session", "delete", "conf")

    # ---- explicit targets: a -> b only --------------------------------------
    locs, _ = env.create("lim", "a,targets=b", "b", "c")
    it.check_eq({l["name"]: l["targets"] for l in env.show("lim")["legs"]},
                {"a": ["b"], "b": ["a", "c"], "c": ["a", "b"]}, "targets with a,targets=b")
    latch_all("lim", locs)
    pk = it.make_stream(0x200, 20, 160)
    it.send_paced(eps["a"], pk, locs["a"])
    it.expect_stream(eps["b"], pk, locs["b"], "A->B (a targets b only)")
    it.expect_nothing(eps["c"], "C (not a target of a)")
    pk = it.make_stream(0x201, 20, 160)
    it.send_paced(eps["c"], pk, locs["c"])
    it.expect_stream(eps["a"], pk, locs["a"], "C->A")
    it.expect_stream(eps["b"], pk, locs["b"], "C->B")
    env.ctl_json("session", "delete", "lim")

    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "fanout"))
