#!/usr/bin/env python3
"""TURN over UDP, TCP and TLS: coturn vs isard, same clients, same run
(bench/README.md, "TURN over TCP and TLS"; issue #10 §4).

For each server in turn (coturn first, then isard), each phase bounded in
count and time:
  1. load, per transport (udp, tcp, tls): `turnutils_uclient` (-m clients,
     -n messages, -l bytes, -z ms; -t for TCP, -t -S for TLS) towards
     `turnutils_peer` over UDP; relayed packets = uclient's sent + received.
  2. server CPU, the same way for both (see cpu_window): system-wide busy
     CPU time (/proc/stat) during the load minus the CPU time of every
     process that is not the server (the clients, the harness, other users of
     the machine); ksoftirqd and irq/softirq time stay with the server, as
     the TCP stack's and the loopback's/veth's work is the relay's. For isard
     the polling worker lcore's own CPU time is replaced by its busy time
     (isar_worker_busy_ratio from /metrics x wall time).
  3. connections held: N TCP and N TLS connections, each with an allocation
     (Python client, the tests' stun_client.py), held; ΔRSS of the server per
     connection, and how many are still open after --hold seconds.
  4. loss scan, peer -> client over TCP and TLS (coturn issue 1289: its
     UDP->TCP write buffer, 32 KiB per connection): one Python client with an
     allocation and a channel, a UDP peer sending --scan-len B datagrams in
     bursts of --scan-burst at each of --rates pkts/s for --scan-s seconds;
     lost = sent - ChannelData frames received. Both servers get every rate.

coturn: Debian's turnserver in a namespace on loopback (coturn_baseline.py's
helpers), with TCP and TLS listeners (a P-256 certificate made with the
openssl CLI in a temporary directory). isard: tests/integration/isar_it.py's
Env with isard_ns=True (isard in a namespace of its own: its kernel interface
for TCP/TLS), net_af_packet on a veth, [turn] listen_udp/listen_tcp/listen_tls.

usage: turn_stream_bench.py ISARD ISARCTL [--json OUT] [--transports udp,tcp,tls]
       [--servers coturn,isar] [--clients 64] [--msgs 800] [--len 160] [--interval 1]
       [--conns 500] [--hold 3] [--rates 1000,2000,5000,10000,20000] [--scan-len 1200]
       [--scan-burst 16] [--scan-s 2]
Needs root (ip netns), coturn's tools and openssl; prints JSON on stdout.
"""
import argparse
import json
import os
import platform
import resource
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import coturn_baseline as cb  # noqa: E402  (also puts tests/integration on sys.path)
import isar_it as it  # noqa: E402
import stun_client as sc  # noqa: E402

HZ = cb.HZ
PORTS = {"udp": 3478, "tcp": 3478, "tls": 5349}
FLAGS = {"udp": [], "tcp": ["-t"], "tls": ["-t", "-S", "-p", "5349"]}
METRICS_PORT = 9477


# ---- CPU accounting ------------------------------------------------------------

def sys_cpu():
    """/proc/stat line 1: (busy, irq + softirq, steal) in seconds."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    user, nice, system, _idle, _iow, irq, softirq, steal = f
    return (user + nice + system + irq + softirq) / HZ, (irq + softirq) / HZ, steal / HZ


def procs():
    """{pid: (comm, utime + stime + cutime + cstime in s)} of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            s = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        f = s[s.rindex(")") + 2:].split()
        out[int(d)] = (comm, sum(int(x) for x in f[11:15]) / HZ)
    return out


def thread_cpu(pid, match):
    """CPU seconds of pid's threads whose name contains `match`."""
    t = 0.0
    names = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            s = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        if match in comm:
            f = s[s.rindex(")") + 2:].split()
            t += (int(f[11]) + int(f[12])) / HZ
            names.append(comm)
    return t, names


