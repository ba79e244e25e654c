#!/usr/bin/env python3
"""ARP and ICMP on the exception path.

- A raw ARP request (AF_PACKET in the namespace) for 198.18.0.1 gets a reply
  from isard's MAC; a request for another address gets none.
- The namespace kernel resolves 198.18.0.1 by itself: after traffic, `ip neigh`
  shows isard's MAC as REACHABLE (or STALE/DELAY).
- ICMP echo requests to 198.18.0.1 (raw socket) are answered with the same id,
  sequence and payload; one with a bad ICMP checksum is not (icmp_other).
- isard's own ARP: packets for a remote that never answers are held (at most
  64), asked for 3 times, then dropped, with no mbuf leak; a remote off the
  interface's prefix without a gateway is dropped as no_route.
"""
import os
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402

ETH_P_ARP = 0x0806


def mac_bytes(m):
    return bytes(int(x, 16) for x in m.split(":"))


def mac_str(b):
    return ":".join(f"{x:02x}" for x in b)


def arp_request(src_mac, src_ip, target_ip):
    eth = b"\xff" * 6 + mac_bytes(src_mac) + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac_bytes(src_mac),
                      socket.inet_aton(src_ip), b"\0" * 6, socket.inet_aton(target_ip))
    return eth + arp


def parse_arp(frame):
    if len(frame) < 42 or struct.unpack("!H", frame[12:14])[0] != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = struct.unpack(
        "!HHBBH6s4s6s4s", frame[14:42])
    return {"eth_dst": mac_str(frame[0:6]), "eth_src": mac_str(frame[6:12]), "op": op,
            "sha": mac_str(sha), "spa": socket.inet_ntoa(spa), "tha": mac_str(tha),
            "tpa": socket.inet_ntoa(tpa), "htype": htype, "ptype": ptype}


def arp_replies(sock, spa, timeout, first=True):
    """ARP replies whose sender address is `spa`, read for at most `timeout`
    s (returns at the first one when `first`)."""
    out = []
    deadline = time.monotonic() + timeout
    for _ in range(1000):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            frame = sock.recv(2048)
        except socket.timeout:
            break
        a = parse_arp(frame)
        if a and a["op"] == 2 and a["spa"] == spa:
            out.append(a)
            if first:
                break
    return out


def icmp_echo(ident, seq, payload, bad_checksum=False):
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    csum = it.icmp_checksum(hdr + payload)
    if bad_checksum:
        csum ^= 0x5A5A
    return struct.pack("!BBHHH", 8, 0, csum, ident, seq) + payload


