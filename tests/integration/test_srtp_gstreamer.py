#!/usr/bin/env python3
"""SRTP end to end through isard with GStreamer (libsrtp's srtpenc/srtpdec)
as the call's independent SRTP endpoints, inside the test's namespace.

The oracle is always plain RTP made by Python (known payloads, fixed SSRC):
Python -> srtpenc (endpoint's key) -> isard (in: unprotect, out: protect
again) -> srtpdec (far end's key) -> Python, which checks every payload
arrived intact, in order, exactly once.

- s1, GStreamer on the wire: srtpenc's udpsink bound to 198.18.0.2:4000 sends
  AES_CM_128_HMAC_SHA1_80 (K1) to leg a (created without remote, latches on
  it); leg b re-protects with AEAD_AES_128_GCM (K2) to srtpdec's udpsrc on
  198.18.0.3:5000. 300 packets, zero loss.
- s2, both directions at once (Python sockets carry what GStreamer protected):
  A->B AES_CM_128_HMAC_SHA1_32 -> AES_CM_128_HMAC_SHA1_80, B->A
  AEAD_AES_256_GCM (K5) -> AEAD_AES_256_GCM (K4, another key). Zero loss.
- s3, authenticated pass-through (a's in == b's out): B receives the very
  bytes A's srtpenc produced, and srtpdec decrypts them; session shows
  passthrough.
- s4, forged packets against a leg without remote: before any valid packet,
  wrong-key (second srtpenc) and tampered packets from 198.18.0.3 and from A
  count as srtp_auth and do not latch; then valid packets latch A; then
  replays (srtp_replay), tampered and wrong-key packets (srtp_auth) from the
  latched address, and valid/replayed/tampered packets from 198.18.0.3 and
  from another port of A (src_mismatch) -- exact counts, the latch does not
  move, B gets exactly the valid stream (failures never advance the replay
  window: the valid packets with the forged packets' sequence numbers still
  pass afterwards).
- s5, live re-key: 1500 packets at 2 ms from srtpenc (udpsink) to leg a, fanned
  out to b (AEAD_AES_128_GCM, srtpdec) and c (AEAD_AES_256_GCM, srtpdec);
  mid-stream `isarctl leg update s5 b out=AEAD_AES_256_GCM:K'` and B's srtpdec
  restarted with K': everything sent before the update and everything sent
  after the new srtpdec listens arrives at B intact; c loses nothing.

Skips (77) without root/netns (harness) or without gst-launch-1.0 / the srtp
plugin (packages gstreamer1.0-tools, -plugins-good, -plugins-bad, installed by
`tools/isar deps`); with ISAR_IT_REQUIRE_TOOLS=1 a missing tool is a failure.
"""
import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402

# suite -> (key||salt length, GStreamer cipher, RTP auth, RTCP auth)
SUITES = {
    "AES_CM_128_HMAC_SHA1_80": (30, "aes-128-icm", "hmac-sha1-80", "hmac-sha1-80"),
    "AES_CM_128_HMAC_SHA1_32": (30, "aes-128-icm", "hmac-sha1-32", "hmac-sha1-80"),
    "AEAD_AES_128_GCM": (28, "aes-128-gcm", "null", "null"),
    "AEAD_AES_256_GCM": (44, "aes-256-gcm", "null", "null"),
}
CAPS_RTP = "application/x-rtp,media=audio,clock-rate=8000,encoding-name=PCMU,payload=0"
LO = "127.0.0.1"


def key(label, suite):
    """Deterministic key||salt of the suite's length (reproducible failures)."""
    n = SUITES[suite][0]
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{i}".encode()).digest()
        i += 1
    return out[:n]


def spec(suite, k):
    return f"{suite}:{base64.b64encode(k).decode()}"


def tamper(pkt, at=20):
    """Flips one payload byte (after the 12-byte RTP header)."""
    b = bytearray(pkt)
    b[at] ^= 0x40
    return bytes(b)