class cpu_window:
    """What the server costs while the block runs, measured the same way for
    every server. server_cpu_s = Δ CPU of the server's threads (utime + stime)
    + Δ ksoftirqd + Δ irq/softirq ticks (/proc/stat). Without
    CONFIG_IRQ_TIME_ACCOUNTING (this VM) the kernel charges softirq work by the
    tick to the task it interrupts, so the TCP stack's work done in the
    server's system calls is in its stime, deferred work in ksoftirqd or the
    irq/softirq columns. Cross-check (server_cpu_subtractive_s): Δ system-wide
    busy CPU − Δ CPU of every process other than the server and ksoftirqd
    (utime + stime + reaped children's; a process gone during the window is
    counted by its parent's cutime/cstime, minus what it had at the start);
    exact on a quiet machine, off by a whole process when one is reaped while
    /proc is being read. `server` = pids; `clients` = the long-lived load
    tools (reported apart; uclient's CPU is uclient_cpu_s)."""

    def __init__(self, server, clients=(), worker=None):
        self.server, self.clients, self.worker = set(server), list(clients), worker

    def __enter__(self):
        self.p0, self.s0, self.t0 = procs(), sys_cpu(), time.monotonic()
        self.w0 = self.worker.begin() if self.worker else None
        return self

    def __exit__(self, *exc):
        p1, s1 = procs(), sys_cpu()
        self.wall = time.monotonic() - self.t0
        w = self.worker.end(self.wall) if self.worker else None
        others = ksoft = srv = cli = 0.0
        for pid in set(self.p0) | set(p1):
            comm, c1 = p1.get(pid, (self.p0.get(pid, ("", 0))[0], None))
            c0 = self.p0.get(pid, (comm, 0.0))[1]
            d = (c1 - c0) if c1 is not None else -c0  # gone: its parent has it all
            if pid in self.server:
                srv += d
            elif comm.startswith("ksoftirqd"):
                ksoft += d
            else:
                others += d
                if pid in self.clients:
                    cli += d
        busy, irq = s1[0] - self.s0[0], s1[1] - self.s0[1]
        r = {"wall_s": self.wall, "system_busy_s": busy, "irq_softirq_s": irq,
             "ksoftirqd_s": ksoft, "steal_s": s1[2] - self.s0[2],
             "server_process_s": srv, "other_processes_s": others,
             "load_tools_long_lived_s": cli,
             # the figure: the server's own threads + the kernel's deferred network work
             "server_cpu_s": srv + ksoft + irq,
             # cross-check, right on a quiet machine only: /proc is not read atomically, so a
             # process reaped during the scan can be counted twice (itself + its parent's cutime)
             "server_cpu_subtractive_s": busy - others}
        if w:
            r.update(w)
            adj = w["worker_busy_s"] - w["worker_thread_s"]
            r["server_cpu_s"] += adj
            r["server_cpu_subtractive_s"] += adj
        self.r = r
        return False


class isar_worker:
    """isard's polling worker lcore: its thread CPU time and its busy time
    (isar_worker_busy_ratio, /metrics, since the previous scrape)."""

    def __init__(self, env):
        self.env = env

    # where isard drops: counters summed over ports/threads/reasons (Δ per window)
    DROPS = ("isar_port_rx_missed_total", "isar_port_tx_errors_total",
             "isar_turn_stream_drop_ring_full_total", "isar_turn_stream_drop_send_full_total",
             "isar_turn_stream_drop_no_mbuf_total", "isar_worker_drops_total")

    def scrape(self):
        """(busy ratio since the previous scrape, {drop counter: value})."""
        with self.env.in_isard_ns():
            body = urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics",
                                          timeout=5).read().decode()
        busy, drops = 0.0, dict.fromkeys(self.DROPS, 0)
        for line in body.splitlines():
            name = line.split("{")[0].split(" ")[0]
            if name == "isar_worker_busy_ratio":
                busy += float(line.split()[-1])
            elif name in drops:
                drops[name] += int(float(line.split()[-1]))
        return busy, drops

    def threads(self):
        """{thread name: CPU s} of isard's threads (where its time goes)."""
        out = {}
        pid = self.env.proc.pid
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                s = open(f"/proc/{pid}/task/{tid}/stat").read()
            except OSError:
                continue
            comm = s[s.index("(") + 1:s.rindex(")")]
            f = s[s.rindex(")") + 2:].split()
            out[comm] = out.get(comm, 0.0) + (int(f[11]) + int(f[12])) / HZ
        return out

    def begin(self):
        _, self.d0 = self.scrape()  # also resets the busy ratio's window
        self.c0, _ = thread_cpu(self.env.proc.pid, "isar-wk")
        self.t0 = self.threads()

    def end(self, wall):
        ratio, d1 = self.scrape()
        c1, names = thread_cpu(self.env.proc.pid, "isar-wk")
        t1 = self.threads()
        return {"isard_drops": {k[:-6]: d1[k] - self.d0[k] for k in self.DROPS},
                "worker_threads": names, "worker_thread_s": c1 - self.c0,
                "worker_busy_ratio": ratio, "worker_busy_s": ratio * wall,
                "server_threads_s": {k: round(v - self.t0.get(k, 0.0), 3)
                                     for k, v in t1.items()}}


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ---- phases ----------------------------------------------------------------------

