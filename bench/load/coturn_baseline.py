#!/usr/bin/env python3
"""coturn vs Isar end to end, same clients (bench/README.md, "TURN").

Runs, each bounded in count and time (the whole thing ~30-60 s):
  1. coturn: Debian's `turnserver` in a network namespace (loopback) with
     --use-auth-secret, driven by `turnutils_uclient` (-m clients, -n messages,
     -l 160, -z interval, channels, no RTCP) relaying to `turnutils_peer`;
     relayed packets per CPU-second of turnserver (/proc/PID/stat utime+stime
     before/after; relayed = uclient's sent + received messages: each is one
     client->peer and one peer->client relay).
  2. Isar: isard on net_af_packet in a namespace (tests/integration/isar_it.py
     Env, a veth), the same uclient command; relayed packets per CPU-second of
     isard (all its threads: the worker lcore polls, so it burns its core even
     when idle: this is what a box pays) and per worker-busy second.
  3. Allocations/s of both with the same client: a Python UDP client (the
     integration tests' stun_client.py codec) with N sockets (source ports),
     256 in flight: Allocate -> 401 (REALM, NONCE) -> Allocate with REST
     MESSAGE-INTEGRITY -> success.

usage: coturn_baseline.py ISARD ISARCTL [--json OUT] [--clients 16] [--msgs 2000]
       [--len 160] [--interval 1] [--allocs 4000]
Needs root (ip netns), coturn's tools; prints JSON on stdout.
"""
import argparse
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import isar_it as it  # noqa: E402
import stun_client as sc  # noqa: E402

SECRET = "isar-bench-secret-" + os.urandom(4).hex()
REALM = "bench.example.org"
HZ = os.sysconf("SC_CLK_TCK")
_libc = __import__("ctypes").CDLL(None, use_errno=True)


def setns(fd):
    if _libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(__import__("ctypes").get_errno(), "setns")


