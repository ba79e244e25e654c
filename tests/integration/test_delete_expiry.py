#!/usr/bin/env python3
"""Deleting a session stops forwarding; idle sessions expire; ports are reused.

The relay port pool holds only 4 ports (2 sessions) and idle_timeout_s = 2.
- After `isarctl session delete`, packets to the old ports are dropped as
  no_flow and nothing arrives; the session is gone from `session list`.
- A session without traffic disappears from `session list` ~2-3 s after its
  last packet (stats sessions.expired), also while a stranger keeps sending it
  packets that strict source drops; one that keeps receiving packets stays;
  then that one expires too once its traffic stops.
- Every port came back to the pool: two new sessions fit in the 4-port pool
  (a third one is refused as "exhausted"), and they forward on reused ports,
  latching their new remotes (nothing of the old sessions is left behind).
"""
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402

PORT_MIN, PORT_MAX, IDLE = 41000, 41003, 2
POOL = set(range(PORT_MIN, PORT_MAX + 1))


def pkt(seq, ssrc=0x51):
    return it.rtp_packet(seq, seq * 160, ssrc, bytes([seq & 0xFF]) * 40)


def latch_both(env, sid, locs, a, b):
    """Makes both legs latch; returns after A->B works."""
    b.sendto(pkt(1, 0xB), locs["b"])
    it.wait_for(lambda: env.leg(sid, "b")["remote"], 3, f"{sid}: leg b to latch")
    p = pkt(2, 0xA)
    a.sendto(p, locs["a"])
    it.expect_stream(b, [p], locs["b"], f"{sid}: A->B")


def body(env):
    env.start()
    a = env.udp(it.A_IP, 4000)
    b = env.udp(it.A_IP, 5000)

    # ---- delete --------------------------------------------------------------
    locs, _ = env.create("d1", "a", "b")
    latch_both(env, "d1", locs, a, b)
    p = pkt(3, 0xB)
    b.sendto(p, locs["b"])
    it.expect_stream(a, [p], locs["a"], "d1: B->A")
    p = env.ctl("session", "delete", "d1")
    it.check_eq(p.returncode, 0, "isarctl session delete d1")
    it.check_eq(env.session_ids(), [], "session list after delete")
    nf0 = env.total_drops().get("no_flow", 0)
    for i in range(5):
        a.sendto(pkt(10 + i, 0xA), locs["a"])
        b.sendto(pkt(10 + i, 0xB), locs["b"])
    env.wait_drop("no_flow", nf0 + 10)
    it.check(True, "packets to the deleted session's ports were dropped as no_flow")
    it.expect_nothing(b, "B after delete")
    it.expect_nothing(a, "A after delete", quiet=0.1)
    st = env.stats()["sessions"]
    it.check_eq((st["active"], st["legs"], st["deleted"]), (0, 0, 1), "stats sessions after delete")
    p = env.ctl("session", "show", "d1")
    it.check(p.returncode != 0, "session show of the deleted session fails")

    # ---- idle expiry -----------------------------------------------------------
    c = env.udp(it.A_IP, 6000)
    d = env.udp(it.A_IP, 7000)
    le, _ = env.create("idle", "a", "b")
    lk, _ = env.create("busy", "a", "b")
    it.check_eq(set(le.values()) | set(lk.values()), {(it.RELAY_IP, p) for p in POOL},
                "the two sessions use the whole 4-port pool")
    latch_both(env, "idle", le, a, b)
    t_last = time.monotonic()  # the idle session's last packet
    latch_both(env, "busy", lk, c, d)
    p = env.ctl("session", "create", "third", "--leg", "x", "--leg", "y")
    it.check(p.returncode != 0 and "exhausted" in p.stderr,
             f"a third session does not fit in the pool ({p.stderr.strip()})")

    # Keep "busy" busy (a packet every 0.4 s) until "idle" has gone. "idle"
    # gets packets too, but from a stranger (strict source drops them): they
    # must not keep it alive.
    stranger = env.udp(it.A_IP, 4999)
    seq = 100
    gone_at = None
    deadline = time.monotonic() + IDLE + 6
    while time.monotonic() < deadline:
        seq += 1
        c.sendto(pkt(seq, 0xC), lk["a"])
        stranger.sendto(pkt(seq, 0xEE), le["a"])
        ids = env.session_ids()
        if "idle" not in ids:
            gone_at = time.monotonic()
            break
        time.sleep(0.4)
    it.check(gone_at is not None, "the idle session expired")
    waited = gone_at - t_last
    it.check(IDLE - 0.2 <= waited <= IDLE + 2.5,
             f"it went {waited:.1f}s after its last packet (timeout {IDLE}s)")
    it.check_eq(env.session_ids(), ["busy"], "the session with traffic is still there")
    n = len(it.drain(d, 0.3))
    it.check(n >= 1, f"busy session kept forwarding ({n} packets)")
    st = env.stats()["sessions"]
    it.check_eq((st["expired"], st["active"]), (1, 1), "stats sessions.expired/active")

    # Packets to the expired session's ports: no_flow, nothing forwarded.
    nf0 = env.total_drops().get("no_flow", 0)
    a.sendto(pkt(200, 0xA), le["a"])
    env.wait_drop("no_flow", nf0 + 1)
    it.expect_nothing(b, "B after its session expired", quiet=0.3)

    # Now "busy" goes quiet and expires too.
    t_quiet = time.monotonic()
    it.wait_for(lambda: env.session_ids() == [], IDLE + 5, "the busy session to expire")
    it.check(time.monotonic() - t_quiet >= IDLE - 0.5,
             "the busy session expired only after its traffic stopped")
    st = env.stats()["sessions"]
    it.check_eq((st["expired"], st["active"], st["legs"]), (2, 0, 0), "stats after both expired")

    # ---- every port was returned: reuse -------------------------------------------
    e = env.udp(it.A_IP, 8000)
    f = env.udp(it.A_IP, 9000)
    l1, _ = env.create("new1", "a", "b")
    l2, _ = env.create("new2", "a", "b")
    it.check_eq(set(l1.values()) | set(l2.values()), {(it.RELAY_IP, p) for p in POOL},
                "two new sessions reuse all 4 ports")
    for sid, locs in (("new1", l1), ("new2", l2)):
        it.check_eq([x["remote"] for x in env.show(sid)["legs"]], [None, None],
                    f"{sid}: no remote inherited from the old sessions")
        latch_both(env, sid, locs, e, f)
        p = pkt(300, 0xF)
        f.sendto(p, locs["b"])
        it.expect_stream(e, [p], locs["a"], f"{sid}: B->A on reused ports")
        it.check_eq(env.leg(sid, "a")["remote"], f"{it.A_IP}:8000", f"{sid}: a latched anew")
        it.check_eq(env.ctl_json("session", "delete", sid)["deleted"], True, f"delete {sid}")
    it.expect_nothing(a, "the old endpoints", quiet=0.2)
    it.expect_nothing(c, "the old endpoints", quiet=0.1)

    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "expiry", port_min=PORT_MIN, port_max=PORT_MAX,
                     idle_timeout_s=IDLE))
