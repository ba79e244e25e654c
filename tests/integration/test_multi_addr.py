#!/usr/bin/env python3
"""Several addresses per interface and public_address (issue #11 §4).

1. `address = ["198.18.0.1/24", "198.18.0.5/24", "2001:2::1/64"]` with a
   relay port range of 4 ports: the pool is per address, so 8 IPv4 legs
   (4 two-leg sessions) fit, on both IPv4 addresses, every (address, port)
   once; the 5th session is refused as exhausted; IPv6 legs still get their
   own 4 ports. The namespace kernel resolves 198.18.0.5 by ARP to isard's
   MAC, and a call between a leg on 198.18.0.5 and one on 198.18.0.1 carries
   RTP both ways byte for byte, each packet from its leg's address and port.
2. isard restarted with `public_address = ["198.19.0.7", "2001:2:0:ff::7"]`
   (1:1 NAT in front, not emulated here): a v4 leg's `local` is
   198.19.0.7:PORT and a v6 leg's [2001:2:0:ff::7]:PORT while the packets
   still go to and come from 198.18.0.1:PORT / [2001:2::1]:PORT; a TURN
   Allocate over IPv4 gets XOR-RELAYED-ADDRESS 198.19.0.7:PORT (and its
   XOR-MAPPED-ADDRESS is the client's own), one over IPv6 with
   REQUESTED-ADDRESS-FAMILY IPv6 gets [2001:2:0:ff::7]:PORT; data sent
   through the v4 allocation reaches the peer from 198.18.0.1 at that PORT.
3. isard restarted with IPv4 only: a `family=6` leg and an IPv6 remote are
   refused with an error naming the family, and nothing is allocated; a
   TURN Allocate asking for IPv6 gets 440 (Address Family not Supported).
"""
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import stun_client as sc  # noqa: E402

SECOND_IP = "198.18.0.5"
PUBLIC4 = "198.19.0.7"
PUBLIC6 = "2001:2:0:ff::7"
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
PAYLOAD = 160


def try_create(env, sid, *legs):
    args = ["session", "create", sid]
    for l in legs:
        args += ["--leg", l]
    p = env.ctl(*args)
    return p.returncode, p.stdout, p.stderr.strip()


def part_two_v4(env):
    env.start()
    legs = {}
    refused = None
    for i in range(8):  # bounded: 4 must fit, the 5th must not
        rc, out, err = try_create(env, f"s{i}", "x", "y")
        if rc != 0:
            refused = (i, err + out)
            break
        for l in json.loads(out)["legs"]:
            legs[(f"s{i}", l["name"])] = it.split_ep(l["local"])
    it.check(refused is not None and refused[0] == 4,
             f"4 two-leg sessions fit in 2 addresses x 4 ports, the 5th is refused: {refused}")
    it.check("exhaust" in refused[1], f"the refusal says exhausted: {refused[1]!r}")
    eps = list(legs.values())
    it.check_eq(len(set(eps)), 8, "8 IPv4 legs, every (address, port) once")
    by_ip = {ip: sorted(p for i, p in eps if i == ip) for ip, _p in eps}
    it.check_eq(sorted(by_ip), sorted([it.RELAY_IP, SECOND_IP]), "legs on both IPv4 addresses")
    it.check(all(len(v) == 4 for v in by_ip.values()), f"4 legs on each address: {by_ip}")
    rc, out, err = try_create(env, "v6", "x,family=6", "y,family=6")
    it.check(rc == 0, f"IPv6 legs have their own pool while IPv4 is exhausted ({err})")

    # A call through a session with a leg on the second address (and, when
    # the pool dealt it so, its other leg on the first).
    sid = next(k[0] for k, v in sorted(legs.items()) if v[0] == SECOND_IP)
    loc = {"x": legs[(sid, "x")], "y": legs[(sid, "y")]}
    it.log(f"call through {sid}: x at {it.ep(*loc['x'])}, y at {it.ep(*loc['y'])}")
    a = env.udp(it.A_IP, 4000)
    b = env.udp(it.B_IP, 5000)
    hello = it.rtp_packet(1, 0, 0xB0B, b"\x01" * PAYLOAD)
    b.sendto(hello, loc["y"])
    it.wait_for(lambda: env.leg(sid, "y")["remote"], 3, "leg y to latch")
    sa = it.make_stream(0xA, 100, PAYLOAD)
    it.send_paced(a, sa, loc["x"])
    it.expect_stream(b, sa, loc["y"], f"A -> {it.ep(*loc['x'])} -> B from {it.ep(*loc['y'])}")
    sb = it.make_stream(0xB, 100, PAYLOAD)
    it.send_paced(b, sb, loc["y"])
    it.expect_stream(a, sb, loc["x"], f"B -> {it.ep(*loc['y'])} -> A from {it.ep(*loc['x'])}")
    env.wait_neigh(SECOND_IP, env.isard_mac)
    it.check(True, f"the namespace kernel resolved {SECOND_IP} to isard's MAC (ARP)")
    env.check_health()
    env.stop_isard(verify=True)


