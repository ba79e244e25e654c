"""TURN over TCP and TLS (RFC 8656 §12.5) end to end, as participants behind
a firewall that lets only TCP out reach Isar: through the dataplane's kernel
interface to the stream threads, and their media through the workers.

1. coturn's `turnutils_uclient` over TCP (-t) and TLS (-t -S), REST secret,
   towards `turnutils_peer` (UDP): 0 lost, with channels, Send indications
   and several clients.
2. A stdlib client over TCP and over TLS 1.2 and 1.3 (Python's ssl, i.e.
   Debian's OpenSSL, ALPN "stun.turn"): Allocate, CreatePermission,
   ChannelBind, ChannelData both ways (padded to 4 bytes), Send/Data
   indications; closing the connection ends the allocation.
3. Hostile clients (stream_timeout_s = 2): garbage, a stall mid-message,
   a connection that never speaks, a client that never reads while its peer
   floods it; max_connections. Each ends or drops with its counter, and a
   good client's call goes on meanwhile.
4. SIGHUP reloads the certificate: an open TLS connection keeps working, a
   new one sees the new certificate.
SKIP without the coturn tools or openssl."""

import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

import isar_it as it
import stun_client as sc
from test_turn_uclient import lost_and_sent, start_peer, write_secrets

SECRET = "isar-test-secret-" + os.urandom(4).hex()
REALM = "meet.example.org"
TCP_PORT = 3478
TLS_PORT = 5349
TURN_CONFIG = f"""[turn]
listen_udp = [3478]
listen_tcp = [{TCP_PORT}]
listen_tls = [{TLS_PORT}, 443]
tls_cert = "@DIR@/cert.pem"
tls_key = "@DIR@/key.pem"
realm = "{REALM}"
auth_secret_file = "@DIR@/turn-secret"
allowed_peer = ["198.18.0.0/24"]
max_allocations = 1000
allocate_rate = 1000
max_connections = 40
stream_timeout_s = 2
stream_send_buffer = 16384
"""


def make_cert(env, name, cn):
    key, cert = os.path.join(env.dir, f"{name}.key"), os.path.join(env.dir, f"{name}.crt")
    it.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={cn}"])
    os.chmod(key, 0o600)
    return cert, key


def install_cert(env, name, cn):
    cert, key = make_cert(env, name, cn)
    shutil.copyfile(cert, os.path.join(env.dir, "cert.pem"))
    shutil.copyfile(key, os.path.join(env.dir, "key.pem"))
    os.chmod(os.path.join(env.dir, "key.pem"), 0o600)
    with open(cert, "rb") as f:
        return ssl.PEM_cert_to_DER_cert(f.read().decode())


def uclient(env, *args, timeout=60):
    cmd = ["ip", "netns", "exec", env.ns, "turnutils_uclient", "-W", SECRET, "-u", "alice",
           "-L", it.A_IP, "-e", it.B_IP, "-r", "3480", *args, it.RELAY_IP]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def run_uclient(env, what, *args):
    rc, out = uclient(env, *args)
    lost, sent, recv = lost_and_sent(out)
    if rc != 0 or lost is None or sent is None or lost != 0 or recv != sent or sent == 0:
        it.log(out[-3000:])
        it.log(f"isard drops: {env.total_drops()}; streams: {stream_stats(env)}")
        raise it.TestFailure(f"{what}: uclient rc {rc}, sent {sent}, received {recv}, lost {lost}")
    it.check(True, f"{what}: uclient sent {sent}, received {recv}, lost 0")


def connect(env, port, tls=None, alpn=("stun.turn",)):
    """A TCP connection from A_IP in the endpoints' namespace (TLS when `tls`
    is an ssl.TLSVersion)."""
    s = env.ns_socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((it.RELAY_IP, port))
    if tls is None:
        return s
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = tls
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx.wrap_socket(s)


def client(sock):
    user = sc.rest_username(3600, "alice")
    return sc.StreamTurnClient(sock, user, sc.rest_password(SECRET, user), REALM)


