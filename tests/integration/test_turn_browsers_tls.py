"""TURN over TLS on 443 with a real browser, as participants behind a
firewall that lets only TCP out reach Jitsi or BigBlueButton (issue #10 §3).

isard runs in a namespace of its own (isar_it isard_ns=True); headless
Chromium runs in the endpoints' namespace, where nftables drops every UDP
datagram to the relay's address 198.18.0.1 (checked: a UDP Allocate to
198.18.0.1:3478, answered before the block, gets nothing after it). The page
of test_turn_browsers.py (two RTCPeerConnections, iceTransportPolicy "relay",
audio pc1 -> pc2, a data channel with echoes) gets one ICE server only:
`turns:198.18.0.1:443?transport=tcp`.

1. isard itself on 443 (`listen_tls = [443]`): the call connects, audio and
   the data channel go through; getStats shows both selected local
   candidates as relay with relayProtocol "tls"; isard counted the TLS
   handshakes and its stream threads carried the ChannelData.
2. HAProxy in front, as bbb-install.sh sets up a BigBlueButton box:
   HAProxy on the TURN server's own box (here: isard's namespace) binds
   198.18.0.1:443 and terminates TLS (ALPN h2, http/1.1, stun.turn offered);
   ALPN stun.turn goes to plain TCP at 198.18.0.1:3478, isard's `listen_tcp`,
   and so does a client without ALPN whose first byte is not a letter
   (bbb-install.sh's protocol map; letters are HTTP). isard does not listen
   on 443 itself and hands all TCP to its address up to the kernel
   (`kernel_forward = "all"`), where HAProxy accepts it. A stdlib TLS client
   checks the routing first: ALPN stun.turn gets a Binding answered by isard
   with HAProxy's address as the mapped one, ALPN http/1.1 lands in the web
   backend. Then the same Chromium call works. Chromium (156) offers no ALPN
   on `turns:` (HAProxy logs "alpn:-"), so it takes the no-ALPN path; HAProxy's
   stats socket shows the sessions and bytes of its `turn` backend, and
   isard's stream threads saw plain TCP only (no TLS handshake). HAProxy runs
   in the foreground with the test's own config file, at most 90 s, and is
   killed at the end of the part.

Certificate validation: Chromium checks the TURN server's certificate like
any https one (its network service opens `turns:` connections with the
ordinary TLS client socket and certificate verifier, for
"https://<host>:<port>"; an IP address is matched against the certificate's
IP subjectAltName). Nothing is switched off: the test makes a CA and a
server certificate signed by it with subjectAltName IP:198.18.0.1 (openssl
CLI), and adds the CA as a trusted root to the NSS database of Chromium's
profile ($HOME/.pki/nssdb, certutil from libnss3-tools), which Chromium on
Linux honours for locally added roots. With the CA left out (env
ISAR_IT_TLS_NO_TRUST=1) Chromium aborts every handshake (isard counts
closed_tls_error for each), gathers no relay candidate, and the test fails.

Both parts need chromium, openssl, certutil (libnss3-tools) and nft
(nftables): without one of them the test is SKIP (77). Without haproxy the
second part SKIPs."""

import json
import os
import shutil
import socket
import ssl
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import stun_client as sc  # noqa: E402
import test_turn_browsers as tb  # noqa: E402  (the page, its server, the browser runner)

TURNS_URL = f"turns:{it.RELAY_IP}:443?transport=tcp"
TCP_PORT = 3478
HAPROXY_STATS = "haproxy-stats.sock"
COMMON = f"""realm = "{tb.REALM}"
auth_secret_file = "@DIR@/turn-secret"
allowed_peer = ["198.18.0.0/24"]
max_allocations = 1000
allocate_rate = 1000
"""
# Part 1: isard terminates TLS on 443 itself (UDP 3478 on, for the block check).
CONFIG_TLS = f"""[turn]
listen_udp = [3478]
listen_tls = [443]
tls_cert = "@DIR@/server.pem"
tls_key = "@DIR@/server.key"
{COMMON}"""
# Part 2: HAProxy has 443; isard serves plain TCP on 3478 behind it.
CONFIG_BEHIND_HAPROXY = f"""[turn]
listen_udp = [3478]
listen_tcp = [{TCP_PORT}]
{COMMON}"""


