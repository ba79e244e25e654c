#!/usr/bin/env python3
"""TURN over IPv6 (RFC 8656 address families, issue #11) with coturn's own
test clients: isard has 198.18.0.1/24 and 2001:2::1/64, `turnutils_peer`
runs twice in the namespace (UDP echo at [2001:2::3]:3480 and at
198.18.0.3:3480), `turnutils_uclient` relays to them through isard with the
REST secret (-W):

- client over IPv6, IPv6 relay (-x), IPv6 peer: channels, and Send/Data
  indications (-s);
- client over IPv6, IPv4 relay explicitly (-X), IPv4 peer;
- client over IPv4, IPv6 relay (-x), IPv6 peer;
- client to client through IPv6 relays (-y, hairpin).

The five uclients run at once (each takes ~5 s, mostly waiting) and each
must report 0 lost packets. The allocations `turn.list` shows while they
run are exactly of the expected kinds: IPv6 client ([2001:2::2]:PORT) with IPv6
relayed address ([2001:2::1]:PORT) or with IPv4 (198.18.0.1:PORT), and
IPv4 client with IPv6 relayed address. The TURN counters show relaying in
both directions, ChannelData and hairpin packets, and no permission or
channel drops. SKIP without the coturn tools."""

import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import stun_client as sc  # noqa: E402
import test_turn_uclient as tu  # noqa: E402  (secrets, summary parsing)

PEER_PORT = "3480"
TURN_CONFIG = f"""[turn]
listen_udp = [3478]
realm = "{tu.REALM}"
auth_secret_file = "@DIR@/turn-secret"
allowed_peer = ["198.18.0.0/24", "2001:2::/64"]
max_allocations = 1000
allocate_rate = 1000
"""


def uclient_cmd(env, local, server, peer, *args):
    return ["ip", "netns", "exec", env.ns, "turnutils_uclient", "-W", tu.SECRET, "-u", "alice",
            "-L", local, "-e", peer, "-r", PEER_PORT, *args, server]


def run_cases(env, cases, timeout=25):
    """Runs every case's uclient at once (each takes ~5 s, mostly its own
    waiting) and checks each one's summary: 0 lost, all received. Returns
    every allocation turn.list showed while they ran (uclient ends some of
    its allocations with Refresh 0 when it is done, so what is left after
    it says less than what it held)."""
    procs = []
    for what, local, server, peer, args in cases:
        out = open(os.path.join(env.dir, f"uclient-{len(procs)}.log"), "w+")
        procs.append((what, out, subprocess.Popen(uclient_cmd(env, local, server, peer, *args),
                                                  stdout=out, stderr=subprocess.STDOUT,
                                                  text=True, preexec_fn=it._die_with_parent)))
    seen = {}
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for _w, _o, p in procs):
        if time.monotonic() > deadline:
            for _w, _o, q in procs:
                q.kill()
            raise it.TestFailure(f"uclients did not finish in {timeout}s")
        seen.update(allocations(env))
        time.sleep(0.1)
    for what, out, p in procs:
        out.seek(0)
        text = out.read()
        out.close()
        lost, sent, recv = tu.lost_and_sent(text)
        if p.returncode != 0 or lost is None or sent is None:
            it.log(text[-3000:])
            raise it.TestFailure(f"{what}: uclient exited {p.returncode} without a summary")
        if lost != 0 or sent < 1 or recv != sent:
            it.log(text[-3000:])
            raise it.TestFailure(f"{what}: sent {sent}, received {recv}, lost {lost}")
        it.check(True, f"{what}: uclient sent {sent}, received {recv}, lost 0")
    return seen


def allocations(env):
    return {a["id"]: a for a in env.request({"cmd": "turn.list"})["allocations"]}


def relayed_list(a):
    r = a.get("relayed")
    return r if isinstance(r, list) else [r]


def answers_allocate(env, local, server):
    """isard answers an unauthenticated Allocate from local to server (401):
    checked first, so that a missing listener fails in a second, not after
    uclient's own long retries."""
    s = env.udp(local, 0)
    try:
        s.sendto(sc.build(sc.ALLOCATE, sc.REQUEST, [sc.u32(sc.REQUESTED_TRANSPORT, 17 << 24)]),
                 server)
        got = it.recv_all(s, 1, 2)
        return bool(got) and sc.Message(got[0][0]).error_code() == 401
    finally:
        s.close()


def start_peer(env, ip):
    return subprocess.Popen(["ip", "netns", "exec", env.ns, "turnutils_peer", "-L", ip,
                             "-p", PEER_PORT], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=it._die_with_parent)