def part_public(env):
    env.addresses = [f"{it.RELAY_IP}/24", f"{it.RELAY_IP6}/64"]
    env.iface_extra = f'public_address = ["{PUBLIC4}", "{PUBLIC6}"]\n'
    env.extra_config = TURN_CONFIG
    env.port_min, env.port_max = 40000, 40099
    env.start()
    # (new ports: part 1's sockets are still open)
    a = env.udp(it.A_IP, 4100)
    b = env.udp(it.B_IP, 5100)
    locs, r = env.create("pub", f"x,remote={it.A_IP}:4100", f"y,remote={it.B_IP}:5100")
    it.check(all(it.split_ep(l["local"])[0] == PUBLIC4 for l in r["legs"]),
             f"v4 legs' local is the public address: {[l['local'] for l in r['legs']]}")
    px, py = locs["x"][1], locs["y"][1]
    pk = it.make_stream(0xA, 20, PAYLOAD)
    it.send_paced(a, pk, (it.RELAY_IP, px))
    it.expect_stream(b, pk, (it.RELAY_IP, py), "A -> 198.18.0.1:x -> B (from the real address)")
    locs6, r6 = env.create("pub6", f"x,remote=[{it.A_IP6}]:4000", "y,family=6")
    it.check(all(it.split_ep(l["local"])[0] == PUBLIC6 for l in r6["legs"]),
             f"v6 legs' local is the public IPv6 address: {[l['local'] for l in r6['legs']]}")
    a6 = env.udp6(it.A_IP6, 4000)
    b6 = env.udp6(it.B_IP6, 5000)
    hello = it.rtp_packet(1, 0, 0xB0B, b"\x01" * PAYLOAD)
    b6.sendto(hello, (it.RELAY_IP6, locs6["y"][1]))
    it.expect_stream(a6, [hello], (it.RELAY_IP6, locs6["x"][1]), "B6 -> [2001:2::1]:y -> A6")

    # TURN: XOR-RELAYED-ADDRESS is the public one.
    user = sc.rest_username(3600, "alice")
    pw = sc.rest_password(SECRET, user)
    c4 = sc.TurnClient(env.udp(it.A_IP, 0), (it.RELAY_IP, 3478), user, pw, REALM)
    r = c4.allocate()
    it.check(r is not None and r.cls == sc.SUCCESS, f"Allocate over IPv4: {r and r.describe()}")
    rel = r.xor_address(sc.XOR_RELAYED_ADDRESS)
    it.check_eq(rel[0], PUBLIC4, "XOR-RELAYED-ADDRESS (IPv4) is the public address")
    it.check_eq(r.xor_address(sc.XOR_MAPPED_ADDRESS), c4.addr[:2],
                "XOR-MAPPED-ADDRESS is the client's own address")
    pr = c4.request_peer(sc.CREATE_PERMISSION, (it.B_IP, 5100))
    it.check(pr is not None and pr.cls == sc.SUCCESS, "CreatePermission for 198.18.0.3")
    c4.send_indication((it.B_IP, 5100), b"through the public relay")
    got = it.recv_all(b, 1, 3)
    it.check(got and got[0] == (b"through the public relay", (it.RELAY_IP, rel[1])),
             f"the peer got the data from {it.RELAY_IP}:{rel[1]} (the real address, "
             f"the reported port): {got}")
    c6 = sc.TurnClient(env.udp6(it.A_IP6, 0), (it.RELAY_IP6, 3478), user, pw, REALM)
    r = c6.allocate([sc.u32(sc.REQUESTED_TRANSPORT, 17 << 24),
                     sc.attr(sc.REQUESTED_ADDRESS_FAMILY, b"\x02\0\0\0")])
    it.check(r is not None and r.cls == sc.SUCCESS,
             f"Allocate over IPv6 for an IPv6 relay: {r and r.describe()}")
    rel6 = r.xor_address(sc.XOR_RELAYED_ADDRESS)
    it.check_eq(rel6[0], PUBLIC6, "XOR-RELAYED-ADDRESS (IPv6) is the public IPv6 address")
    it.check_eq(r.xor_address(sc.XOR_MAPPED_ADDRESS), (it.A_IP6, c6.addr[1]),
                "XOR-MAPPED-ADDRESS is the IPv6 client's own address")
    for al in env.request({"cmd": "turn.list"})["allocations"]:
        env.request({"cmd": "turn.delete", "allocation": al["id"]})
    env.check_health()
    env.stop_isard(verify=True)


