"""Not a test: a small STUN (RFC 8489) / TURN (RFC 8656) client over UDP for the
integration tests, Python 3 stdlib only (hmac, hashlib, base64, struct,
zlib.crc32 for FINGERPRINT). It builds messages byte by byte, so that a test
can also send wrong ones (bad FINGERPRINT, MESSAGE-INTEGRITY with another key,
unknown attributes, truncated messages), and parses and verifies answers.

    user = rest_username(3600, "alice")
    c = TurnClient(sock, (RELAY_IP, 3478), user, rest_password(SECRET, user), REALM)
    r = c.allocate()                  # 401 challenge, then Allocate with MI
    # (an IPv4 XOR address does not depend on the transaction ID)
    r = c.request(CREATE_PERMISSION, [(XOR_PEER_ADDRESS, xor_address_value(B_IP, 5000, b""))])
"""

import base64
import hashlib
import hmac
import os
import socket
import struct
import time
import zlib

MAGIC = 0x2112A442
FINGERPRINT_XOR = 0x5354554E

# methods
BINDING = 0x001
ALLOCATE = 0x003
REFRESH = 0x004
SEND = 0x006
DATA = 0x007
CREATE_PERMISSION = 0x008
CHANNEL_BIND = 0x009

# classes
REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3

# attributes
MAPPED_ADDRESS = 0x0001
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
UNKNOWN_ATTRIBUTES = 0x000A
CHANNEL_NUMBER = 0x000C
LIFETIME = 0x000D
XOR_PEER_ADDRESS = 0x0012
DATA_ATTR = 0x0013
REALM = 0x0014
NONCE = 0x0015
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_ADDRESS_FAMILY = 0x0017
EVEN_PORT = 0x0018
REQUESTED_TRANSPORT = 0x0019
XOR_MAPPED_ADDRESS = 0x0020
ADDITIONAL_ADDRESS_FAMILY = 0x8000  # RFC 8656 (dual allocation)
ADDRESS_ERROR_CODE = 0x8001
SOFTWARE = 0x8022
FINGERPRINT = 0x8028


class StunError(Exception):
    pass


def msg_type(method, cls):
    return ((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2)
            | ((cls & 1) << 4) | ((cls & 2) << 7))


def type_method(t):
    return (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2)


def type_class(t):
    return ((t >> 4) & 1) | ((t >> 7) & 2)


def new_txid():
    return os.urandom(12)


def pad4(n):
    return (4 - n % 4) % 4


def attr(t, value):
    return (t, bytes(value))


def u32(t, v):
    return (t, struct.pack("!I", v))


def string(t, s):
    return (t, s.encode() if isinstance(s, str) else bytes(s))


def xor_address_value(ip, port, txid, family=None):
    """The value of an XOR-*-ADDRESS attribute for ip:port (the family from
    the address unless given; an IPv6 one depends on the transaction ID)."""
    if family is None:
        family = 6 if ":" in ip else 4
    if family == 4:
        raw = socket.inet_aton(ip)
        mask = struct.pack("!I", MAGIC)
        return struct.pack("!BBH", 0, 1, port ^ (MAGIC >> 16)) + bytes(
            a ^ b for a, b in zip(raw, mask))
    raw = socket.inet_pton(socket.AF_INET6, ip)
    mask = struct.pack("!I", MAGIC) + txid
    return struct.pack("!BBH", 0, 2, port ^ (MAGIC >> 16)) + bytes(
        a ^ b for a, b in zip(raw, mask))


def decode_xor_address(value, txid):
    if len(value) < 4:
        raise StunError("short XOR address")
    fam = value[1]
    port = struct.unpack("!H", value[2:4])[0] ^ (MAGIC >> 16)
    mask = struct.pack("!I", MAGIC) + txid
    if fam == 1 and len(value) == 8:
        ip = socket.inet_ntoa(bytes(a ^ b for a, b in zip(value[4:8], mask)))
    elif fam == 2 and len(value) == 20:
        ip = socket.inet_ntop(socket.AF_INET6, bytes(a ^ b for a, b in zip(value[4:20], mask)))
    else:
        raise StunError(f"bad XOR address family {fam} / length {len(value)}")
    return ip, port


def fingerprint_of(data):
    return (zlib.crc32(data) & 0xFFFFFFFF) ^ FINGERPRINT_XOR