def body(env):
    for tool in ("turnutils_uclient", "turnutils_peer"):
        if shutil.which(tool) is None:
            raise it.Skip(f"{tool} is not installed (Debian package coturn)")
    tu.write_secrets(env, tu.SECRET + "\n")
    env.start()
    peers = [start_peer(env, it.B_IP6), start_peer(env, it.B_IP)]
    v6c, v4c = f"[{it.A_IP6}]", it.A_IP + ":"
    v6r, v4r = f"[{it.RELAY_IP6}]", it.RELAY_IP + ":"
    try:
        time.sleep(0.3)
        for p in peers:
            it.check(p.poll() is None, "turnutils_peer is running")
        for local, server in ((it.A_IP6, (it.RELAY_IP6, 3478)), (it.A_IP, (it.RELAY_IP, 3478))):
            it.check(answers_allocate(env, local, server),
                     f"isard answers an Allocate from {local} to {it.ep(*server)} (401)")
        hp0 = env.stats()["turn"].get("hairpin_pkts", 0)
        seen = run_cases(env, [
            ("IPv6 client, IPv6 relay (-x), IPv6 peer, channels", it.A_IP6, it.RELAY_IP6,
             it.B_IP6, ["-x", "-n", "50", "-l", "160"]),
            ("IPv6 client, IPv6 relay, Send/Data indications (-s)", it.A_IP6, it.RELAY_IP6,
             it.B_IP6, ["-x", "-s", "-n", "50", "-l", "160"]),
            ("IPv6 client, IPv4 relay (-X), IPv4 peer", it.A_IP6, it.RELAY_IP6, it.B_IP,
             ["-X", "-c", "-n", "50", "-l", "1000"]),
            ("IPv4 client, IPv6 relay (-x), IPv6 peer", it.A_IP, it.RELAY_IP, it.B_IP6,
             ["-x", "-c", "-n", "50", "-l", "160"]),
            ("IPv6 client to client through IPv6 relays (-y)", it.A_IP6, it.RELAY_IP6,
             it.B_IP6, ["-x", "-y", "-n", "40", "-l", "160"]),
        ])
        # Every allocation turn.list showed while the uclients ran.
        it.check(len(seen) >= 7, f"turn.list showed {len(seen)} allocations during the run")
        kinds = {}
        for a in seen.values():
            for rel in relayed_list(a):
                k = ("v6" if str(a["client"]).startswith(v6c) else
                     "v4" if str(a["client"]).startswith(v4c) else str(a["client"]),
                     "v6" if str(rel).startswith(v6r) else
                     "v4" if str(rel).startswith(v4r) else str(rel))
                kinds[k] = kinds.get(k, 0) + 1
        it.log(f"allocations by (client, relayed) family: {kinds}")
        it.check(kinds.get(("v6", "v6"), 0) >= 5 and kinds.get(("v6", "v4"), 0) >= 1 and
                 kinds.get(("v4", "v6"), 0) >= 1 and set(kinds) <= {("v6", "v6"), ("v6", "v4"),
                                                                    ("v4", "v6")},
                 "turn.list: IPv6 clients with IPv6 (-x) and IPv4 (-X) relays, an IPv4 client "
                 "with an IPv6 relay, nothing else")
        st = env.stats()["turn"]
        it.check(st["hairpin_pkts"] > hp0, f"hairpin packets: {st['hairpin_pkts'] - hp0}")
        it.check(st["to_peers_pkts"] > 0 and st["from_peers_pkts"] > 0,
                 f"relayed by the workers: {st['to_peers_pkts']} to peers, "
                 f"{st['from_peers_pkts']} from peers")
        it.check(st["channel_data_pkts"] > 0, "ChannelData on the fast path")
        drops = env.total_drops()
        bad = {k: v for k, v in drops.items() if k.startswith("turn_") and v}
        it.check(not bad.get("turn_no_permission") and not bad.get("turn_bad_channel"),
                 f"no TURN permission/channel drops on the good path: {bad}")
        for p in peers:
            it.check(p.poll() is None, "turnutils_peer still running")
        for i in list(allocations(env)):
            r = env.request({"cmd": "turn.delete", "allocation": i})
            it.check_eq(r.get("deleted"), i, f"turn.delete {i}")
        it.wait_for(lambda: env.stats()["turn"]["allocations"] == 0, 5,
                    "every allocation to be gone")
    finally:
        for p in peers:
            p.kill()
            p.wait()
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "turn_uclient6", extra_config=TURN_CONFIG,
                     addresses=[f"{it.RELAY_IP}/24", f"{it.RELAY_IP6}/64"],
                     ns_ip6=(it.A_IP6, it.B_IP6, it.C_IP6)))
