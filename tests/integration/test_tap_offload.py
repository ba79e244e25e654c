#!/usr/bin/env python3
"""TX checksum offload end to end: isard on a net_tap port (isar_it.Env with
pmd="tap": isard runs in the test's namespace and the tap netdev there
carries the endpoint addresses). net_tap offers TX IPv4/UDP checksum offload,
so for every packet whose payload SRTP changed isard asks the port for the
checksums (RTE_MBUF_F_TX_IPV4|IP_CKSUM|UDP_CKSUM, l2_len, l3_len) and the PMD
computes them. The receivers are kernel UDP sockets: the kernel verifies
every checksum of what it gets from the tap and drops a bad datagram before
a socket sees it (counted as Ip InHdrErrors / Udp InCsumErrors), so a wrong
checksum is a missing packet here.

- isard's start-up log says port 0 is net_tap with TX checksum offload and
  RX checksum verification on.
- t1, SRTP transcrypt both ways at once (GStreamer srtpenc makes the input
  from known plain RTP, Python sockets carry it, srtpdec checks the output):
  A->B AES_CM_128_HMAC_SHA1_80 (K1) -> AEAD_AES_128_GCM (K2), B->A
  AEAD_AES_128_GCM (K3) -> AES_CM_128_HMAC_SHA1_80 (K4); 200 packets each way,
  payloads of 20..1401 bytes of both parities. All 200 arrive at the other
  end's socket, from the relay's leg port, in order, one output-suite tag
  longer; srtpdec with the expected key returns exactly the plain packets.
- t2, plain RTP both ways (checksum updated, not recomputed): 200 packets
  each way arrive intact and in order. t3: 50 from a sender without UDP
  checksums (SO_NO_CHECK) arrive, and leave isard with checksum 0 (seen by an
  AF_PACKET socket on the tap).
- The namespace's kernel counted no IP header or UDP checksum error; isard
  dropped nothing; exact per-leg counters.
- Then again with `tx_checksum_offload = false` on the interface: the log
  says the offload is off, the worker computes the checksums itself, and t1
  passes the same way.

Note: isard polls as many tap queues as it sends on (workers + 1, net_tap
pairs them), and the kernel steers a flow to the queue isard last sent it on;
the first packet of each direction goes alone so that the flows have settled
before the streams (otherwise the one move of a flow could swap two packets).

Skips (77) without root/netns//dev/net/tun (harness) or without GStreamer's
srtp elements (like test_srtp_gstreamer.py; ISAR_IT_REQUIRE_TOOLS=1: fail).
"""
import os
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import test_srtp_gstreamer as g  # noqa: E402

N = 200
# RTP payload sizes, both parities: an odd UDP length is where a checksum
# routine most often goes wrong. The largest makes a 1471-byte IP packet
# with the GCM tag.
SIZES = (160, 161, 20, 21, 1000, 1401, 33, 480)
TAG = {"AES_CM_128_HMAC_SHA1_80": 10, "AEAD_AES_128_GCM": 16}
SO_NO_CHECK = 11  # <asm-generic/socket.h>
ETH_P_IP = 0x0800


