#!/usr/bin/env python3
"""A v4<->v6 bridged call through isard (issue #11): A is an IPv4 endpoint
(198.18.0.2:4000), B an IPv6 one ([2001:2::3]:5000); the session has leg a
(IPv4, latching) and leg b (`family=6`, latching), so isard rewrites every
packet between the families (20 bytes more or less of IP header, a new
UDP checksum over the other pseudo-header).

- 200 RTP packets each way, payloads byte for byte, in order, each from the
  relay's leg address of the receiver's family (198.18.0.1:PORT at A,
  [2001:2::1]:PORT at B); the namespace kernel verifies every UDP checksum
  (a bad one is a missing datagram, counted in its Udp6/Udp InCsumErrors,
  which the test reads too).
- An IPv4 datagram sent without a UDP checksum (SO_NO_CHECK, allowed in
  IPv4) still reaches B with a valid one (IPv6 forbids 0).
- UDP payloads of 20..1452 bytes, the last one of each stream 1452 (a
  1480-byte IPv4 packet becomes a 1500-byte IPv6 one: the veth's MTU).
- Exact per-leg packet counters; out bytes are whole frames of one family
  or the other (what the dataplane counts is its choice) and are checked
  for both.
- A 3-leg session x (IPv4), y (IPv6), z (IPv4), remotes given at create:
  x's packets reach y and z at once, y's reach x and z, each intact.
"""
import os
import socket
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402

N = 200
PAYLOAD = 160
V4 = 14 + 20 + 8
V6 = 14 + 40 + 8
SO_NO_CHECK = 11


def sizes(n, lo, hi):
    """n payload sizes in [lo, hi], the last one hi."""
    return [lo + (i * 37) % (hi - lo + 1) for i in range(n - 1)] + [hi]


def stream(ssrc, sz, seq0):
    out = []
    for i, n in enumerate(sz):
        body = bytes((ssrc + i + k) & 0xFF for k in range(n - 12))
        out.append(it.rtp_packet(seq0 + i, 160 * i, ssrc, body))
    return out


def csum_errors(env):
    """The namespace kernel's UDP/UDP6 checksum error counters."""
    out = {}
    for path, key in (("/proc/net/snmp", "Udp:"), ("/proc/net/snmp6", "Udp6InCsumErrors")):
        txt = env.ns_run(["cat", path]).stdout
        if key == "Udp:":
            rows = [l.split() for l in txt.splitlines() if l.startswith("Udp:")]
            if len(rows) >= 2 and "InCsumErrors" in rows[0]:
                out["udp4"] = int(rows[1][rows[0].index("InCsumErrors")])
        else:
            for l in txt.splitlines():
                if l.startswith(key):
                    out["udp6"] = int(l.split()[1])
    return out


