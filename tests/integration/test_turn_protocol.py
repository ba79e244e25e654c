#!/usr/bin/env python3
"""TURN over UDP (RFC 8656) byte by byte, with a stdlib-only STUN/TURN client
(stun_client.py) in the test namespace talking to isard at 198.18.0.1:3478:

 a. Binding: XOR-MAPPED-ADDRESS, SOFTWARE, FINGERPRINT;
 b. Allocate: 401 challenge, then success (relayed address, LIFETIME, signed
    with the long-term key); a retransmission gets the same bytes; a second
    Allocate on the 5-tuple is 437;
 c. authentication failures (wrong password, expired or number-less REST
    username, wrong realm, a NONCE of another client, a stale NONCE, MI
    without USERNAME) and their counters by reason;
 d. malformed or unsupported requests (REQUESTED-TRANSPORT TCP or missing,
    IPv6 family, unknown comprehension-required attribute, bad FINGERPRINT,
    truncated, MI with another key);
 e. CreatePermission (denied peers, the relay's own listener) and Send/Data
    indications, and a peer without permission;
 f. ChannelBind rules and ChannelData both ways, and the fast path's drops;
 g. Refresh (LIFETIME 0 ends the allocation, 7200 is capped at 3600);
 h. user_quota, allocate_rate and max_allocations;
 i. a flood of junk and STUN at the listener while a channel relays;
 j. isarctl turn list/show/delete, stats, and /metrics;
 k. the usual final checks (no mbuf leak, clean exit).
"""
import os
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import stun_client as sc  # noqa: E402
import test_ops_common as oc  # noqa: E402

SECRET = "isar-proto-secret-" + os.urandom(4).hex()
REALM = "turn.example.org"
SERVER = (it.RELAY_IP, 3478)
PORT_MIN, PORT_MAX = 40000, 40999
TURN_CONFIG = f"""[turn]
listen_udp = [3478]
realm = "{REALM}"
auth_secret_file = "@DIR@/turn-secret"
allowed_peer = ["198.18.0.0/24"]
user_quota = 3
allocate_rate = 50
nonce_lifetime_s = 3
max_allocations = 20
default_lifetime_s = 600
"""
RT_UDP = sc.u32(sc.REQUESTED_TRANSPORT, 17 << 24)
B_PORT, C_PORT = 5000, 5001


class World:
    def __init__(self, env):
        self.env = env
        self.rate = sc.AllocateRate(20)  # our own Allocates per IP and second
        self.b = env.udp(it.B_IP, B_PORT)
        self.c = env.udp(it.C_IP, C_PORT)

    def client(self, ip=it.A_IP, user="alice", username=None, password=None, realm=REALM,
               valid_s=3600):
        username = username or sc.rest_username(valid_s, user)
        password = password if password is not None else sc.rest_password(SECRET, username)
        return sc.TurnClient(self.env.udp(ip), SERVER, username, password, realm,
                             rate=self.rate)

    def turn(self):
        return self.env.stats()["turn"]

    def drops(self):
        return self.env.total_drops()

    def allocation_ids(self):
        return [a["id"] for a in self.env.request({"cmd": "turn.list"})["allocations"]]

    def delete_all(self):
        for i in self.allocation_ids():
            self.env.request({"cmd": "turn.delete", "allocation": i})
        it.wait_for(lambda: self.turn()["allocations"] == 0, 5, "every allocation to be gone")


def expect_error(r, code, what):
    if r is None:
        raise it.TestFailure(f"{what}: no answer (want error {code})")
    if r.cls != sc.ERROR or r.error_code() != code:
        raise it.TestFailure(f"{what}: got {r.describe()}, want error {code}")
    if not r.fingerprint_ok():
        raise it.TestFailure(f"{what}: the error {code} has no (valid) FINGERPRINT")
    it.log(f"ok: {what}: error {code}")
    return r


def expect_success(r, what, key=None):
    if r is None:
        raise it.TestFailure(f"{what}: no answer")
    if r.cls != sc.SUCCESS:
        raise it.TestFailure(f"{what}: got {r.describe()}"
                             + (f" ({r.text(sc.ERROR_CODE)[4:]})" if r.has(sc.ERROR_CODE)
                                else ""))
    if not r.fingerprint_ok():
        raise it.TestFailure(f"{what}: no (valid) FINGERPRINT")
    if key is not None and not r.integrity_ok(key):
        raise it.TestFailure(f"{what}: MESSAGE-INTEGRITY does not verify with the client's key")
    it.log(f"ok: {what}: success")
    return r


