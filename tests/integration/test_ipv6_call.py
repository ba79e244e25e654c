#!/usr/bin/env python3
"""An IPv6 call through isard (issue #11): kernel UDP sockets at 2001:2::2
(A) and 2001:2::3 (B) in the namespace, isard at 198.18.0.1/24 and
2001:2::1/64 on the veth (`address = [...]`, a list of both families).

- Legs a and b are created with `family=6` (no remote); both get `local`
  [2001:2::1]:PORT and `family` 6 in `session show`; each latches its
  endpoint's first packet.
- Neither side has a static neighbour entry: the namespace kernel resolves
  2001:2::1 with Neighbor Discovery when B first sends (`ip -6 neigh` shows
  isard's MAC; its NS taught isard B's MAC), and isard resolves 2001:2::2
  with its own NS: B's first packet towards A is held (exception.held /
  held_sent = 1) until the kernel's NA comes back.
- 200 RTP packets each way, intact, in order, from the relay's leg ports;
  the hop limit of what isard sends is 64; a 1452-byte payload (a
  1500-byte IPv6 packet) is relayed too; exact per-leg packet and byte
  counters (whole frames: 14 + 40 + 8 bytes of headers).
- `leg update remote=[...]` moves the remote; an IPv4 remote on a v6 leg is
  refused and changes nothing.
- UDP over IPv6 with checksum 0 (UDP_NO_CHECK6_TX) is dropped as
  bad_udp_zero_cksum, a fragmented datagram as ip_fragment (or bad_ip6
  when af_packet's ring slot truncates the frame), a packet to a port
  without a leg as no_flow; none of them reaches B.
"""
import os
import socket
import struct
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402

N = 200
PAYLOAD = 160
ETH_IP6_UDP = 14 + 40 + 8
UDP_NO_CHECK6_TX = 101  # linux/udp.h


def frame_bytes(pkts):
    return sum(len(p) + ETH_IP6_UDP for p in pkts)


def recv_hop_limit(sock, timeout=3):
    """One datagram with its IPv6 hop limit (IPV6_RECVHOPLIMIT)."""
    sock.settimeout(timeout)
    data, anc, _flags, addr = sock.recvmsg(65535, socket.CMSG_SPACE(4))
    hl = None
    for level, typ, val in anc:
        if level == socket.IPPROTO_IPV6 and typ == socket.IPV6_HOPLIMIT:
            hl = struct.unpack("i", val[:4])[0]
    return data, addr[:2], hl