def load(name, transport, ns, server_ip, local, peer_ip, a, server_pids, peer_pid, worker=None,
         clients=None, length=None, msgs=None):
    aa = argparse.Namespace(**vars(a))
    aa.clients = clients or a.clients
    aa.len = length or a.len
    aa.msgs = msgs or a.msgs
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rb0 = udp_rcvbuf_errors(ns)
    with cpu_window(server_pids, [peer_pid], worker) as w:
        u = cb.uclient(ns, server_ip, local, peer_ip, aa, a.timeout, FLAGS[transport])
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # datagrams the kernel dropped at a full UDP socket in the clients' namespace
    # (uclient, turnutils_peer; for coturn also its own relay sockets: one namespace)
    w.r["clients_ns_udp_rcvbuf_errors"] = udp_rcvbuf_errors(ns) - rb0
    w.r["uclient_cpu_s"] = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
    r = {"transport": transport, "clients": aa.clients, "len": aa.len, "msgs": aa.msgs,
         "uclient": u, "cpu": w.r}
    relayed = u["sent"] + u["received"]
    r["relayed_pkts"] = relayed
    r["lost"] = u["lost"]
    r["relayed_per_wall_s"] = relayed / u["wall_s"] if u["wall_s"] > 0 else None
    sc_ = w.r["server_cpu_s"]
    r["server_cpu_s"] = sc_
    r["relayed_per_server_cpu_s"] = relayed / sc_ if sc_ > 0 else None
    r["server_cores_busy"] = sc_ / w.r["wall_s"]
    if w.r.get("isard_drops"):
        r["isard_drops"] = w.r["isard_drops"]
    it.log(f"{name} {transport} m={aa.clients} l={aa.len}: relayed {relayed}, lost {u['lost']}, "
           f"rcvbuf drops {w.r['clients_ns_udp_rcvbuf_errors']}, isard {r.get('isard_drops')}, "
           f"server {sc_:.2f} CPU-s ({r['relayed_per_server_cpu_s'] or 0:.0f}/CPU-s), "
           f"others {w.r['other_processes_s']:.2f} s, rc {u['rc']}")
    return r