def expect_silence(sock, what, quiet=0.4):
    sock.settimeout(quiet)
    try:
        data, src = sock.recvfrom(65535)
    except socket.timeout:
        it.log(f"ok: {what}: no answer")
        return
    raise it.TestFailure(f"{what}: got {len(data)} bytes from {src}")


def delta(after, before, key):
    return after.get(key, 0) - before.get(key, 0)


def wait_counter(get, key, at_least, what, timeout=3):
    return it.wait_for(lambda: get().get(key, 0) >= at_least, timeout, what)


def peer_attr(ip, port):
    return (sc.XOR_PEER_ADDRESS, sc.xor_address_value(ip, port, b""))


def alloc(w, what, **kw):
    c = w.client(**kw)
    r = expect_success(c.allocate(), what, c.key)
    c.relayed = r.xor_address(sc.XOR_RELAYED_ADDRESS)
    relayed = f"{c.relayed[0]}:{c.relayed[1]}"
    c.id = next(a["id"] for a in w.env.request({"cmd": "turn.list"})["allocations"]
                if a["relayed"] == relayed)
    return c


# ---- a ------------------------------------------------------------------------------
def part_a_binding(w):
    c = w.client()
    r = expect_success(c.transact(sc.build(sc.BINDING, sc.REQUEST)), "Binding")
    it.check_eq(r.method, sc.BINDING, "Binding response method")
    it.check_eq(r.xor_address(sc.XOR_MAPPED_ADDRESS), c.addr,
                "Binding XOR-MAPPED-ADDRESS = the client's address and port")
    it.check(r.has(sc.SOFTWARE), f"Binding response has SOFTWARE ({r.text(sc.SOFTWARE)!r})")
    it.check(r.types()[-1] == sc.FINGERPRINT and r.fingerprint_ok(),
             "Binding response ends with a correct FINGERPRINT")
    it.check(not r.has(sc.MESSAGE_INTEGRITY), "an unauthenticated Binding is answered unsigned")
    r = expect_error(c.transact(sc.build(sc.BINDING, sc.REQUEST, [sc.attr(0x0031, b"\0" * 4)])),
                     420, "Binding with an unknown comprehension-required attribute")
    it.check_eq(r.unknown_attributes(), [0x0031], "UNKNOWN-ATTRIBUTES of the Binding's 420")


# ---- b ------------------------------------------------------------------------------
def part_b_allocate(w):
    c = w.client()
    ch = c.challenge()
    it.check_eq(ch.text(sc.REALM), REALM, "401 challenge REALM")
    it.check(len(c.nonce) == 40, f"401 challenge NONCE ({c.nonce})")
    req = sc.build(sc.ALLOCATE, sc.REQUEST, c.auth_attrs() + [RT_UDP], key=c.key)
    r = expect_success(c.transact(req), "Allocate with MESSAGE-INTEGRITY", c.key)
    relayed = r.xor_address(sc.XOR_RELAYED_ADDRESS)
    it.check(relayed is not None and relayed[0] == it.RELAY_IP
             and PORT_MIN <= relayed[1] <= PORT_MAX,
             f"XOR-RELAYED-ADDRESS {relayed} is {it.RELAY_IP} with a port in the relay range")
    it.check_eq(r.xor_address(sc.XOR_MAPPED_ADDRESS), c.addr, "Allocate XOR-MAPPED-ADDRESS")
    it.check_eq(r.u32(sc.LIFETIME), 600, "Allocate LIFETIME (default_lifetime_s)")
    wrong = sc.long_term_key(c.username, REALM, "not-the-password")
    it.check(r.types()[-2:] == [sc.MESSAGE_INTEGRITY, sc.FINGERPRINT] and
             not r.integrity_ok(wrong), "the response is signed with the key, then FINGERPRINT")
    r2 = c.transact(req)
    it.check(r2 is not None and r2.raw == r.raw,
             "a retransmitted Allocate (same transaction id) gets the very same bytes")
    r3 = expect_error(c.request(sc.ALLOCATE, [RT_UDP]), 437,
                      "a second Allocate (new transaction) on the same 5-tuple")
    it.check(r3.integrity_ok(c.key), "the 437 is signed with the client's key")
    c.relayed = relayed
    return c