def rss_kib(env):
    with open(f"/proc/{env.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stream_stats(env):
    return env.stats()["turn_streams"]["total"]


def a_call(env, c, peer, what):
    """Allocate, permission, channel, and ChannelData and Send/Data both ways."""
    r = c.allocate()
    it.check(r is not None and r.cls == sc.SUCCESS, f"{what}: Allocate succeeds")
    rip, rport = r.xor_address(sc.XOR_RELAYED_ADDRESS)
    it.check_eq(rip, it.RELAY_IP, f"{what}: relayed address is the relay's")
    paddr = peer.getsockname()
    xp = sc.xor_address_value(paddr[0], paddr[1], b"")
    r = c.request(sc.CREATE_PERMISSION, [(sc.XOR_PEER_ADDRESS, xp)])
    it.check(r is not None and r.cls == sc.SUCCESS, f"{what}: CreatePermission")
    r = c.request(sc.CHANNEL_BIND, [sc.u32(sc.CHANNEL_NUMBER, 0x4001 << 16),
                                     (sc.XOR_PEER_ADDRESS, xp)])
    it.check(r is not None and r.cls == sc.SUCCESS, f"{what}: ChannelBind")
    for n in (1, 2, 3, 160, 1000):
        data = os.urandom(n)
        c.send(sc.channel_data(0x4001, data))
        got, src = peer.recvfrom(2048)
        it.check(got == data and src == (rip, rport), f"{what}: {n} B client -> peer")
        back = os.urandom(n)
        peer.sendto(back, (rip, rport))
        f = c.recv_relayed(3)
        it.check(f is not None and len(f[0]) % 4 == 0, f"{what}: ChannelData padded to 4")
        it.check(sc.parse_channel_data(f[0]) == (0x4001, back), f"{what}: {n} B peer -> client")
    data = os.urandom(77)
    c.send_indication(paddr, data)
    it.check(peer.recvfrom(2048)[0] == data, f"{what}: Send indication -> peer")
    return rip, rport


def good_client_and_hostile(env, peer):
    """A good TCP client's call goes on while hostile clients are ended."""
    good = client(connect(env, TCP_PORT))
    rip, rport = a_call(env, good, peer, "good client")
    before = stream_stats(env)

    garbage = connect(env, TCP_PORT)
    garbage.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4)
    it.check(garbage.recv(100) == b"", "garbage: the server closes the connection")

    stall = connect(env, TCP_PORT)
    stall.sendall(sc.build(sc.BINDING, sc.REQUEST)[:13])
    silent = connect(env, TCP_PORT)
    tls_silent = connect(env, TLS_PORT)  # TCP only: the TLS handshake never starts
    t0 = time.monotonic()
    for s, what in ((stall, "stalled mid-message"), (silent, "never speaks"),
                    (tls_silent, "TLS handshake never started")):
        s.settimeout(10)
        it.check(s.recv(100) == b"", f"{what}: closed by the server")
    it.check(time.monotonic() - t0 < 8, "…within stream_timeout_s (2 s) and a little")

    # A client that never reads while its peer floods it: its send buffer is
    # bounded (drops counted), nobody else stalls, isard's memory stays put.
    lazy_sock = connect(env, TCP_PORT)
    lazy_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lazy = client(lazy_sock)
    lr = lazy.allocate()
    it.check(lr is not None and lr.cls == sc.SUCCESS, "lazy client allocates")
    lip, lport = lr.xor_address(sc.XOR_RELAYED_ADDRESS)
    flooder = env.udp(it.C_IP, 0)
    lazy.request(sc.CREATE_PERMISSION, [(sc.XOR_PEER_ADDRESS, sc.xor_address_value(
        it.C_IP, flooder.getsockname()[1], b""))])
    rss0 = rss_kib(env)
    payload = os.urandom(1000)
    for i in range(20000):  # 20 MB, bounded in count and (below) in time
        flooder.sendto(payload, (lip, lport))
        if i % 500 == 0:
            # The good client's call goes on.
            d = os.urandom(100)
            good.send(sc.channel_data(0x4001, d))
            got, _ = peer.recvfrom(2048)
            if got != d:
                raise it.TestFailure("good client's ChannelData lost during the flood")
            time.sleep(0.001)
    after = stream_stats(env)
    it.log(f"stream counters before {before} after {after}")
    dropped = after["drop_send_full"] - before["drop_send_full"]
    it.check(dropped > 0, f"the lazy reader's frames beyond its send buffer dropped: {dropped}")
    rss1 = rss_kib(env)
    it.check(rss1 - rss0 < 32 * 1024, f"isard's RSS grew {rss1 - rss0} KiB (< 32 MiB) meanwhile")
    for k, what in (("closed_garbage", "garbage"), ("timeout_partial", "stall mid-message"),
                    ("timeout_idle", "never speaks"), ("timeout_handshake", "no TLS handshake")):
        it.check(after[k] - before[k] >= 1, f"counted: {what} ({k} +{after[k] - before[k]})")
    back = os.urandom(50)
    peer.sendto(back, (rip, rport))
    f = good.recv_relayed(3)
    it.check(f is not None and sc.parse_channel_data(f[0]) == (0x4001, back),
             "good client still receives")
    for s in (garbage, stall, silent, tls_silent, lazy_sock, good.sock):
        s.close()
    flooder.close()