def hold_conns(name, transport, ns, server_ip, local, n, server_pid, hold_s, limit_s):
    """n connections from `local` in `ns`, each with an allocation, held for
    hold_s; ΔRSS of the server per connection; how many are open at the end."""
    user = sc.rest_username(3600, "bench")
    pw = sc.rest_password(cb.SECRET, user)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["stun.turn"])
    rss0 = rss_kib(server_pid)
    socks, failed, first_err = [], 0, ""
    t0 = time.monotonic()
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    host = os.open("/proc/self/ns/net", os.O_RDONLY)
    cb.setns(fd)
    try:
        while len(socks) + failed < n and time.monotonic() - t0 < limit_s:
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.settimeout(5)
                s.bind((local, 0))
                s.connect((server_ip, PORTS[transport]))
                if transport == "tls":
                    s = ctx.wrap_socket(s)
                c = sc.StreamTurnClient(s, user, pw, cb.REALM)
                m = c.allocate()
                if m is None or m.cls != sc.SUCCESS:
                    raise RuntimeError(m.describe() if m else "no answer")
                socks.append(s)
            except Exception as e:  # noqa: BLE001 - counted
                failed += 1
                first_err = first_err or repr(e)
                try:
                    s.close()
                except Exception:  # noqa: BLE001
                    pass
    finally:
        cb.setns(host)
        os.close(fd)
        os.close(host)
    setup_s = time.monotonic() - t0
    time.sleep(hold_s)
    rss1 = rss_kib(server_pid)
    # held = not closed by the server: nothing readable, or readable but not EOF
    held = 0
    for s in socks:
        try:
            r, _, _ = select.select([s], [], [], 0)
            if not r:
                held += 1
                continue
            s.setblocking(False)
            if s.recv(4096):
                held += 1
        except (ssl.SSLWantReadError, BlockingIOError):
            held += 1
        except OSError:
            pass
    for s in socks:
        s.close()
    ok = len(socks)
    r = {"transport": transport, "asked": n, "allocated": ok, "failed": failed,
         "held_after_s": hold_s, "held": held, "setup_s": setup_s,
         "rss_kib_before": rss0, "rss_kib_after": rss1,
         "rss_bytes_per_conn": (rss1 - rss0) * 1024 / ok if ok else None}
    if first_err:
        r["first_error"] = first_err
    it.log(f"{name} {transport}: {ok}/{n} connections with an allocation, {held} held after "
           f"{hold_s}s, ΔRSS {(rss1 - rss0)} KiB")
    return r


def udp_rcvbuf_errors(ns):
    """Udp RcvbufErrors of namespace `ns` (/proc/net/snmp): datagrams the
    kernel dropped because a UDP socket's receive buffer was full."""
    p = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"],
                       capture_output=True, text=True)
    rows = [l.split() for l in p.stdout.splitlines() if l.startswith("Udp:")]
    if len(rows) < 2 or "RcvbufErrors" not in rows[0]:
        return None
    return int(rows[1][rows[0].index("RcvbufErrors")])