# ---- c ------------------------------------------------------------------------------
def part_c_auth(w, main):
    before = w.turn()["auth_failures"]
    challenges = 0
    stale = w.client()
    stale.challenge()
    challenges += 1
    t_stale = time.monotonic()

    c = w.client(password="wrong-password")
    c.challenge()
    challenges += 1
    r = expect_error(c.allocate(), 401, "Allocate with a wrong password")
    it.check(r.has(sc.NONCE) and r.has(sc.REALM), "the 401 carries REALM and NONCE")

    u = f"{int(time.time()) - 60}:alice"
    c = w.client(username=u)
    c.challenge()
    challenges += 1
    expect_error(c.allocate(), 401, "Allocate with an expired REST username")

    c = w.client(username="alice")
    c.challenge()
    challenges += 1
    expect_error(c.allocate(), 401, "Allocate with a username without a timestamp")

    c = w.client(realm="other.example.org")
    c.challenge()
    challenges += 1
    expect_error(c.allocate(), 401, "Allocate with a wrong REALM")

    c1, c2 = w.client(), w.client()
    c1.challenge()
    challenges += 1
    c2.nonce = c1.nonce
    expect_error(c2.request(sc.ALLOCATE, [RT_UDP], retry_stale=False), 438,
                 "Allocate with the NONCE of another client socket")

    c = w.client()
    c.challenge()
    challenges += 1
    expect_error(c.request(sc.ALLOCATE, [RT_UDP],
                           auth=[sc.string(sc.REALM, REALM), sc.string(sc.NONCE, c.nonce)]),
                 400, "MESSAGE-INTEGRITY without USERNAME")

    time.sleep(max(0.0, 4.5 - (time.monotonic() - t_stale)))
    old = stale.nonce
    r = expect_error(stale.request(sc.ALLOCATE, [RT_UDP], retry_stale=False), 438,
                     "Allocate with a NONCE older than nonce_lifetime_s")
    it.check(r.has(sc.NONCE) and r.text(sc.NONCE) != old and r.has(sc.REALM),
             "the 438 carries a fresh NONCE and REALM")
    stale.nonce = r.text(sc.NONCE)
    expect_success(stale.request(sc.ALLOCATE, [RT_UDP], retry_stale=False),
                   "Allocate with the fresh NONCE of the 438", stale.key)

    after = w.turn()["auth_failures"]
    want = {"challenged": challenges, "bad_integrity": 1, "expired": 1, "bad_username": 1,
            "wrong_realm": 1, "bad_nonce": 1, "stale_nonce": 1, "missing_attribute": 1,
            "wrong_credentials": 0}
    got = {k: delta(after, before, k) for k in want}
    it.check_eq(got, want, "stats.turn.auth_failures moved by reason")

    # Another user's credentials on an existing allocation: 441.
    other = sc.rest_username(3600, "mallory")
    main2 = sc.TurnClient(main.sock, SERVER, other, sc.rest_password(SECRET, other), REALM)
    main2.nonce = main.nonce
    b4 = w.turn()["auth_failures"]
    expect_error(main2.request(sc.REFRESH, []), 441,
                 "Refresh of an allocation with another user's credentials")
    it.check_eq(delta(w.turn()["auth_failures"], b4, "wrong_credentials"), 1,
                "auth_failures.wrong_credentials")
    main.pending += main2.pending