def body(env):
    env.start()
    a = env.udp(it.A_IP, 4000)
    b = env.udp6(it.B_IP6, 5000)
    cs0 = csum_errors(env)

    locs, r = env.create("br", "a", "b,family=6")
    fam = {l["name"]: l.get("family") for l in env.show("br")["legs"]}
    it.check_eq(fam, {"a": 4, "b": 6}, "legs' family")
    relay_a, relay_b = locs["a"], locs["b"]
    it.check_eq((relay_a[0], relay_b[0]), (it.RELAY_IP, it.RELAY_IP6),
                "leg a local is IPv4, leg b local IPv6")

    # B first (latches b; a has no remote: target_no_remote), then A.
    hello_b = it.rtp_packet(1, 0, 0xB0B, b"\x01" * PAYLOAD)
    b.sendto(hello_b, relay_b)
    it.wait_for(lambda: env.leg("br", "b")["remote"], 3, "leg b to latch")
    it.check_eq(env.leg("br", "b")["remote"], f"[{it.B_IP6}]:5000", "leg b latched B (IPv6)")

    sa = stream(0xA11CE, sizes(N, 20, 1452), 100)   # v4 -> v6: + 20 bytes of header
    it.send_paced(a, sa, relay_a)
    it.expect_stream(b, sa, relay_b, "A (IPv4) -> B (IPv6)")
    it.check_eq(env.leg("br", "a")["remote"], f"{it.A_IP}:4000", "leg a latched A (IPv4)")

    sb = stream(0xB0B, sizes(N, 20, 1452), 2)       # v6 -> v4
    it.send_paced(b, sb, relay_b)
    it.expect_stream(a, sb, relay_a, "B (IPv6) -> A (IPv4)")

    # An IPv4 datagram without a UDP checksum gets one as IPv6.
    nock = env.udp(it.A_IP, 4001)
    nock.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
    p = env.ctl("leg", "update", "br", "a", "remote=none")
    it.check_eq(p.returncode, 0, "leg update a remote=none (latch A's second port)")
    z = it.rtp_packet(7, 0, 0xA11CE, b"\x07" * 100)
    nock.sendto(z, relay_a)
    it.expect_stream(b, [z], relay_b, "A's checksum-less IPv4 datagram -> B (IPv6)")

    cs1 = csum_errors(env)
    it.check_eq(cs1, cs0, "namespace kernel: no UDP/UDP6 checksum errors (InCsumErrors)")

    # ---- counters ----------------------------------------------------------
    s = it.wait_for(lambda: (lambda s: s if s["legs"][1]["out"]["packets"] == N + 1 else None)(
        env.show("br")), 3, "counters to settle")
    la, lb = s["legs"]
    it.check_eq((la["in"]["packets"], la["out"]["packets"], lb["in"]["packets"],
                 lb["out"]["packets"]), (N + 1, N, N + 1, N + 1), "per-leg packets")
    it.check_eq(la["in"]["bytes"], sum(len(p) + V4 for p in sa + [z]), "leg a in bytes (IPv4)")
    it.check_eq(lb["in"]["bytes"], sum(len(p) + V6 for p in [hello_b] + sb),
                "leg b in bytes (IPv6)")
    out_a = {"as sent (IPv4)": sum(len(p) + V4 for p in sb),
             "as received (IPv6)": sum(len(p) + V6 for p in sb)}
    it.check(la["out"]["bytes"] in out_a.values(),
             f"leg a out bytes {la['out']['bytes']} are the frames {out_a}")
    out_b = {"as sent (IPv6)": sum(len(p) + V6 for p in sa + [z]),
             "as received (IPv4)": sum(len(p) + V4 for p in sa + [z])}
    it.check(lb["out"]["bytes"] in out_b.values(),
             f"leg b out bytes {lb['out']['bytes']} are the frames {out_b}")
    it.check_eq(la["drops"], {"target_no_remote": 1}, "leg a drops (B's hello)")
    it.check_eq(lb["drops"], {}, "leg b drops")
    d = env.total_drops()
    it.check(d.get("mtu_exceeded", 0) == 0 and d.get("src_mismatch", 0) == 0,
             f"no mtu_exceeded / src_mismatch drops: {d}")

    # ---- 3 legs, both families at once -------------------------------------
    c = env.udp(it.C_IP, 6000)
    b2 = env.udp6(it.B_IP6, 5002)
    locs3, _ = env.create("br3", f"x,remote={it.A_IP}:4002", f"y,remote=[{it.B_IP6}]:5002",
                          f"z,remote={it.C_IP}:6000")
    x = env.udp(it.A_IP, 4002)
    pk = stream(0x3, sizes(20, 40, 1000), 1)
    it.send_paced(x, pk, locs3["x"])
    it.expect_stream(b2, pk, locs3["y"], "x (IPv4) -> y (IPv6)")
    it.expect_stream(c, pk, locs3["z"], "x (IPv4) -> z (IPv4), same packets")
    pk6 = stream(0x6, sizes(20, 40, 1000), 1)
    it.send_paced(b2, pk6, locs3["y"])
    it.expect_stream(x, pk6, locs3["x"], "y (IPv6) -> x (IPv4)")
    it.expect_stream(c, pk6, locs3["z"], "y (IPv6) -> z (IPv4)")
    it.check_eq(csum_errors(env), cs0, "still no checksum errors in the namespace kernel")
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "ipv6_bridge",
                     addresses=[f"{it.RELAY_IP}/24", f"{it.RELAY_IP6}/64"],
                     ns_ip6=(it.A_IP6, it.B_IP6, it.C_IP6)))
