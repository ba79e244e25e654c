#!/usr/bin/env python3
"""Latching and strict source.

- A leg latches its remote from the first packet it receives.
- Packets from anything else (another address: 198.18.0.3, or another port)
  are dropped and counted as src_mismatch (on the leg and the worker), not
  forwarded, and do not move the latch.
- `isarctl leg update ID NAME remote=none` clears the remote so that the leg
  latches again on the next packet.
- A `remote=IP:PORT` given at create is used for sending before the far end
  ever sent anything, is enforced as the only accepted source, and
  `leg update ... remote=IP:PORT` moves it.
- With relay.strict_source = false (a second isard), a packet from a new
  source moves the latch instead of being dropped.
"""
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402


def stream(ssrc, n, seq0=1):
    return it.make_stream(ssrc, n, 40, seq0=seq0)


def body(env):
    env.start()

    # ---- latching from the first packet ---------------------------------------
    locs, _ = env.create("s1", "a", "b")
    ra, rb = locs["a"], locs["b"]
    a = env.udp(it.A_IP, 4000)
    b = env.udp(it.A_IP, 5000)
    b.sendto(it.rtp_packet(1, 0, 0xB, b"hello-b" + b"\0" * 9), rb)
    it.wait_for(lambda: env.leg("s1", "b")["remote"], 3, "leg b to latch")
    it.expect_nothing(a, "A (its leg has no remote yet)", quiet=0.2)

    pk = stream(0xA, 5)
    it.send_paced(a, pk, ra)
    it.expect_stream(b, pk, rb, "A->B after latching")
    la = env.leg("s1", "a")
    it.check_eq((la["remote"], la["latched"]), (f"{it.A_IP}:4000", True),
                "leg a latched A's address from its first packet")

    # ---- strict source: another address ---------------------------------------
    x = env.udp(it.B_IP, 4000)  # same port, other address (198.18.0.3)
    w0 = env.total_drops().get("src_mismatch", 0)
    spoof = stream(0xBAD, 5, seq0=500)
    it.send_paced(x, spoof, ra)
    env.wait_drop("src_mismatch", w0 + 5)
    it.expect_nothing(b, "B while 198.18.0.3 sends to a's port")
    it.expect_nothing(x, "the spoofing source", quiet=0.1)
    la = env.leg("s1", "a")
    it.check_eq(la["drops"].get("src_mismatch", 0), 5, "leg a drops.src_mismatch")
    it.check_eq(la["in"]["packets"], 5, "leg a in.packets unchanged by spoofed packets")
    it.check_eq(la["remote"], f"{it.A_IP}:4000", "leg a remote unchanged")

    # ---- strict source: another port -------------------------------------------
    y = env.udp(it.A_IP, 4001)
    it.send_paced(y, stream(0xBAD, 3, seq0=600), ra)
    env.wait_drop("src_mismatch", w0 + 8)
    it.expect_nothing(b, "B while 198.18.0.2:4001 sends to a's port")
    it.check_eq(env.leg("s1", "a")["drops"].get("src_mismatch", 0), 8,
                "leg a drops.src_mismatch (other port)")

    # The real A still gets through.
    pk = stream(0xA, 2, seq0=10)
    it.send_paced(a, pk, ra)
    it.expect_stream(b, pk, rb, "A->B after the spoofing attempts")

    # ---- remote=none: latch again --------------------------------------------------
    p = env.ctl("leg", "update", "s1", "a", "remote=none")
    it.check_eq(p.returncode, 0, "isarctl leg update s1 a remote=none exit status")

    upd = json.loads(p.stdout)
    it.check_eq([l["remote"] for l in upd["legs"] if l["name"] == "a"], [None],
                "leg update answer: a has no remote")
    pk = stream(0xC, 3, seq0=700)
    it.send_paced(y, pk, ra)  # 198.18.0.2:4001 is now accepted and latched
    it.expect_stream(b, pk, rb, "new source (port 4001) -> B after remote=none")
    la = env.leg("s1", "a")
    it.check_eq((la["remote"], la["latched"]), (f"{it.A_IP}:4001", True), "leg a re-latched")
    # B's answer goes to the new remote, not the old one.
    pk = stream(0xB, 2, seq0=50)
    it.send_paced(b, pk, rb)
    it.expect_stream(y, pk, ra, "B -> the re-latched remote")
    it.expect_nothing(a, "the old remote of leg a", quiet=0.2)
    # ...and the old source is now the stranger.
    it.send_paced(a, stream(0xA, 2, seq0=20), ra)
    env.wait_drop("src_mismatch", w0 + 10)
    it.expect_nothing(b, "B while the old source sends")

    # ---- remote given at create ------------------------------------------------------
    c = env.udp(it.A_IP, 6000)   # never sends first
    d = env.udp(it.A_IP, 7000)
    locs2, r2 = env.create("s2", f"c,remote={it.A_IP}:6000", "d")
    rc, rd = locs2["c"], locs2["d"]
    it.check_eq([l["remote"] for l in r2["legs"]], [f"{it.A_IP}:6000", None],
                "create answer shows the configured remote")
    lc = env.leg("s2", "c")
    it.check_eq((lc["remote"], lc["latched"]), (f"{it.A_IP}:6000", False),
                "leg c: configured remote, not latched")
    pk = stream(0xD, 4)
    it.send_paced(d, pk, rd)
    it.expect_stream(c, pk, rc, "D -> C's configured remote before C ever sent")
    # The configured remote is the only source accepted on c's port.
    z = env.udp(it.A_IP, 6001)
    w1 = env.total_drops().get("src_mismatch", 0)
    it.send_paced(z, stream(0xBAD, 2), rc)
    env.wait_drop("src_mismatch", w1 + 2)
    it.expect_nothing(d, "D while a stranger sends to c's port")
    pk = stream(0xC, 3)
    it.send_paced(c, pk, rc)
    it.expect_stream(d, pk, rd, "C (configured remote) -> D")
    # Moving the configured remote.
    e = env.udp(it.A_IP, 6002)
    p = env.ctl("leg", "update", "s2", "c", f"remote={it.A_IP}:6002")
    it.check_eq(p.returncode, 0, "isarctl leg update s2 c remote=198.18.0.2:6002")
    it.check_eq(env.leg("s2", "c")["remote"], f"{it.A_IP}:6002", "leg c remote moved")
    pk = stream(0xD, 3, seq0=100)
    it.send_paced(d, pk, rd)
    it.expect_stream(e, pk, rc, "D -> the new remote of c")
    it.expect_nothing(c, "the old remote of c", quiet=0.2)

    # ---- errors leave things as they were --------------------------------------------
    p = env.ctl("leg", "update", "s2", "nosuch", "remote=none")
    it.check(p.returncode != 0 and "nosuch" in p.stderr, "leg update of an unknown leg fails")
    p = env.ctl("leg", "update", "s2", "c", "remote=198.18.0.2")
    it.check(p.returncode != 0 and "remote" in p.stderr, "leg update with a bad remote fails")
    it.check_eq(env.leg("s2", "c")["remote"], f"{it.A_IP}:6002", "leg c remote unchanged")

    env.final_checks()

    # ---- relay.strict_source = false: the latch follows the newest source -------
    env.strict_source = False
    env.start()
    locs, _ = env.create("loose", "a", "b")
    ra, rb = locs["a"], locs["b"]
    b.sendto(it.rtp_packet(1, 0, 0xB, b"\0" * 16), rb)
    it.wait_for(lambda: env.leg("loose", "b")["remote"], 3, "loose: leg b to latch")
    for src, port in ((a, 4000), (y, 4001)):
        pk = stream(0xE, 2, seq0=port)
        it.send_paced(src, pk, ra)
        it.expect_stream(b, pk, rb, f"strict_source=false: from port {port} -> B")
        it.check_eq(env.leg("loose", "a")["remote"], f"{it.A_IP}:{port}",
                    f"strict_source=false: leg a follows the source (port {port})")
    it.check_eq(env.total_drops().get("src_mismatch", 0), 0, "no src_mismatch drops")
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "latch"))