def rate_scan(name, transport, ns, server_ip, local, peer_ip, rates, a, server_ns=None):
    """Peer -> client over TCP/TLS at rising rates (coturn issue 1289: the
    UDP->TCP direction). One client (Python, stun_client.py) allocates and
    binds a channel; a UDP peer sends `a.scan_len`-byte datagrams to the
    relayed address, `a.scan_burst` back to back, paced to `rate` pkts/s for
    `a.scan_s` seconds; a reader thread counts the ChannelData frames that
    arrive (the client reads as fast as it can, 4 MiB receive buffer).
    lost = sent - received after 1 s of quiet. Bounded: ~scan_s + 2 s per rate."""
    import struct
    user = sc.rest_username(3600, "bench")
    pw = sc.rest_password(cb.SECRET, user)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    host = os.open("/proc/self/ns/net", os.O_RDONLY)
    cb.setns(fd)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.settimeout(5)
        s.bind((local, 0))
        s.connect((server_ip, PORTS[transport]))
        if transport == "tls":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["stun.turn"])
            s = ctx.wrap_socket(s)
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        peer.bind((peer_ip, 0))
    finally:
        cb.setns(host)
        os.close(fd)
        os.close(host)
    out = []
    try:
        c = sc.StreamTurnClient(s, user, pw, cb.REALM)
        m = c.allocate()
        if m is None or m.cls != sc.SUCCESS:
            return [{"error": "Allocate: " + (m.describe() if m else "no answer")}]
        relayed = m.xor_address(sc.XOR_RELAYED_ADDRESS)
        pa = peer.getsockname()
        xp = sc.xor_address_value(pa[0], pa[1], b"")
        for meth, attrs in ((sc.CREATE_PERMISSION, [(sc.XOR_PEER_ADDRESS, xp)]),
                            (sc.CHANNEL_BIND, [sc.u32(sc.CHANNEL_NUMBER, 0x4001 << 16),
                                               (sc.XOR_PEER_ADDRESS, xp)])):
            m = c.request(meth, attrs)
            if m is None or m.cls != sc.SUCCESS:
                return [{"error": f"{meth:#x}: " + (m.describe() if m else "no answer")}]
        buf = bytearray(c.buf)
        got = [0]
        stop = threading.Event()

        def reader():
            nonlocal buf
            s.settimeout(0.2)
            while not stop.is_set():
                try:
                    chunk = s.recv(1 << 18)
                except (socket.timeout, TimeoutError, ssl.SSLWantReadError):
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                off = 0
                n = len(buf)
                while n - off >= 4:
                    ch, ln = struct.unpack_from("!HH", buf, off)
                    if 0x4000 <= ch <= 0x7FFF:
                        full = 4 + ln + (-ln % 4)
                    else:
                        full = 20 + ln
                    if n - off < full:
                        break
                    if 0x4000 <= ch <= 0x7FFF:
                        got[0] += 1
                    off += full
                del buf[:off]

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        data = os.urandom(a.scan_len)
        for rate in rates:
            got[0] = 0
            rb0 = udp_rcvbuf_errors(server_ns) if server_ns else None
            n = int(rate * a.scan_s)
            t0 = time.monotonic()
            sent = 0
            while sent < n:
                for _ in range(min(a.scan_burst, n - sent)):
                    peer.sendto(data, relayed)
                    sent += 1
                lag = t0 + sent / rate - time.monotonic()
                if lag > 0:
                    time.sleep(lag)
            send_s = time.monotonic() - t0
            last, quiet = -1, time.monotonic()
            while time.monotonic() - quiet < 1.0 and time.monotonic() - t0 < a.scan_s + 5:
                if got[0] != last:
                    last, quiet = got[0], time.monotonic()
                time.sleep(0.05)
            r = {"transport": transport, "rate_pps": rate, "len": a.scan_len,
                 "burst": a.scan_burst, "sent": sent, "send_s": send_s, "received": got[0],
                 "lost": sent - got[0]}
            if rb0 is not None:
                # coturn: drops in its relay socket's buffer (kernel), not its write buffer
                r["server_ns_udp_rcvbuf_errors"] = udp_rcvbuf_errors(server_ns) - rb0
            it.log(f"{name} {transport} peer->client {rate} pkts/s x {a.scan_len} B: sent {sent}, "
                   f"received {got[0]}, lost {sent - got[0]}")
            out.append(r)
        stop.set()
        th.join(1)
    finally:
        s.close()
        peer.close()
    return out


def make_cert(d):
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days",
                    "2", "-subj", "/CN=bench.example.org"], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


def phases(name, a, ns, server_ip, local, conn_local, peer_ip, server_pid, peer_pid, worker,
           server_ns=None):
    res = {"load": {}, "conns": {}, "loss_scan": []}
    for t in a.transports:
        res["load"][t] = load(name, t, ns, server_ip, local, peer_ip, a, [server_pid], peer_pid,
                              worker)
        res["conns_after_load_rss_kib"] = rss_kib(server_pid)
    for t in ("tcp", "tls"):
        if a.conns and t in a.transports:
            res["conns"][t] = hold_conns(name, t, ns, server_ip, conn_local, a.conns, server_pid,
                                         a.hold, a.conns_limit)
            time.sleep(1.0)  # the server ends those allocations
    for t in ("tcp", "tls"):
        if a.rates and t in a.transports:
            res["loss_scan"] += rate_scan(name, t, ns, server_ip, local, peer_ip, a.rates, a,
                                          server_ns)
    return res