def build(method, cls, attrs=(), txid=None, key=None, fingerprint=True, bad_fingerprint=False,
          length_delta=0):
    """Encodes a message. `attrs`: [(type, value bytes)]. With `key`,
    MESSAGE-INTEGRITY (HMAC-SHA1) is appended, then FINGERPRINT when wanted.
    `length_delta` changes the header's length field after everything was
    computed (a lying header)."""
    txid = txid if txid is not None else new_txid()
    body = b""
    for t, v in attrs:
        body += struct.pack("!HH", t, len(v)) + v + b"\0" * pad4(len(v))

    def header(blen):
        return struct.pack("!HHI", msg_type(method, cls), blen, MAGIC) + txid

    if key is not None:
        mac = hmac.new(key, header(len(body) + 24) + body, hashlib.sha1).digest()
        body += struct.pack("!HH", MESSAGE_INTEGRITY, 20) + mac
    if fingerprint:
        crc = fingerprint_of(header(len(body) + 8) + body)
        if bad_fingerprint:
            crc ^= 0x1
        body += struct.pack("!HHI", FINGERPRINT, 4, crc)
    return header(len(body) + length_delta) + body


class Message:
    """A parsed STUN message."""

    def __init__(self, data):
        if len(data) < 20:
            raise StunError(f"{len(data)} bytes: shorter than a STUN header")
        t, length, cookie = struct.unpack("!HHI", data[:8])
        if cookie != MAGIC or t & 0xC000:
            raise StunError("not a STUN message")
        if 20 + length != len(data):
            raise StunError(f"header length {length} but {len(data) - 20} bytes follow")
        self.raw = bytes(data)
        self.type = t
        self.method = type_method(t)
        self.cls = type_class(t)
        self.txid = data[8:20]
        self.attrs = []  # (type, value, offset of the attribute header)
        off = 20
        while off < len(data):
            if len(data) - off < 4:
                raise StunError("truncated attribute header")
            at, alen = struct.unpack("!HH", data[off:off + 4])
            if off + 4 + alen > len(data):
                raise StunError(f"attribute {at:#06x} runs past the message")
            self.attrs.append((at, data[off + 4:off + 4 + alen], off))
            off += 4 + alen + pad4(alen)

    def get(self, t):
        for at, v, _ in self.attrs:
            if at == t:
                return v
        return None

    def has(self, t):
        return self.get(t) is not None

    def types(self):
        return [at for at, _v, _o in self.attrs]

    def error_code(self):
        v = self.get(ERROR_CODE)
        if v is None or len(v) < 4:
            return None
        return (v[2] & 7) * 100 + v[3]

    def xor_address(self, t):
        v = self.get(t)
        return None if v is None else decode_xor_address(v, self.txid)

    def xor_addresses(self, t):
        """Every attribute of type t decoded (a dual allocation carries two
        XOR-RELAYED-ADDRESS)."""
        return [decode_xor_address(v, self.txid) for at, v, _o in self.attrs if at == t]

    def address_error(self):
        """ADDRESS-ERROR-CODE (RFC 8656 §18.13): (family, code) or None."""
        v = self.get(ADDRESS_ERROR_CODE)
        if v is None or len(v) < 4:
            return None
        return v[0], (v[2] & 7) * 100 + v[3]

    def u32(self, t):
        v = self.get(t)
        return None if v is None or len(v) != 4 else struct.unpack("!I", v)[0]

    def text(self, t):
        v = self.get(t)
        return None if v is None else v.decode(errors="replace")

    def unknown_attributes(self):
        v = self.get(UNKNOWN_ATTRIBUTES) or b""
        return [struct.unpack("!H", v[i:i + 2])[0] for i in range(0, len(v) - 1, 2)]

    def fingerprint_ok(self):
        """FINGERPRINT present, last, and its CRC right."""
        if not self.attrs or self.attrs[-1][0] != FINGERPRINT:
            return False
        _t, v, off = self.attrs[-1]
        if len(v) != 4:
            return False
        return struct.unpack("!I", v)[0] == fingerprint_of(self.raw[:off])

    def integrity_ok(self, key):
        for at, v, off in self.attrs:
            if at == MESSAGE_INTEGRITY:
                hdr = bytearray(self.raw[:20])
                struct.pack_into("!H", hdr, 2, off - 20 + 24)
                mac = hmac.new(key, bytes(hdr) + self.raw[20:off], hashlib.sha1).digest()
                return hmac.compare_digest(mac, v)
        return False

    def describe(self):
        kind = {SUCCESS: "success", ERROR: f"error {self.error_code()}",
                REQUEST: "request", INDICATION: "indication"}[self.cls]
        return f"method {self.method:#x} {kind}"