def body(env):
    env.start()
    mac, _st, line = env.neigh(it.RELAY_IP6)
    it.check(mac is None, f"no neighbour entry for {it.RELAY_IP6} before the call ({line!r})")
    a = env.udp6(it.A_IP6, 4000)
    b = env.udp6(it.B_IP6, 5000)
    ne0 = env.neighbor_entries(required=False)  # checked after the call

    locs, r = env.create("call6", "a,family=6", "b,family=6")
    for l in r["legs"]:
        ip, port = it.split_ep(l["local"])
        it.check(ip == it.RELAY_IP6 and env.port_min <= port <= env.port_max,
                 f"leg {l['name']} local {l['local']} is [{it.RELAY_IP6}] + a pool port")
    it.check(l["local"].startswith("["), "an IPv6 local endpoint is printed as [addr]:port")
    relay_a, relay_b = locs["a"], locs["b"]
    s = env.show("call6")
    it.check_eq([l.get("family") for l in s["legs"]], [6, 6], "session show: legs' family")
    it.check_eq([l["remote"] for l in s["legs"]], [None, None], "session show: no remotes yet")

    # B speaks first: latches b; a has no remote yet -> target_no_remote.
    ex0 = env.stats()["exception"]
    hello_b = it.rtp_packet(1, 0, 0xB0B, b"\x01" * PAYLOAD)
    b.sendto(hello_b, relay_b)
    it.wait_for(lambda: env.leg("call6", "b")["remote"], 3, "leg b to latch")
    it.check_eq(env.leg("call6", "b")["remote"], f"[{it.B_IP6}]:5000", "leg b latched B")
    line = env.wait_neigh(it.RELAY_IP6, env.isard_mac)
    it.log(f"ip -6 neigh in the namespace: {line}")
    it.check(True, f"the namespace kernel resolved {it.RELAY_IP6} to isard's MAC by ND")
    it.expect_nothing(a, "A before it latched", quiet=0.2)

    # A -> relay -> B (the first one with its hop limit)
    a.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 7)
    b.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    sa = it.make_stream(0xA11CE, N, PAYLOAD, seq0=100)
    a.sendto(sa[0], relay_a)
    data, src, hl = recv_hop_limit(b)
    it.check(data == sa[0] and src == relay_b, "A->B first packet intact, from b's relay port")
    it.check_eq(hl, 64, "hop limit of the packet isard sent (A sent it with 7)")
    it.send_paced(a, sa[1:], relay_a)
    it.expect_stream(b, sa[1:], relay_b, "A->B")

    # B -> relay -> A. isard has not seen A's address in an ND exchange (the
    # kernel resolved 2001:2::1 once, from B's address), so the first packet
    # towards A waits on the control lcore for isard's NS to be answered.
    sb = it.make_stream(0xB0B, N, PAYLOAD, seq0=2)
    b.sendto(sb[0], relay_b)
    it.expect_stream(a, sb[:1], relay_a, "B->A first packet (held for ND)")
    ex = env.stats()["exception"]
    it.check_eq((ex["held"] - ex0["held"], ex["held_sent"] - ex0["held_sent"],
                 ex["held_dropped"] - ex0["held_dropped"]), (1, 1, 0),
                "exception held/held_sent/held_dropped (B's first packet to A waited for ND)")
    it.send_paced(b, sb[1:], relay_b)
    it.expect_stream(a, sb[1:], relay_a, "B->A")
    ne = env.neighbor_entries()
    it.check(ne0 is not None and ne >= ne0 + 2,
             f"isard's neighbour tables learnt A and B ({ne0} -> {ne} entries)")
    it.expect_nothing(b, "B (no echo of its own stream)", quiet=0.2)

    # ---- counters ----------------------------------------------------------
    want = {
        "a": {"in": (N, frame_bytes(sa)), "out": (N, frame_bytes(sb))},
        "b": {"in": (N + 1, frame_bytes([hello_b] + sb)), "out": (N, frame_bytes(sa))},
    }

    def counters_match():
        s = env.show("call6")
        return s if all(
            (l["in"]["packets"], l["in"]["bytes"]) == want[l["name"]]["in"] and
            (l["out"]["packets"], l["out"]["bytes"]) == want[l["name"]]["out"]
            for l in s["legs"]) else None
    try:
        s = it.wait_for(counters_match, 3, "session counters to match")
    except it.TestFailure:
        raise it.TestFailure(f"session counters differ: want {want}, got {env.show('call6')}")
    it.check(True, f"per-leg packets and bytes exact: {want}")
    la, lb = s["legs"]
    it.check_eq((la["remote"], la["latched"], lb["remote"], lb["latched"]),
                (f"[{it.A_IP6}]:4000", True, f"[{it.B_IP6}]:5000", True), "latched remotes")
    it.check_eq((la["drops"], lb["drops"]), ({"target_no_remote": 1}, {}),
                "per-leg drops (B's hello)")
    st = env.stats()
    it.check_eq(st["total"]["fwd_pkts"], 2 * N, "stats total.fwd_pkts")
    it.check_eq(st["total"]["drops"].get("src_mismatch", 0), 0, "no src_mismatch")

    p = env.ctl("session", "show", "call6", as_json=False)
    it.check(p.returncode == 0 and f"[{it.A_IP6}]:4000" in p.stdout and
             f"[{it.RELAY_IP6}]:" in p.stdout, "isarctl session show (text) prints [v6]:port")
    print(p.stdout, end="")

    # ---- a 1500-byte IPv6 packet -----------------------------------------
    big = it.rtp_packet(9999, 0, 0xA11CE, bytes(range(256)) * 5 + bytes(160))
    it.check_eq(len(big), 1452, "near-MTU RTP payload (1500-byte IPv6 packet)")
    a.sendto(big, relay_a)
    it.expect_stream(b, [big], relay_b, "A->B 1452-byte RTP over IPv6")

    # ---- leg update: move, and refuse a family change -----------------------
    a2 = env.udp6(it.A_IP6, 4002)
    p = env.ctl("leg", "update", "call6", "a", f"remote=[{it.A_IP6}]:4002")
    it.check_eq(p.returncode, 0, f"leg update remote=[{it.A_IP6}]:4002 ({p.stderr.strip()})")
    pk = it.make_stream(0xB0B, 5, PAYLOAD, seq0=500)
    it.send_paced(b, pk, relay_b)
    it.expect_stream(a2, pk, relay_a, "B->A at the updated remote port 4002")
    it.expect_nothing(a, "A's old port after the update", quiet=0.2)
    p = env.ctl("leg", "update", "call6", "a", f"remote={it.A_IP}:4000")
    it.check(p.returncode != 0 and p.stderr.strip(),
             f"an IPv4 remote on an IPv6 leg is refused: {p.stderr.strip()!r}")
    it.check_eq(env.leg("call6", "a")["remote"], f"[{it.A_IP6}]:4002",
                "leg a's remote unchanged by the refused update")

    # ---- what isard must not relay -----------------------------------------
    d0 = env.total_drops()
    z = env.udp6(it.B_IP6, 5100)
    z.setsockopt(socket.IPPROTO_UDP, UDP_NO_CHECK6_TX, 1)
    # Not from b's latched 5000: strict source would hide it; the zero sum
    # must be refused before any flow lookup.
    z.sendto(it.rtp_packet(1, 0, 0xB0B, b"\x02" * PAYLOAD), relay_b)
    b.sendto(it.rtp_packet(2, 0, 0xB0B, bytes(3000)), relay_b)   # IPv6 fragments
    b.sendto(it.rtp_packet(3, 0, 0xB0B, b"\x03" * 20), (it.RELAY_IP6, env.port_max))

    def grew(d, k):
        return d.get(k, 0) - d0.get(k, 0)

    def dropped():
        d = env.total_drops()
        return d if (grew(d, "bad_udp_zero_cksum") == 1 and grew(d, "no_flow") >= 1 and
                     grew(d, "ip_fragment") + grew(d, "bad_ip6") >= 1) else None
    try:
        d = it.wait_for(dropped, 3, "bad_udp_zero_cksum +1, no_flow +1, ip_fragment/bad_ip6")
    except it.TestFailure:
        d = env.total_drops()
        raise it.TestFailure(f"drops grew by { {k: grew(d, k) for k in d if grew(d, k)} }")
    it.check(True, f"zero UDP checksum, IPv6 fragments (ip_fragment +{grew(d, 'ip_fragment')}, "
             f"bad_ip6 +{grew(d, 'bad_ip6')}) and no_flow dropped and counted")
    it.expect_nothing(a2, "A while B sent what must be dropped")
    env.check_health()
    p = env.ctl("session", "delete", "call6", as_json=False)
    it.check(p.returncode == 0, "isarctl session delete")
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "ipv6_call",
                     addresses=[f"{it.RELAY_IP}/24", f"{it.RELAY_IP6}/64"],
                     ns_ip6=(it.A_IP6, it.B_IP6, it.C_IP6)))
