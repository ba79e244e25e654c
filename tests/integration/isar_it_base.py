"""Not a test: the parts of the integration harness (isar_it.py) that need no
Env, Python 3 stdlib only: the addresses of the test network, failures and
checks, bounded waits, RTP packets, receiving and sending on the endpoints'
sockets, endpoint text. isar_it re-exports every name here, so the tests use
them as isar_it.check, isar_it.A_IP and so on."""

import socket
import struct
import subprocess
import time

SKIP = 77

RELAY_IP = "198.18.0.1"  # isard's address on the veth (198.18.0.0/24)
A_IP = "198.18.0.2"   # endpoint addresses inside the namespace
B_IP = "198.18.0.3"
C_IP = "198.18.0.4"
# IPv6 (issue #11): Env(addresses=[f"{RELAY_IP}/24", f"{RELAY_IP6}/64"], ns_ip6=(A_IP6, ...))
RELAY_IP6 = "2001:2::1"  # isard's IPv6 address on the veth (2001:2::/64)
A_IP6 = "2001:2::2"   # IPv6 endpoint addresses inside the namespace (nodad)
B_IP6 = "2001:2::3"
C_IP6 = "2001:2::4"


class TestFailure(Exception):
    pass


class Skip(Exception):
    pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(cond, what):
    if not cond:
        raise TestFailure(what)
    log(f"ok: {what}")


def counter(d, names, what):
    """The value of the first of `names` present in the dict d (a stats
    section); fails naming the keys d has. For counters whose exact name is
    another branch's choice (issue #11's ND counters)."""
    for n in names:
        if n in d:
            return d[n]
    raise TestFailure(f"{what}: none of {list(names)} in {sorted(d)}")


def check_eq(got, want, what):
    if got != want:
        raise TestFailure(f"{what}: got {got!r}, want {want!r}")
    log(f"ok: {what} == {want!r}")


def wait_for(pred, timeout, what, interval=0.05):
    """Polls pred() (bounded in time) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TestFailure(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def run(cmd, check_rc=True, timeout=20, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check_rc and p.returncode != 0:
        raise TestFailure(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


# ---- RTP ---------------------------------------------------------------------

def rtp_packet(seq, ts, ssrc, payload, pt=0, marker=False):
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF,
                       ts & 0xFFFFFFFF, ssrc) + payload


def rtp_parse(data):
    if len(data) < 12:
        return None
    b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    return {"v": b0 >> 6, "pt": b1 & 0x7F, "seq": seq, "ts": ts, "ssrc": ssrc,
            "payload": data[12:]}


def make_stream(ssrc, count, size=160, seq0=1000, pt=0):
    """`count` RTP packets with increasing seq/ts and a payload that encodes
    the ssrc and packet index (so corruption and reordering are visible)."""
    out = []
    for i in range(count):
        body = struct.pack("!II", ssrc, i)
        payload = (body * (size // len(body) + 1))[:size]
        out.append(rtp_packet(seq0 + i, 160 * i, ssrc, payload, pt))
    return out


# ---- sockets ------------------------------------------------------------------

def recv_all(sock, count, timeout, max_total=100000):
    """Receives up to `count` datagrams, waiting at most `timeout` seconds in
    all. Returns a list of (data, (ip, port))."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count and len(got) < max_total:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data, addr = sock.recvfrom(65535)
        except socket.timeout:
            break
        got.append((data, addr[:2]))  # IPv6: (ip, port, flowinfo, scope) -> (ip, port)
    return got


def drain(sock, quiet=0.2, max_total=100000):
    """Reads whatever arrives until `quiet` seconds pass with nothing."""
    got = []
    sock.settimeout(quiet)
    while len(got) < max_total:
        try:
            data, addr = sock.recvfrom(65535)
        except socket.timeout:
            break
        got.append((data, addr[:2]))
    return got


def send_paced(sock, packets, dest, gap=0.0005):
    """Sends packets with a small gap: af_packet's RX ring and the veth must
    not overflow on a busy 2-core machine (the point is correctness, not
    throughput)."""
    for i, p in enumerate(packets):
        sock.sendto(p, dest)
        if gap and i % 8 == 7:
            time.sleep(gap * 8)


def expect_stream(sock, sent, src, what, timeout=5, ordered=True):
    """Receives len(sent) datagrams on `sock` and checks that they are exactly
    `sent` (in order unless `ordered` is false), each from `src` (the relay's
    address and leg port)."""
    got = recv_all(sock, len(sent), timeout)
    check_eq(len(got), len(sent), f"{what}: datagrams received")
    bad_src = [a for _d, a in got if a != src]
    if bad_src:
        raise TestFailure(f"{what}: {len(bad_src)} datagram(s) not from {src}: {bad_src[:3]}")
    if ordered:
        for i, ((data, _a), want) in enumerate(zip(got, sent)):
            if data != want:
                h, w = rtp_parse(data), rtp_parse(want)
                raise TestFailure(f"{what}: datagram {i} differs (got seq {h and h['seq']}, "
                                  f"len {len(data)}; want seq {w and w['seq']}, "
                                  f"len {len(want)})")
    else:
        if sorted(d for d, _a in got) != sorted(sent):
            raise TestFailure(f"{what}: the datagrams received are not the ones sent")
    log(f"ok: {what}: all {len(sent)} RTP packets arrived intact"
        f"{', in order' if ordered else ''}, from {ep(*src)}")
    return got


def expect_nothing(sock, what, quiet=0.5):
    got = drain(sock, quiet)
    if got:
        raise TestFailure(f"{what}: {len(got)} unexpected datagram(s), first from {got[0][1]}")
    log(f"ok: {what}: nothing arrived")


def icmp_checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def split_ep(text):
    """ "198.18.0.1:40000" -> ("198.18.0.1", 40000); "[2001:2::1]:40000" ->
    ("2001:2::1", 40000) (the form isarctl prints, issue #11)."""
    ip, port = text.rsplit(":", 1)
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    return ip, int(port)


def ep(ip, port):
    """The inverse of split_ep: IPv6 in brackets."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def read_line(s, timeout=5, limit=1 << 22):
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("no answer line from isard within the timeout")
        s.settimeout(left)
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("isard closed the connection before a full line")
        buf += chunk
        if len(buf) > limit:
            raise TestFailure("answer line too long")
    return buf.split(b"\n", 1)[0].decode()