# ---- credentials (TURN REST API, coturn's use-auth-secret) ------------------

def rest_username(valid_s, user, now=None):
    return f"{int(now if now is not None else time.time()) + valid_s}:{user}"


def rest_password(secret, username):
    return base64.b64encode(hmac.new(secret.encode(), username.encode(),
                                     hashlib.sha1).digest()).decode()


def long_term_key(username, realm, password):
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()


# ---- ChannelData ---------------------------------------------------------------

def channel_data(number, payload, length=None):
    return struct.pack("!HH", number, len(payload) if length is None else length) + payload


def parse_channel_data(data):
    if len(data) < 4 or not 0x40 <= data[0] <= 0x7F:
        return None
    number, n = struct.unpack("!HH", data[:4])
    if 4 + n > len(data):
        return None
    return number, data[4:4 + n]


# ---- the client -------------------------------------------------------------------

class TurnClient:
    """One client 5-tuple (a UDP socket) talking to a TURN server. Keeps the
    NONCE and REALM of the last challenge and the long-term key; datagrams
    that are not the answer awaited (Data indications, ChannelData) are kept
    in `pending` for recv_relayed()."""

    def __init__(self, sock, server, username, password, realm, rate=None):
        self.sock = sock
        self.server = server
        self.username = username
        self.password = password
        self.realm = realm
        self.key = long_term_key(username, realm, password)
        self.nonce = None
        self.pending = []
        self.rate = rate  # AllocateRate, shared by the clients of one test

    @property
    def addr(self):
        return self.sock.getsockname()

    def send(self, data):
        self.sock.sendto(data, self.server)

    def wait_answer(self, txid, timeout=2.0):
        """The answer (a Message) with `txid`, or None after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                return None
            src = src[:2]  # IPv6 sockets give (ip, port, flowinfo, scope)
            if src == self.server[:2] and len(data) >= 20 and data[0] < 4:
                try:
                    m = Message(data)
                except StunError:
                    self.pending.append((data, src))
                    continue
                if m.txid == txid and m.cls in (SUCCESS, ERROR):
                    return m
            self.pending.append((data, src))

    def transact(self, data, timeout=2.0):
        """Sends the encoded request `data`; returns the answer (Message) or None."""
        if self.rate is not None and len(data) >= 20 and \
                type_method(struct.unpack("!H", data[:2])[0]) == ALLOCATE:
            self.rate.take(self.addr[0])
        self.send(data)
        return self.wait_answer(data[8:20], timeout)

    def auth_attrs(self, username=None, realm=None, nonce=None):
        return [string(USERNAME, self.username if username is None else username),
                string(REALM, self.realm if realm is None else realm),
                string(NONCE, self.nonce if nonce is None else nonce)]

    def challenge(self, method=ALLOCATE, attrs=None):
        """A request without MESSAGE-INTEGRITY: must be 401 with REALM and NONCE."""
        if attrs is None:
            attrs = [u32(REQUESTED_TRANSPORT, 17 << 24)] if method == ALLOCATE else []
        r = self.transact(build(method, REQUEST, attrs))
        if r is None:
            raise StunError("no answer to the unauthenticated request")
        if r.cls != ERROR or r.error_code() != 401 or not r.has(NONCE) or not r.has(REALM):
            raise StunError(f"unauthenticated request: {r.describe()}, attributes "
                            f"{[hex(t) for t in r.types()]}")
        self.nonce = r.text(NONCE)
        return r

    def request(self, method, attrs=(), key=None, auth=None, txid=None, retry_stale=True,
                timeout=2.0, fingerprint=True):
        """An authenticated request (USERNAME, REALM, NONCE, then `attrs`,
        MESSAGE-INTEGRITY with `key` or the client's key). A 438 with a fresh
        NONCE (stale nonce) is retried once with it when `retry_stale`."""
        if self.nonce is None:
            self.challenge()
        for _ in range(2):
            data = build(method, REQUEST, (auth if auth is not None else self.auth_attrs())
                         + list(attrs), txid=txid, key=key or self.key, fingerprint=fingerprint)
            r = self.transact(data, timeout)
            if r is not None and r.cls == ERROR and r.error_code() == 438 and r.has(NONCE) \
                    and retry_stale and auth is None:
                self.nonce = r.text(NONCE)
                txid = None
                continue
            return r
        return r

    def request_peer(self, method, peer, extra=()):
        """CreatePermission / ChannelBind (method) for peer (ip, port) of
        either family: an IPv6 XOR-PEER-ADDRESS is XORed with the request's
        own transaction ID, so each try gets its value anew."""
        r = None
        for _ in range(2):
            txid = new_txid()
            r = self.request(method, list(extra) + [
                (XOR_PEER_ADDRESS, xor_address_value(peer[0], peer[1], txid))], txid=txid,
                retry_stale=False)
            if r is not None and r.cls == ERROR and r.error_code() == 438 and r.has(NONCE):
                self.nonce = r.text(NONCE)
                continue
            return r
        return r

    def allocate(self, attrs=None, lifetime=None):
        if attrs is None:
            attrs = [u32(REQUESTED_TRANSPORT, 17 << 24)]
        if lifetime is not None:
            attrs = attrs + [u32(LIFETIME, lifetime)]
        if self.nonce is None:
            self.challenge()
        return self.request(ALLOCATE, attrs)

    def recv_relayed(self, timeout=2.0):
        """The next datagram from the server that is no answer: (data, src) or None."""
        if self.pending:
            return self.pending.pop(0)
        self.sock.settimeout(timeout)
        try:
            data, src = self.sock.recvfrom(65535)
            return data, src[:2]
        except socket.timeout:
            return None

    def send_indication(self, peer, payload):
        txid = new_txid()
        self.send(build(SEND, INDICATION, [
            (XOR_PEER_ADDRESS, xor_address_value(peer[0], peer[1], txid)),
            (DATA_ATTR, payload)], txid=txid, fingerprint=False))


class AllocateRate:
    """Keeps the test's own Allocate requests per client IP and wall-clock
    second under a bound (isard counts them per IP and second: [turn]
    allocate_rate), sleeping into the next second when needed."""

    def __init__(self, per_second):
        self.per_second = per_second
        self.counts = {}

    def take(self, ip):
        sec = int(time.time())
        s, n = self.counts.get(ip, (sec, 0))
        if s != sec:
            s, n = sec, 0
        if n >= self.per_second:
            time.sleep(sec + 1.02 - time.time())
            s, n = int(time.time()), 0
        self.counts[ip] = (s, n + 1)

    def fill(self, ip):
        """Counts this second as full for `ip` (after a burst of our own)."""
        self.counts[ip] = (int(time.time()), self.per_second)


# ---- TURN over TCP and TLS (RFC 8656 §12.5) -----------------------------------------

def stream_frame_len(buf):
    """The length of the first whole frame in `buf` (a STUN message, or
    ChannelData with its padding to 4 bytes), or None while it is incomplete."""
    if len(buf) < 4:
        return None
    if 0x40 <= buf[0] <= 0x7F:
        n = 4 + struct.unpack("!H", buf[2:4])[0]
        n += pad4(n)
    else:
        if len(buf) < 20:
            return None
        n = 20 + struct.unpack("!H", buf[2:4])[0]
    return n if len(buf) >= n else None


class StreamTurnClient(TurnClient):
    """A TurnClient over one TCP or TLS connection (`sock` connected, or an
    ssl.SSLSocket): frames are cut from the byte stream; what is not the
    answer awaited is kept for recv_relayed(). ChannelData sent is padded to
    4 bytes as RFC 8656 asks over TCP."""

    def __init__(self, sock, username, password, realm, rate=None):
        super().__init__(sock, sock.getpeername(), username, password, realm, rate)
        self.buf = b""
        self.closed = False

    def send(self, data):
        if 0x40 <= data[0] <= 0x7F:
            data = data + b"\0" * pad4(len(data))
        self.sock.sendall(data)

    def read_frame(self, timeout):
        """The next frame, or None after `timeout` (or when the server closed:
        then `closed` is set)."""
        deadline = time.monotonic() + timeout
        while True:
            n = stream_frame_len(self.buf)
            if n is not None:
                f, self.buf = self.buf[:n], self.buf[n:]
                return f
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return None
            except (ConnectionResetError, BrokenPipeError, OSError):
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk

    def wait_answer(self, txid, timeout=2.0):
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(max(0.0, deadline - time.monotonic()))
            if f is None:
                return None
            if f[0] < 4:
                try:
                    m = Message(f)
                except StunError:
                    self.pending.append((f, self.server))
                    continue
                if m.txid == txid and m.cls in (SUCCESS, ERROR):
                    return m
            self.pending.append((f, self.server))

    def recv_relayed(self, timeout=2.0):
        if self.pending:
            return self.pending.pop(0)
        f = self.read_frame(timeout)
        return None if f is None else (f, self.server)