def make_pki(env):
    """A CA and a server certificate for IP 198.18.0.1 signed by it."""
    d = env.dir
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.pem"))
    ext = os.path.join(d, "server.ext")
    it.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", ca_key, "-out", ca_crt, "-days", "2",
            "-subj", "/CN=Isar test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    it.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=turn.isar.test"])
    with open(ext, "w") as f:
        f.write(f"subjectAltName = IP:{it.RELAY_IP}, DNS:turn.isar.test\n"
                "basicConstraints = CA:FALSE\n"
                "keyUsage = critical, digitalSignature\n"
                "extendedKeyUsage = serverAuth\n")
    it.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
            "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext])
    os.chmod(key, 0o600)
    # HAProxy wants the chain and the key in one file (bbb-install.sh's certbundle.pem).
    bundle = os.path.join(d, "certbundle.pem")
    with open(bundle, "w") as out:
        for p in (crt, key):
            with open(p) as f:
                out.write(f.read())
    os.chmod(bundle, 0o600)
    return ca_crt


def chromium_profile(env, name, ca_crt):
    """A profile (also HOME) whose NSS database trusts the test CA."""
    prof = tempfile.mkdtemp(prefix=f"{name}-", dir=env.dir)
    nssdb = os.path.join(prof, ".pki", "nssdb")
    os.makedirs(nssdb)
    it.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"])
    if os.environ.get("ISAR_IT_TLS_NO_TRUST"):
        it.log(f"{name}: ISAR_IT_TLS_NO_TRUST: the test CA is NOT trusted (expect a failure)")
    else:
        it.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "isar-test-ca",
                "-i", ca_crt])
    return prof


def block_udp_to_relay(env):
    """nftables in the endpoints' namespace: UDP to the relay's address is dropped.
    Checked both ways with a UDP Allocate to 3478 (isard's listen_udp)."""
    it.check(udp_allocate_answered(env), "before the block: a UDP Allocate to "
             f"{it.RELAY_IP}:3478 is answered (401)")
    rules = ("table inet isarit_block {\n"
             "  chain out {\n"
             "    type filter hook output priority 0; policy accept;\n"
             f"    ip daddr {it.RELAY_IP} meta l4proto udp counter drop\n"
             "  }\n"
             "}\n")
    path = os.path.join(env.dir, "block.nft")
    with open(path, "w") as f:
        f.write(rules)
    env.ns_run(["nft", "-f", path])
    it.check(not udp_allocate_answered(env),
             f"after the block: a UDP Allocate to {it.RELAY_IP}:3478 gets nothing")


def unblock_udp(env):
    env.ns_run(["nft", "delete", "table", "inet", "isarit_block"], check_rc=False)


def udp_dropped(env):
    out = env.ns_run(["nft", "-j", "list", "table", "inet", "isarit_block"]).stdout
    for item in json.loads(out).get("nftables", []):
        rule = item.get("rule")
        if rule:
            for e in rule.get("expr", []):
                if "counter" in e:
                    return e["counter"]["packets"]
    return 0


def udp_allocate_answered(env):
    s = env.udp(it.A_IP, 0)
    try:
        try:
            s.sendto(sc.build(sc.ALLOCATE, sc.REQUEST,
                              [sc.u32(sc.REQUESTED_TRANSPORT, 17 << 24)]), (it.RELAY_IP, 3478))
        except PermissionError:  # an nftables drop on output: the sender gets EPERM
            return False
        s.settimeout(1.0)
        try:
            s.recvfrom(2048)
            return True
        except socket.timeout:
            return False
    finally:
        s.close()