# ---- d ------------------------------------------------------------------------------
def part_d_malformed(w, main):
    c = w.client()
    expect_error(c.allocate([sc.u32(sc.REQUESTED_TRANSPORT, 6 << 24)]), 442,
                 "Allocate with REQUESTED-TRANSPORT TCP")
    expect_error(c.allocate([]), 400, "Allocate without REQUESTED-TRANSPORT")
    expect_error(c.allocate([RT_UDP, sc.attr(sc.REQUESTED_ADDRESS_FAMILY, b"\x02\0\0\0")]), 440,
                 "Allocate with REQUESTED-ADDRESS-FAMILY IPv6")
    it.check_eq(w.turn()["allocations"], 2, "allocations (none of those made one)")

    r = expect_error(main.request(sc.REFRESH, [sc.attr(0x0031, b"\0" * 4)]), 420,
                     "Refresh with unknown comprehension-required attribute 0x0031")
    it.check_eq(r.unknown_attributes(), [0x0031], "UNKNOWN-ATTRIBUTES of the Refresh's 420")
    r = expect_error(main.request(sc.CREATE_PERMISSION,
                                  [peer_attr(it.B_IP, B_PORT), sc.attr(0x0031, b"\0" * 4)]),
                     420, "CreatePermission with unknown attribute 0x0031")
    it.check_eq(r.unknown_attributes(), [0x0031],
                "UNKNOWN-ATTRIBUTES of the CreatePermission's 420")
    r = main.request(sc.REFRESH, [sc.attr(0x8031, b"\0" * 4)])
    expect_success(r, "Refresh with an unknown comprehension-optional attribute 0x8031", main.key)

    x = w.client()
    base = w.turn()["bad_requests"]
    x.send(sc.build(sc.BINDING, sc.REQUEST, bad_fingerprint=True))
    expect_silence(x.sock, "Binding with a wrong FINGERPRINT")
    it.wait_for(lambda: w.turn()["bad_requests"] >= base + 1, 3, "bad_requests to count it")
    whole = sc.build(sc.BINDING, sc.REQUEST, [sc.string(sc.SOFTWARE, "truncated test")])
    x.send(whole[:-8])  # the header still counts the FINGERPRINT
    expect_silence(x.sock, "a truncated Binding")
    x.send(sc.build(sc.BINDING, sc.REQUEST, length_delta=40))
    expect_silence(x.sock, "a Binding whose length runs past the datagram")
    it.wait_for(lambda: w.turn()["bad_requests"] >= base + 3, 3,
                "bad_requests to count the truncated ones")
    it.check_eq(w.turn()["bad_requests"] - base, 3, "stats.turn.bad_requests grew by exactly 3")

    b4 = w.turn()["auth_failures"]["bad_integrity"]
    wrong = sc.long_term_key(main.username, REALM, "some-other-password")
    r = expect_error(main.request(sc.REFRESH, [], key=wrong), 401,
                     "Refresh with MESSAGE-INTEGRITY computed with a wrong key")
    it.check(r.has(sc.NONCE) and not r.has(sc.MESSAGE_INTEGRITY),
             "the 401 is an unsigned challenge")
    it.check_eq(w.turn()["auth_failures"]["bad_integrity"] - b4, 1, "auth_failures.bad_integrity")


# ---- e ------------------------------------------------------------------------------
def part_e_permissions(w, main):
    b4 = w.turn()["peer_denied"]
    for ip, port, what in (("10.1.2.3", 4000, "a denied private peer"),
                           ("127.0.0.1", 4000, "loopback"),
                           (it.RELAY_IP, 3478, "the relay's own TURN listener")):
        r = expect_error(main.request(sc.CREATE_PERMISSION, [peer_attr(ip, port)]), 403,
                         f"CreatePermission for {what} ({ip}:{port})")
        it.check(r.integrity_ok(main.key), "the 403 is signed")
    it.check_eq(w.turn()["peer_denied"] - b4, 3, "stats.turn.peer_denied")
    expect_success(main.request(sc.CREATE_PERMISSION, [peer_attr(it.B_IP, B_PORT)]),
                   f"CreatePermission for B ({it.B_IP})", main.key)

    payload = b"send-indication:" + os.urandom(40)
    main.send_indication((it.B_IP, B_PORT), payload)
    got = it.recv_all(w.b, 1, 3)
    it.check(got and got[0][0] == payload, "the Send indication's DATA arrived at B exactly")
    it.check_eq(got[0][1], main.relayed, "B got it from the relayed address")

    reply = b"reply-from-B:" + os.urandom(33)  # an odd length: DATA gets padding
    w.b.sendto(reply, main.relayed)
    d = main.recv_relayed(3)
    it.check(d is not None, "B's reply arrived at the client")
    m = sc.Message(d[0])
    it.check(m.method == sc.DATA and m.cls == sc.INDICATION,
             f"it is a Data indication ({m.describe()})")
    it.check_eq(m.xor_address(sc.XOR_PEER_ADDRESS), (it.B_IP, B_PORT),
                "Data indication XOR-PEER-ADDRESS = B")
    it.check_eq(m.get(sc.DATA_ATTR), reply, "Data indication DATA = B's reply")

    b4 = w.drops().get("turn_no_permission", 0)
    w.c.sendto(b"from C without a permission", main.relayed)
    it.wait_for(lambda: w.drops().get("turn_no_permission", 0) >= b4 + 1, 3,
                "drop counter turn_no_permission to grow")
    r = main.recv_relayed(0.4)
    it.check(r is None, "nothing from C arrived at the client")


