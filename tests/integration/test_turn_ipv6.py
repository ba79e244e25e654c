#!/usr/bin/env python3
"""TURN address families byte by byte (RFC 8656, issue #11 §3) with the
stdlib client of stun_client.py; isard has 198.18.0.1/24 and 2001:2::1/64,
`allowed_peer` lets 198.18.0.0/24 and 2001:2::/64 through; the peers are
UDP sockets at 198.18.0.3:5000 and [2001:2::3]:5000.

- A client over IPv6 without REQUESTED-ADDRESS-FAMILY gets an IPv4 relayed
  address (the RFC's default) and its IPv6 XOR-MAPPED-ADDRESS; with
  REQUESTED-ADDRESS-FAMILY IPv6 an IPv6 relayed address [2001:2::1]:PORT.
- On the IPv6 allocation: CreatePermission for an IPv6 peer succeeds, for
  an IPv4 peer is 443 (Peer Address Family Mismatch); peers in the default
  IPv6 deny list (::1, fe80::1, 2001:db8::1, ::ffff:198.18.0.3) are 403.
- Send indication -> the v6 peer gets the data from [2001:2::1]:PORT; its
  answer comes back as a Data indication whose XOR-PEER-ADDRESS (XORed with
  the indication's transaction ID) is [2001:2::3]:5000; ChannelBind to the
  v6 peer, ChannelData both ways.
- Dual allocation (ADDITIONAL-ADDRESS-FAMILY IPv6): two XOR-RELAYED-ADDRESS,
  one per family; data to a v4 peer leaves from the v4 one, to a v6 peer
  from the v6 one, same client 5-tuple. REQUESTED- and ADDITIONAL-ADDRESS-
  FAMILY together, or ADDITIONAL-ADDRESS-FAMILY IPv4, are 400.
- Counters: allocations, permissions, channels, to/from peers, no
  permission or channel drops on the good paths."""

import os
import socket
import struct
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import stun_client as sc  # noqa: E402

SECRET = "isar-test-secret-" + os.urandom(4).hex()
REALM = "meet.example.org"
TURN_CONFIG = f"""[turn]
listen_udp = [3478]
realm = "{REALM}"
auth_secret_file = "@DIR@/turn-secret"
allowed_peer = ["198.18.0.0/24", "2001:2::/64"]
max_allocations = 100
allocate_rate = 100
"""
RT_UDP = sc.u32(sc.REQUESTED_TRANSPORT, 17 << 24)
RAF6 = sc.attr(sc.REQUESTED_ADDRESS_FAMILY, b"\x02\0\0\0")
AAF6 = sc.attr(sc.ADDITIONAL_ADDRESS_FAMILY, b"\x02\0\0\0")
AAF4 = sc.attr(sc.ADDITIONAL_ADDRESS_FAMILY, b"\x01\0\0\0")


def client(env, local):
    user = sc.rest_username(3600, "alice")
    server = (it.RELAY_IP6, 3478) if ":" in local else (it.RELAY_IP, 3478)
    return sc.TurnClient(env.udp(local, 0), server, user, sc.rest_password(SECRET, user), REALM)


def ok(r, what):
    if r is None:
        raise it.TestFailure(f"{what}: no answer")
    if r.cls != sc.SUCCESS:
        raise it.TestFailure(f"{what}: {r.describe()} {r.text(sc.ERROR_CODE) or ''}")
    it.log(f"ok: {what}: success")
    return r


def err(r, code, what):
    it.check(r is not None and r.cls == sc.ERROR and r.error_code() == code,
             f"{what}: {code} (got {r.describe() if r else 'nothing'})")
    return r


def data_indication(c, timeout=2):
    """The next Data indication: (payload, (peer ip, port))."""
    for _ in range(20):
        got = c.recv_relayed(timeout)
        if got is None:
            return None
        m = sc.Message(got[0]) if got[0][0] < 4 else None
        if m is not None and m.method == sc.DATA and m.cls == sc.INDICATION:
            return m.get(sc.DATA_ATTR), m.xor_address(sc.XOR_PEER_ADDRESS)
    return None


