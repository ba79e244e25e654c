#!/usr/bin/env python3
"""The kernel exception path of TURN over TCP/TLS: TCP between the wire and
isard's kernel interface, on the relay's own address.

isard runs in a namespace of its own (isar_it isard_ns=True) with the host end
of the veth; the endpoints live in the other namespace. With
`[turn] listen_tcp = [3478]` isard creates the kernel interface isar0 (net_tap)
in its namespace: 198.18.0.1/24, the port's MAC and MTU, NOARP, IPv6 off, up.
Before that, a kernel_iface name that is taken ("lo") stops isard with a
message saying so.

1. kernel_forward = "turn": a STUN Binding request over TCP from 198.18.0.2 to
   198.18.0.1:3478 is answered by isard's stream threads (the whole chain:
   dataplane, kernel, stream thread, control); TCP to another port is not
   answered (even with a kernel listener there) and counted as not_udp; a UDP
   call works next to it.
2. kernel_forward = "all", a gateway (a default route via isar0, metric 1024)
   and 2 workers (a tap queue pair each): a plain kernel listener on port 2222
   takes 2 MB each way at once, byte for byte; the to/from_kernel counters
   moved (stats, isarctl, /metrics); a SYN flood above `[exception]
   kernel_pps` (raw sockets, bounded count and time) is policed and counted
   while a transfer on the established connection survives, and a new
   connection works afterwards; flows spread over both workers; UDP to a
   non-relay, non-TURN port reaches the kernel and its answer comes back; the
   kernel sent nothing but IPv4 (kernel_not_ipv4 = 0: it never ARPs).
"""
import os
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import stun_client as sc  # noqa: E402

TURN_PORT = 3478
OTHER_PORT = 2222   # a kernel listener isard must not forward to ("turn" mode)
KERNEL_PPS = 5000   # small, so that a Python SYN flood exceeds it
KIF = "isar0"       # default name: "isar" + DPDK port id
BIG = 2 * 1024 * 1024
CONFIG = f"""[turn]
listen_tcp = [{TURN_PORT}]
realm = "kernel.example.org"
auth_secret_file = "@DIR@/turn-secret"

[exception]
kernel_pps = {KERNEL_PPS}
"""


def exchange(sock, out, n_in, what, timeout=30, pace=0.0):
    """Sends `out` (in 16 KiB pieces `pace` seconds apart, if pace) and
    receives `n_in` bytes at the same time; returns them."""
    sock.settimeout(timeout)
    err = []

    def sender():
        try:
            if not pace:
                sock.sendall(out)
                return
            for i in range(0, len(out), 16384):
                sock.sendall(out[i:i + 16384])
                time.sleep(pace)
        except OSError as e:
            err.append(e)
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    got = bytearray()
    deadline = time.monotonic() + timeout
    while len(got) < n_in and time.monotonic() < deadline:
        chunk = sock.recv(min(1 << 16, n_in - len(got)))
        if not chunk:
            break
        got += chunk
    t.join(max(0.1, deadline - time.monotonic()))
    if err or t.is_alive():
        raise it.TestFailure(f"{what}: sending failed or stalled: {err}")
    return bytes(got)


def accept_and_exchange(srv, out, n_in, result):
    conn, peer = srv.accept()
    result["peer"] = peer
    result["conn"] = conn
    result["got"] = exchange(conn, out, n_in, "server side")


def check_kernel_iface(env):
    link = env.isard_ns_run(["ip", "-o", "link", "show", KIF]).stdout
    it.check("NOARP" in link and ",UP" in link, f"{KIF} is up and NOARP: {link.split('>')[0]}>")
    it.check("mtu 1500" in link, f"{KIF} has the port's MTU 1500")
    it.check(env.isard_mac in link, f"{KIF} carries the port's MAC {env.isard_mac}")
    addr = env.isard_ns_run(["ip", "-4", "-o", "addr", "show", "dev", KIF]).stdout
    it.check(f"inet {it.RELAY_IP}/24" in addr, f"{KIF} carries {it.RELAY_IP}/24")
    v6 = env.isard_ns_run(["cat", f"/proc/sys/net/ipv6/conf/{KIF}/disable_ipv6"]).stdout
    it.check_eq(v6.strip(), "1", f"IPv6 disabled on {KIF}")
    # No offloads on the tap: the kernel computes every checksum it sends.
    k = env.isard_ns_run(["ethtool", "-k", KIF], check_rc=False).stdout
    if k:
        it.check("tx-checksumming: off" in k, f"{KIF}: tx-checksumming off (kernel sums)")