def require_tools(extra=()):
    missing = [t for t in ("gst-launch-1.0", "gst-inspect-1.0") + tuple(extra)
               if shutil.which(t) is None]
    if not missing:
        for el in ("srtpenc", "srtpdec", "udpsrc", "udpsink"):
            p = subprocess.run(["gst-inspect-1.0", el], capture_output=True, timeout=30)
            if p.returncode != 0:
                missing.append(f"GStreamer element {el}")
    if missing:
        msg = (f"missing {', '.join(missing)} (packages gstreamer1.0-tools, "
               "gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad, ffmpeg: `tools/isar deps`)")
        if os.environ.get("ISAR_IT_REQUIRE_TOOLS") == "1":
            raise it.TestFailure(msg)
        raise it.Skip(msg)


class Procs:
    """Helper processes (gst-launch-1.0, ffmpeg) run inside the namespace;
    always stopped (also on failure: use as a context manager)."""

    def __init__(self, env):
        self.env = env
        self.procs = []

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        for p in self.procs:
            self.stop(p)
        if et is not None:
            for p in self.procs:
                self.dump(p)
        return False

    def start(self, name, argv):
        logpath = os.path.join(self.env.dir, f"{name}.log")
        logf = open(logpath, "w")
        p = subprocess.Popen(["ip", "netns", "exec", self.env.ns] + argv, stdout=logf,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=it._die_with_parent)
        logf.close()
        p.name, p.logpath = name, logpath
        self.procs.append(p)
        return p

    def stop(self, p, timeout=5):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    def dump(self, p, tail=20):
        try:
            with open(p.logpath, errors="replace") as f:
                lines = f.readlines()[-tail:]
        except OSError:
            return
        if lines:
            print(f"---- {p.name} (rc {p.poll()}) ----")
            sys.stdout.writelines(lines)

    def wait_bound(self, p, port, timeout=15):
        """Waits until a UDP socket on `port` exists in the namespace (the
        helper's udpsrc has bound: from then on the kernel queues for it)."""
        want = f":{port:04X}"

        def bound():
            if p.poll() is not None:
                self.dump(p)
                raise it.TestFailure(f"{p.name} exited with {p.returncode}")
            with open(f"/proc/{p.pid}/net/udp") as f:
                return any(line.split()[1].endswith(want) for line in f.readlines()[1:])
        it.wait_for(bound, timeout, f"{p.name} to bind UDP port {port}")

    def enc(self, name, suite, k, in_port, dest, bind=None):
        """Plain RTP on 127.0.0.1:in_port -> srtpenc -> udpsink to dest
        (from bind=(ip, port) if given)."""
        _n, cipher, auth, rauth = SUITES[suite]
        sink = ["udpsink", f"host={dest[0]}", f"port={dest[1]}", "sync=false", "async=false"]
        if bind:
            sink += [f"bind-address={bind[0]}", f"bind-port={bind[1]}"]
        p = self.start(name, [
            "gst-launch-1.0", "-q", "udpsrc", f"address={LO}", f"port={in_port}",
            f"caps={CAPS_RTP}", "buffer-size=2097152", "!",
            "srtpenc", f"key={k.hex()}", f"rtp-cipher={cipher}", f"rtp-auth={auth}",
            f"rtcp-cipher={cipher}", f"rtcp-auth={rauth}", "!"] + sink)
        self.wait_bound(p, in_port)
        return p

    def dec(self, name, suite, k, ssrc, listen, out_port):
        """SRTP on listen=(ip, port) -> srtpdec (key and SSRC in the caps) ->
        udpsink to 127.0.0.1:out_port."""
        _n, cipher, auth, rauth = SUITES[suite]
        caps = (f"application/x-srtp,ssrc=(uint){ssrc},srtp-key=(buffer){k.hex()},"
                f"srtp-cipher=(string){cipher},srtp-auth=(string){auth},"
                f"srtcp-cipher=(string){cipher},srtcp-auth=(string){rauth},roc=(uint)0,"
                "media=(string)audio,clock-rate=(int)8000,encoding-name=(string)PCMU,"
                "payload=(int)0")
        p = self.start(name, [
            "gst-launch-1.0", "-q", "udpsrc", f"address={listen[0]}", f"port={listen[1]}",
            f"caps={caps}", "buffer-size=2097152", "!", "srtpdec", "!",
            "udpsink", f"host={LO}", f"port={out_port}", "sync=false", "async=false"])
        self.wait_bound(p, listen[1])
        return p


