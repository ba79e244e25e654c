#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets other than fuzz_stun
(make_stun_seeds.py writes that one) into tests/fuzz/corpus/<target>/:

  classify  frames (first byte: receive port / chain flag, second: segment
            size): RTP, RTCP, STUN, TURN ChannelData and Send indications,
            DTLS, ARP, ICMP echo, fragments, IP options, VLAN, runts; IPv6
            UDP (extension headers, fragment, ESP, zero checksum), ND,
            ICMPv6 echo
  srtp      plaintext RTP/RTCP (round-trip mode), and the same protected with
            every suite under fuzz_srtp.cc's keys (written by the replay
            binary itself: pass its path as --srtp-replay, default
            build/tests/fuzz/fuzz_srtp_replay)
  control   one request per line: every command, valid and invalid
  config    systemd/isard.toml and smaller variants

Deterministic; rerun after changing it and commit the files.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import make_stun_seeds  # noqa: E402

RELAY0 = bytes([198, 18, 0, 1])
RELAY1 = bytes([198, 19, 0, 1])
PEER = bytes([198, 18, 0, 10])
RMAC = bytes.fromhex("020000000001")
PMAC = bytes.fromhex("020000000a0a")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(payload, etype=0x0800, dst=RMAC, src=PMAC):
    return dst + src + struct.pack(">H", etype) + payload


def ipv4(proto, payload, src=PEER, dst=RELAY0, options=b"", frag=0x4000, ttl=64, total=None):
    ihl = 5 + len(options) // 4
    tl = total if total is not None else 20 + len(options) + len(payload)
    h = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, tl, 0x1234, frag, ttl, proto, 0, src, dst)
    h += options
    h = h[:10] + struct.pack(">H", csum(h)) + h[12:]
    return h + payload


RELAY6 = bytes.fromhex("20010002000000000000000000000001")
PEER6 = bytes.fromhex("20010002000000000000000000000010")


def ipv6(proto, payload, src=PEER6, dst=RELAY6, ext=(), hop=64):
    """Ethernet + IPv6 + extension headers ((type, length) each) + payload."""
    chain = [t for t, _ in ext] + [proto]
    hdrs = b""
    for i, (t, ln) in enumerate(ext):
        h = bytearray(ln)
        h[0] = chain[i + 1]
        h[1] = 0 if t == 44 else ln // 8 - 1
        hdrs += bytes(h)
    body = hdrs + payload
    h = struct.pack(">IHBB16s16s", 6 << 28, len(body), chain[0], hop, src, dst)
    return eth(h + body, 0x86DD)


def udp6(payload, sport=5004, dport=30000, src=PEER6, dst=RELAY6, cksum=True, ext=()):
    ln = 8 + len(payload)
    u = struct.pack(">HHHH", sport, dport, ln, 0) + payload
    if cksum:
        c = csum(src + dst + struct.pack(">IxxxB", ln, 17) + u) or 0xFFFF
        u = u[:6] + struct.pack(">H", c) + u[8:]
    return ipv6(17, u, src, dst, ext)


def udp4(payload, sport=5004, dport=30000, src=PEER, dst=RELAY0, cksum=True, **kw):
    ln = 8 + len(payload)
    u = struct.pack(">HHHH", sport, dport, ln, 0) + payload
    if cksum:
        c = csum(src + dst + struct.pack(">BBH", 0, 17, ln) + u) or 0xFFFF
        u = u[:6] + struct.pack(">H", c) + u[8:]
    return eth(ipv4(17, u, src=src, dst=dst, **kw))


def rtp(seq=1, ssrc=0x11223344, n=160, pt=0, first=0x80, marker=False):
    return struct.pack(">BBHII", first, pt | (0x80 if marker else 0), seq, seq * 160, ssrc) + bytes(
        (i * 7) & 0xFF for i in range(n))