def stream_total(env):
    return env.stats()["turn_streams"]["total"]


def run_call(env, server, name, ca_crt):
    """Chromium opens the page (turns: only); returns its result, checked.
    On a failure, isard's stream counters say how far the connections got."""
    s0 = stream_total(env)
    try:
        return _run_call(env, server, name, ca_crt)
    except it.TestFailure:
        st = stream_total(env)
        it.log(f"{name}: isard stream counters grew by "
               f"{ {k: v - s0[k] for k, v in st.items() if isinstance(v, int) and v != s0[k]} }")
        raise


def _run_call(env, server, name, ca_crt):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    prof = chromium_profile(env, name, ca_crt)
    udp0 = udp_dropped(env)
    res = tb.run_browser(env, server, name, tb.chromium_cmd(exe, prof, name), {"HOME": prof})
    if res is None:
        raise it.TestFailure(f"{name}: no result from the page within {tb.CLIENT_TIMEOUT}s")
    it.log(f"{name}: {res.get('user_agent', '')}; ice {res.get('ice1')}/{res.get('ice2')}, "
           f"{res.get('elapsed_ms')} ms; notes {res.get('notes')}")
    it.log(f"{name}: candidates {json.dumps(res.get('candidates'))}")
    if not res.get("ok"):
        raise it.TestFailure(f"{name}: the page failed: {res.get('error')}")
    for pc in ("pc1_pair", "pc2_pair"):
        p = res.get(pc)
        it.check(p is not None, f"{name}: {pc[:3]} has a selected candidate pair")
        it.log(f"{name}: {pc[:3]} getStats selected pair: {json.dumps(p)}")
        it.check(p["local_type"] == "relay" and p["remote_type"] == "relay",
                 f"{name}: {pc[:3]} selected pair is relay/relay (got {p['local_type']}/"
                 f"{p['remote_type']})")
        it.check_eq(p.get("relay_protocol"), "tls",
                    f"{name}: {pc[:3]} local candidate's relayProtocol")
    for side in ("pc1", "pc2"):
        c = res["candidates"][side]
        it.check(c and all(" typ relay" in l for l in c),
                 f"{name}: {side} gathered only relay candidates ({len(c)})")
    inb = res["inbound"]
    it.check(inb["packetsReceived"] > 20,
             f"{name}: pc2 received {inb['packetsReceived']} audio packets "
             f"({inb['bytesReceived']} bytes, {inb['packetsLost']} lost)")
    want = [f"isar-msg-{i}" for i in range(tb.MESSAGES)]
    it.check_eq(sorted(res["dc_received"]), sorted(want), f"{name}: data channel messages at pc2")
    it.check_eq(sorted(res["dc_echoed"]), sorted("echo:" + m for m in want),
                f"{name}: data channel echoes at pc1")
    dropped = udp_dropped(env) - udp0
    it.log(f"{name}: nftables dropped {dropped} UDP datagram(s) to {it.RELAY_IP} meanwhile")
    return res


def counters_grew(env, name, before_turn, before_st):
    d = tb.delta(tb.turn_stats(env), before_turn)
    st = stream_total(env)
    ds = {k: st[k] - before_st.get(k, 0) for k in st
          if isinstance(st[k], int) and st[k] != before_st.get(k, 0)}
    it.log(f"{name}: isard TURN counters grew by {d}")
    it.log(f"{name}: isard stream counters grew by {ds}")
    it.check(d["allocations_created"] >= 2, f"{name}: {d['allocations_created']} allocations")
    it.check(d["hairpin_pkts"] > 20, f"{name}: {d['hairpin_pkts']} hairpin packets")
    return d, ds