def warm_arp(env, ips):
    """ICMP echo to isard from each endpoint address, so that isard knows
    their MACs before the streams start (otherwise the first packet towards
    each is held for ARP and sent by the control lcore)."""
    for n, ip in enumerate(ips):
        s = env.ns_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP, bind=(ip, 0))
        ident = 0x5100 + n
        body = b"warm-arp"
        hdr = bytes([8, 0, 0, 0]) + ident.to_bytes(2, "big") + (1).to_bytes(2, "big")
        c = it.icmp_checksum(hdr + body)
        pkt = hdr[:2] + c.to_bytes(2, "big") + hdr[4:] + body
        ok = False
        for _try in range(3):
            s.sendto(pkt, (it.RELAY_IP, 0))
            for _r in range(8):
                got = it.recv_all(s, 1, 1.0)
                if not got:
                    break
                data = got[0][0]
                icmp = data[(data[0] & 0x0F) * 4:]
                if icmp[0] == 0 and int.from_bytes(icmp[4:6], "big") == ident:
                    ok = True
                    break
            if ok:
                break
        it.check(ok, f"isard answers ICMP echo from {ip} (its MAC is known to isard)")


def exchange(src, packets, dest, rx, what, gap=0.001, timeout=5):
    """Sends packets from socket src to dest (paced) and receives exactly as
    many on rx; returns the received (data, addr) list."""
    it.send_paced(src, packets, dest, gap=gap)
    got = it.recv_all(rx, len(packets), timeout)
    it.check_eq(len(got), len(packets), f"{what}: datagrams")
    return got


def expect_plain(rx, sent, what, timeout=5):
    """srtpdec's output: exactly `sent`, intact and in order."""
    got = [d for d, _a in it.recv_all(rx, len(sent), timeout)]
    for i, (g, w) in enumerate(zip(got, sent)):
        if g != w:
            h = it.rtp_parse(g)
            raise it.TestFailure(f"{what}: packet {i} differs (got seq {h and h['seq']} "
                                 f"len {len(g)}, want seq {it.rtp_parse(w)['seq']})")
    it.check_eq(len(got), len(sent), f"{what}: plain packets intact and in order")
    extra = it.drain(rx, 0.2)
    it.check_eq(len(extra), 0, f"{what}: no extra packets")


def protect(procs, enc_port, cap, plain, what):
    """Runs `plain` through a srtpenc (plain on 127.0.0.1:enc_port, SRTP to
    socket cap); returns the SRTP packets in order."""
    tx = procs.env.udp(LO, 0)
    got = exchange(tx, plain, (LO, enc_port), cap, f"{what} srtpenc")
    out = [d for d, _a in got]
    for i, (s, p) in enumerate(zip(out, plain)):
        if s[:12] != p[:12] or s[12:len(p)] == p[12:]:
            raise it.TestFailure(f"{what}: srtpenc output {i} is not SRTP of the input")
    tx.close()
    return out


def leg_of(show, name):
    return next(l for l in show["legs"] if l["name"] == name)


# ---- the test ------------------------------------------------------------------

def body(env):
    require_tools()
    env.start()
    warm_arp(env, (it.A_IP, it.B_IP, it.C_IP))
    with Procs(env) as procs:
        part_gst_on_wire(env, procs)
        part_both_ways(env, procs)
        part_passthrough(env, procs)
        part_forgery(env, procs)
        part_rekey(env, procs)
    env.final_checks()