def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read()
    f = f[f.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / HZ  # utime, stime (all threads)


def uclient(ns, server, local, peer, a, timeout, extra=()):
    """`extra`: more uclient flags (turn_stream_bench.py: -t, -S, -p PORT)."""
    cmd = ["ip", "netns", "exec", ns, "turnutils_uclient", "-W", SECRET, "-u", "bench", "-c",
           "-L", local, "-e", peer, "-r", "3480", "-m", str(a.clients), "-n", str(a.msgs),
           "-l", str(a.len), "-z", str(a.interval), *extra, server]
    t = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        out, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode() + (e.stderr or b"").decode(), -1
    wall = time.monotonic() - t
    sent = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", out)
    lost = re.search(r"Total lost packets (\d+)", out)
    s, r = (int(sent[-1][0]), int(sent[-1][1])) if sent else (0, 0)
    return {"cmd": " ".join(cmd), "rc": rc, "sent": s, "received": r,
            "lost": int(lost.group(1)) if lost else None, "wall_s": wall,
            "tail": out[-400:] if not sent else ""}


def allocs(ns, server, local, n, limit_s=20.0):
    """n Allocate exchanges from n source ports, 256 in flight; in the namespace."""
    user = sc.rest_username(3600, "bench")
    key = sc.long_term_key(user, REALM, sc.rest_password(SECRET, user))
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    host = os.open("/proc/self/ns/net", os.O_RDONLY)
    setns(fd)
    try:
        socks = {}
        state = {}
        keep = []
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        done = failed = nxt = 0
        first_err = ""
        poll = select.epoll()
        t0 = time.monotonic()
        t_last = t0
        req = sc.build(sc.ALLOCATE, sc.REQUEST, [sc.u32(sc.REQUESTED_TRANSPORT, 17 << 24)])
        while done + failed < n and time.monotonic() - t0 < limit_s:
            while len(socks) < 256 and nxt < n:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((local, 0))
                s.setblocking(False)
                s.sendto(req, (server, 3478))
                socks[s.fileno()] = s
                state[s.fileno()] = 1
                poll.register(s.fileno(), select.EPOLLIN)
                nxt += 1
            for fdn, _ in poll.poll(0.5):
                s = socks[fdn]
                try:
                    data = s.recv(2048)
                except BlockingIOError:
                    continue
                m = sc.Message(data)
                if state[fdn] == 1 and m.cls == sc.ERROR and m.error_code() == 401:
                    state[fdn] = 2
                    s.sendto(sc.build(sc.ALLOCATE, sc.REQUEST,
                                      [sc.u32(sc.REQUESTED_TRANSPORT, 17 << 24),
                                       sc.string(sc.USERNAME, user), sc.string(sc.REALM, REALM),
                                       sc.string(sc.NONCE, m.text(sc.NONCE))], key=key),
                             (server, 3478))
                    continue
                if state[fdn] == 2 and m.cls == sc.SUCCESS and m.has(sc.XOR_RELAYED_ADDRESS):
                    done += 1
                    t_last = time.monotonic()
                else:
                    failed += 1
                    first_err = first_err or m.describe()
                poll.unregister(fdn)
                del socks[fdn], state[fdn]
                # kept open until the end: a new socket must not reuse the
                # port (that 5-tuple has an allocation: 437)
                keep.append(s)
        for s in list(socks.values()) + keep:
            s.close()
        el = t_last - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        r = {"allocations": n, "done": done, "failed": failed, "seconds": el,
             "allocations_per_s": done / el if el > 0 else 0,
             "client_cpu_s": ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime}
        if first_err:
            r["first_error"] = first_err
        return r
    finally:
        setns(host)
        os.close(fd)
        os.close(host)


def per_cpu(r):
    if r.get("server_cpu_s", 0) > 0:
        r["allocations_per_server_cpu_s"] = r["done"] / r["server_cpu_s"]


def coturn_ns():
    """A network namespace with 10.77.0.1-4 on its loopback (coturn's world)."""
    ns = f"isarbct{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        for i in range(1, 5):
            subprocess.run(["ip", "-n", ns, "addr", "add", f"10.77.0.{i}/24", "dev", "lo"],
                           check=True)
    except BaseException:
        subprocess.run(["ip", "netns", "del", ns])
        raise
    return ns


def start_coturn(ns, tls=("--no-tls",)):
    """turnserver (REST secret, relay on 10.77.0.1) and turnutils_peer on
    10.77.0.3:3480 in `ns`; `tls`: coturn's TLS flags (default none)."""
    ts = subprocess.Popen(["ip", "netns", "exec", ns, "turnserver", "-n", "--use-auth-secret",
                           f"--static-auth-secret={SECRET}", f"--realm={REALM}", *tls,
                           "--no-dtls", "-L", "10.77.0.1", "--relay-ip", "10.77.0.1",
                           "--min-port", "20000", "--max-port", "60000",
                           "--allowed-peer-ip=10.77.0.0-10.77.0.255", "--no-cli",
                           "--no-stun-backward-compatibility", "--log-file", "stdout",
                           "--no-software-attribute", "--simple-log"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          preexec_fn=it._die_with_parent)
    peer = subprocess.Popen(["ip", "netns", "exec", ns, "turnutils_peer", "-L", "10.77.0.3",
                             "-p", "3480"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=it._die_with_parent)
    time.sleep(1.0)
    return ts, peer


def run_coturn(a):
    ns = coturn_ns()
    procs = []
    res = {}
    try:
        procs.extend(start_coturn(ns))
        ts = procs[0]
        # `ip netns exec` execs: the Popen pid is turnserver's own
        pid = ts.pid
        c0 = cpu_s(pid)
        u = uclient(ns, "10.77.0.1", "10.77.0.2", "10.77.0.3", a, a.timeout)
        c1 = cpu_s(pid)
        relayed = u["sent"] + u["received"]
        res["uclient"] = u
        res["cpu_s"] = c1 - c0
        res["relayed_pkts"] = relayed
        res["relayed_per_cpu_s"] = relayed / (c1 - c0) if c1 > c0 else None
        res["relayed_per_wall_s"] = relayed / u["wall_s"]
        c0 = cpu_s(pid)
        res["allocs"] = allocs(ns, "10.77.0.1", "10.77.0.4", a.allocs)
        res["allocs"]["server_cpu_s"] = cpu_s(pid) - c0
        per_cpu(res["allocs"])
    finally:
        for p in procs:
            p.kill()
            p.wait()
        subprocess.run(["ip", "netns", "del", ns])
    return res


def run_isar(a):
    cfg = f"""[turn]
listen_udp = [3478]
realm = "{REALM}"
auth_secret_file = "@DIR@/turn-secret"
allowed_peer = ["198.18.0.0/24"]
max_allocations = {a.allocs + 4 * a.clients + 100}
allocate_rate = 0
max_requests_per_s = 0
"""
    res = {}
    with it.Env("turnbench", [sys.argv[0], a.isard, a.isarctl], port_min=20000, port_max=60000,
                mbufs=16383, extra_config=cfg) as env:
        path = os.path.join(env.dir, "turn-secret")
        with open(path, "w") as f:
            f.write(SECRET + "\n")
        os.chmod(path, 0o600)
        env.start()
        peer = subprocess.Popen(["ip", "netns", "exec", env.ns, "turnutils_peer", "-L", it.B_IP,
                                 "-p", "3480"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=it._die_with_parent)
        try:
            time.sleep(0.5)
            pid = env.proc.pid
            c0 = cpu_s(pid)
            t0 = time.monotonic()
            u = uclient(env.ns, it.RELAY_IP, it.A_IP, it.B_IP, a, a.timeout)
            c1 = cpu_s(pid)
            relayed = u["sent"] + u["received"]
            st = env.stats()
            res["uclient"] = u
            res["cpu_s"] = c1 - c0
            res["wall_s"] = time.monotonic() - t0
            res["relayed_pkts"] = relayed
            res["relayed_per_cpu_s"] = relayed / (c1 - c0) if c1 > c0 else None
            res["relayed_per_wall_s"] = relayed / u["wall_s"]
            res["worker_turn"] = st.get("turn", {})
            res["drops"] = st["total"]["drops"]
            c0 = cpu_s(pid)
            res["allocs"] = allocs(env.ns, it.RELAY_IP, it.C_IP, a.allocs)
            res["allocs"]["server_cpu_s"] = cpu_s(pid) - c0
            per_cpu(res["allocs"])
        finally:
            peer.kill()
            peer.wait()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("isard")
    ap.add_argument("isarctl")
    ap.add_argument("--json")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--msgs", type=int, default=2000)
    ap.add_argument("--len", type=int, default=160)
    ap.add_argument("--interval", type=int, default=1)
    ap.add_argument("--allocs", type=int, default=4000)
    ap.add_argument("--timeout", type=float, default=25)
    a = ap.parse_args()
    lim = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(lim[1], a.allocs + 1024) if lim[1] != resource.RLIM_INFINITY else a.allocs + 1024
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(lim[0], want), lim[1]))
    for t in ("turnserver", "turnutils_uclient", "turnutils_peer"):
        if shutil.which(t) is None:
            print(json.dumps({"error": f"{t} not installed (Debian package coturn)"}))
            return 77
    out = {"load": {"clients": a.clients, "msgs": a.msgs, "len": a.len, "interval_ms": a.interval}}
    try:
        out["coturn"] = run_coturn(a)
    except Exception as e:  # noqa: BLE001 - report, go on with Isar
        out["coturn"] = {"error": repr(e)}
    try:
        out["isar"] = run_isar(a)
    except BaseException as e:  # noqa: BLE001
        out["isar"] = {"error": repr(e)}
    c, i = out["coturn"], out["isar"]
    if c.get("relayed_per_cpu_s") and i.get("relayed_per_cpu_s"):
        out["isar_over_coturn_per_cpu_s"] = i["relayed_per_cpu_s"] / c["relayed_per_cpu_s"]
    s = json.dumps(out, indent=1)
    if a.json:
        open(a.json, "w").write(s + "\n")
    print(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