def body(env):
    with open(os.path.join(env.dir, "turn-secret"), "w") as f:
        f.write(SECRET + "\n")
    os.chmod(os.path.join(env.dir, "turn-secret"), 0o600)
    env.start()
    p4 = env.udp(it.B_IP, 5000)
    p6 = env.udp6(it.B_IP6, 5000)
    t0 = env.stats()["turn"]

    # ---- default family, then IPv6 ------------------------------------------------
    c0 = client(env, it.A_IP6)
    r = ok(c0.allocate(), "Allocate over IPv6, no REQUESTED-ADDRESS-FAMILY")
    rel = r.xor_address(sc.XOR_RELAYED_ADDRESS)
    it.check_eq(rel[0], it.RELAY_IP, "the default relayed family is IPv4")
    it.check_eq(r.xor_address(sc.XOR_MAPPED_ADDRESS), (it.A_IP6, c0.addr[1]),
                "XOR-MAPPED-ADDRESS is the IPv6 client (XORed with the transaction ID)")

    c = client(env, it.A_IP6)
    r = ok(c.allocate([RT_UDP, RAF6]), "Allocate with REQUESTED-ADDRESS-FAMILY IPv6")
    rel6 = r.xor_address(sc.XOR_RELAYED_ADDRESS)
    it.check(rel6[0] == it.RELAY_IP6 and env.port_min <= rel6[1] <= env.port_max,
             f"XOR-RELAYED-ADDRESS {rel6} is [{it.RELAY_IP6}] + a relay port")
    lst = env.request({"cmd": "turn.list"})["allocations"]
    it.check(any(str(a["relayed"]).startswith(f"[{it.RELAY_IP6}]") or
                 f"[{it.RELAY_IP6}]:{rel6[1]}" in str(a["relayed"]) for a in lst),
             f"turn.list shows the IPv6 relayed address: {[a['relayed'] for a in lst]}")

    # ---- permissions ------------------------------------------------------------------
    ok(c.request_peer(sc.CREATE_PERMISSION, (it.B_IP6, 5000)), "CreatePermission [2001:2::3]")
    err(c.request_peer(sc.CREATE_PERMISSION, (it.B_IP, 5000)), 443,
        "CreatePermission for an IPv4 peer on an IPv6 allocation")
    for bad in ("::1", "fe80::1", "2001:db8::1", "::ffff:198.18.0.3"):
        err(c.request_peer(sc.CREATE_PERMISSION, (bad, 5000)), 403,
            f"CreatePermission for [{bad}] (default IPv6 deny list / not allowed)")

    # ---- Send / Data indications -----------------------------------------------------
    c.send_indication((it.B_IP6, 5000), b"hello v6 peer")
    got = it.recv_all(p6, 1, 3)
    it.check(got == [(b"hello v6 peer", rel6)],
             f"the v6 peer got the Send indication's data from {it.ep(*rel6)}: {got}")
    p6.sendto(b"hello v6 client", rel6)
    d = data_indication(c)
    it.check(d == (b"hello v6 client", (it.B_IP6, 5000)),
             f"Data indication with XOR-PEER-ADDRESS [{it.B_IP6}]:5000: {d}")

    # ---- channels ------------------------------------------------------------------------
    ok(c.request_peer(sc.CHANNEL_BIND, (it.B_IP6, 5000),
                      [(sc.CHANNEL_NUMBER, struct.pack("!HH", 0x4000, 0))]),
       "ChannelBind 0x4000 to [2001:2::3]:5000")
    for i in range(20):
        c.send(sc.channel_data(0x4000, b"cd%02d" % i + bytes(100)))
    got = it.recv_all(p6, 20, 3)
    it.check_eq([g[0][:4] for g in got], [b"cd%02d" % i for i in range(20)],
                "20 ChannelData payloads at the v6 peer, in order")
    it.check(all(g[1] == rel6 for g in got), "each from the relayed address")
    for i in range(20):
        p6.sendto(b"back%02d" % i, rel6)
    back = []
    for _ in range(20):
        x = c.recv_relayed(2)
        if x is None:
            break
        cd = sc.parse_channel_data(x[0])
        if cd is not None:
            back.append(cd)
    it.check_eq(back, [(0x4000, b"back%02d" % i) for i in range(20)],
                "20 datagrams from the v6 peer as ChannelData 0x4000")

    # ---- dual allocation ---------------------------------------------------------------------
    cd = client(env, it.A_IP)
    r = ok(cd.allocate([RT_UDP, AAF6]), "Allocate with ADDITIONAL-ADDRESS-FAMILY IPv6")
    rels = r.xor_addresses(sc.XOR_RELAYED_ADDRESS)
    fams = sorted(6 if ":" in ip else 4 for ip, _p in rels)
    it.check_eq(fams, [4, 6], f"two XOR-RELAYED-ADDRESS, one per family: {rels}")
    it.check(r.address_error() is None, "no ADDRESS-ERROR-CODE (both families available)")
    r4 = next(x for x in rels if ":" not in x[0])
    r6 = next(x for x in rels if ":" in x[0])
    ok(cd.request_peer(sc.CREATE_PERMISSION, (it.B_IP, 5000)), "dual: permission for v4 peer")
    ok(cd.request_peer(sc.CREATE_PERMISSION, (it.B_IP6, 5000)), "dual: permission for v6 peer")
    cd.send_indication((it.B_IP, 5000), b"dual to v4")
    cd.send_indication((it.B_IP6, 5000), b"dual to v6")
    it.check_eq(it.recv_all(p4, 1, 3), [(b"dual to v4", r4)], "the v4 peer: from the v4 relay")
    it.check_eq(it.recv_all(p6, 1, 3), [(b"dual to v6", r6)], "the v6 peer: from the v6 relay")
    p4.sendto(b"v4 back", r4)
    it.check_eq(data_indication(cd), (b"v4 back", (it.B_IP, 5000)), "dual: Data from v4 peer")
    p6.sendto(b"v6 back", r6)
    it.check_eq(data_indication(cd), (b"v6 back", (it.B_IP6, 5000)), "dual: Data from v6 peer")

    cx = client(env, it.A_IP)
    err(cx.allocate([RT_UDP, RAF6, AAF6]), 400,
        "REQUESTED- and ADDITIONAL-ADDRESS-FAMILY together")
    cy = client(env, it.A_IP)
    err(cy.allocate([RT_UDP, AAF4]), 400, "ADDITIONAL-ADDRESS-FAMILY IPv4")

    # ---- counters --------------------------------------------------------------------------------
    t = env.stats()["turn"]
    it.check(t["allocations_created"] - t0.get("allocations_created", 0) >= 3,
             "allocations_created grew by 3 or more")
    it.check(t["channel_data_pkts"] - t0.get("channel_data_pkts", 0) >= 40,
             "ChannelData counted both ways")
    drops = env.total_drops()
    it.check(drops.get("turn_no_permission", 0) == 0 and drops.get("turn_bad_channel", 0) == 0,
             f"no permission/channel drops: { {k: v for k, v in drops.items() if 'turn' in k} }")
    for a in env.request({"cmd": "turn.list"})["allocations"]:
        env.request({"cmd": "turn.delete", "allocation": a["id"]})
    it.wait_for(lambda: env.stats()["turn"]["allocations"] == 0, 5, "every allocation gone")
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "turn_ipv6", extra_config=TURN_CONFIG,
                     addresses=[f"{it.RELAY_IP}/24", f"{it.RELAY_IP6}/64"],
                     ns_ip6=(it.A_IP6, it.B_IP6, it.C_IP6)))