def run_coturn(a, d):
    cert, key = make_cert(d)
    ns = cb.coturn_ns()
    procs_ = []
    try:
        procs_.extend(cb.start_coturn(ns, ("--cert", cert, "--pkey", key,
                                           "--tls-listening-port", "5349")))
        return phases("coturn", a, ns, "10.77.0.1", "10.77.0.2", "10.77.0.4", "10.77.0.3",
                      procs_[0].pid, procs_[1].pid, None, ns)
    finally:
        for p in procs_:
            p.kill()
            p.wait()
        subprocess.run(["ip", "netns", "del", ns])


def run_isar(a):
    # UDP allocations outlive uclient (no Refresh 0): room for every phase
    n = 2 * a.conns + 4 * a.clients + 1000
    cfg = f"""[turn]
listen_udp = [3478]
listen_tcp = [3478]
listen_tls = [5349]
tls_cert = "@DIR@/cert.pem"
tls_key = "@DIR@/key.pem"
realm = "{cb.REALM}"
auth_secret_file = "@DIR@/turn-secret"
allowed_peer = ["198.18.0.0/24"]
max_allocations = {n}
max_connections = {n}
allocate_rate = 0
max_requests_per_s = 0

[metrics]
listen = "127.0.0.1:{METRICS_PORT}"
"""
    with it.Env("turnsbench", [sys.argv[0], a.isard, a.isarctl], port_min=20000,
                port_max=60000, mbufs=16383, extra_config=cfg, isard_ns=True) as env:
        make_cert(env.dir)
        path = os.path.join(env.dir, "turn-secret")
        with open(path, "w") as f:
            f.write(cb.SECRET + "\n")
        os.chmod(path, 0o600)
        env.isard_ns_run(["ip", "link", "set", "lo", "up"])
        env.start()
        peer = subprocess.Popen(["ip", "netns", "exec", env.ns, "turnutils_peer", "-L", it.B_IP,
                                 "-p", "3480"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=it._die_with_parent)
        try:
            time.sleep(0.5)
            res = phases("isar", a, env.ns, it.RELAY_IP, it.A_IP, it.C_IP, it.B_IP,
                         env.proc.pid, peer.pid, isar_worker(env))
            st = env.stats()
            res["drops"] = st["total"]["drops"]
            res["turn_streams"] = st.get("turn_streams", {}).get("total")
            res["alive"] = env.alive()
        finally:
            peer.kill()
            peer.wait()
    return res


def machine():
    model = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "loadavg_at_start": open("/proc/loadavg").read().split()[:3]}


METHOD = ("server CPU = Δ CPU (utime+stime) of the server process's threads + Δ ksoftirqd "
          "+ Δ irq/softirq (/proc/stat) during the uclient run (no IRQ time accounting: "
          "softirq work is charged by the tick to the task it interrupts); for isard the "
          "worker lcore thread's CPU time is replaced by its busy time "
          "(isar_worker_busy_ratio × wall). Cross-check: server_cpu_subtractive_s = Δ "
          "system-wide busy − Δ every other process (unreliable when other jobs reap processes "
          "during the window). relayed = uclient sent + received messages.")