def check_metrics(env):
    """/metrics (127.0.0.1:9477 in isard's namespace) has the kernel counters."""
    with env.in_isard_ns():
        m = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    env._sockets.append(m)
    m.settimeout(5)
    m.connect(("127.0.0.1", 9477))
    m.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    body = b""
    while True:
        chunk = m.recv(65536)
        if not chunk:
            break
        body += chunk
    m.close()
    vals = {}
    for line in body.decode(errors="replace").splitlines():
        for name in ("isar_worker_to_kernel_packets_total", "isar_worker_from_kernel_bytes_total"):
            if line.startswith(name + "{"):
                vals[name] = vals.get(name, 0) + float(line.rsplit(" ", 1)[1])
    it.check(vals.get("isar_worker_to_kernel_packets_total", 0) > 500 and
             vals.get("isar_worker_from_kernel_bytes_total", 0) > BIG,
             f"/metrics shows the kernel counters: {vals}")


def tcp_client(env, ip=it.A_IP):
    with env.in_ns():
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    env._sockets.append(c)
    c.bind((ip, 0))
    return c


def listener(env, port):
    with env.in_isard_ns():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    env._sockets.append(s)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(128)
    return s


def big_transfer(env, srv):
    c = tcp_client(env)
    c.settimeout(10)
    c.connect((it.RELAY_IP, OTHER_PORT))
    it.log(f"connected {c.getsockname()} -> {it.RELAY_IP}:{OTHER_PORT}")
    up, down = os.urandom(BIG), os.urandom(BIG)
    res = {}
    t = threading.Thread(target=accept_and_exchange, args=(srv, down, BIG, res), daemon=True)
    t.start()
    got = exchange(c, up, BIG, "client side")
    t.join(30)
    it.check_eq(res.get("peer", (None,))[0], it.A_IP, "the kernel saw the client's address")
    it.check(got == down, "2 MB kernel -> client arrived byte for byte")
    it.check(res.get("got") == up, "2 MB client -> kernel arrived byte for byte")
    return c, res["conn"]


def other_port_unanswered(env):
    srv2 = listener(env, OTHER_PORT)
    before = env.total_drops().get("not_udp", 0)
    c = tcp_client(env)
    c.settimeout(1.0)
    try:
        c.connect((it.RELAY_IP, OTHER_PORT))
        raise it.TestFailure(f"TCP to port {OTHER_PORT} was answered (kernel_forward = turn)")
    except socket.timeout:
        it.log(f"ok: TCP to {OTHER_PORT} not answered although the kernel listens there")
    c.close()  # no more SYN retries (they would connect once forward_all() forwards them)
    env.wait_drop("not_udp", before + 1)
    srv2.close()


def udp_call(env):
    a = env.udp(it.A_IP, 4000)
    b = env.udp(it.B_IP, 5000)
    locs, _r = env.create("call", "a", "b")
    b.sendto(it.rtp_packet(1, 0, 0xB0B, b"\x01" * 160), locs["b"])
    it.wait_for(lambda: env.leg("call", "b")["remote"], 3, "leg b to latch")
    sa = it.make_stream(0xA11CE, 100, 160, seq0=100)
    it.send_paced(a, sa, locs["a"])
    it.expect_stream(b, sa, locs["b"], "UDP call A->B next to the kernel path")
    sb = it.make_stream(0xB0B, 100, 160, seq0=500)
    it.send_paced(b, sb, locs["b"])
    it.expect_stream(a, sb, locs["a"], "UDP call B->A next to the kernel path")


def tcp_checksum(src, dst, seg):
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(seg))
    return it.icmp_checksum(pseudo + seg)


def syn_flood(env, count=60000, seconds=3.0):
    """SYNs from 198.18.0.3 with changing source ports, as fast as Python
    goes, bounded in count and time. Returns the number sent."""
    with env.in_ns():
        r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    env._sockets.append(r)
    sent = 0
    deadline = time.monotonic() + seconds
    ip_hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0,
                         socket.inet_aton(it.B_IP), socket.inet_aton(it.RELAY_IP))
    while sent < count and time.monotonic() < deadline:
        sport = 10000 + sent % 50000
        tcp = struct.pack("!HHIIBBHHH", sport, TURN_PORT, sent, 0, 0x50, 0x02, 65535, 0, 0)
        ck = tcp_checksum(it.B_IP, it.RELAY_IP, tcp)
        tcp = tcp[:16] + struct.pack("!H", ck) + tcp[18:]
        try:
            r.sendto(ip_hdr + tcp, (it.RELAY_IP, 0))
        except BlockingIOError:
            pass
        sent += 1
    r.close()
    return sent