def part_gst_on_wire(env, procs):
    it.log("---- s1: srtpenc (AES_CM_128_HMAC_SHA1_80) -> isard -> srtpdec (AEAD_AES_128_GCM)")
    k1, k2 = key("K1", "AES_CM_128_HMAC_SHA1_80"), key("K2", "AEAD_AES_128_GCM")
    b_addr = (it.B_IP, 5000)
    locs, _ = env.create("s1", "a,in=" + spec("AES_CM_128_HMAC_SHA1_80", k1),
                         f"b,remote={b_addr[0]}:{b_addr[1]},out=" + spec("AEAD_AES_128_GCM", k2))
    rx = env.udp(LO, 6000)
    dec = procs.dec("s1-dec-b", "AEAD_AES_128_GCM", k2, 0xA1, b_addr, 6000)
    enc = procs.enc("s1-enc-a", "AES_CM_128_HMAC_SHA1_80", k1, 7000, locs["a"],
                    bind=(it.A_IP, 4000))
    n = 300
    plain = it.make_stream(0xA1, n, 160, seq0=1000)
    tx = env.udp(LO, 0)
    it.send_paced(tx, plain, (LO, 7000), gap=0.001)
    expect_plain(rx, plain, "s1 A->B")
    sh = env.show("s1")
    la, lb = leg_of(sh, "a"), leg_of(sh, "b")
    it.check_eq((la["remote"], la["latched"]), (f"{it.A_IP}:4000", True),
                "s1 leg a latched srtpenc's udpsink address")
    it.check_eq(la["srtp"], {"in": "AES_CM_128_HMAC_SHA1_80", "out": None, "passthrough": False},
                "s1 leg a srtp")
    it.check_eq(lb["srtp"], {"in": None, "out": "AEAD_AES_128_GCM", "passthrough": False},
                "s1 leg b srtp")
    it.check_eq((la["in"]["packets"], lb["out"]["packets"]), (n, n), "s1 a in / b out packets")
    # Frame bytes (Ethernet+IPv4+UDP = 42). GCM adds a 16-byte tag on the way
    # out. in.bytes is counted after unprotect (without a's 10-byte tag) on a
    # transcrypting leg, with it on the wire; accept both, not anything else.
    it.check_eq(lb["out"]["bytes"], n * (42 + 172 + 16), "s1 b out bytes (GCM tag)")
    it.check(la["in"]["bytes"] in (n * (42 + 172), n * (42 + 172 + 10)),
             f"s1 a in bytes {la['in']['bytes']} = {n} x (wire or decrypted frame)")
    it.check_eq((la["drops"], lb["drops"]), ({}, {}), "s1 no drops")
    procs.stop(enc)
    procs.stop(dec)
    env.ctl_json("session", "delete", "s1")