def part_isard_tls(env, server, ca_crt):
    env.extra_config = CONFIG_TLS
    env.iface_extra = ""
    env.start()
    block_udp_to_relay(env)
    t0, s0 = tb.turn_stats(env), stream_total(env)
    run_call(env, server, "chromium-tls", ca_crt)
    d, ds = counters_grew(env, "chromium-tls", t0, s0)
    it.check(ds.get("tls_handshakes", 0) >= 2,
             f"isard did the TLS handshakes itself ({ds.get('tls_handshakes', 0)})")
    it.check(ds.get("rx_media", 0) > 20 and ds.get("tx_media", 0) > 20,
             f"isard's stream threads carried the call ({ds.get('rx_media')} media frames in, "
             f"{ds.get('tx_media')} out)")
    return "PASS"


HAPROXY_CFG = """# bbb-install.sh's HAProxy in front of the TURN server, for the test: the
# same frontend and backends; foreground (-db), no chroot/user switch, logs to
# stdout, a stats socket in the test directory.
global
  log stdout format raw local0
  stats socket @DIR@/{stats} mode 600 level admin
  ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
  log global
  mode tcp
  option dontlognull
  timeout connect 5s
  timeout client 50s
  timeout server 50s

frontend nginx_or_turn
  bind {relay}:443 ssl crt @DIR@/certbundle.pem ssl-min-ver TLSv1.2 alpn h2,http/1.1,stun.turn
  mode tcp
  option tcplog
  tcp-request content capture req.payload(0,1) len 1
  # bbb-install.sh's log line, with the ALPN the client negotiated.
  log-format "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq alpn:%[ssl_fc_alpn] first_byte:%{{+X}}[capture.req.hdr(0)]"
  tcp-request inspect-delay 30s
  # TLS ends here; the ALPN the client negotiated picks the backend; without
  # ALPN, the first byte does: a letter is HTTP (the protocol map), anything
  # else (STUN starts with 0x00 or 0x01) goes to TURN.
  use_backend nginx-http2 if {{ ssl_fc_alpn h2 }}
  use_backend nginx if {{ ssl_fc_alpn http/1.1 }}
  use_backend turn if {{ ssl_fc_alpn stun.turn }}
  use_backend %[capture.req.hdr(0),map_str(@DIR@/protocolmap,turn)]
  default_backend turn

backend turn
  mode tcp
  server localhost {relay}:{tcp}

# The web server behind it (nothing listens here in the test).
backend nginx
  mode tcp
  server localhost 127.0.0.1:81

backend nginx-http2
  mode tcp
  server localhost 127.0.0.1:82
"""


def haproxy_stat(env, backend):
    """(sessions total, bytes in, bytes out) of a backend, from the stats socket."""
    with env.in_isard_ns():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with s:
        s.settimeout(5)
        s.connect(os.path.join(env.dir, HAPROXY_STATS))
        s.sendall(b"show stat\n")
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    lines = buf.decode().splitlines()
    head = lines[0].lstrip("# ").split(",")
    for l in lines[1:]:
        row = dict(zip(head, l.split(",")))
        if row.get("pxname") == backend and row.get("svname") == "BACKEND":
            return int(row["stot"] or 0), int(row["bin"] or 0), int(row["bout"] or 0)
    raise it.TestFailure(f"haproxy: no backend {backend} in show stat")


def tls_to_443(env, ca_crt, alpn):
    """A TLS connection from 198.18.0.2 to 198.18.0.1:443 that verifies the
    server certificate against the test CA (IP subjectAltName)."""
    ctx = ssl.create_default_context(cafile=ca_crt)
    ctx.set_alpn_protocols(alpn)
    s = env.ns_socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((it.RELAY_IP, 443))
    return ctx.wrap_socket(s, server_hostname=it.RELAY_IP)