# ---- f ------------------------------------------------------------------------------
def part_f_channels(w, main):
    expect_success(main.request(sc.CHANNEL_BIND, [sc.u32(sc.CHANNEL_NUMBER, 0x4001 << 16),
                                                  peer_attr(it.B_IP, B_PORT)]),
                   "ChannelBind 0x4001 to B", main.key)
    payload = b"channel-data:" + os.urandom(50)
    main.send(sc.channel_data(0x4001, payload))
    got = it.recv_all(w.b, 1, 3)
    it.check(got and got[0][0] == payload and got[0][1] == main.relayed,
             "ChannelData 0x4001 arrived at B exactly, from the relayed address")
    reply = b"channel-reply:" + os.urandom(21)
    w.b.sendto(reply, main.relayed)
    d = main.recv_relayed(3)
    it.check(d is not None, "B's reply arrived at the client")
    it.check_eq(sc.parse_channel_data(d[0]), (0x4001, reply),
                "B's reply came as ChannelData 0x4001")

    for number, peer, what in ((0x4001, (it.C_IP, C_PORT), "0x4001 (bound to B) to C"),
                               (0x4002, (it.B_IP, B_PORT), "0x4002 to B (bound to 0x4001)"),
                               (0x3FFF, (it.C_IP, C_PORT), "0x3fff (below the channel range)")):
        expect_error(main.request(sc.CHANNEL_BIND, [sc.u32(sc.CHANNEL_NUMBER, number << 16),
                                                    peer_attr(*peer)]),
                     400, f"ChannelBind {what}")
    expect_success(main.request(sc.CHANNEL_BIND, [sc.u32(sc.CHANNEL_NUMBER, 0x4001 << 16),
                                                  peer_attr(it.B_IP, B_PORT)]),
                   "ChannelBind 0x4001 to B again (a refresh)", main.key)

    d0 = w.drops()
    main.send(sc.channel_data(0x4005, b"unbound channel"))
    wait_counter(w.drops, "turn_bad_channel", d0.get("turn_bad_channel", 0) + 1,
                 "drop counter turn_bad_channel to grow")
    main.send(sc.channel_data(0x4001, b"short", length=64))
    wait_counter(w.drops, "turn_malformed", d0.get("turn_malformed", 0) + 1,
                 "drop counter turn_malformed to grow (ChannelData longer than the datagram)")
    stranger = w.env.udp(it.A_IP)
    stranger.sendto(sc.channel_data(0x4001, b"no allocation"), SERVER)
    stranger.sendto(sc.build(sc.SEND, sc.INDICATION, [peer_attr(it.B_IP, B_PORT),
                                                      (sc.DATA_ATTR, b"no allocation")],
                             fingerprint=False), SERVER)
    wait_counter(w.drops, "turn_no_alloc", d0.get("turn_no_alloc", 0) + 2,
                 "drop counter turn_no_alloc to grow by 2 (ChannelData and Send)")
    d1 = w.drops()
    for k in ("turn_bad_channel", "turn_malformed"):
        it.check_eq(delta(d1, d0, k), 1, f"drops.{k}")
    it.check_eq(delta(d1, d0, "turn_no_alloc"), 2, "drops.turn_no_alloc")
    it.expect_nothing(w.b, "B got none of the dropped ones", quiet=0.3)


# ---- g ------------------------------------------------------------------------------
def part_g_refresh(w, main):
    g = alloc(w, "Allocate for the Refresh test", user="gina")
    r = expect_success(g.request(sc.REFRESH, [sc.u32(sc.LIFETIME, 0)]), "Refresh LIFETIME 0",
                       g.key)
    it.check_eq(r.u32(sc.LIFETIME), 0, "Refresh LIFETIME 0 answer")
    client = f"{g.addr[0]}:{g.addr[1]}"
    it.wait_for(lambda: all(a["client"] != client for a in
                            w.env.request({"cmd": "turn.list"})["allocations"]), 3,
                "the refreshed-to-0 allocation to leave turn.list")
    expect_error(g.request(sc.REFRESH, []), 437, "Refresh after the allocation ended")

    r = expect_success(main.request(sc.REFRESH, [sc.u32(sc.LIFETIME, 7200)]),
                       "Refresh LIFETIME 7200", main.key)
    it.check_eq(r.u32(sc.LIFETIME), 3600, "Refresh LIFETIME 7200 answer (max_lifetime_s)")
    a = [x for x in w.env.request({"cmd": "turn.list"})["allocations"]
         if x["relayed"] == f"{main.relayed[0]}:{main.relayed[1]}"]
    it.check(len(a) == 1 and 3590 < a[0]["lifetime_left_s"] <= 3600,
             f"turn.list lifetime_left_s after it ({a and a[0]['lifetime_left_s']})")


