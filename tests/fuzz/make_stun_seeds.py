#!/usr/bin/env python3
"""Writes the STUN/TURN seed corpus for tests/fuzz/fuzz_stun.cc into
tests/fuzz/corpus/stun/: the RFC 5769 vectors and a few TURN messages built
here (Allocate, 401, Refresh, CreatePermission, ChannelBind, Send, Data,
ChannelData). Deterministic; rerun after changing it and commit the files."""
import hashlib
import hmac
import os
import struct
import sys
import zlib

COOKIE = 0x2112A442
TXID = bytes(range(1, 13))
FUZZ_KEY = b"isar-fuzz-key-16"  # the key fuzz_stun.cc checks MESSAGE-INTEGRITY with


def h(s):
    return bytes.fromhex("".join(s.split()))


RFC5769 = {
    "rfc5769_2_1_request": h("""
        00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
        00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36
        00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
        00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49
        c1 b5 71 a2 80 28 00 04 e5 7a 3b cf"""),
    "rfc5769_2_2_response_v4": h("""
        01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
        00 20 00 08 00 01 a1 47 e1 12 a6 43
        00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53
        f0 6b e7 d7 80 28 00 04 c0 7d 4c 96"""),
    "rfc5769_2_3_response_v6": h("""
        01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
        00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
        00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75
        bf e3 ed 41 80 28 00 04 c8 fb 0b 4c"""),
    "rfc5769_2_4_long_term": h("""
        00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
        00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
        00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34
        6f 4c 39 46 53 54 76 79 36 34 73 41
        00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
        00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2
        8c a8 96 66"""),
}


def msg_type(method, cls):
    return ((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2)
            | ((cls & 1) << 4) | ((cls & 2) << 7))


class Msg:
    def __init__(self, method, cls, txid=TXID):
        self.type = msg_type(method, cls)
        self.txid = txid
        self.body = b""

    def header(self, body_len):
        return struct.pack(">HHI", self.type, body_len, COOKIE) + self.txid

    def add(self, t, value):
        pad = (4 - len(value) % 4) % 4
        self.body += struct.pack(">HH", t, len(value)) + value + b"\0" * pad
        return self

    def add_xor(self, t, family, ip, port):
        xport = port ^ (COOKIE >> 16)
        mask = struct.pack(">I", COOKIE) + self.txid
        xip = bytes(a ^ b for a, b in zip(ip, mask))
        return self.add(t, struct.pack(">BBH", 0, 1 if family == 4 else 2, xport) + xip)

    def add_integrity(self, key):
        hdr = self.header(len(self.body) + 24)
        mac = hmac.new(key, hdr + self.body, hashlib.sha1).digest()
        return self.add(0x0008, mac)

    def add_fingerprint(self):
        hdr = self.header(len(self.body) + 8)
        crc = zlib.crc32(hdr + self.body) ^ 0x5354554E
        return self.add(0x8028, struct.pack(">I", crc))

    def bytes(self):
        return self.header(len(self.body)) + self.body


def seeds():
    out = dict(RFC5769)
    out["allocate_request_noauth"] = (
        Msg(0x003, 0).add(0x0019, b"\x11\0\0\0").add(0x001A, b"").add_fingerprint().bytes())
    out["allocate_error_401"] = (
        Msg(0x003, 3).add(0x0009, b"\0\0\x04\x01Unauthenticated")
        .add(0x0014, b"isar.example").add(0x0015, b"0000000065a1b2c3" + b"0" * 24)
        .add(0x8022, b"isar").add_fingerprint().bytes())
    out["allocate_request_auth"] = (
        Msg(0x003, 0).add(0x0019, b"\x11\0\0\0").add(0x000D, struct.pack(">I", 600))
        .add(0x0018, b"\x80").add(0x0017, b"\x01\0\0\0")
        .add(0x0006, b"1700000000:alice").add(0x0014, b"isar.example")
        .add(0x0015, b"0000000065a1b2c3" + b"0" * 24)
        .add_integrity(FUZZ_KEY).add_fingerprint().bytes())
    out["allocate_success"] = (
        Msg(0x003, 2).add_xor(0x0016, 4, bytes([203, 0, 113, 1]), 49152)
        .add_xor(0x0020, 4, bytes([198, 51, 100, 7]), 50000)
        .add(0x000D, struct.pack(">I", 600)).add_integrity(FUZZ_KEY).add_fingerprint().bytes())
    out["refresh_request"] = (
        Msg(0x004, 0).add(0x000D, b"\0\0\0\0").add(0x0006, b"alice")
        .add_integrity(FUZZ_KEY).bytes())
    out["create_permission_v6"] = (
        Msg(0x008, 0).add_xor(0x0012, 6, bytes.fromhex("2a001450400100000000000000000005"), 0)
        .add_integrity(FUZZ_KEY).add_fingerprint().bytes())
    out["channel_bind_request"] = (
        Msg(0x009, 0).add(0x000C, b"\x40\x01\0\0")
        .add_xor(0x0012, 4, bytes([203, 0, 113, 9]), 5004).add_integrity(FUZZ_KEY).bytes())
    out["send_indication_v4"] = (
        Msg(0x006, 1).add_xor(0x0012, 4, bytes([203, 0, 113, 9]), 5004)
        .add(0x001A, b"").add(0x0013, b"\x80\x00\x00\x01rtp!").bytes())
    out["send_indication_v6_fp"] = (
        Msg(0x006, 1).add_xor(0x0012, 6, bytes.fromhex("20010db8000000000000000000000020"), 9)
        .add(0x0013, b"hello").add_fingerprint().bytes())
    out["data_indication_v4"] = (
        Msg(0x007, 1).add_xor(0x0012, 4, bytes([198, 51, 100, 20]), 61000)
        .add(0x0013, b"abcde").bytes())
    out["unknown_attributes"] = (
        Msg(0x001, 0).add(0x0031, b"abc").add(0x7FFF, b"").add(0xC001, b"opt").bytes())
    out["channel_data"] = struct.pack(">HH", 0x4001, 5) + b"hello\0\0\0"
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "stun")
    os.makedirs(outdir, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
