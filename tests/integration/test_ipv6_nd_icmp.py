#!/usr/bin/env python3
"""Neighbor Discovery and ICMPv6 echo on the exception path (issue #11).
isard has 198.18.0.1/24 and 2001:2::1/64; the namespace 2001:2::2-4 (nodad).
An AF_PACKET socket in the namespace, open before isard starts, sees every
IPv6 frame on the veth.

- On start isard sends an unsolicited NA for 2001:2::1 to ff02::1
  (override flag, its MAC as target link-layer address, hop limit 255).
- ICMPv6 echo (raw socket, the kernel's checksum; `ping -6` too when
  installed) to 2001:2::1 is answered with the same id, sequence and
  payload (also 1200 bytes); before it the kernel resolved 2001:2::1 by
  itself: isard's NA (solicited flag, valid checksum, hop limit 255) is on
  the wire and `ip -6 neigh` shows isard's MAC.
- Hand-made NS for 2001:2::1 (multicast and unicast) are answered; NS for
  another address, with hop limit 254, or with a bad checksum are not; an
  echo request with a bad checksum is not answered; the checksum failures
  are counted.
- isard learns a neighbour from an NS's source link-layer option: a packet
  to it afterwards is not held.
- isard's own resolution: a remote that never answers -> its packets held
  (64 at most), 3 NS for it on the wire (to its solicited-node group), then
  dropped, no mbuf leak; an echo to an on-link address that is not isard's
  leaves the kernel's entry unresolved.
"""
import os
import shutil
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import icmp6_frames as nd  # noqa: E402

OTHER6 = "2001:2::77"    # on-link, nobody's
SILENT6 = "2001:2::99"   # a remote that never answers
FAKE_MAC = "02:00:00:00:c0:05"
FAKE6 = "2001:2::5"      # not configured anywhere


def flat(st):
    """stats' sections merged into one dict (ND counter names: H2's choice)."""
    out = {}
    for k, v in st.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                if not isinstance(v2, dict):
                    out.setdefault(k2, v2)
    return out


def echo_round(env, ic, ident, seq, payload, timeout=2):
    """Sends one echo request on the raw ICMPv6 socket; True when the reply
    (same id, seq, payload) came from 2001:2::1."""
    ic.sendto(struct.pack("!BBHHH", nd.ECHO_REQUEST, 0, 0, ident, seq) + payload,
              (it.RELAY_IP6, 0))
    deadline = time.monotonic() + timeout
    for _ in range(200):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ic.settimeout(left)
        try:
            pkt, addr = ic.recvfrom(4096)
        except socket.timeout:
            return False
        if len(pkt) >= 8 and pkt[0] == nd.ECHO_REPLY and addr[0] == it.RELAY_IP6:
            rid, rseq = struct.unpack("!HH", pkt[4:8])
            if (rid, rseq) == (ident, seq):
                if pkt[8:] != payload:
                    raise it.TestFailure(f"echo reply {seq}: payload differs")
                return True
    return False