def rtcp_sr(ssrc=0x11223344):
    body = struct.pack(">IIIII", ssrc, 0xE1234567, 0x89ABCDEF, 12345, 10) + struct.pack(">I", 1600)
    sr = struct.pack(">BBH", 0x80, 200, len(body) // 4) + body
    return sr


def rtcp_rr_sdes(ssrc=0x11223344):
    rb = struct.pack(">IIIIII", 0x55667788, 0x01000005, 1000, 20, 0, 0)
    rr = struct.pack(">BBHI", 0x81, 201, (4 + len(rb)) // 4, ssrc) + rb
    cname = b"\x01\x08isar@box\x00\x00"
    chunk = struct.pack(">I", ssrc) + cname
    chunk += b"\0" * (-len(chunk) % 4)
    sdes = struct.pack(">BBH", 0x81, 202, len(chunk) // 4) + chunk
    return rr + sdes


def arp(op=1, spa=PEER, tpa=RELAY0):
    body = struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, PMAC, spa, b"\0" * 6, tpa)
    return eth(body, 0x0806, dst=b"\xff" * 6)


def icmp_echo(t=8, data=b"isar-ping"):
    m = struct.pack(">BBHHH", t, 0, 0, 0x42, 1) + data
    m = m[:2] + struct.pack(">H", csum(m)) + m[4:]
    return eth(ipv4(1, m))


def classify_seeds():
    stun = make_stun_seeds.seeds()
    f = {}
    f["rtp"] = udp4(rtp())
    f["rtp_min"] = udp4(rtp(n=0))
    f["rtp_short"] = udp4(rtp()[:6])
    f["rtcp_sr"] = udp4(rtcp_sr(), dport=30001)
    f["rtp_iface1"] = udp4(rtp(), dst=RELAY1, src=bytes([198, 19, 0, 9]), dport=30002)
    f["rtp_padded_eth"] = udp4(b"\x80\x00\x00\x01") + b"\0" * 12
    f["rtp_trailer"] = udp4(rtp(n=20)) + b"trailer!" * 4
    f["rtp_no_udp_cksum"] = udp4(rtp(), cksum=False)
    f["rtp_bad_port"] = udp4(rtp(), dport=1234)
    f["rtp_ip_options"] = udp4(rtp(), options=b"\x01\x01\x01\x00")
    f["rtp_fragment"] = udp4(rtp(), frag=0x2000)
    f["rtp_ttl0"] = udp4(rtp(), ttl=0)
    f["rtp_total_len_short"] = udp4(rtp(), total=30)
    f["rtp_not_for_us"] = udp4(rtp(), dst=bytes([198, 18, 0, 99]))
    f["rtp_broadcast"] = udp4(rtp(), dst=bytes([198, 18, 0, 255]))
    f["dtls_hello"] = udp4(b"\x16\xfe\xfd" + bytes(11) + b"\x00\x10" + bytes(16))
    f["stun_binding_relay"] = udp4(stun["rfc5769_2_1_request"])
    for name in ("allocate_request_auth", "refresh_request", "channel_bind_request",
                 "send_indication_v4", "send_indication_v6_fp", "channel_data",
                 "allocate_request_noauth"):
        f["turn_" + name] = udp4(stun[name], sport=40000, dport=3478)
    f["turn_channel_data_5349"] = udp4(stun["channel_data"], sport=40000, dport=5349)
    f["arp_request"] = arp()
    f["arp_reply"] = arp(op=2)
    f["arp_other_ip"] = arp(tpa=bytes([198, 18, 0, 77]))
    f["icmp_echo"] = icmp_echo()
    f["icmp_echo_reply"] = icmp_echo(t=0)
    f["ipv6"] = eth(bytes.fromhex("60000000000811ff") + bytes(32) + bytes(8), 0x86DD)
    f["v6_rtp"] = udp6(rtp())
    f["v6_rtcp_sr"] = udp6(rtcp_sr(), dport=30001)
    f["v6_rtp_padded_eth"] = udp6(rtp(n=20)) + b"\0" * 6
    f["v6_rtp_hbh_dstopts"] = udp6(rtp(), ext=[(0, 8), (60, 16)])
    f["v6_rtp_routing"] = udp6(rtp(), ext=[(43, 24)])
    f["v6_fragment"] = udp6(rtp(), ext=[(44, 8)])
    f["v6_esp"] = udp6(rtp(), ext=[(50, 8)])
    f["v6_zero_cksum"] = udp6(rtp(), cksum=False)
    f["v6_not_for_us"] = udp6(rtp(), dst=bytes.fromhex("20010002000000000000000000000099"))
    f["v6_turn_channel_data"] = udp6(stun["channel_data"], sport=40000, dport=3478)
    f["v6_turn_allocate"] = udp6(stun["allocate_request_noauth"], sport=40000, dport=3478)
    f["v6_nd_ns"] = ipv6(58, bytes([135, 0, 0, 0, 0, 0, 0, 0]) + RELAY6 + bytes([1, 1]) + PMAC,
                         dst=bytes.fromhex("ff0200000000000000000001ff000001"), hop=255)
    f["v6_nd_na_all_nodes"] = ipv6(58, bytes([136, 0, 0, 0, 0x60, 0, 0, 0]) + PEER6,
                                   dst=bytes.fromhex("ff020000000000000000000000000001"), hop=255)
    f["v6_echo_request"] = ipv6(58, bytes([128, 0, 0, 0, 0, 1, 0, 1]) + b"isar-ping")
    f["v6_tcp"] = ipv6(6, bytes(20))
    f["vlan"] = eth(b"\x00\x05\x08\x00" + ipv4(17, struct.pack(">HHHH", 5004, 30000, 8, 0)),
                    0x8100)
    f["tcp"] = eth(ipv4(6, bytes(20)))
    f["runt"] = eth(b"")[:10]
    out = {}
    for name, frame in f.items():
        out[name] = b"\x00\x00" + frame  # port 0, one exact buffer
    out["rtp_port5"] = b"\x01\x00" + f["rtp_iface1"]
    out["rtp_no_iface_port"] = b"\x02\x00" + f["rtp"]
    out["rtp_chain64"] = b"\x04\x40" + f["rtp"]
    out["turn_send_chain16"] = b"\x04\x10" + f["turn_send_indication_v4"]
    return out


def srtp_plain_seeds():
    # byte 0: suite (bits 0-1) | mode << 2 (2: RTP round trip, 3: RTCP round trip);
    # byte 1: protecting engine.
    csrc_ext = (struct.pack(">BBHII", 0x92, 96, 7, 1234, 0xCAFEBABE) + struct.pack(">II", 1, 2) +
                struct.pack(">HH", 0xBEDE, 2) + b"\x10\xaa\x21\xbb\xcc\x00\x00\x00" + bytes(40))
    padding = struct.pack(">BBHII", 0xA0, 111, 9, 480, 0xDEADBEEF) + bytes(20) + b"\0\0\0\x04"
    return {
        "plain_rtp_basic": b"\x08\x00" + rtp(n=40),
        "plain_rtp_csrc_ext": b"\x09\x01" + csrc_ext,
        "plain_rtp_padding": b"\x0a\x02" + padding,
        "plain_rtcp_sr": b"\x0c\x00" + rtcp_sr(),
        "plain_rtcp_rr_sdes": b"\x0f\x01" + rtcp_rr_sdes(),
    }


def control_seeds():
    def line(*reqs):
        return ("\n".join(json.dumps(r, separators=(",", ":")) for r in reqs) + "\n").encode()

    key80 = "AES_CM_128_HMAC_SHA1_80:" + "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
    gcm = "AEAD_AES_128_GCM:" + "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw=="
    c = {}
    c["ping"] = line({"cmd": "ping"})
    c["ping_id"] = line({"cmd": "ping", "id": 7})
    c["create"] = line({"cmd": "session.create", "id": "c1", "session": "s1",
                        "legs": [{"name": "a", "remote": "198.18.0.10:5000"}, {"name": "b"}]})
    c["create_srtp"] = line({"cmd": "session.create", "session": "s2", "metrics": True,
                             "legs": [{"name": "a", "remote": "198.18.0.10:5000", "in": key80,
                                       "out": key80, "clock_rate": 48000, "max_pps": 500},
                                      {"name": "b", "in": gcm, "out": gcm, "interface": 0,
                                       "targets": ["a"]}]})
    c["create_three_legs"] = line({"cmd": "session.create", "session": "conf",
                                   "legs": [{"name": "a", "targets": ["b", "c"]},
                                            {"name": "b", "targets": ["a"]},
                                            {"name": "c", "targets": ["a"]}]})
    c["create_get_list_delete"] = line(
        {"cmd": "session.create", "session": "s", "legs": [{"name": "a"}, {"name": "b"}]},
        {"cmd": "session.get", "session": "s"},
        {"cmd": "session.list"},
        {"cmd": "leg.update", "session": "s", "leg": "a", "remote": "198.18.0.20:6000"},
        {"cmd": "leg.update", "session": "s", "leg": "b", "remote": None, "in": key80},
        {"cmd": "stats"},
        {"cmd": "status"},
        {"cmd": "session.delete", "session": "s"},
        {"cmd": "session.get", "session": "s"})
    c["create_twice"] = line(
        {"cmd": "session.create", "session": "x", "legs": [{"name": "a"}]},
        {"cmd": "session.create", "session": "x", "legs": [{"name": "a"}]})
    c["update_rekey"] = line(
        {"cmd": "session.create", "session": "k", "legs": [{"name": "a", "in": key80}]},
        {"cmd": "leg.update", "session": "k", "leg": "a", "in": gcm, "out": gcm})
    c["stats"] = line({"cmd": "stats"})
    c["status"] = line({"cmd": "status"})
    c["drain_then_create"] = line({"cmd": "drain"}, {"cmd": "status"},
                                  {"cmd": "session.create", "session": "d", "legs": [{"name": "a"}]})
    c["wedge_forbidden"] = line({"cmd": "debug.wedge_worker", "worker": 0, "seconds": 1})
    c["turn"] = line({"cmd": "turn.list"}, {"cmd": "turn.get", "allocation": "1"},
                     {"cmd": "turn.delete", "allocation": "1"})
    c["errors"] = line({}, {"cmd": 5}, {"cmd": "nope"}, {"cmd": "session.get"},
                       {"cmd": "session.create", "session": "e", "legs": [{"name": "a", "remote": "1.2.3.4:70000"}]},
                       {"cmd": "session.create", "session": "e", "legs": [{"name": "a", "in": "AES_CM_128_HMAC_SHA1_80:!!"}]},
                       {"cmd": "session.create", "session": "e", "legs": [{"name": "a", "interface": 4294967296}]},
                       {"cmd": "leg.update", "session": "zz", "leg": "a", "remote": None})
    c["not_json"] = b'{"cmd": "ping"\n[1,2,3]\n"str"\n\n{"cmd":"ping","id":{"k":[1,2.5,null]}}\n'
    return c


def config_seeds():
    base = open(os.path.join(TOP, "systemd", "isard.toml"), "rb").read()
    s = {"isard_toml": base}
    s["minimal"] = b'[[interface]]\nport = 0\naddress = "198.18.0.1/24"\n'
    s["nic"] = (b'[eal]\nargs = ["-l", "2-4", "-a", "0000:03:00.0", "--file-prefix", "isar"]\n'
                b'[[interface]]\nport = 0\naddress = "203.0.113.10/24"\ngateway = "203.0.113.1"\n')
    s["two_ifaces"] = (b'[[interface]]\nport = 0\naddress = "198.18.0.1/24"\ntx_checksum_offload = false\n'
                       b'[[interface]]\nport = 1\naddress = "198.19.0.1/16"\ngateway = "198.19.0.254"\n'
                       b'[relay]\nport_min = 20000\nport_max = 20999\nstrict_source = false\n'
                       b'[debug]\nallow_wedge = true\n[log]\nlevel = "debug"\n[metrics]\nlisten = ""\n')
    s["turn"] = (b'[[interface]]\nport = 0\naddress = "198.18.0.1/24"\n'
                 b'[turn]\nlisten_udp = [3478, 5349]\nrealm = "isar.example"\n'
                 b'allowed_peer = ["10.0.0.0/8"]\ndenied_peer = ["0.0.0.0/8", "127.0.0.0/8"]\n'
                 b'max_allocations = 1000\nuser_quota = 5\nallocate_rate = 0\n'
                 b'default_lifetime_s = 300\nmax_lifetime_s = 600\nnonce_lifetime_s = 60\n')
    s["bad_key"] = b'[[interface]]\nport = 0\naddress = "198.18.0.1/24"\n[relay]\nnope = 1\n'
    s["bad_toml"] = b'[[interface]\nport = = 0\n'
    return s


def write(outdir, seeds, clean=True):
    if clean and os.path.isdir(outdir):
        shutil.rmtree(outdir)
    os.makedirs(outdir, exist_ok=True)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
    print(f"{outdir}: {len(seeds)} files")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--srtp-replay", default=os.path.join(TOP, "build", "tests", "fuzz",
                                                          "fuzz_srtp_replay"))
    ap.add_argument("--out", default=os.path.join(HERE, "corpus"))
    a = ap.parse_args()
    write(os.path.join(a.out, "classify"), classify_seeds())
    write(os.path.join(a.out, "control"), control_seeds())
    write(os.path.join(a.out, "config"), config_seeds())
    srtp_dir = os.path.join(a.out, "srtp")
    write(srtp_dir, srtp_plain_seeds())
    env = dict(os.environ, FUZZ_SRTP_WRITE_SEEDS=srtp_dir)
    subprocess.run([a.srtp_replay, os.path.join(srtp_dir, "plain_rtp_basic")], env=env, check=True)
    print(f"{srtp_dir}: {len(os.listdir(srtp_dir))} files after protecting")


if __name__ == "__main__":
    main()