def part_both_ways(env, procs):
    it.log("---- s2: A->B AES_CM_128_HMAC_SHA1_32 -> _80, B->A AEAD_AES_256_GCM -> "
           "AEAD_AES_256_GCM (other key), both ways at once")
    k3 = key("K3", "AES_CM_128_HMAC_SHA1_32")
    k4 = key("K4", "AEAD_AES_256_GCM")
    k5 = key("K5", "AEAD_AES_256_GCM")
    k6 = key("K6", "AES_CM_128_HMAC_SHA1_80")
    a_addr, b_addr = (it.A_IP, 4002), (it.B_IP, 5002)
    locs, _ = env.create(
        "s2",
        "a,in=" + spec("AES_CM_128_HMAC_SHA1_32", k3) + ",out=" + spec("AEAD_AES_256_GCM", k4),
        f"b,remote={b_addr[0]}:{b_addr[1]},in=" + spec("AEAD_AES_256_GCM", k5) +
        ",out=" + spec("AES_CM_128_HMAC_SHA1_80", k6))
    na, nb = env.udp(*a_addr), env.udp(*b_addr)
    cap_a, cap_b = env.udp(LO, 7101), env.udp(LO, 7201)
    plain_a, plain_b = env.udp(LO, 7103), env.udp(LO, 7203)
    procs.enc("s2-enc-a", "AES_CM_128_HMAC_SHA1_32", k3, 7100, (LO, 7101))
    procs.enc("s2-enc-b", "AEAD_AES_256_GCM", k5, 7200, (LO, 7201))
    procs.dec("s2-dec-a", "AEAD_AES_256_GCM", k4, 0xB2, (LO, 7102), 7103)
    procs.dec("s2-dec-b", "AES_CM_128_HMAC_SHA1_80", k6, 0xA2, (LO, 7202), 7203)
    n = 200
    pa = it.make_stream(0xA2, n, 160, seq0=65000)  # crosses the seq wrap (ROC 0 -> 1)
    pb = it.make_stream(0xB2, n, 160, seq0=7)
    sa = protect(procs, 7100, cap_a, pa, "s2 A")
    sb = protect(procs, 7200, cap_b, pb, "s2 B")
    it.check_eq({len(s) - 172 for s in sa} | {len(s) - 172 for s in sb}, {4, 16},
                "s2 tag sizes from srtpenc (HMAC_SHA1_32: 4, GCM: 16)")
    # A speaks first and latches a; B starts only once that packet came out
    # at B (B's datagram could otherwise overtake it and find leg a without
    # a remote). Then both directions interleaved.
    got_b, got_a = [], []
    na.sendto(sa[0], locs["a"])
    got_b += it.recv_all(nb, 1, 3)
    it.check_eq(len(got_b), 1, "s2 first packet A->B")
    for i in range(n):
        if i > 0:
            na.sendto(sa[i], locs["a"])
        nb.sendto(sb[i], locs["b"])
        if i % 8 == 7:
            time.sleep(0.008)
    got_b += it.recv_all(nb, n - 1, 5)
    got_a += it.recv_all(na, n, 5)
    it.check_eq((len(got_b), len(got_a)), (n, n), "s2 SRTP datagrams received at B / at A")
    it.check(all(a == locs["a"] for _d, a in got_a) and all(a == locs["b"] for _d, a in got_b),
             "s2 each side receives from its own leg's relay address")
    it.check_eq({len(d) - 172 for d, _a in got_b}, {10}, "s2 A->B re-protected with the 80-bit tag")
    it.check_eq({len(d) - 172 for d, _a in got_a}, {16}, "s2 B->A re-protected with GCM")
    it.check(all(d != s for (d, _a), s in zip(got_a, sb)), "s2 B->A was re-encrypted (other key)")
    # The far ends' srtpdec must accept what isard protected.
    tx = env.udp(LO, 0)
    it.send_paced(tx, [d for d, _a in got_b], (LO, 7202), gap=0.001)
    expect_plain(plain_b, pa, "s2 A->B")
    it.send_paced(tx, [d for d, _a in got_a], (LO, 7102), gap=0.001)
    expect_plain(plain_a, pb, "s2 B->A")
    sh = env.show("s2")
    la, lb = leg_of(sh, "a"), leg_of(sh, "b")
    it.check_eq((la["in"]["packets"], la["out"]["packets"], lb["in"]["packets"],
                 lb["out"]["packets"]), (n, n, n, n), "s2 per-leg in/out packets")
    it.check_eq((la["drops"], lb["drops"]), ({}, {}), "s2 no drops")
    env.ctl_json("session", "delete", "s2")