def body(env):
    cap = env.ns_socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(nd.ETH_P_IPV6))
    cap.bind((env.peer_if, nd.ETH_P_IPV6))
    cap.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    env.start()
    imac = env.isard_mac

    # ---- unsolicited NA on start ----------------------------------------------
    # (read now, before anything else is sent; checked at the end, so that
    # a missing announcement does not hide the rest)
    un = nd.capture(cap, lambda d: d["type"] == nd.NA and d["eth_src"] == imac and
                    d["dst"] == "ff02::1", 3)

    # ---- the kernel resolves 2001:2::1 and pings it -----------------------------
    mac, _st, line = env.neigh(it.RELAY_IP6)
    it.check(mac is None, f"no neighbour entry for {it.RELAY_IP6} yet ({line!r})")
    st0 = flat(env.stats())  # counters checked at the end
    ic = env.ns_socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    ic.bind((it.A_IP6, 0, 0, 0))
    ident = os.getpid() & 0xFFFF
    n = 5
    answered = sum(echo_round(env, ic, ident, seq, bytes((seq + i) & 0xFF for i in range(56)))
                   for seq in range(1, n + 1))
    it.check_eq(answered, n, "ICMPv6 echo requests answered (same id, seq, payload)")
    it.check(echo_round(env, ic, ident, 77, os.urandom(1200)), "a 1200-byte echo answered")
    line = env.wait_neigh(it.RELAY_IP6, imac)
    it.log(f"ip -6 neigh: {line}")
    it.check(True, "the namespace kernel resolved 2001:2::1 to isard's MAC by ND")
    sol = nd.capture(cap, lambda d: d["type"] == nd.NA and d["eth_src"] == imac and
                     d["target"] == it.RELAY_IP6 and d["dst"] != "ff02::1", 2)
    it.check(len(sol) == 1, "isard's solicited NA to the kernel is on the wire")
    s = sol[0]
    it.check_eq((s["lladdr"], s["hop"], s["checksum_ok"], s["dst"], s["eth_dst"]),
                (imac, 255, True, it.A_IP6, env.peer_mac),
                "solicited NA: TLLA, hop limit 255, checksum, to the solicitor")
    it.check(s["flags"] & nd.NA_S and s["flags"] & nd.NA_O and not s["flags"] & nd.NA_R,
             f"solicited NA flags: S and O, not R ({s['flags']:#x})")
    if shutil.which("ping"):
        p = env.ns_run(["ping", "-6", "-c", "3", "-i", "0.2", "-W", "1", it.RELAY_IP6],
                       check_rc=False)
        it.check(p.returncode == 0 and " 0% packet loss" in p.stdout,
                 f"ping -6 {it.RELAY_IP6}: {p.stdout.strip().splitlines()[-2:]}")
    else:
        it.log("note: no ping installed (iputils-ping); the raw socket above is the check")

    # ---- hand-made NS -------------------------------------------------------------
    ps = env.ns_socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(nd.ETH_P_IPV6))
    ps.bind((env.peer_if, nd.ETH_P_IPV6))

    def na_for(target, dst, timeout):
        return nd.capture(cap, lambda d: d["type"] == nd.NA and d["eth_src"] == imac and
                          d["target"] == target and d["dst"] == dst, timeout)

    nd.capture(cap, lambda d: False, 0.2)  # forget what was seen so far
    ps.send(nd.neighbor_solicitation(env.peer_mac, it.A_IP6, it.RELAY_IP6))
    it.check(len(na_for(it.RELAY_IP6, it.A_IP6, 2)) == 1, "multicast NS for 2001:2::1 answered")
    ps.send(nd.neighbor_solicitation(env.peer_mac, it.A_IP6, it.RELAY_IP6,
                                     unicast_to=(imac, it.RELAY_IP6)))
    it.check(len(na_for(it.RELAY_IP6, it.A_IP6, 2)) == 1,
             "unicast NS (a NUD probe) for 2001:2::1 answered")
    # From an address of no one's (the kernel's own NUD probes cannot be
    # mistaken for answers to these).
    ps.send(nd.neighbor_solicitation(FAKE_MAC, FAKE6, OTHER6))
    ps.send(nd.neighbor_solicitation(FAKE_MAC, FAKE6, it.RELAY_IP6, hop=254))
    ps.send(nd.neighbor_solicitation(FAKE_MAC, FAKE6, it.RELAY_IP6, bad_checksum=True))
    ps.send(nd.echo_request(FAKE_MAC, imac, FAKE6, it.RELAY_IP6, ident, 99, b"x" * 32,
                            bad_checksum=True))
    got = nd.capture(cap, lambda d: d["eth_src"] == imac and d["dst"] == FAKE6, 1.0, first=False)
    it.check_eq(got, [], "no answer to NS for another address, NS with hop limit 254, NS or "
                "echo with a bad checksum")

    # ---- learning from an NS's source link-layer option --------------------------
    # 2001:2::4 asks for isard (SLLA = the veth's MAC, where C lives): isard
    # knows C afterwards, and a packet to C goes out without waiting.
    ps.send(nd.neighbor_solicitation(env.peer_mac, it.C_IP6, it.RELAY_IP6))
    it.check(len(na_for(it.RELAY_IP6, it.C_IP6, 2)) == 1, "NS from 2001:2::4 answered")
    c = env.udp6(it.C_IP6, 6000)
    a = env.udp6(it.A_IP6, 4000)
    locs, _ = env.create("learn", "a,family=6", f"c,remote=[{it.C_IP6}]:6000")
    ex0 = env.stats()["exception"]
    pk = it.make_stream(0xC, 3, 160)
    it.send_paced(a, pk, locs["a"])
    it.expect_stream(c, pk, locs["c"], "A->C (C learnt from its NS)")
    ex = env.stats()["exception"]
    it.check_eq(ex["held"] - ex0["held"], 0, "no packet held for 2001:2::4")
    asked = nd.capture(cap, lambda d: d["type"] == nd.NS and d["eth_src"] == imac and
                       d["target"] == it.C_IP6, 0.3, first=False)
    it.check_eq(len(asked), 0, "isard never sent an NS for 2001:2::4 (it knew it)")

    # ---- a remote that never answers ------------------------------------------------
    sn, sn_mac = nd.solicited_node(SILENT6)
    ex0 = env.stats()["exception"]
    locs, _ = env.create("unr", "a,family=6", f"b,remote=[{SILENT6}]:5000")
    src = env.udp6(it.A_IP6, 4100)
    it.send_paced(src, it.make_stream(0x99, 70, 160), locs["a"])

    def all_dropped():
        e = env.stats()["exception"]
        return e if e["held_dropped"] - ex0["held_dropped"] >= 70 else None
    ex = it.wait_for(all_dropped, 8, "the 70 held packets to be dropped")
    it.check_eq(ex["held"] - ex0["held"], 64, f"64 packets were held for {SILENT6} (the cap)")
    it.check_eq(ex["held_sent"] - ex0["held_sent"], 0, "none was sent")
    ns = nd.capture(cap, lambda d: d["type"] == nd.NS and d["eth_src"] == imac and
                    d["target"] == SILENT6, 0.5, first=False)
    it.check_eq(len(ns), 3, f"isard sent 3 NS for {SILENT6}")
    it.check(all(d["dst"] == sn and d["eth_dst"] == sn_mac and d["hop"] == 255 and
                 d["checksum_ok"] and d["lladdr"] == imac for d in ns),
             f"each NS to {sn} ({sn_mac}), hop limit 255, valid checksum, SLLA isard's MAC")
    env.check_health()

    # ---- the kernel asking for an address nobody has ----------------------------------
    ic.sendto(struct.pack("!BBHHH", nd.ECHO_REQUEST, 0, 0, ident, 500) + b"y" * 8,
              (OTHER6, 0))
    time.sleep(1.5)
    mac, state, line = env.neigh(OTHER6)
    it.check(mac != imac, f"{OTHER6} not resolved to isard's MAC ({line!r})")

    # ---- isard's ND / ICMPv6 counters over the whole test ------------------------------
    # (nd6's neighbor_manager counters, shown by `isarctl stats`)
    st1 = flat(env.stats())
    want = {"icmp6_echo_replies": n + 1,   # 5 + the 1200-byte one
            "nd_ns_answered": 4,           # kernel's NS, multicast, unicast, from 2001:2::4
            "nd_bad": 2,                   # NS with hop limit 254, NS with a bad checksum
            "icmp6_bad": 1,                # echo with a bad checksum
            "nd_ns_sent": 3,               # for 2001:2::99
            "nd_learned": 2}               # 2001:2::2 (kernel's NS), 2001:2::4 (its NS)
    missing = [k for k in list(want) + ["nd_na_unsolicited"] if k not in st1]
    it.check(not missing, f"stats has the ND/ICMPv6 counters (missing: {missing})")
    got = {k: st1[k] - st0.get(k, 0) for k in want}
    it.check(all(got[k] >= v for k, v in want.items()),
             f"ND/ICMPv6 counters grew at least by {want}: {got}")
    it.check(st1["nd_na_unsolicited"] >= 1, "nd_na_unsolicited counted the announcement")

    # ---- the unsolicited NA read at the start ---------------------------------------
    it.check(len(un) == 1, "isard announced 2001:2::1 with an unsolicited NA to ff02::1")
    u = un[0]
    it.check_eq((u["target"], u["lladdr"], u["hop"], u["checksum_ok"], u["eth_dst"]),
                (it.RELAY_IP6, imac, 255, True, "33:33:00:00:00:01"),
                "unsolicited NA: target, TLLA, hop limit, checksum, Ethernet destination")
    it.check(u["flags"] & nd.NA_O and not u["flags"] & nd.NA_S,
             f"unsolicited NA flags: override, not solicited ({u['flags']:#x})")
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "ipv6_nd_icmp",
                     addresses=[f"{it.RELAY_IP}/24", f"{it.RELAY_IP6}/64"],
                     ns_ip6=(it.A_IP6, it.B_IP6, it.C_IP6)))