# ---- h ------------------------------------------------------------------------------
def part_h_quotas(w):
    w.delete_all()
    st = w.turn()
    for i in range(3):
        alloc(w, f"alice's allocation {i + 1} of 3")
    c = w.client()
    expect_error(c.allocate(), 486, "alice's 4th allocation (user_quota 3)")
    it.check_eq(w.turn()["quota_rejected"] - st["quota_rejected"], 1, "stats.turn.quota_rejected")

    ips = (it.A_IP, it.B_IP, it.C_IP)
    for i in range(17):
        alloc(w, f"allocation {i + 4} of 20 (user u{i // 3})", ip=ips[i % 3], user=f"u{i // 3}")
    it.check_eq(w.turn()["allocations"], 20, "allocations")
    c = w.client(ip=it.B_IP, user="u9")
    expect_error(c.allocate(), 508, "the 21st allocation (max_allocations 20)")
    it.check_eq(w.turn()["capacity_rejected"] - st["capacity_rejected"], 1,
                "stats.turn.capacity_rejected")

    # allocate_rate 50: 60 unauthenticated Allocates from one IP in one second.
    socks = [w.env.udp(it.C_IP) for _ in range(60)]
    rr = w.turn()["rate_rejected"]
    time.sleep(1.02 - time.time() % 1.0)  # at the start of a wall-clock second
    txids = {s: sc.new_txid() for s in socks}
    t_first = time.time()
    for s in socks:
        s.sendto(sc.build(sc.ALLOCATE, sc.REQUEST, [RT_UDP], txid=txids[s]), SERVER)
    t_last = time.time()
    w.rate.fill(it.C_IP)
    codes = {}
    for s in socks:
        r = sc.TurnClient(s, SERVER, "", "", REALM).wait_answer(txids[s], 2)
        code = r.error_code() if r is not None else None
        codes[code] = codes.get(code, 0) + 1
    it.log(f"60 Allocates at once: answers {codes}")
    it.check(codes.get(486, 0) >= 1 and codes.get(486, 0) + codes.get(401, 0) == 60,
             f"some of the 60 got 486, the others 401 ({codes})")
    if int(t_first) == int(t_last) and t_last % 1.0 < 0.5:
        # All sent (and surely handled) in one second with no other Allocate
        # from C's address: exactly allocate_rate of them were admitted.
        it.check_eq(codes.get(486, 0), 10, "Allocates over allocate_rate (50) in that second")
    it.check_eq(w.turn()["rate_rejected"] - rr, codes.get(486, 0), "stats.turn.rate_rejected")
    for s in socks:
        s.close()
    w.delete_all()