def alpn_routing(env, ca_crt):
    """HAProxy's routing, with a stdlib client: ALPN stun.turn reaches isard
    (a Binding over TLS is answered with HAProxy's address as the mapped one:
    isard sees plain TCP from HAProxy); ALPN http/1.1 goes to the web backend."""
    t0, w0 = haproxy_stat(env, "turn"), haproxy_stat(env, "nginx")
    c = tls_to_443(env, ca_crt, ["stun.turn"])
    it.check_eq(c.selected_alpn_protocol(), "stun.turn", "HAProxy selects ALPN stun.turn")
    tc = sc.StreamTurnClient(c, "x", "x", tb.REALM)
    r = tc.transact(sc.build(sc.BINDING, sc.REQUEST), timeout=3)
    it.check(r is not None and r.cls == sc.SUCCESS, "a Binding request over HAProxy is answered")
    mip, mport = r.xor_address(sc.XOR_MAPPED_ADDRESS)
    it.check(mip == it.RELAY_IP and mport != c.getsockname()[1],
             f"isard saw the Binding from HAProxy ({mip}:{mport}), not from the client "
             f"({c.getsockname()[0]}:{c.getsockname()[1]})")
    c.close()
    w = tls_to_443(env, ca_crt, ["http/1.1"])
    it.check_eq(w.selected_alpn_protocol(), "http/1.1", "HAProxy selects ALPN http/1.1")
    w.sendall(b"GET / HTTP/1.1\r\nHost: isar.test\r\n\r\n")
    try:  # nothing listens behind the web backend (HAProxy retries, then closes)
        w.settimeout(0.5)
        w.recv(100)
    except (OSError, ssl.SSLError):
        pass
    w.close()
    it.wait_for(lambda: haproxy_stat(env, "nginx")[0] > w0[0], 5,
                "HAProxy to route ALPN http/1.1 to the web backend")
    it.check_eq(haproxy_stat(env, "turn")[0] - t0[0], 1,
                "HAProxy sessions to backend turn: the stun.turn client's only")