def part_passthrough(env, procs):
    it.log("---- s3: authenticated pass-through (a in == b out)")
    k = key("K7", "AES_CM_128_HMAC_SHA1_80")
    a_addr, b_addr = (it.A_IP, 4003), (it.B_IP, 5003)
    sp = spec("AES_CM_128_HMAC_SHA1_80", k)
    locs, _ = env.create("s3", "a,in=" + sp, f"b,remote={b_addr[0]}:{b_addr[1]},out=" + sp)
    it.check_eq(leg_of(env.show("s3"), "a")["srtp"]["passthrough"], True,
                "s3 leg a shows authenticated pass-through")
    na, nb = env.udp(*a_addr), env.udp(*b_addr)
    cap, plain_rx = env.udp(LO, 7301), env.udp(LO, 7303)
    procs.enc("s3-enc-a", "AES_CM_128_HMAC_SHA1_80", k, 7300, (LO, 7301))
    procs.dec("s3-dec-b", "AES_CM_128_HMAC_SHA1_80", k, 0xA3, (LO, 7302), 7303)
    n = 150
    plain = it.make_stream(0xA3, n, 160, seq0=300)
    srtp = protect(procs, 7300, cap, plain, "s3 A")
    got = exchange(na, srtp, locs["a"], nb, "s3 A->B")
    it.check([d for d, _a in got] == srtp, "s3 B received the exact bytes srtpenc produced")
    it.check(all(a == locs["b"] for _d, a in got), "s3 from leg b's relay address")
    # A replay is still refused in pass-through (the replay window is kept).
    na.sendto(srtp[5], locs["a"])
    it.wait_for(lambda: leg_of(env.show("s3"), "a")["drops"].get("srtp_replay") == 1, 3,
                "s3 srtp_replay == 1")
    it.expect_nothing(nb, "s3 B after a replay", quiet=0.2)
    tx = env.udp(LO, 0)
    it.send_paced(tx, [d for d, _a in got], (LO, 7302), gap=0.001)
    expect_plain(plain_rx, plain, "s3 srtpdec on B")
    env.ctl_json("session", "delete", "s3")


