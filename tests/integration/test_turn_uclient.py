"""TURN over UDP with coturn's own test clients (Debian's `coturn` package),
as an operator replacing coturn would try it: `turnutils_peer` in the
namespace, `turnutils_uclient` with the REST shared secret (-W) relaying to
it through isard, with channels, with Send indications (-s), with and
without EVEN-PORT (-c), several clients at once (-m); uclient must report 0
lost packets. SKIP without the coturn tools."""

import os
import re
import shutil
import subprocess
import sys
import time

import isar_it as it

SECRET = "isar-test-secret-" + os.urandom(4).hex()
REALM = "meet.example.org"
TURN_CONFIG = f"""[turn]
listen_udp = [3478]
realm = "{REALM}"
auth_secret_file = "@DIR@/turn-secret"
allowed_peer = ["198.18.0.0/24"]
max_allocations = 1000
allocate_rate = 1000
"""


def uclient(env, *args, timeout=60):
    cmd = ["ip", "netns", "exec", env.ns, "turnutils_uclient", "-W", SECRET, "-u", "alice",
           "-L", it.A_IP, "-e", it.B_IP, "-r", "3480", *args, it.RELAY_IP]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = p.stdout + p.stderr
    return p.returncode, out


def lost_and_sent(out):
    # uclient's summary: "start_mclient: tot_send_msgs=100, tot_recv_msgs=100" and
    # "Total lost packets 0 (0.000000%), total send dropped 0 (0.000000%)".
    lost = re.search(r"Total lost packets (\d+)", out)
    sent = re.search(r"tot_send_msgs=(\d+), tot_recv_msgs=\d+\s*$", out, re.M)
    recv = re.search(r"tot_send_msgs=\d+, tot_recv_msgs=(\d+)\s*$", out, re.M)
    return (int(lost.group(1)) if lost else None, int(sent.group(1)) if sent else None,
            int(recv.group(1)) if recv else None)


def run_case(env, what, *args, expect_min=1):
    rc, out = uclient(env, *args)
    lost, sent, recv = lost_and_sent(out)
    if rc != 0 or lost is None or sent is None:
        it.log(out[-3000:])
        raise it.TestFailure(f"{what}: uclient exited {rc} without a summary")
    if lost != 0 or sent < expect_min or recv != sent:
        it.log(out[-3000:])
        raise it.TestFailure(f"{what}: sent {sent}, received {recv}, lost {lost}")
    it.check(True, f"{what}: uclient sent {sent}, received {recv}, lost 0")
    return sent


def write_secrets(env, text):
    """The test's auth_secret_file (@DIR@/turn-secret), mode 0600."""
    path = os.path.join(env.dir, "turn-secret")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def start_peer(env):
    """coturn's turnutils_peer (a UDP echo) on B_IP:3480 in the endpoints' namespace."""
    return subprocess.Popen(["ip", "netns", "exec", env.ns, "turnutils_peer", "-L", it.B_IP,
                             "-p", "3480"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=it._die_with_parent)


def body(env):
    for tool in ("turnutils_uclient", "turnutils_peer"):
        if shutil.which(tool) is None:
            raise it.Skip(f"{tool} is not installed (Debian package coturn)")
    write_secrets(env, "# rotated secrets, newest first\nold-secret-still-accepted\n" + SECRET +
                  "\n")
    env.start()
    peer = start_peer(env)
    try:
        time.sleep(0.3)
        total = 0
        total += run_case(env, "channels, EVEN-PORT + RTCP pair", "-n", "50", "-l", "160")
        total += run_case(env, "Send/Data indications (-s)", "-s", "-n", "50", "-l", "160")
        total += run_case(env, "channels without EVEN-PORT (-c)", "-c", "-n", "50", "-l", "1000")
        total += run_case(env, "8 clients at once (-m 8)", "-m", "8", "-n", "30", "-l", "200")
        total += run_case(env, "client to client through the relay (-y, hairpin)", "-y", "-n",
                          "40", "-l", "160")
        st = env.stats()["turn"]
        it.check(st["allocations_created"] >= 5, f"allocations created: {st['allocations_created']}")
        it.check(st["to_peers_pkts"] > 0 and st["from_peers_pkts"] > 0,
                 f"relayed by the workers: {st['to_peers_pkts']} to peers, "
                 f"{st['from_peers_pkts']} from peers")
        it.check(st["channel_data_pkts"] > 0, "ChannelData on the fast path")
        it.check(st["hairpin_pkts"] > 0, f"hairpin packets: {st['hairpin_pkts']}")
        drops = env.total_drops()
        it.check(drops.get("turn_no_permission", 0) == 0 and drops.get("turn_bad_channel", 0) == 0,
                 f"no TURN drops on the good path: {drops}")
        # uclient exits without releasing its allocations: they would expire
        # with their lifetime; the operator ends them now.
        # (uclient's last Refresh 0 requests may still be on their way: the
        # two views agree once they are handled)
        def listed():
            a = env.request({"cmd": "turn.list"})["allocations"]
            return a if a and len(a) == env.stats()["turn"]["allocations"] else None
        allocs = it.wait_for(listed, 5, "turn.list and stats to agree")
        it.check(True, f"turn.list shows the {len(allocs)} live allocations")
        for a in allocs:
            r = env.request({"cmd": "turn.delete", "allocation": a["id"]})
            it.check_eq(r.get("deleted"), a["id"], f"turn.delete {a['id']}")
        it.wait_for(lambda: env.stats()["turn"]["allocations"] == 0, 5,
                    "every allocation to be gone")
    finally:
        peer.kill()
        peer.wait()
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "turn_uclient", extra_config=TURN_CONFIG))