def max_connections(env):
    """45 silent connections against max_connections = 40: the 5 beyond it are
    closed at accept (counted), the others stay until their idle timeout."""
    before = stream_stats(env)["refused_max_connections"]
    held = []
    try:
        for _ in range(45):
            s = env.ns_socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect((it.RELAY_IP, TCP_PORT))
            held.append(s)
        time.sleep(0.5)  # well inside stream_timeout_s (2 s)
        ready, _, _ = select.select(held, [], [], 0)
        closed = sum(1 for s in ready if s.recv(10) == b"")
        refused = stream_stats(env)["refused_max_connections"] - before
        it.check_eq((closed, refused), (5, 5),
                    "connections beyond max_connections (40): closed at once, counted")
    finally:
        for s in held:
            s.close()


def sighup_reload(env, peer):
    c = client(connect(env, TLS_PORT, ssl.TLSVersion.TLSv1_3))
    der1 = c.sock.getpeercert(binary_form=True)
    a_call(env, c, peer, "TLS 1.3 before reload")
    der2 = install_cert(env, "second", "turn2.example.org")
    env.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    d = os.urandom(40)
    c.send(sc.channel_data(0x4001, d))
    it.check(peer.recvfrom(2048)[0] == d, "the open TLS connection survives SIGHUP")
    n = connect(env, TLS_PORT, ssl.TLSVersion.TLSv1_2)
    it.check(n.getpeercert(binary_form=True) == der2 != der1,
             "a new TLS connection gets the reloaded certificate")
    n.close()
    c.sock.close()


def body(env):
    for tool in ("turnutils_uclient", "turnutils_peer", "openssl"):
        if shutil.which(tool) is None:
            raise it.Skip(f"{tool} is not installed")
    write_secrets(env, SECRET + "\n")
    install_cert(env, "first", "turn.example.org")
    env.start()
    upeer = start_peer(env)
    try:
        time.sleep(0.3)
        run_uclient(env, "TCP, channels", "-t", "-p", str(TCP_PORT), "-n", "50", "-l", "160")
        run_uclient(env, "TCP, Send indications", "-t", "-s", "-p", str(TCP_PORT), "-n", "50")
        run_uclient(env, "TCP, 4 clients", "-t", "-m", "4", "-p", str(TCP_PORT), "-n", "30")
        run_uclient(env, "TLS, channels", "-t", "-S", "-p", str(TLS_PORT), "-n", "50", "-l", "160")
        run_uclient(env, "TLS on 443", "-t", "-S", "-p", "443", "-n", "30", "-l", "1000")
    finally:
        upeer.kill()
        upeer.wait()
    peer = env.udp(it.B_IP, 0)
    for tls, port in ((None, TCP_PORT), (ssl.TLSVersion.TLSv1_2, TLS_PORT),
                      (ssl.TLSVersion.TLSv1_3, 443)):
        what = f"{'TCP' if tls is None else tls.name} on {port}"
        c = client(connect(env, port, tls))
        a_call(env, c, peer, what)
        n = env.stats()["turn"]["allocations"]
        if tls is None:
            # Refresh to 0: the answer arrives, then the server ends the connection.
            r = c.request(sc.REFRESH, [sc.u32(sc.LIFETIME, 0)])
            it.check(r is not None and r.cls == sc.SUCCESS, f"{what}: Refresh 0 answered")
            it.check(c.read_frame(5) is None and c.closed,
                     f"{what}: then the server closes the connection")
            it.wait_for(lambda: env.stats()["turn"]["allocations"] == n - 1, 5,
                        f"{what}: the allocation is gone")
        else:
            c.sock.close()
            it.wait_for(lambda: env.stats()["turn"]["allocations"] == n - 1, 5,
                        f"{what}: closing the connection ends its allocation")
    good_client_and_hostile(env, peer)
    max_connections(env)
    sighup_reload(env, peer)
    st = env.stats()["turn"]
    it.log(f"turn stats: {st}")
    for a in env.request({"cmd": "turn.list"})["allocations"]:
        env.request({"cmd": "turn.delete", "allocation": a["id"]})
    it.wait_for(lambda: env.stats()["turn"]["allocations"] == 0, 5, "every allocation gone")
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "turn_tcp", extra_config=TURN_CONFIG, isard_ns=True))