def part_forgery(env, procs):
    it.log("---- s4: forged, replayed and wrong-key packets; latching only on authenticated")
    suite = "AES_CM_128_HMAC_SHA1_80"
    k8, kw = key("K8", suite), key("K-wrong", suite)
    k9 = key("K9", "AEAD_AES_128_GCM")
    a_addr, b_addr = (it.A_IP, 4004), (it.B_IP, 5004)
    locs, _ = env.create("s4", "a,in=" + spec(suite, k8),
                         f"b,remote={b_addr[0]}:{b_addr[1]},out=" + spec("AEAD_AES_128_GCM", k9))
    ra = locs["a"]
    na = env.udp(*a_addr)
    x = env.udp(it.B_IP, 4004)      # another address, same port
    y = env.udp(it.A_IP, 4005)      # A's address, another port
    cap, capw, plain_rx = env.udp(LO, 7401), env.udp(LO, 7411), env.udp(LO, 7403)
    procs.enc("s4-enc-a", suite, k8, 7400, (LO, 7401))
    procs.enc("s4-enc-wrong", suite, kw, 7410, (LO, 7411))
    # B is GStreamer on the wire.
    procs.dec("s4-dec-b", "AEAD_AES_128_GCM", k9, 0xA4, b_addr, 7403)
    n = 200
    plain = it.make_stream(0xA4, n, 160, seq0=5000)
    s = protect(procs, 7400, cap, plain, "s4 A")
    w = protect(procs, 7410, capw, plain, "s4 wrong key")
    it.check(all(a != b for a, b in zip(s, w)), "s4 the wrong-key packets differ from the valid")

    def drops():
        return leg_of(env.show("s4"), "a")["drops"]

    def wait_drops(want, what):
        it.wait_for(lambda: drops() == want, 3, f"s4 leg a drops == {want} ({what})")
        it.log(f"ok: s4 leg a drops == {want} ({what})")

    # Before any valid packet: nothing forged may latch the leg.
    it.send_paced(x, w[0:5] + [tamper(p) for p in s[0:5]], ra)
    wait_drops({"srtp_auth": 10}, "wrong-key + tampered from 198.18.0.3, unlatched")
    it.send_paced(na, [tamper(p, at=40) for p in s[0:3]], ra)
    wait_drops({"srtp_auth": 13}, "tampered from A, unlatched")
    it.check_eq(leg_of(env.show("s4"), "a")["remote"], None, "s4 leg a still has no remote")

    # Valid packets latch A.
    it.send_paced(na, s[0:100], ra, gap=0.001)
    it.wait_for(lambda: leg_of(env.show("s4"), "a")["in"]["packets"] == 100, 5,
                "s4 leg a in.packets == 100")
    la = leg_of(env.show("s4"), "a")
    it.check_eq((la["remote"], la["latched"]), (f"{it.A_IP}:4004", True),
                "s4 leg a latched A on the first authenticated packet")

    # From the latched address: replays, tampered and wrong-key packets.
    it.send_paced(na, s[10:30], ra)                              # 20 replays
    it.send_paced(na, [tamper(p) for p in s[100:110]], ra)       # 10 tampered (fresh seq)
    it.send_paced(na, w[100:110], ra)                            # 10 wrong key (fresh seq)
    wait_drops({"srtp_auth": 33, "srtp_replay": 20}, "from the latched address")
    # From elsewhere: even valid packets are refused before SRTP.
    it.send_paced(x, s[110:120] + s[0:5] + [tamper(p) for p in s[120:125]], ra)
    it.send_paced(y, s[125:130], ra)
    wait_drops({"srtp_auth": 33, "srtp_replay": 20, "src_mismatch": 25}, "other sources")
    la = leg_of(env.show("s4"), "a")
    it.check_eq((la["remote"], la["in"]["packets"]), (f"{it.A_IP}:4004", 100),
                "s4 latch unmoved, in.packets counts only authenticated packets")
    it.expect_nothing(x, "s4 198.18.0.3", quiet=0.05)
    it.expect_nothing(y, "s4 A's other port", quiet=0.05)

    # The rest of the valid stream -- including the sequence numbers that the
    # forged packets carried -- still passes: failures did not touch the window.
    it.send_paced(na, s[100:200], ra, gap=0.001)
    expect_plain(plain_rx, plain, "s4 B (srtpdec): the valid stream, nothing forged")
    sh = env.show("s4")
    it.check_eq((leg_of(sh, "a")["in"]["packets"], leg_of(sh, "b")["out"]["packets"]), (n, n),
                "s4 a in / b out packets")
    tot = env.total_drops()
    it.check(tot.get("srtp_auth", 0) >= 33 and tot.get("srtp_replay", 0) >= 21,
             "s4 worker totals include the leg's srtp drops")
    env.ctl_json("session", "delete", "s4")


class Sender(threading.Thread):
    """Sends `packets` to dest at a fixed rate (absolute schedule, bounded)."""

    def __init__(self, sock, packets, dest, interval):
        super().__init__(daemon=True)
        self.sock, self.packets, self.dest, self.interval = sock, packets, dest, interval
        self.sent = 0
        self.stop = threading.Event()

    def run(self):
        t0 = time.monotonic()
        for i, p in enumerate(self.packets):
            if self.stop.is_set():
                return
            delay = t0 + i * self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.sock.sendto(p, self.dest)
            self.sent = i + 1


