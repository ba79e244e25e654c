#!/usr/bin/env python3
"""Writes the TURN stream seed corpus for tests/fuzz/fuzz_stream.cc into
tests/fuzz/corpus/stream/. An input is: one byte (low 4 bits: how many piece
sizes follow), the piece sizes, then the connection's bytes. Deterministic;
rerun after changing it and commit the files."""
import os
import struct
import sys

COOKIE = 0x2112A442
TXID = bytes(range(1, 13))


def stun(mtype, body=b""):
    return struct.pack("!HHI", mtype, len(body), COOKIE) + TXID + body


def attr(t, v):
    pad = (4 - len(v) % 4) % 4
    return struct.pack("!HH", t, len(v)) + v + b"\0" * pad


def chdata(ch, payload, pad=True):
    m = struct.pack("!HH", ch, len(payload)) + payload
    if pad:
        m += b"\0" * ((4 - len(m) % 4) % 4)
    return m


def seed(cuts, stream):
    return bytes([len(cuts)]) + bytes(cuts) + stream


allocate = stun(0x0003, attr(0x0019, b"\x11\0\0\0"))
send_ind = stun(0x0016, attr(0x0012, b"\0\x01\x21\x12\x2b\x12\xa4\x42") + attr(0x0013, b"hello"))
SEEDS = {
    "allocate_whole": seed([], allocate),
    "allocate_bytewise": seed([0] * 15, allocate),
    "binding_then_channel": seed([3, 7], stun(0x0001) + chdata(0x4001, b"abcde")),
    "channel_padded_series": seed([1, 2, 5],
                                  b"".join(chdata(0x4000 + i, bytes(i)) for i in range(9))),
    "channel_unpadded_last": seed([], chdata(0x7fff, b"xyz", pad=False)),
    "send_indication": seed([9], send_ind + chdata(0x4002, b"\x80" * 172)),
    "garbage_http": seed([], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    "garbage_tls_hello": seed([], bytes.fromhex("16030100c8010000c40303") + bytes(32)),
    "garbage_high_bits": seed([], b"\x80\x00\x00\x00"),
    "stun_bad_length": seed([], struct.pack("!HHI", 1, 2, COOKIE) + TXID + b"\0\0"),
    "stun_too_long": seed([], struct.pack("!HHI", 3, 0x2000, COOKIE) + TXID),
    "channel_max": seed([200, 200], chdata(0x4000, bytes(4092))),
    "mixed_stalled": seed([4], allocate + chdata(0x4003, b"12345678")[:7]),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "stream")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