def summary(out):
    """A Markdown table of the run (stderr; the README's Performance section)."""
    c, i = out.get("coturn", {}), out.get("isar", {})
    L = ["| transport | coturn relayed/server CPU-s | Isar relayed/server CPU-s | Isar/coturn "
         "| lost coturn | lost Isar |", "|---|---|---|---|---|---|"]
    for t in out["load"]["transports"]:
        x, y = c.get("load", {}).get(t, {}), i.get("load", {}).get(t, {})
        f = (lambda v: f"{v:,.0f}" if v else "-")
        rt = out["isar_over_coturn_per_server_cpu_s"].get(t)
        L.append(f"| {t} | {f(x.get('relayed_per_server_cpu_s'))} "
                 f"({x.get('server_cores_busy', 0):.2f} cores) | "
                 f"{f(y.get('relayed_per_server_cpu_s'))} ({y.get('server_cores_busy', 0):.2f} cores)"
                 f" | {f'{rt:.1f}x' if rt else '-'} | {x.get('lost')} | {y.get('lost')} |")
    L += ["", "| connections held | coturn: held/asked, RSS per conn | Isar: held/asked, RSS per conn |",
          "|---|---|---|"]
    for t in ("tcp", "tls"):
        x, y = c.get("conns", {}).get(t), i.get("conns", {}).get(t)
        if x or y:
            g = (lambda r: f"{r['held']}/{r['asked']}, {r['rss_bytes_per_conn'] / 1024:.1f} KiB"
                 if r and r.get("rss_bytes_per_conn") is not None else "-")
            L.append(f"| {t} | {g(x)} | {g(y)} |")
    L += ["", "| peer->client over | pkts/s x B | lost coturn | lost Isar |", "|---|---|---|---|"]
    ii = {(r.get("transport"), r.get("rate_pps")): r for r in i.get("loss_scan", [])}
    for r in c.get("loss_scan", []):
        y = ii.get((r.get("transport"), r.get("rate_pps")), {})
        L.append(f"| {r.get('transport')} | {r.get('rate_pps')} x {r.get('len')} | "
                 f"{r.get('lost')}/{r.get('sent')} | {y.get('lost')}/{y.get('sent')} |")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("isard")
    ap.add_argument("isarctl")
    ap.add_argument("--json")
    ap.add_argument("--transports", default="udp,tcp,tls")
    ap.add_argument("--servers", default="coturn,isar")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--msgs", type=int, default=800)
    ap.add_argument("--len", type=int, default=160)
    ap.add_argument("--interval", type=int, default=1)
    ap.add_argument("--conns", type=int, default=500)
    ap.add_argument("--conns-limit", type=float, default=40)
    ap.add_argument("--hold", type=float, default=3)
    ap.add_argument("--rates", default="1000,2000,5000,10000,20000")
    ap.add_argument("--scan-len", type=int, default=1200)
    ap.add_argument("--scan-burst", type=int, default=16)
    ap.add_argument("--scan-s", type=float, default=2.0)
    ap.add_argument("--timeout", type=float, default=40)
    a = ap.parse_args()
    a.transports = [t for t in a.transports.split(",") if t]
    a.rates = [int(x) for x in a.rates.split(",") if x]
    servers = a.servers.split(",")
    lim = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4 * a.conns + 4096
    if lim[1] != resource.RLIM_INFINITY:
        want = min(lim[1], want)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(lim[0], want), lim[1]))
    for t in ("turnserver", "turnutils_uclient", "turnutils_peer", "openssl"):
        if shutil.which(t) is None:
            print(json.dumps({"error": f"{t} not installed"}))
            return 77
    out = {"machine": machine(), "method": METHOD,
           "load": {"clients": a.clients, "msgs": a.msgs, "len": a.len,
                    "interval_ms": a.interval, "transports": a.transports, "conns": a.conns,
                    "scan_rates_pps": a.rates, "scan_len": a.scan_len, "scan_burst": a.scan_burst,
                    "scan_s": a.scan_s}}
    if "coturn" in servers:
        d = tempfile.mkdtemp(prefix="isar-turnsbench-")
        try:
            out["coturn"] = run_coturn(a, d)
        except Exception as e:  # noqa: BLE001 - report, go on with Isar
            out["coturn"] = {"error": repr(e)}
        finally:
            shutil.rmtree(d, ignore_errors=True)
    if "isar" in servers:
        try:
            out["isar"] = run_isar(a)
        except BaseException as e:  # noqa: BLE001
            out["isar"] = {"error": repr(e)}
    c, i = out.get("coturn", {}), out.get("isar", {})
    ratio = {}
    for t in a.transports:
        x = c.get("load", {}).get(t, {}).get("relayed_per_server_cpu_s")
        y = i.get("load", {}).get(t, {}).get("relayed_per_server_cpu_s")
        if x and y:
            ratio[t] = y / x
    out["isar_over_coturn_per_server_cpu_s"] = ratio
    out["machine"]["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    s = json.dumps(out, indent=1)
    if a.json:
        open(a.json, "w").write(s + "\n")
    print(s)
    print(summary(out), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