# ---- i ------------------------------------------------------------------------------
def part_i_flood(w):
    f = alloc(w, "Allocate for the flood test", user="flood")
    expect_success(f.request(sc.CHANNEL_BIND, [sc.u32(sc.CHANNEL_NUMBER, 0x4001 << 16),
                                               peer_attr(it.B_IP, B_PORT)]),
                   "ChannelBind 0x4001 to B", f.key)
    it.drain(w.b, 0.1)
    flood = w.env.udp(it.C_IP)
    flood.setblocking(False)
    d0 = w.drops()
    t0 = w.turn()
    n_flood = 5000
    sent = [0]

    def flooder():
        junk = [b"\xff" * 120, os.urandom(64),
                sc.build(sc.BINDING, sc.REQUEST),
                b"\x00\x01\x00\x08" + b"\0" * 40,
                sc.build(sc.ALLOCATE, sc.REQUEST, [RT_UDP]),
                sc.channel_data(0x4001, b"x" * 50)]
        deadline = time.monotonic() + 5
        for i in range(n_flood):
            if time.monotonic() > deadline:
                break
            try:
                flood.sendto(junk[i % len(junk)], SERVER)
                sent[0] += 1
            except BlockingIOError:
                time.sleep(0.0005)

    to_b = [struct.pack("!I", i) + b"c2p" * 40 for i in range(200)]
    to_client = [struct.pack("!I", i) + b"p2c" * 40 for i in range(200)]
    rx0 = w.env.stats()["total"]["rx_pkts"]
    th = threading.Thread(target=flooder)
    th.start()
    start = time.monotonic()
    for i in range(200):
        f.send(sc.channel_data(0x4001, to_b[i]))
        w.b.sendto(to_client[i], f.relayed)
        time.sleep(0.005)
    th.join(10)
    it.log(f"flood: {sent[0]} datagrams to {SERVER} while 200 + 200 packets were relayed "
           f"in {time.monotonic() - start:.2f}s")
    it.check(sent[0] >= n_flood * 0.9, f"the flood sent {sent[0]} datagrams")
    got_b = sorted(d for d, _ in it.recv_all(w.b, 200, 5))
    got_c = []
    while len(got_c) < 200:
        d = f.recv_relayed(3)
        if d is None:
            break
        got_c.append(sc.parse_channel_data(d[0]))
    want_c = [(0x4001, p) for p in to_client]
    if got_b != to_b or len(got_c) != 200 or sorted(x for x in got_c if x) != want_c:
        # Where packets went missing: the allocation's own counters say
        # whether isard received and relayed them, the worker's rx_pkts
        # whether they reached isard at all.
        a = w.env.request({"cmd": "turn.get", "allocation": f.id})
        raise it.TestFailure(
                f"relayed during the flood: B got {len(got_b)} ({sum(d in to_b for d in got_b)} "
                f"as sent), the client {len(got_c)} ({sum(x in want_c for x in got_c)} as sent) "
                f"of 200 each; isard relayed {a['to_peers']['packets']} to B "
                f"({a['to_peers']['drops']} dropped), {a['from_peers']['packets']} to the client "
                f"({a['from_peers']['drops']} dropped); drops {w.drops()}; the worker received "
                f"{w.env.stats()['total']['rx_pkts'] - rx0} of the {sent[0] + 400} datagrams sent")
    it.log("ok: all 200 ChannelData payloads arrived at B intact, and all 200 of B's packets "
           "at the client as ChannelData 0x4001")
    it.check(w.env.alive() and w.env.request({"cmd": "ping"}).get("pong") is True,
             "isard is alive and answering after the flood")
    d1, t1 = w.drops(), w.turn()
    it.log(f"the worker received {w.env.stats()['total']['rx_pkts'] - rx0} of the "
           f"{sent[0] + 400} datagrams sent")
    it.log(f"flood counters: turn_policed +{delta(d1, d0, 'turn_policed')}, "
           f"turn_malformed +{delta(d1, d0, 'turn_malformed')}, exception_full "
           f"+{delta(d1, d0, 'exception_full')}, bad_requests "
           f"+{t1['bad_requests'] - t0['bad_requests']}, binding +{t1['binding'] - t0['binding']}")
    it.check(delta(d1, d0, "turn_malformed") > 0, "the junk was dropped as turn_malformed")
    flood.close()
    return f