def flood_with_transfer(env, c, conn):
    """The established connection moves 512 KB each way, paced over ~0.5 s,
    while the flood runs."""
    n = 512 * 1024
    up, down = os.urandom(n), os.urandom(n)
    res = {}

    def server():
        try:
            res["got"] = exchange(conn, down, n, "server side during the flood", timeout=40,
                                  pace=0.015)
        except Exception as e:  # noqa: BLE001
            res["err"] = e

    def flooder():
        flood["start"] = time.monotonic()
        flood["sent"] = syn_flood(env)
        flood["end"] = time.monotonic()
    flood = {}
    ft = threading.Thread(target=flooder, daemon=True)
    ft.start()
    time.sleep(0.1)
    t = threading.Thread(target=server, daemon=True)
    t.start()
    got = exchange(c, up, n, "client side during the flood", timeout=40, pace=0.015)
    t.join(40)
    done = time.monotonic()
    ft.join(10)
    it.log(f"SYN flood: {flood.get('sent')} SYNs in {flood['end'] - flood['start']:.2f}s; "
           f"transfer ended {done - flood['start']:.2f}s after the flood began")
    it.check(flood["start"] < done and done - flood["start"] > 0.3,
             "the transfer ran during the flood")
    it.check(got == down and res.get("got") == up,
             "512 KB each way on the established connection survived the flood intact")
    return flood.get("sent", 0)


def name_taken(env):
    """A kernel_iface name that exists stops isard with a message naming it."""
    env.iface_extra = 'kernel_iface = "lo"\n'
    cfg = os.path.join(env.dir, "taken.toml")
    with open(cfg, "w") as f:
        f.write(env.config_text().replace(env.file_prefix, env.file_prefix + "_taken")
                .replace("isard.sock", "taken.sock"))
    env.iface_extra = ""
    p = env.isard_ns_run([env.isard_bin, "-c", cfg], check_rc=False)
    out = p.stdout + p.stderr
    it.check(p.returncode == 1 and "kernel interface lo" in out and "taken" in out,
             "kernel_iface = \"lo\" (taken): isard exits 1 saying so: " +
             next((l for l in out.splitlines() if "kernel interface" in l), "?").strip())


def forward_all(env, srv):
    """kernel_forward = "all", 2 workers (a queue pair of the tap each): TCP to
    any port and UDP to a port that is neither relay nor TURN reach the
    kernel, and its answers come back."""
    route = env.isard_ns_run(["ip", "-4", "route", "show", "default"]).stdout
    it.check(f"default via 198.18.0.254 dev {KIF}" in route and "metric 1024" in route,
             f"with a gateway, a default route through {KIF}: {route.strip()}")
    # Flows until both workers carried some (at least 4, at most 24): the
    # port spreads flows over its queues by hash (2 of its 3 go to worker 0),
    # and the kernel answers on the tap queue of the worker that wrote.
    for i in range(24):
        w = env.stats()["workers"]
        if i >= 4 and all(x["to_kernel_pkts"] > 0 and x["from_kernel_pkts"] > 0 for x in w):
            break
        c = tcp_client(env)
        c.settimeout(10)
        c.connect((it.RELAY_IP, OTHER_PORT))
        srv.settimeout(10)
        conn, peer = srv.accept()
        it.check_eq(peer, c.getsockname(), f"flow {i}: the kernel accepted this client")
        data = os.urandom(200000)
        res = {}
        t = threading.Thread(target=lambda: res.update(got=exchange(conn, data, len(data), "s")),
                             daemon=True)
        t.start()
        got = exchange(c, data, len(data), "c")
        t.join(30)
        it.check(got == data and res.get("got") == data,
                 f"kernel_forward = all: TCP to {OTHER_PORT}, flow {i}: 200 KB each way intact")
        c.close()
        conn.close()
    with env.in_isard_ns():
        k = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    env._sockets.append(k)
    k.bind(("0.0.0.0", 5353))
    u = env.udp(it.A_IP, 0)
    u.sendto(b"to the kernel", (it.RELAY_IP, 5353))
    k.settimeout(5)
    data, peer = k.recvfrom(100)
    it.check_eq((data, peer[0]), (b"to the kernel", it.A_IP), "UDP to 5353 reached the kernel")
    k.sendto(b"from the kernel", peer)
    u.settimeout(5)
    it.check_eq(u.recvfrom(100), (b"from the kernel", (it.RELAY_IP, 5353)),
                "the kernel's UDP answer came back from 198.18.0.1:5353")
    w = env.stats()["workers"]
    it.check(all(x["from_kernel_pkts"] > 0 and x["to_kernel_pkts"] > 0 for x in w),
             "both workers moved kernel frames: " +
             ", ".join(f"w{x['worker']} to {x['to_kernel_pkts']} from {x['from_kernel_pkts']}"
                       for x in w))


