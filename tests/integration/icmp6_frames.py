"""Not a test: ICMPv6 / Neighbor Discovery frames built and parsed byte by byte
for the IPv6 integration tests (RFC 4443, RFC 4861), Python 3 stdlib only.
Frames are whole Ethernet frames for an AF_PACKET socket in the namespace, so
a test can also send what a kernel would not (hop limit 254, bad checksum)."""

import socket
import struct

ETH_P_IPV6 = 0x86DD
ICMPV6 = 58
ECHO_REQUEST, ECHO_REPLY = 128, 129
NS, NA = 135, 136
OPT_SLLA, OPT_TLLA = 1, 2
NA_R, NA_S, NA_O = 0x80, 0x40, 0x20  # flags in the first byte after the checksum


def mac_bytes(m):
    return bytes(int(x, 16) for x in m.split(":"))


def mac_str(b):
    return ":".join(f"{x:02x}" for x in b)


def a6(ip):
    return socket.inet_pton(socket.AF_INET6, ip)


def s6(raw):
    return socket.inet_ntop(socket.AF_INET6, raw)


def solicited_node(ip):
    """(ff02::1:ffXX:XXXX, its Ethernet multicast MAC 33:33:ff:XX:XX:XX)."""
    low = a6(ip)[13:]
    grp = s6(bytes.fromhex("ff02" + "0000" * 4 + "0001ff") + low)
    return grp, "33:33:" + mac_str(a6(grp)[12:])


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s >> 16) + (s & 0xFFFF)
    return ~s & 0xFFFF


def icmp6_checksum(src, dst, msg):
    pseudo = a6(src) + a6(dst) + struct.pack("!I3xB", len(msg), ICMPV6)
    return checksum(pseudo + msg)


def frame(src_mac, dst_mac, src, dst, icmp, hop=255, bad_checksum=False):
    """An Ethernet + IPv6 + ICMPv6 frame; `icmp` with its checksum field 0."""
    c = icmp6_checksum(src, dst, icmp)
    if bad_checksum:
        c ^= 0x5A5A
    icmp = icmp[:2] + struct.pack("!H", c) + icmp[4:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), ICMPV6, hop) + a6(src) + a6(dst)
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + struct.pack("!H", ETH_P_IPV6) + ip6 + icmp


def neighbor_solicitation(src_mac, src, target, unicast_to=None, hop=255, sllao=True,
                          bad_checksum=False):
    """NS for `target` from src/src_mac: to the target's solicited-node group
    (or unicast to `unicast_to` = (mac, ip))."""
    if unicast_to:
        dst_mac, dst = unicast_to
    else:
        dst, dst_mac = solicited_node(target)
    icmp = struct.pack("!BBHI", NS, 0, 0, 0) + a6(target)
    if sllao:
        icmp += struct.pack("!BB", OPT_SLLA, 1) + mac_bytes(src_mac)
    return frame(src_mac, dst_mac, src, dst, icmp, hop, bad_checksum)


def echo_request(src_mac, dst_mac, src, dst, ident, seq, payload, bad_checksum=False):
    icmp = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq) + payload
    return frame(src_mac, dst_mac, src, dst, icmp, 64, bad_checksum)


def parse(fr):
    """An ICMPv6 frame as a dict (None for anything else): eth_src/eth_dst,
    src/dst/hop, type/code, checksum_ok; NS/NA: target, flags (NA), options
    {type: value}; echo: ident, seq, payload."""
    if len(fr) < 14 + 40 + 4 or struct.unpack("!H", fr[12:14])[0] != ETH_P_IPV6:
        return None
    ip = fr[14:54]
    plen, nh, hop = struct.unpack("!HBB", ip[4:8])
    if nh != ICMPV6 or len(fr) < 54 + plen:
        return None
    icmp = fr[54:54 + plen]
    src, dst = s6(ip[8:24]), s6(ip[24:40])
    d = {"eth_dst": mac_str(fr[0:6]), "eth_src": mac_str(fr[6:12]), "src": src, "dst": dst,
         "hop": hop, "type": icmp[0], "code": icmp[1],
         "checksum_ok": icmp6_checksum(src, dst, icmp) == 0}
    if icmp[0] in (NS, NA) and len(icmp) >= 24:
        d["flags"] = icmp[4]
        d["target"] = s6(icmp[8:24])
        opts, off = {}, 24
        for _ in range(16):
            if off + 2 > len(icmp) or icmp[off + 1] == 0:
                break
            n = icmp[off + 1] * 8
            opts[icmp[off]] = icmp[off + 2:off + n]
            off += n
        d["options"] = opts
        d["lladdr"] = mac_str(opts.get(OPT_TLLA if icmp[0] == NA else OPT_SLLA, b"")[:6]) \
            if (OPT_TLLA if icmp[0] == NA else OPT_SLLA) in opts else None
    elif icmp[0] in (ECHO_REQUEST, ECHO_REPLY) and len(icmp) >= 8:
        d["ident"], d["seq"] = struct.unpack("!HH", icmp[4:8])
        d["payload"] = icmp[8:]
    return d


def capture(sock, pred, timeout, first=True, limit=2000):
    """Parsed ICMPv6 frames from an AF_PACKET socket for which pred(d) holds,
    read for at most `timeout` s (returns at the first when `first`)."""
    import time
    out = []
    deadline = time.monotonic() + timeout
    for _ in range(limit):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            fr = sock.recv(4096)
        except socket.timeout:
            break
        d = parse(fr)
        if d is not None and pred(d):
            out.append(d)
            if first:
                break
    return out