# ---- j ------------------------------------------------------------------------------
def part_j_isarctl(w, f, metrics_port):
    env = w.env
    ids = w.allocation_ids()
    it.check_eq(len(ids), 1, "one allocation left")
    aid = ids[0]
    relayed = f"{f.relayed[0]}:{f.relayed[1]}"
    client = f"{f.addr[0]}:{f.addr[1]}"
    p = env.ctl("turn", "list", as_json=False)
    it.log("isarctl turn list:\n" + p.stdout.rstrip())
    it.check(p.returncode == 0, f"isarctl turn list exits 0 ({p.stderr.strip()})")
    lines = p.stdout.splitlines()
    it.check(len(lines) == 2 and "RELAYED" in lines[0] and "CLIENT" in lines[0],
             "isarctl turn list: a header and one row")
    row = lines[1].split()
    it.check(row[0] == str(aid) and relayed in row and client in row and "active" in row
             and row[1] == f.username, f"isarctl turn list row: {row}")
    j = env.ctl_json("turn", "list")
    it.check_eq([a["id"] for a in j["allocations"]], [aid], "isarctl --json turn list ids")

    p = env.ctl("turn", "show", str(aid), as_json=False)
    it.log("isarctl turn show:\n" + p.stdout.rstrip())
    it.check(p.returncode == 0 and f"allocation {aid}" in p.stdout and relayed in p.stdout,
             "isarctl turn show exits 0 and names the allocation and its relayed address")
    it.check(any(l.split()[:1] == [it.B_IP] for l in p.stdout.splitlines()),
             f"isarctl turn show lists the permission for {it.B_IP}")
    it.check(any(l.split()[:2] == ["0x4001", f"{it.B_IP}:{B_PORT}"]
                 for l in p.stdout.splitlines()),
             "isarctl turn show lists channel 0x4001 to B")
    j = env.ctl_json("turn", "show", str(aid))
    it.check_eq([c["channel"] for c in j["channel_list"]], [0x4001], "--json channel_list")
    it.check_eq([x["peer"] for x in j["permission_list"]], [it.B_IP], "--json permission_list")

    p = env.ctl("stats", as_json=False)
    turn_lines = [l for l in p.stdout.splitlines() if l.startswith("turn")]
    it.log("isarctl stats (TURN part):\n" + "\n".join(turn_lines))
    it.check(p.returncode == 0 and any(l.startswith("turn: 1 allocation") for l in turn_lines),
             "isarctl stats prints the TURN section")
    auth = [l for l in turn_lines if l.startswith("turn auth failures:")]
    it.check(len(auth) == 1 and "challenged=" in auth[0] and "stale_nonce=" in auth[0]
             and "wrong_credentials=1" in auth[0],
             "isarctl stats prints the non-zero auth failures by reason")

    m = oc.scrape(metrics_port)
    it.check_eq(oc.val(m, "isar_turn_allocations"), 1.0, "/metrics isar_turn_allocations")

    p = env.ctl("turn", "delete", str(aid), as_json=False)
    it.check(p.returncode == 0 and p.stdout.strip() == f"deleted allocation {aid}",
             f"isarctl turn delete {aid}: {p.stdout.strip()!r}")
    it.wait_for(lambda: w.allocation_ids() == [], 3, "the allocation to be gone")
    for verb in ("show", "delete"):
        p = env.ctl("turn", verb, str(aid), as_json=False)
        it.check(p.returncode == 1 and "not_found" in p.stderr,
                 f"isarctl turn {verb} of an unknown id: exit {p.returncode}, "
                 f"{p.stderr.strip()!r}")
    p = env.ctl("turn", "show", "abc", as_json=False)
    it.check(p.returncode == 2, f"isarctl turn show abc: usage error ({p.returncode})")
    m = oc.scrape(metrics_port)
    it.check_eq(oc.val(m, "isar_turn_allocations"), 0.0, "/metrics isar_turn_allocations after")


def bigger_rx_ring(env, frames=4096):
    """net_af_packet's kernel RX ring holds 512 frames by default: the flood
    (part i) overflowed it whenever the worker was off its CPU for a few ms
    (on a 2-CPU machine the test's own threads compete for it), and the
    kernel dropped whatever arrived then, relayed packets included, before
    isard saw them (the worker's rx_pkts fell short of what was sent; no isard
    counter, isar_port_rx_missed_total included, showed it). A NIC-sized ring
    keeps the test about isard and not about the scheduler."""
    orig = env.config_text
    qpairs = f"qpairs={env.workers + 1}"

    def text(**override):
        t = orig(**override)
        if qpairs not in t:
            raise it.TestFailure("isar_it's vdev has no qpairs= to extend")
        return t.replace(qpairs, f"{qpairs},framecnt={frames}", 1)
    env.config_text = text


def body(env):
    secret_path = os.path.join(env.dir, "turn-secret")
    with open(secret_path, "w") as fp:
        fp.write(SECRET + "\n")
    os.chmod(secret_path, 0o600)
    metrics_port = oc.free_tcp_port()
    oc.patch_config(env, sections=f'\n[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n')
    bigger_rx_ring(env)
    env.start()
    w = World(env)
    part_a_binding(w)
    main = part_b_allocate(w)
    part_c_auth(w, main)
    part_d_malformed(w, main)
    part_e_permissions(w, main)
    part_f_channels(w, main)
    part_g_refresh(w, main)
    part_h_quotas(w)
    f = part_i_flood(w)
    part_j_isarctl(w, f, metrics_port)
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "turn_protocol", extra_config=TURN_CONFIG))