def turn_port_reaches_stream_threads(env):
    """TCP to the TURN port goes up to the kernel, where isard's stream
    threads answer a STUN Binding request over it."""
    c = tcp_client(env)
    c.settimeout(5)
    c.connect((it.RELAY_IP, TURN_PORT))
    req = sc.build(sc.BINDING, sc.REQUEST)
    c.sendall(req)
    buf = b""
    while len(buf) < 20 or len(buf) < 20 + struct.unpack("!H", buf[2:4])[0]:
        chunk = c.recv(4096)
        if not chunk:
            raise it.TestFailure("the stream thread closed the connection")
        buf += chunk
    m = sc.Message(buf[:20 + struct.unpack("!H", buf[2:4])[0]])
    it.check(m.cls == sc.SUCCESS and m.txid == req[8:20], "Binding over TCP answered")
    it.check_eq(m.xor_address(sc.XOR_MAPPED_ADDRESS), c.getsockname(),
                "XOR-MAPPED-ADDRESS is the client's address as the kernel saw it")
    c.close()


def body(env):
    secret = os.path.join(env.dir, "turn-secret")
    with open(secret, "w") as f:
        f.write("kernel-path-secret-" + os.urandom(4).hex() + "\n")
    os.chmod(secret, 0o600)
    name_taken(env)
    # 1. kernel_forward = "turn": the TURN port goes up, other TCP does not.
    env.start()
    check_kernel_iface(env)
    turn_port_reaches_stream_threads(env)
    other_port_unanswered(env)
    udp_call(env)
    env.final_checks()

    # 2. kernel_forward = "all", a gateway, 2 workers: a plain kernel listener
    # on another port (the TURN ports belong to the stream threads).
    env.iface_extra = 'kernel_forward = "all"\ngateway = "198.18.0.254"\n'
    env.workers = 2
    env.start()
    srv = listener(env, OTHER_PORT)
    c, conn = big_transfer(env, srv)
    t = env.stats()["total"]
    it.log("kernel path counters: " + ", ".join(f"{k}={t[k]}" for k in (
        "rx_pkts", "tx_pkts", "to_kernel_pkts", "to_kernel_bytes", "from_kernel_pkts",
        "from_kernel_bytes")) + f", drops {t['drops']}")
    for k in ("to_kernel_pkts", "from_kernel_pkts"):
        it.check(t[k] > 500, f"stats total.{k} = {t[k]} moved")
    for k in ("to_kernel_bytes", "from_kernel_bytes"):
        it.check(t[k] > BIG, f"stats total.{k} = {t[k]} > 2 MB")
    human = env.ctl("stats", as_json=False).stdout
    it.check("kernel interface: to the kernel" in human, "isarctl stats shows the kernel path")
    check_metrics(env)

    st0, t0 = env.stats()["total"], time.monotonic()
    sent = flood_with_transfer(env, c, conn)
    st1, elapsed = env.stats()["total"], time.monotonic() - t0
    policed = st1["drops"].get("policed_kernel", 0) - st0["drops"].get("policed_kernel", 0)
    up = st1["to_kernel_pkts"] - st0["to_kernel_pkts"]
    it.check(policed >= sent // 4,  # (the veth may lose some before isard sees them)
             f"SYN flood policed at kernel_pps = {KERNEL_PPS}: {policed} dropped as "
             f"policed_kernel ({sent} SYNs sent, and the transfer's segments)")
    # The rate held: at most kernel_pps over the time, plus one burst (rate/10).
    bound = int(KERNEL_PPS * elapsed) + KERNEL_PPS // 10 + 64
    it.check(up <= bound, f"{up} frames reached the kernel in {elapsed:.1f}s (<= {bound})")

    # The kernel still takes new connections.
    time.sleep(0.5)
    c2 = tcp_client(env)
    c2.settimeout(10)
    c2.connect((it.RELAY_IP, OTHER_PORT))
    conn2, _ = srv.accept()
    conn2.settimeout(5)
    c2.sendall(b"ping after the flood")
    it.check_eq(conn2.recv(100), b"ping after the flood", "new connection after the flood")
    for s in (c, conn, c2, conn2):
        s.close()
    forward_all(env, srv)
    drops = env.total_drops()
    it.check_eq(drops.get("kernel_not_ipv4", 0), 0,
                "the kernel sent nothing but IPv4 (NOARP, no IPv6)")
    srv.close()
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "kernel_path", extra_config=CONFIG, isard_ns=True))