def body(env):
    env.start()

    # ---- raw ARP request --------------------------------------------------
    ps = env.ns_socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    ps.bind((env.peer_if, ETH_P_ARP))
    before = env.stats()["exception"]
    ps.send(arp_request(env.peer_mac, it.A_IP, it.RELAY_IP))
    rep = arp_replies(ps, it.RELAY_IP, 3)
    it.check(len(rep) >= 1, "raw ARP request for 198.18.0.1 got a reply")
    r = rep[0]
    it.check_eq(r["sha"], env.isard_mac, "ARP reply sender MAC (isard's port MAC)")
    it.check_eq(r["eth_src"], env.isard_mac, "ARP reply Ethernet source")
    it.check_eq(r["eth_dst"], env.peer_mac, "ARP reply Ethernet destination")
    it.check_eq((r["tha"], r["tpa"]), (env.peer_mac, it.A_IP), "ARP reply target")
    it.check_eq((r["htype"], r["ptype"]), (1, 0x0800), "ARP reply hardware/protocol type")
    after = env.stats()["exception"]
    it.check(after["arp_replies"] >= before["arp_replies"] + 1, "stats exception.arp_replies moved")
    it.check(after["arp_learned"] >= 1, "isard learnt the requester (exception.arp_learned)")

    # A request for an address that is not isard's gets no answer.
    ps.send(arp_request(env.peer_mac, it.A_IP, "198.18.0.77"))
    it.check_eq(len(arp_replies(ps, "198.18.0.77", 0.7, first=False)), 0,
                "no ARP reply for 198.18.0.77 (not isard's address)")

    # ---- the kernel's own resolution --------------------------------------
    env.ns_run(["ip", "neigh", "flush", "dev", env.peer_if], check_rc=False)
    u = env.udp(it.A_IP, 4000)
    drops0 = env.total_drops().get("no_flow", 0)
    u.sendto(it.rtp_packet(1, 0, 7, b"\0" * 20), (it.RELAY_IP, env.port_min + 500))

    def neigh_ok():
        out = env.ns_run(["ip", "neigh", "show", it.RELAY_IP, "dev", env.peer_if]).stdout
        ok = env.isard_mac in out.lower() and any(
            s in out for s in ("REACHABLE", "STALE", "DELAY"))
        return out.strip() if ok else None

    line = it.wait_for(neigh_ok, 5, "ip neigh to resolve 198.18.0.1 to isard's MAC")
    it.log(f"ip neigh in the namespace: {line}")
    it.check(True, "namespace kernel resolved 198.18.0.1 to isard's MAC")
    # ...and the UDP packet that needed it reached isard (no session there).
    env.wait_drop("no_flow", drops0 + 1)
    it.check(True, "the UDP packet to a port without a leg was dropped as no_flow")

    # ---- ICMP echo ------------------------------------------------------------
    ic = env.ns_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    n = 5
    answered = 0
    for seq in range(1, n + 1):
        payload = bytes((seq + i) & 0xFF for i in range(56))
        ic.sendto(icmp_echo(ident, seq, payload), (it.RELAY_IP, 0))
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            ic.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                pkt, addr = ic.recvfrom(2048)
            except socket.timeout:
                break
            ihl = (pkt[0] & 0x0F) * 4
            t, c, csum, rid, rseq = struct.unpack("!BBHHH", pkt[ihl:ihl + 8])
            if t == 0 and rid == ident and rseq == seq and addr[0] == it.RELAY_IP:
                if pkt[ihl + 8:] != payload:
                    raise it.TestFailure(f"echo reply {seq}: payload differs")
                if it.icmp_checksum(pkt[ihl:]) != 0:
                    raise it.TestFailure(f"echo reply {seq}: bad ICMP checksum")
                answered += 1
                break
    it.check_eq(answered, n, "ICMP echo requests answered (same id, seq, payload; valid checksum)")
    ex = env.stats()["exception"]
    it.check(ex["icmp_echo_replies"] >= n, "stats exception.icmp_echo_replies >= 5")

    other0 = ex["icmp_other"]
    ic.sendto(icmp_echo(ident, 99, b"x" * 32, bad_checksum=True), (it.RELAY_IP, 0))
    it.wait_for(lambda: env.stats()["exception"]["icmp_other"] >= other0 + 1, 3,
                "icmp_other to count the echo with a bad checksum")
    got_reply = False
    ic.settimeout(0.5)
    for _ in range(20):
        try:
            pkt, _addr = ic.recvfrom(2048)
        except socket.timeout:
            break
        ihl = (pkt[0] & 0x0F) * 4
        if pkt[ihl] == 0 and struct.unpack("!H", pkt[ihl + 6:ihl + 8])[0] == 99:
            got_reply = True
    it.check(not got_reply, "no reply to an echo request with a bad ICMP checksum")

    # ---- isard's own ARP requests: a remote that never answers ------------------
    # Packets for a remote whose MAC is unknown wait on the control lcore (at
    # most 64 per next hop, [dataplane] hold_per_next_hop) while isard asks for
    # it (from the session's creation on); after 3 unanswered
    # requests (~3 s) they are dropped, and every mbuf comes back.
    ex0 = env.stats()["exception"]
    locs, _ = env.create("unr", "a", "b,remote=198.18.0.99:5000")
    src = env.udp(it.A_IP, 4100)
    it.send_paced(src, it.make_stream(0x99, 70, 160), locs["a"])

    def all_dropped():
        e = env.stats()["exception"]
        return e if e["held_dropped"] - ex0["held_dropped"] >= 70 else None
    ex = it.wait_for(all_dropped, 8, "the 70 held packets to be dropped")
    it.check_eq(ex["held"] - ex0["held"], 64, "64 packets were held for 198.18.0.99 (the cap)")
    it.check_eq(ex["held_sent"] - ex0["held_sent"], 0, "none was sent")
    it.check_eq(ex["arp_requests"] - ex0["arp_requests"], 3,
                "isard asked 3 times for 198.18.0.99")
    it.log(f"note: leg b out.packets = {env.leg('unr', 'b')['out']['packets']} "
           "(out counts packets handed on, also those later dropped while held)")
    env.check_health()

    # ---- an off-link remote and no gateway: no_route -----------------------------
    locs, _ = env.create("off", "a", "b,remote=198.19.0.5:5000")
    it.send_paced(src, it.make_stream(0x98, 3, 160), locs["a"])
    it.wait_for(lambda: env.leg("off", "b")["drops"].get("no_route", 0) == 3, 3,
                "leg b: drops.no_route == 3")
    it.check(True, "an off-link remote without a gateway counts no_route")

    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "arp"))
