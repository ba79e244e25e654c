#!/usr/bin/env python3
"""A call that needs ARP keeps flowing while the namespace floods the
exception path.

A flooder at 198.18.0.4 (C) sends, for FLOOD_S seconds
(at most FLOOD_MAX packets, paced at FLOOD_PPS): ICMP echo requests to 198.18.0.1 (raw socket),
STUN and DTLS to both legs' relay ports and to 3478, and ARP requests for
other hosts (AF_PACKET). While it runs, the session is created with both
remotes configured — B's MAC is not known to isard, so its next hop is
resolved by ARP *during* the flood — and A and B exchange a 50 pps call.
Nothing of the call may be lost (at most 1 packet per direction), B's address
must be learnt, and the per-kind policer counters (policed_icmp,
policed_stun, policed_dtls, policed_arp) must show that the flood was cut in
the worker.
"""
import json
import os
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402

FLOOD_S = 2.0
FLOOD_MAX = 200000
# Packets per second: far over every policer's rate, but under what one
# net_af_packet worker receives on a small test machine — above that the
# kernel's packet ring overflows and drops indiscriminately, before isard
# sees anything (not what this test is about).
FLOOD_PPS = 40000
CALL_PPS = 50
CALL_N = 100  # 2 s per direction
ETH_P_ARP = 0x0806


def mac_bytes(m):
    return bytes(int(x, 16) for x in m.split(":"))


def arp_request(src_mac, src_ip, target_ip):
    eth = b"\xff" * 6 + mac_bytes(src_mac) + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac_bytes(src_mac),
                      socket.inet_aton(src_ip), b"\0" * 6, socket.inet_aton(target_ip))
    return eth + arp


def icmp_echo(ident, seq, payload):
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    csum = it.icmp_checksum(hdr + payload)
    return struct.pack("!BBHHH", 8, 0, csum, ident, seq) + payload


class Flooder:
    def __init__(self, env, ports):
        self.env = env
        self.ports = ports
        self.sent = 0
        self.errors = 0
        self.stop = threading.Event()
        self.u = env.udp(it.C_IP, 0)
        self.u.setblocking(False)
        self.icmp = env.ns_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.icmp.setblocking(False)
        self.arp = env.ns_socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        self.arp.bind((env.peer_if, ETH_P_ARP))
        self.arp.setblocking(False)
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        stun = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, os.urandom(12))
        dtls = bytes([22, 0xFE, 0xFD]) + b"\0" * 10 + b"\x00\x10" + b"\x5a" * 16
        echo = icmp_echo(0x4242, 1, b"\x5a" * 56)
        arps = [arp_request(self.env.peer_mac, it.C_IP, f"198.18.0.{100 + i}")
                for i in range(50)]
        dests = self.dests = [(it.RELAY_IP, p) for p in self.ports]
        start = time.monotonic()
        deadline = start + FLOOD_S
        i = 0
        while self.sent < FLOOD_MAX and not self.stop.is_set():
            if (i & 255) == 0:
                now = time.monotonic()
                if now >= deadline:
                    break
                ahead = start + i / FLOOD_PPS - now
                if ahead > 0:
                    time.sleep(ahead)
            try:
                k = i % 8
                if k < 2:
                    self.icmp.sendto(echo, (it.RELAY_IP, 0))
                elif k < 4:
                    self.u.sendto(stun, dests[i % len(dests)])
                elif k < 6:
                    self.u.sendto(dtls, dests[i % len(dests)])
                elif k == 6:
                    self.arp.send(arps[i % len(arps)])
                else:
                    self.u.sendto(stun if i & 8 else dtls, (it.RELAY_IP, 3478))
                self.sent += 1
            except (BlockingIOError, OSError):
                self.errors += 1
            i += 1


def body(env):
    env.start()
    a = env.udp(it.A_IP, 4000)
    b = env.udp(it.B_IP, 5000)
    # isard must not know B yet: B never spoke to it.
    before = env.stats()["exception"]

    # Flood the first ports of the relay pool (and 3478) before the session
    # exists; its legs' ports are added once they are known.
    flood = Flooder(env, [env.port_min + i for i in range(16)])
    flood.thread.start()
    time.sleep(0.3)
    locs, _ = env.create("call", f"a,remote={it.A_IP}:4000", f"b,remote={it.B_IP}:5000")
    relay_a, relay_b = locs["a"], locs["b"]
    # From now on the legs' own ports are flooded too (STUN/DTLS on a leg go to
    # control like on any other port).
    flood.dests[:] = [relay_a, relay_b] * 4 + flood.dests
    it.log(f"legs: a {relay_a}, b {relay_b}")

    # The call: 50 pps each way, while the flood goes on.
    sa = it.make_stream(0xA11CE, CALL_N, 160, seq0=100)
    sb = it.make_stream(0xB0B, CALL_N, 160, seq0=7)
    gap = 1.0 / CALL_PPS
    t0 = time.monotonic()
    for i in range(CALL_N):
        a.sendto(sa[i], relay_a)
        b.sendto(sb[i], relay_b)
        delay = t0 + (i + 1) * gap - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    flood.stop.set()
    flood.thread.join(10)
    it.log(f"flood: {flood.sent} packets sent ({flood.errors} send errors) in "
           f"{FLOOD_S:.1f} s while the call ran")
    it.check(flood.sent >= 20000, f"the flood was a flood ({flood.sent} packets)")

    st = env.stats()
    it.log("stats: " + json.dumps({k: v for k, v in st.items() if k not in ("workers",)})[:3000])
    got_b = it.recv_all(b, CALL_N, 5)
    got_a = it.recv_all(a, CALL_N, 5)
    it.log(f"call: B received {len(got_b)}/{CALL_N}, A received {len(got_a)}/{CALL_N}")
    it.check(len(got_b) >= CALL_N - 1, f"A->B lost at most 1 packet ({len(got_b)}/{CALL_N})")
    it.check(len(got_a) >= CALL_N - 1, f"B->A lost at most 1 packet ({len(got_a)}/{CALL_N})")

    st = env.stats()
    drops = st["total"]["drops"]
    exc = st["exception"]
    it.log("policed: " + ", ".join(f"{k}={drops.get(k, 0)}" for k in
                                    ("policed_icmp", "policed_stun", "policed_dtls",
                                     "policed_arp", "exception_full")))
    for k in ("policed_icmp", "policed_stun", "policed_dtls", "policed_arp"):
        it.check(drops.get(k, 0) > 0, f"{k} counted the flood")
    it.check(exc["arp_learned"] > before["arp_learned"], "isard learnt B's MAC during the flood")
    it.check_eq(exc["held_dropped"], before["held_dropped"], "no held packet dropped")
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "exception_flood"))