def part_v4_only(env):
    env.addresses = [f"{it.RELAY_IP}/24"]
    env.iface_extra = ""
    env.start()
    n0 = env.stats()["sessions"]["legs"]
    for legs in (("x,family=6", "y"), (f"x,remote=[{it.A_IP6}]:4000", "y")):
        rc, out, err = try_create(env, "nov6", *legs)
        it.check(rc != 0 and ("6" in err or "family" in err.lower()),
                 f"{legs[0]} refused without an IPv6 address: {err!r}")
    it.check_eq(env.stats()["sessions"]["legs"], n0, "no leg was created")
    it.check_eq(env.session_ids(), [], "no session was created")
    user = sc.rest_username(3600, "bob")
    c = sc.TurnClient(env.udp(it.A_IP, 0), (it.RELAY_IP, 3478), user,
                      sc.rest_password(SECRET, user), REALM)
    r = c.allocate([sc.u32(sc.REQUESTED_TRANSPORT, 17 << 24),
                    sc.attr(sc.REQUESTED_ADDRESS_FAMILY, b"\x02\0\0\0")])
    it.check(r is not None and r.cls == sc.ERROR and r.error_code() == 440,
             f"an IPv6 relay without an IPv6 address: 440 ({r and r.describe()})")
    env.final_checks()


def body(env):
    with open(os.path.join(env.dir, "turn-secret"), "w") as f:
        f.write(SECRET + "\n")
    os.chmod(os.path.join(env.dir, "turn-secret"), 0o600)
    it.log("---- two IPv4 addresses and one IPv6 ----")
    part_two_v4(env)
    it.log("---- public_address ----")
    part_public(env)
    it.log("---- IPv4 only ----")
    part_v4_only(env)


if __name__ == "__main__":
    sys.exit(it.main(body, "multi_addr", port_min=40000, port_max=40003,
                     addresses=[f"{it.RELAY_IP}/24", f"{SECOND_IP}/24", f"{it.RELAY_IP6}/64"],
                     ns_ip6=(it.A_IP6, it.B_IP6, it.C_IP6)))
