#!/usr/bin/env python3
"""A live two-party call through isard with kernel UDP sockets as endpoints.

A (198.18.0.2:4000) and B (198.18.0.3:5000) live in the namespace. After
`isarctl session create call --leg a --leg b` each sends RTP to its leg's relay
port; A's stream arrives at B from 198.18.0.1:<b's port> and B's at A from
198.18.0.1:<a's port>, byte for byte and in order. Then the per-leg counters of
`isarctl --json session show`, `session list` and `isarctl stats` must match
exactly what was sent, and the human output of both must be printable.
RTCP and a near-MTU (1500-byte IP) RTP packet are relayed too; STUN and DTLS
go to the exception path; non-RTP, empty, too-short and fragmented datagrams
are dropped with their counted reasons and never reach B.
"""
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402

N = 250        # packets per direction (5 s of 20 ms G.711 would be 250)
PAYLOAD = 160  # G.711 20 ms
ETH_IP_UDP = 14 + 20 + 8  # leg byte counters count whole frames


def frame_bytes(pkts):
    return sum(len(p) + ETH_IP_UDP for p in pkts)


def body(env):
    env.start()
    a = env.udp(it.A_IP, 4000)
    b = env.udp(it.B_IP, 5000)

    locs, r = env.create("call", "a", "b")
    it.check_eq(r["session"], "call", "create answer: session id")
    it.check_eq([l["name"] for l in r["legs"]], ["a", "b"], "create answer: leg names")
    for l in r["legs"]:
        ip, port = l["local"].rsplit(":", 1)
        it.check(ip == it.RELAY_IP and env.port_min <= int(port) <= env.port_max,
                 f"leg {l['name']} local {l['local']} is the relay address + a pool port")
        it.check_eq(l["remote"], None, f"leg {l['name']} has no remote yet")
    it.check(locs["a"] != locs["b"], "legs got different relay ports")
    relay_a, relay_b = locs["a"], locs["b"]

    # B speaks first: latches b; a has no remote yet -> target_no_remote.
    hello_b = it.rtp_packet(1, 0, 0xB0B, b"\x01" * PAYLOAD)
    b.sendto(hello_b, relay_b)
    it.wait_for(lambda: env.leg("call", "b")["remote"], 3, "leg b to latch")
    it.check_eq(env.leg("call", "b")["remote"], f"{it.B_IP}:5000", "leg b latched B's address")
    it.expect_nothing(a, "A before it latched", quiet=0.2)

    # A -> relay -> B
    sa = it.make_stream(0xA11CE, N, PAYLOAD, seq0=100)
    it.send_paced(a, sa, relay_a)
    it.expect_stream(b, sa, relay_b, "A->B")

    # B -> relay -> A. isard has not seen A's address in an ARP exchange (the
    # namespace kernel resolved 198.18.0.1 once, from B's address), so the
    # first packet towards A waits on the control lcore for isard's ARP
    # request to be answered ("held"), and control sends it.
    sb = it.make_stream(0xB0B, N, PAYLOAD, seq0=2)
    b.sendto(sb[0], relay_b)
    it.expect_stream(a, sb[:1], relay_a, "B->A first packet (held for ARP)")
    it.send_paced(b, sb[1:], relay_b)
    it.expect_stream(a, sb[1:], relay_a, "B->A")
    it.expect_nothing(b, "B (no echo of its own stream)", quiet=0.2)

    # ---- counters ----------------------------------------------------------
    want = {
        "a": {"in": (N, frame_bytes(sa)), "out": (N, frame_bytes(sb))},
        "b": {"in": (N + 1, frame_bytes([hello_b] + sb)), "out": (N, frame_bytes(sa))},
    }

    def counters_match():
        s = env.show("call")
        return s if all(
            (l["in"]["packets"], l["in"]["bytes"]) == want[l["name"]]["in"] and
            (l["out"]["packets"], l["out"]["bytes"]) == want[l["name"]]["out"]
            for l in s["legs"]) else None
    try:
        s = it.wait_for(counters_match, 3, "session counters to match")
    except it.TestFailure:
        raise it.TestFailure(f"session counters differ: want {want}, got {env.show('call')}")
    for l in s["legs"]:
        it.check_eq((l["in"]["packets"], l["in"]["bytes"], l["out"]["packets"],
                     l["out"]["bytes"]),
                    want[l["name"]]["in"] + want[l["name"]]["out"],
                    f"leg {l['name']} in/out packets and bytes")
    la, lb = s["legs"]
    it.check_eq(s["state"], "active", "session state")
    it.check_eq((la["remote"], la["latched"]), (f"{it.A_IP}:4000", True), "leg a remote")
    it.check_eq((lb["remote"], lb["latched"]), (f"{it.B_IP}:5000", True), "leg b remote")
    it.check_eq((la["targets"], lb["targets"]), (["b"], ["a"]), "default targets")
    # B's hello could not go to a (no remote yet): counted on the target leg.
    it.check_eq(la["drops"], {"target_no_remote": 1}, "leg a drops (B's hello)")
    it.check_eq(lb["drops"], {}, "leg b drops")
    it.check(s["idle_s"] < 5 and s["age_s"] >= s["idle_s"], "age_s/idle_s plausible")

    lst = env.ctl_json("session", "list")["sessions"]
    it.check_eq([(x["session"], x["legs"], x["packets"]) for x in lst],
                [("call", 2, 2 * N + 1)], "session list: id, legs, packets")

    st = env.stats()
    it.check_eq(len(st["workers"]), 1, "stats: one worker")
    t = st["total"]
    it.check_eq(t["fwd_pkts"], 2 * N, "stats total.fwd_pkts")
    ex = st["exception"]
    it.check_eq((ex["held"], ex["held_sent"], ex["held_dropped"]), (1, 1, 0),
                "stats exception held/held_sent/held_dropped")
    it.check_eq(t["held_pkts"], 1, "stats total.held_pkts")
    it.check_eq(ex["arp_requests"], 2, "ARP requests sent by isard (gratuitous + for A)")
    # Workers transmit what they forward except the held packets (control does).
    it.check_eq(t["tx_pkts"] + ex["held_sent"], 2 * N, "stats total.tx_pkts + held_sent")
    it.check(t["rx_pkts"] >= 2 * N + 1, "stats total.rx_pkts >= UDP packets sent")
    it.check_eq(t["drops"].get("target_no_remote", 0), 1, "stats drops.target_no_remote")
    it.check_eq(t["drops"].get("tx_full", 0), 0, "stats drops.tx_full")
    it.check_eq(st["sessions"]["active"], 1, "stats sessions.active")
    it.check_eq(st["sessions"]["legs"], 2, "stats sessions.legs")
    it.check_eq(st["sessions"]["created"], 1, "stats sessions.created")

    # ---- human output ------------------------------------------------------
    p = env.ctl("session", "show", "call", as_json=False)
    it.check(p.returncode == 0 and "(latched)" in p.stdout and f"{it.A_IP}:4000" in p.stdout,
             "isarctl session show (text) lists the latched remotes")
    print(p.stdout, end="")
    p = env.ctl("stats", as_json=False)
    it.check(p.returncode == 0 and "mbufs in use" in p.stdout and "total" in p.stdout,
             "isarctl stats (text)")
    print(p.stdout, end="")
    p = env.ctl("session", "list", as_json=False)
    it.check(p.returncode == 0 and "call" in p.stdout, "isarctl session list (text)")

    # ---- what else reaches a leg's port ------------------------------------
    # RTCP (first byte 128-191 too) and a near-MTU RTP packet are relayed.
    rtcp_sr = bytes([0x80, 200]) + (6).to_bytes(2, "big") + (0xA11CE).to_bytes(4, "big") + \
        bytes(20)
    big = it.rtp_packet(9999, 0, 0xA11CE, bytes(range(256)) * 5 + bytes(180))  # 1472 bytes
    it.check_eq(len(big), 1472, "near-MTU RTP packet size (1500-byte IP datagram)")
    for p in (rtcp_sr, big):
        a.sendto(p, relay_a)
        it.expect_stream(b, [p], relay_b, f"A->B {'RTCP SR' if p is rtcp_sr else '1472-byte RTP'}")
    # Not relayed (RFC 7983 demultiplexing and sanity checks), each counted.
    d0, e0 = env.total_drops(), env.stats()["exception"]
    stun = (1).to_bytes(2, "big") + (0).to_bytes(2, "big") + (0x2112A442).to_bytes(4, "big") + \
        bytes(12)
    dtls = bytes([22, 0xFE, 0xFD]) + bytes(20)
    for p in (stun, dtls, b"hello, not RTP", b"\x80\x00\x00\x01", b""):
        a.sendto(p, relay_a)
    a.sendto(it.rtp_packet(1, 0, 0xA11CE, bytes(3000)), relay_a)  # IP fragments
    it.wait_for(lambda: env.stats()["exception"]["stun"] >= e0["stun"] + 1 and
                env.stats()["exception"]["dtls"] >= e0["dtls"] + 1, 3,
                "STUN and DTLS to reach the exception path")
    it.check(True, "STUN and DTLS go to the exception path (stats exception.stun/dtls)")

    def grew(d, k):
        return d.get(k, 0) - d0.get(k, 0)

    def dropped():
        # The 3 kB datagram: IP fragments (ip_fragment), or, when the veth
        # hands af_packet one oversized frame that its 2 kB ring slot
        # truncates, a truncated IP packet (bad_ip). Either way: dropped.
        d = env.total_drops()
        return d if (grew(d, "not_rtp") == 2 and grew(d, "rtp_short") == 1 and
                     grew(d, "ip_fragment") + grew(d, "bad_ip") >= 1) else None
    d = it.wait_for(dropped, 3, "drops not_rtp +2, rtp_short +1, ip_fragment/bad_ip +1")
    it.check(True, "non-RTP and empty payloads: not_rtp; 4-byte RTP: rtp_short; a 3 kB "
             f"datagram: ip_fragment +{grew(d, 'ip_fragment')}, bad_ip +{grew(d, 'bad_ip')}")
    it.expect_nothing(b, "B while A sent STUN, DTLS, junk, short and fragmented packets")
    env.check_health()

    p = env.ctl("session", "delete", "call", as_json=False)
    it.check(p.returncode == 0 and "deleted call" in p.stdout, "isarctl session delete")
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "call"))