def part_rekey(env, procs):
    it.log("---- s5: live re-key of leg b's out (AEAD_AES_128_GCM -> AEAD_AES_256_GCM)")
    k10 = key("K10", "AES_CM_128_HMAC_SHA1_80")
    k11 = key("K11", "AEAD_AES_128_GCM")
    k12 = key("K12", "AEAD_AES_256_GCM")
    k13 = key("K13", "AEAD_AES_256_GCM")
    b_addr, c_addr = (it.B_IP, 5010), (it.C_IP, 5011)
    locs, _ = env.create(
        "s5", "a,in=" + spec("AES_CM_128_HMAC_SHA1_80", k10),
        f"b,remote={b_addr[0]}:{b_addr[1]},out=" + spec("AEAD_AES_128_GCM", k11),
        f"c,remote={c_addr[0]}:{c_addr[1]},out=" + spec("AEAD_AES_256_GCM", k12))
    rx_b, rx_c = env.udp(LO, 7503), env.udp(LO, 7513)
    dec_b = procs.dec("s5-dec-b", "AEAD_AES_128_GCM", k11, 0xA5, b_addr, 7503)
    procs.dec("s5-dec-c", "AEAD_AES_256_GCM", k12, 0xA5, c_addr, 7513)
    procs.enc("s5-enc-a", "AES_CM_128_HMAC_SHA1_80", k10, 7500, locs["a"], bind=(it.A_IP, 4010))
    n = 1500
    plain = it.make_stream(0xA5, n, 160, seq0=20000)
    snd = Sender(env.udp(LO, 0), plain, (LO, 7500), 0.002)
    snd.start()
    try:
        it.wait_for(lambda: snd.sent >= 400, 10, "s5 400 packets sent")
        before = snd.sent
        time.sleep(0.05)  # what was sent before `before` has passed isard by now
        upd = env.ctl_json("leg", "update", "s5", "b", "out=" + spec("AEAD_AES_256_GCM", k13))
        it.check_eq(leg_of(upd, "b")["srtp"]["out"], "AEAD_AES_256_GCM",
                    "s5 leg update answer: b out is AEAD_AES_256_GCM")
        procs.stop(dec_b)
        procs.dec("s5-dec-b2", "AEAD_AES_256_GCM", k13, 0xA5, b_addr, 7503)
        after = snd.sent  # sent from here on: B's new srtpdec is listening
        it.log(f"s5 re-key between packets {before} and {after} of {n}")
        it.check(after < n - 200, "s5 the new srtpdec listens well before the stream ends")
        snd.join(timeout=15)
        it.check(not snd.is_alive(), "s5 sender finished")
    finally:
        snd.stop.set()
        snd.join(timeout=5)
    got_c = [d for d, _a in it.recv_all(rx_c, n, 5)]
    it.check(got_c == plain, f"s5 C (not re-keyed) got all {n} packets intact, in order "
                             f"(got {len(got_c)})")
    got_b = [d for d, _a in it.drain(rx_b, 0.5, max_total=n + 10)]
    index = {p: i for i, p in enumerate(plain)}
    idx = []
    for d in got_b:
        if d not in index:
            raise it.TestFailure(f"s5 B got a packet that A did not send (len {len(d)})")
        idx.append(index[d])
    it.check(all(x < y for x, y in zip(idx, idx[1:])), "s5 B: in order, no duplicates")
    have = set(idx)
    miss_before = [i for i in range(before) if i not in have]
    miss_after = [i for i in range(after, n) if i not in have]
    it.check_eq((miss_before, miss_after), ([], []),
                "s5 B: nothing lost before the update nor after the new srtpdec listened")
    it.log(f"s5 B got {len(idx)} of {n}; {n - len(idx)} lost in the switch window "
           f"(at most {after - before})")
    it.check(any(i >= after for i in idx) and any(i < before for i in idx),
             "s5 B decrypted packets with the old and with the new key")
    sh = env.show("s5")
    it.check_eq(tuple(leg_of(sh, l)[d]["packets"] for l, d in (("a", "in"), ("b", "out"),
                                                                ("c", "out"))),
                (n, n, n), "s5 a in, b out, c out packets (isard lost nothing)")
    it.check_eq([leg_of(sh, l)["drops"] for l in "abc"], [{}, {}, {}], "s5 no drops")
    env.ctl_json("session", "delete", "s5")


if __name__ == "__main__":
    sys.exit(it.main(body, "srtp_gstreamer"))
