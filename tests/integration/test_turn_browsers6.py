#!/usr/bin/env python3
"""Headless Chromium relay-only over an IPv6 TURN address (issue #11): the
page of test_turn_browsers.py (two RTCPeerConnections, iceTransportPolicy
"relay", audio pc1 -> pc2, a data channel with echoes) gets one ICE server,
`turn:[2001:2::1]:3478?transport=udp`. isard has 198.18.0.1/24 and
2001:2::1/64; the namespace 198.18.0.2-4 and 2001:2::2-4.

nftables in the endpoints' namespace drops every UDP datagram to the IPv4
relay address (checked: an Allocate to 198.18.0.1:3478 gets nothing, one to
[2001:2::1]:3478 is answered), so the call can only work over IPv6 between
Chromium and isard; a counter rule counts the datagrams to [2001:2::1]:3478.
The call must connect with relay/relay pairs, audio and every data channel
message must arrive, and isard's TURN counters must show the allocations,
channels, ChannelData and hairpin packets; the allocations still listed
afterwards have IPv6 client addresses. SKIP without chromium or nft."""

import json
import os
import shutil
import socket
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import stun_client as sc  # noqa: E402
import test_turn_browsers as tb  # noqa: E402  (the page, its server, the browser runner)

TURN_URL6 = f"turn:[{it.RELAY_IP6}]:3478?transport=udp"
TURN_CONFIG = f"""[turn]
listen_udp = [3478]
realm = "{tb.REALM}"
auth_secret_file = "@DIR@/turn-secret"
allowed_peer = ["198.18.0.0/24", "2001:2::/64"]
max_allocations = 1000
allocate_rate = 1000
"""
TABLE = "isarit_v6only"


def allocate_answered(env, local, server):
    """A UDP Allocate without credentials from `local` to `server`: answered (401)?"""
    s = env.udp(local, 0)
    try:
        try:
            s.sendto(sc.build(sc.ALLOCATE, sc.REQUEST,
                              [sc.u32(sc.REQUESTED_TRANSPORT, 17 << 24)]), server)
        except PermissionError:  # nftables drop on output: EPERM
            return False
        s.settimeout(1.0)
        try:
            data, _src = s.recvfrom(2048)
        except socket.timeout:
            return False
        m = sc.Message(data)
        return m.cls == sc.ERROR and m.error_code() == 401
    finally:
        s.close()


def block_v4(env):
    rules = (f"table inet {TABLE} {{\n"
             "  chain out {\n"
             "    type filter hook output priority 0; policy accept;\n"
             f"    ip daddr {it.RELAY_IP} meta l4proto udp counter drop\n"
             f"    ip6 daddr {it.RELAY_IP6} udp dport 3478 counter accept\n"
             "  }\n"
             "}\n")
    path = os.path.join(env.dir, "v6only.nft")
    with open(path, "w") as f:
        f.write(rules)
    env.ns_run(["nft", "-f", path])


def nft_counters(env):
    """[packets of rule 1 (v4 dropped), packets of rule 2 (v6 to 3478)]."""
    out = env.ns_run(["nft", "-j", "list", "table", "inet", TABLE]).stdout
    got = []
    for item in json.loads(out).get("nftables", []):
        for e in (item.get("rule") or {}).get("expr", []):
            if "counter" in e:
                got.append(e["counter"]["packets"])
    return got


def body(env):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise it.Skip("chromium is not installed (Debian package chromium)")
    if shutil.which("nft") is None:
        raise it.Skip("nft is not installed (Debian package nftables)")
    secret_path = os.path.join(env.dir, "turn-secret")
    with open(secret_path, "w") as f:
        f.write(tb.SECRET + "\n")
    os.chmod(secret_path, 0o600)
    env.start()
    it.check(allocate_answered(env, it.A_IP6, (it.RELAY_IP6, 3478)),
             f"an Allocate to [{it.RELAY_IP6}]:3478 is answered (401)")
    block_v4(env)
    try:
        it.check(not allocate_answered(env, it.A_IP, (it.RELAY_IP, 3478)),
                 f"with the block, an Allocate to {it.RELAY_IP}:3478 gets nothing")
        c0 = nft_counters(env)
        server = tb.PageServer(env, turn_url=TURN_URL6)
        try:
            before = tb.turn_stats(env)
            prof = tempfile.mkdtemp(prefix="chromium6-", dir=env.dir)
            res = tb.run_browser(env, server, "chromium6", tb.chromium_cmd(exe, prof, "chromium6"),
                                 {"HOME": prof})
        finally:
            server.close()
        tb.check_browser_result("chromium over IPv6 TURN", res)
        c1 = nft_counters(env)
        it.log(f"nftables: {c1[0] - c0[0]} UDP datagram(s) to {it.RELAY_IP} dropped, "
               f"{c1[1] - c0[1]} sent to [{it.RELAY_IP6}]:3478")
        it.check(c1[1] - c0[1] > 20, f"Chromium talked to [{it.RELAY_IP6}]:3478 "
                 f"({c1[1] - c0[1]} datagrams)")
        relays = [l for side in ("pc1", "pc2") for l in res["candidates"][side]]
        it.log(f"relay candidates (address family isard chose): {relays}")
    finally:
        env.ns_run(["nft", "delete", "table", "inet", TABLE], check_rc=False)
    d = tb.delta(tb.turn_stats(env), before)
    it.log(f"isard TURN counters grew by {d}")
    it.check(d["allocations_created"] >= 2, f"{d['allocations_created']} allocations created")
    it.check(d["channels_bound"] >= 2, f"{d['channels_bound']} channels bound")
    it.check(d["channel_data_pkts"] > 0, f"{d['channel_data_pkts']} ChannelData packets")
    it.check(d["hairpin_pkts"] > 20, f"{d['hairpin_pkts']} hairpin packets")
    drops = env.total_drops()
    it.check(drops.get("turn_bad_channel", 0) == 0 and drops.get("turn_no_permission", 0) <= 60,
             f"no bad TURN drops (ICE races allowed): {drops}")
    allocs = env.request({"cmd": "turn.list"})["allocations"]
    it.log(f"{len(allocs)} allocation(s) left: {[(a['client'], a['relayed']) for a in allocs]}")
    it.check(all(str(a["client"]).startswith("[2001:2::") for a in allocs),
             "every allocation left has an IPv6 client address")
    for a in allocs:
        env.request({"cmd": "turn.delete", "allocation": a["id"]})
    it.wait_for(lambda: tb.turn_stats(env)["allocations"] == 0, 5, "every allocation to be gone")
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "turn_browsers6", extra_config=TURN_CONFIG,
                     addresses=[f"{it.RELAY_IP}/24", f"{it.RELAY_IP6}/64"],
                     ns_ip6=(it.A_IP6, it.B_IP6, it.C_IP6)))