def part_haproxy(env, server, ca_crt):
    exe = shutil.which("haproxy")
    if exe is None:
        return "SKIP: haproxy is not installed (Debian package haproxy)"
    env.extra_config = CONFIG_BEHIND_HAPROXY
    env.iface_extra = 'kernel_forward = "all"\n'
    env.start()
    block_udp_to_relay(env)
    with open(os.path.join(env.dir, "protocolmap"), "w") as f:
        # A first byte that is a letter is HTTP without ALPN; STUN starts with 0x00/0x01.
        for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
            f.write(f"{c} nginx\n")
    cfg = os.path.join(env.dir, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(HAPROXY_CFG.format(stats=HAPROXY_STATS, relay=it.RELAY_IP, tcp=TCP_PORT)
                .replace("@DIR@", env.dir))
    it.run(["ip", "netns", "exec", env.isard_ns, exe, "-c", "-f", cfg])
    logpath = os.path.join(env.dir, "haproxy.log")
    with open(logpath, "w") as logf:
        hp = tb.subprocess.Popen(["ip", "netns", "exec", env.isard_ns, "timeout", "-s", "KILL",
                                  "90", exe, "-db", "-f", cfg], stdout=logf,
                                 stderr=tb.subprocess.STDOUT, stdin=tb.subprocess.DEVNULL,
                                 preexec_fn=it._die_with_parent)
    try:
        it.wait_for(lambda: hp.poll() is None and os.path.exists(
            os.path.join(env.dir, HAPROXY_STATS)), 10, "haproxy's stats socket", interval=0.1)
        if hp.poll() is not None:
            raise it.TestFailure(f"haproxy exited {hp.returncode}: {tb.tail(logpath)}")
        listening = env.isard_ns_run(["ss", "-Htln", "sport = :443"]).stdout
        it.check(f"{it.RELAY_IP}:443" in listening,
                 f"HAProxy listens on {it.RELAY_IP}:443 in isard's namespace")
        alpn_routing(env, ca_crt)
        h0 = haproxy_stat(env, "turn")
        t0, s0 = tb.turn_stats(env), stream_total(env)
        run_call(env, server, "chromium-haproxy", ca_crt)
        h1 = haproxy_stat(env, "turn")
        d, ds = counters_grew(env, "chromium-haproxy", t0, s0)
        it.log(f"haproxy backend turn: sessions {h1[0] - h0[0]}, bytes in {h1[1] - h0[1]}, "
               f"out {h1[2] - h0[2]}")
        it.check(h1[0] - h0[0] >= 2, f"HAProxy's backend turn took {h1[0] - h0[0]} sessions")
        it.check(h1[1] - h0[1] > 10000 and h1[2] - h0[2] > 10000,
                 f"HAProxy carried the media ({h1[1] - h0[1]} bytes in, {h1[2] - h0[2]} out)")
        it.check(ds.get("accepted", 0) >= 2 and ds.get("tls_handshakes", 0) == 0
                 and ds.get("rx_media", 0) > 20 and ds.get("tx_media", 0) > 20,
                 f"isard accepted {ds.get('accepted', 0)} plain TCP connections, "
                 f"{ds.get('rx_media', 0)}/{ds.get('tx_media', 0)} media frames in/out, "
                 f"{ds.get('tls_handshakes', 0)} TLS handshakes: HAProxy terminated TLS")
        # What Chromium negotiated (HAProxy's log: one line per connection, at its end).
        tb.kill_group(hp)
        lines = [l for l in tb.tail(logpath, 20).splitlines() if f"{it.A_IP}:" in l]
        it.log("haproxy log:\n" + "\n".join(lines))
        chrome = [l for l in lines if " turn/localhost " in l][-2:]
        it.check(len(chrome) == 2, "HAProxy logged Chromium's two connections to backend turn")
        it.log("Chromium's ALPN through HAProxy: " + ", ".join(
            l.split(" alpn:")[1].split()[0] for l in chrome))
    finally:
        tb.kill_group(hp)
    return "PASS"


def cleanup_allocations(env):
    for a in env.request({"cmd": "turn.list"})["allocations"]:
        env.request({"cmd": "turn.delete", "allocation": a["id"]})
    it.wait_for(lambda: tb.turn_stats(env)["allocations"] == 0, 5, "every allocation gone")


def body(env):
    missing = [t for t in ("chromium", "openssl", "certutil", "nft") if shutil.which(t) is None]
    if missing:
        raise it.Skip(f"not installed: {', '.join(missing)} (Debian: chromium, openssl, "
                      "libnss3-tools, nftables)")
    secret_path = os.path.join(env.dir, "turn-secret")
    with open(secret_path, "w") as f:
        f.write(tb.SECRET + "\n")
    os.chmod(secret_path, 0o600)
    ca_crt = make_pki(env)
    server = tb.PageServer(env, turn_url=TURNS_URL)
    outcome = {}
    only = os.environ.get("ISAR_IT_TURN_PARTS")  # e.g. "haproxy" (debugging)
    try:
        for name, fn in (("isard_tls", part_isard_tls), ("haproxy", part_haproxy)):
            if only and name not in only.split(","):
                outcome[name] = "SKIP: not in ISAR_IT_TURN_PARTS"
                continue
            it.log(f"---- {name} ----")
            t = time.monotonic()
            try:
                outcome[name] = fn(env, server, ca_crt)
            finally:
                unblock_udp(env)
            it.log(f"{name}: {outcome[name]} ({time.monotonic() - t:.1f}s)")
            if env.alive():
                drops = env.total_drops()
                it.log(f"{name}: worker drops {drops}")
                it.check(drops.get("turn_bad_channel", 0) == 0, f"{name}: no turn_bad_channel")
                cleanup_allocations(env)
                env.final_checks()
    finally:
        server.close()
    it.log(f"parts: {outcome}")
    if all(v.startswith("SKIP") for v in outcome.values()):
        raise it.Skip("; ".join(outcome.values()))


if __name__ == "__main__":
    sys.exit(it.main(body, "turn_browsers_tls", isard_ns=True))