def stream(ssrc, count, seq0):
    """RTP packets with varied payload sizes; the payload encodes ssrc and
    index so corruption and reordering are visible."""
    out = []
    for i in range(count):
        size = SIZES[i % len(SIZES)]
        body = struct.pack("!II", ssrc, i) * (size // 8 + 1)
        out.append(it.rtp_packet(seq0 + i, 160 * i, ssrc, body[:size]))
    return out


def kernel_errors(env):
    """The namespace kernel's receive errors that a bad checksum causes
    (/proc/net/snmp): IPv4 header errors and UDP checksum errors."""
    rows = {}
    for line in env.ns_run(["cat", "/proc/net/snmp"]).stdout.splitlines():
        key, _, rest = line.partition(":")
        rows.setdefault(key, []).append(rest.split())
    ip = dict(zip(rows["Ip"][0], map(int, rows["Ip"][1])))
    udp = dict(zip(rows["Udp"][0], map(int, rows["Udp"][1])))
    return {"Ip InHdrErrors": ip["InHdrErrors"], "Udp InCsumErrors": udp["InCsumErrors"]}


def error_delta(env, base):
    now = kernel_errors(env)
    return {k: now[k] - base[k] for k in now}


def check_kernel_errors(env, base, what):
    it.check_eq(error_delta(env, base), {"Ip InHdrErrors": 0, "Udp InCsumErrors": 0},
                f"{what}: checksum errors counted by the endpoints' kernel")


def receive_exact(env, base, sock, count, src, what, timeout=8):
    """Exactly `count` datagrams on `sock`, each from `src`, nothing more;
    on a shortfall says what the kernel dropped for a bad checksum."""
    got = it.recv_all(sock, count, timeout)
    if len(got) != count:
        raise it.TestFailure(f"{what}: {len(got)} of {count} datagrams arrived; the "
                             f"namespace's kernel counted {error_delta(env, base)}")
    bad_src = [a for _d, a in got if a != src]
    if bad_src:
        raise it.TestFailure(f"{what}: {len(bad_src)} datagram(s) not from {src}: {bad_src[:3]}")
    extra = it.drain(sock, 0.2)
    if extra:
        raise it.TestFailure(f"{what}: {len(extra)} datagram(s) more than {count}")
    it.log(f"ok: {what}: exactly {count} datagram(s) arrived, from {src[0]}:{src[1]}")
    return [d for d, _a in got]


def check_same(got, want, what):
    """got == want (lists of datagrams), saying where they first differ."""
    if got != want:
        i = next((i for i, (x, y) in enumerate(zip(got, want)) if x != y),
                 min(len(got), len(want)))
        gh = it.rtp_parse(got[i]) if i < len(got) else None
        wh = it.rtp_parse(want[i]) if i < len(want) else None
        raise it.TestFailure(f"{what}: datagram {i} differs (got seq {gh and gh['seq']} "
                             f"len {len(got[i]) if gh else '-'}, want seq {wh and wh['seq']} "
                             f"len {len(want[i]) if wh else '-'}; {len(got)} vs {len(want)})")
    it.log(f"ok: {what}: all {len(want)} intact and in order")


def relay_both(env, base, sa, sb, locs, ab, ba, what):
    """Sends ab from socket sa to leg a and ba from sb to leg b, both at once;
    returns what B's and A's sockets got (exactly len(ab) and len(ba)). The
    first packet of each direction goes alone (see the module's note)."""
    sa.sendto(ab[0], locs["a"])
    first_b = receive_exact(env, base, sb, 1, locs["b"], f"{what} first A->B packet")
    sb.sendto(ba[0], locs["b"])
    first_a = receive_exact(env, base, sa, 1, locs["a"], f"{what} first B->A packet")
    for i in range(1, max(len(ab), len(ba))):
        if i < len(ab):
            sa.sendto(ab[i], locs["a"])
        if i < len(ba):
            sb.sendto(ba[i], locs["b"])
        if i % 8 == 7:
            time.sleep(0.004)
    got_b = first_b + receive_exact(env, base, sb, len(ab) - 1, locs["b"],
                                    f"{what} A->B at B's socket")
    got_a = first_a + receive_exact(env, base, sa, len(ba) - 1, locs["a"],
                                    f"{what} B->A at A's socket")
    return got_b, got_a


def check_startup_log(env, offload="on"):
    with open(env.isard_log, errors="replace") as f:
        lines = [l.strip() for l in f if "interface 0: port 0 (" in l]
    it.check(len(lines) == 1, f"isard logs how it drives port 0: {lines}")
    it.check("(net_tap)" in lines[0], "port 0 is a net_tap port")
    it.check(f"TX checksum offload {offload}" in lines[0],
             f"TX checksum offload is {offload} on port 0: {lines[0]}")
    it.check("RX checksum verification on" in lines[0],
             "isard uses RX checksum verification on port 0")


def body(env):
    g.require_tools()
    env.start()
    check_startup_log(env)
    g.warm_arp(env, (it.A_IP, it.B_IP))
    base = kernel_errors(env)
    with g.Procs(env) as procs:
        part_srtp(env, procs, base)
    part_plain(env, base)
    check_kernel_errors(env, base, "whole test")
    it.check_eq(env.total_drops(), {}, "isard dropped nothing")
    env.final_checks()


def part_srtp(env, procs, base):
    it.log("---- t1: SRTP transcrypt both ways: A->B AES_CM_128_HMAC_SHA1_80 -> "
           "AEAD_AES_128_GCM, B->A AEAD_AES_128_GCM -> AES_CM_128_HMAC_SHA1_80")
    cm, gcm = "AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"
    k1, k2, k3, k4 = g.key("T1", cm), g.key("T2", gcm), g.key("T3", gcm), g.key("T4", cm)
    a_addr, b_addr = (it.A_IP, 4100), (it.B_IP, 5100)
    locs, _ = env.create(
        "t1",
        f"a,remote={a_addr[0]}:{a_addr[1]},in={g.spec(cm, k1)},out={g.spec(cm, k4)}",
        f"b,remote={b_addr[0]}:{b_addr[1]},in={g.spec(gcm, k3)},out={g.spec(gcm, k2)}")
    sa, sb = env.udp(*a_addr), env.udp(*b_addr)

    # The endpoints' SRTP, made by libsrtp (srtpenc) from known plain RTP.
    plain_ab, plain_ba = stream(0xAB01, N, 1000), stream(0xBA02, N, 60000)
    cap = env.udp(g.LO, 0)
    procs.enc("t1-enc-a", cm, k1, 7110, cap.getsockname())
    srtp_ab = g.protect(procs, 7110, cap, plain_ab, "t1 A")
    procs.enc("t1-enc-b", gcm, k3, 7120, cap.getsockname())
    srtp_ba = g.protect(procs, 7120, cap, plain_ba, "t1 B")

    # Through isard: every datagram must reach the far end's kernel socket.
    got_b, got_a = relay_both(env, base, sa, sb, locs, srtp_ab, srtp_ba, "t1")
    it.check([len(d) for d in got_b] == [len(p) + TAG[gcm] for p in plain_ab],
             "t1 A->B: in order, each the plain length + the GCM tag")
    it.check([len(d) for d in got_a] == [len(p) + TAG[cm] for p in plain_ba],
             "t1 B->A: in order, each the plain length + the AES-CM tag")
    it.check(all(d[:12] == p[:12] and d[12:len(p)] != p[12:]
                 for d, p in zip(got_b + got_a, plain_ab + plain_ba)),
             "t1 output is SRTP of the input (RTP header kept, payload encrypted)")
    check_kernel_errors(env, base, "t1")

    # What the sockets got decrypts with the keys the far ends expect.
    for what, name, suite, k, ssrc, got, plain, port in (
            ("t1 A->B", "t1-dec-b", gcm, k2, 0xAB01, got_b, plain_ab, 7130),
            ("t1 B->A", "t1-dec-a", cm, k4, 0xBA02, got_a, plain_ba, 7140)):
        rx = env.udp(g.LO, port + 1)
        dec = procs.dec(name, suite, k, ssrc, (g.LO, port), port + 1)
        tx = env.udp(g.LO, 0)
        it.send_paced(tx, got, (g.LO, port), gap=0.001)
        g.expect_plain(rx, plain, f"{what} decrypted with the expected key")
        procs.stop(dec)

    sh = env.show("t1")
    la, lb = g.leg_of(sh, "a"), g.leg_of(sh, "b")
    it.check_eq((la["in"]["packets"], la["out"]["packets"], lb["in"]["packets"],
                 lb["out"]["packets"]), (N, N, N, N), "t1 per-leg packet counters")
    it.check_eq((la["drops"], lb["drops"]), ({}, {}), "t1 no drops")
    it.check_eq(lb["out"]["bytes"], sum(42 + len(p) + TAG[gcm] for p in plain_ab),
                "t1 b out bytes (frames with GCM tags)")
    it.check_eq(la["out"]["bytes"], sum(42 + len(p) + TAG[cm] for p in plain_ba),
                "t1 a out bytes (frames with AES-CM tags)")
    env.ctl_json("session", "delete", "t1")


def udp_cksums_from(frames, sport):
    """UDP checksum fields of the IPv4/UDP frames (Ethernet) sent from
    RELAY_IP:sport."""
    relay = socket.inet_aton(it.RELAY_IP)
    out = []
    for f in frames:
        if len(f) < 42 or f[12:14] != b"\x08\x00" or f[23] != 17 or f[26:30] != relay:
            continue
        l4 = 14 + (f[14] & 0x0F) * 4
        if struct.unpack("!H", f[l4:l4 + 2])[0] == sport:
            out.append(struct.unpack("!H", f[l4 + 6:l4 + 8])[0])
    return out


def part_plain(env, base):
    it.log("---- t2: plain RTP both ways (UDP checksum updated, not recomputed)")
    a_addr, b_addr = (it.A_IP, 4200), (it.B_IP, 5200)
    locs, _ = env.create("t2", f"a,remote={a_addr[0]}:{a_addr[1]}",
                         f"b,remote={b_addr[0]}:{b_addr[1]}")
    sa, sb = env.udp(*a_addr), env.udp(*b_addr)
    ab, ba = stream(0xAB03, N, 2000), stream(0xBA04, N, 3000)
    got_b, got_a = relay_both(env, base, sa, sb, locs, ab, ba, "t2")
    check_same(got_b, ab, "t2 A->B payloads")
    check_same(got_a, ba, "t2 B->A payloads")
    lb = env.leg("t2", "b")
    it.check_eq((lb["in"]["packets"], lb["out"]["packets"], lb["drops"]), (N, N, {}),
                "t2 leg b counters")

    it.log("---- t3: a sender without UDP checksums (0, RFC 768): isard adds none")
    nock = env.udp(it.A_IP, 4300)
    nock.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
    rb = env.udp(it.B_IP, 5300)
    locs3, _ = env.create("t3", f"a,remote={it.A_IP}:4300", f"b,remote={it.B_IP}:5300")
    cap = env.ns_socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    cap.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    cap.bind((env.peer_if, ETH_P_IP))
    zs = stream(0xAB05, 50, 4000)
    it.send_paced(nock, zs, locs3["a"], gap=0.001)
    check_same(receive_exact(env, base, rb, len(zs), locs3["b"], "t3 A->B at B's socket"),
               zs, "t3 payloads")
    sums = udp_cksums_from([d for d, _a in it.drain(cap, 0.2, max_total=5000)], locs3["b"][1])
    it.check_eq((len(sums), set(sums)), (len(zs), {0}),
                "t3 frames isard sent to B (AF_PACKET on the tap): count, UDP checksum fields")
    cap.close()
    check_kernel_errors(env, base, "t2/t3")
    env.ctl_json("session", "delete", "t2")
    env.ctl_json("session", "delete", "t3")


def body_offload_off(env):
    """The same SRTP transcrypt with `tx_checksum_offload = false`: the
    worker computes the checksums itself and the kernel accepts them."""
    g.require_tools()
    env.start()
    check_startup_log(env, offload="off")
    g.warm_arp(env, (it.A_IP, it.B_IP))
    base = kernel_errors(env)
    with g.Procs(env) as procs:
        part_srtp(env, procs, base)
    env.final_checks()


if __name__ == "__main__":
    rc = it.main(body, "tapoff", pmd="tap")
    if rc == 0:
        rc = it.main(body_offload_off, "tapsw", pmd="tap",
                     iface_extra="tx_checksum_offload = false\n")
    sys.exit(rc)
