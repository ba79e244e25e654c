"""TURN over UDP with clients nobody here wrote: a relay-only call (two
RTCPeerConnections in one page, iceTransportPolicy "relay", an audio track
pc1 -> pc2 and a data channel pc1 -> pc2 with echoes) in headless Chromium
and in headless Firefox ESR, and the same data channel call between two
aiortc peers. Every client runs in the test's namespace and gets REST
credentials (coturn's use-auth-secret, as prosody computes them) for
isard's TURN; both ends of the call are relay candidates, so every packet
goes client -> isard -> (hairpin between the two allocations) -> client.
Chromium binds channels (ChannelData); Firefox sends Send indications and
gets Data indications. The page and its credentials come from a small
http.server listening in the namespace; the page POSTs its results back.

Each part SKIPs when its program is missing (Debian: chromium, firefox-esr,
python3-aiortc); the test is SKIP (77) only if all three are."""

import base64
import hashlib
import hmac
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import isar_it as it

SECRET = "isar-test-secret-" + os.urandom(4).hex()
REALM = "meet.example.org"
TURN_URL = f"turn:{it.RELAY_IP}:3478?transport=udp"
HTTP_PORT = 8080
# The page is served on the namespace's loopback: http://127.0.0.1 is a secure
# context (navigator.mediaDevices exists), http://198.18.0.2 is not.
HTTP_HOST = "127.0.0.1"
MESSAGES = 8
WANT_PACKETS = 60        # Opus at 50 packets/s: a bit more than a second of audio
CLIENT_TIMEOUT = 30      # seconds a browser may run, at most
PAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "turn_page")
TURN_CONFIG = f"""[turn]
listen_udp = [3478]
realm = "{REALM}"
auth_secret_file = "@DIR@/turn-secret"
allowed_peer = ["198.18.0.0/24"]
max_allocations = 1000
allocate_rate = 1000
"""


def rest_credentials(user):
    """What prosody's mod_turn_external (coturn's REST API) hands a client."""
    username = f"{int(time.time()) + 3600}:{user}"
    mac = hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(mac).decode()


class PageServer:
    """http.server in the namespace: GET / (the page), GET /config?client=X
    (TURN URL + fresh credentials), POST /result (the page's report).
    `turn_url` is the page's only ICE server (test_turn_browsers_tls.py
    hands it a turns: URL)."""

    def __init__(self, env, turn_url=TURN_URL):
        self.results = {}
        self.turn_url = turn_url
        self.cond = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):
                pass

            def _send(self, code, body, ctype):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                if u.path in ("/", "/index.html"):
                    with open(os.path.join(PAGE_DIR, "index.html"), "rb") as f:
                        self._send(200, f.read(), "text/html; charset=utf-8")
                elif u.path == "/config":
                    client = urllib.parse.parse_qs(u.query).get("client", ["x"])[0]
                    user, cred = rest_credentials(client)
                    body = json.dumps({"turn": outer.turn_url, "username": user, "credential": cred,
                                       "messages": MESSAGES, "want_packets": WANT_PACKETS,
                                       "wait_ms": 20000}).encode()
                    self._send(200, body, "application/json")
                else:
                    self._send(404, b"not found", "text/plain")

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(min(n, 1 << 20))
                try:
                    res = json.loads(data)
                except ValueError:
                    res = {"ok": False, "error": "bad JSON from the page"}
                with outer.cond:
                    outer.results[res.get("client", "?")] = res
                    outer.cond.notify_all()
                self._send(200, b"{}", "application/json")

        with env.in_ns():  # the listening socket lives in the namespace
            self.httpd = http.server.ThreadingHTTPServer((HTTP_HOST, HTTP_PORT), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, client, timeout, proc):
        deadline = time.monotonic() + timeout
        with self.cond:
            while client not in self.results:
                left = deadline - time.monotonic()
                if left <= 0 or proc.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.5))
            return self.results[client]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def kill_group(proc):
    """The browser and all its children (own process group, from _die_with_parent)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def tail(path, n=25):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def turn_stats(env):
    return env.stats()["turn"]


def delta(after, before, keys=("allocations_created", "channels_bound", "permissions_created",
                               "channel_data_pkts", "hairpin_pkts", "to_peers_pkts",
                               "from_peers_pkts")):
    d = {k: after.get(k, 0) - before.get(k, 0) for k in keys}
    # auth_failures: {reason: count}; a 401 challenge before the first
    # authenticated request counts too (missing credentials).
    fa, fb = after.get("auth_failures", {}), before.get("auth_failures", {})
    d["auth_failures"] = {k: v - fb.get(k, 0) for k, v in fa.items() if v - fb.get(k, 0)}
    return d


def check_browser_result(name, res):
    if res is None:
        raise it.TestFailure(f"{name}: no result from the page within {CLIENT_TIMEOUT}s")
    it.log(f"{name}: {res.get('user_agent', '')}; ice {res.get('ice1')}/{res.get('ice2')}, "
           f"{res.get('elapsed_ms')} ms; notes {res.get('notes')}")
    if not res.get("ok"):
        raise it.TestFailure(f"{name}: the page failed: {res.get('error')}")
    it.log(f"{name}: candidates {json.dumps(res.get('candidates'))}")
    for pc in ("pc1_pair", "pc2_pair"):
        p = res.get(pc)
        it.check(p is not None, f"{name}: {pc[:3]} has a selected candidate pair")
        it.check(p["local_type"] == "relay" and p["remote_type"] == "relay",
                 f"{name}: {pc[:3]} selected pair is relay/relay "
                 f"({p['local_address']}:{p['local_port']} -> "
                 f"{p['remote_address']}:{p['remote_port']}, got {p['local_type']}/"
                 f"{p['remote_type']})")
        it.check(p["local_protocol"] == "udp" and p["remote_protocol"] == "udp",
                 f"{name}: {pc[:3]} pair protocol udp/udp (relayProtocol {p.get('relay_protocol')})")
    inb = res["inbound"]
    it.check(inb["packetsReceived"] > 20,
             f"{name}: pc2 received {inb['packetsReceived']} audio packets "
             f"({inb['bytesReceived']} bytes, {inb['packetsLost']} lost) through isard")
    want = [f"isar-msg-{i}" for i in range(MESSAGES)]
    it.check_eq(sorted(res["dc_received"]), sorted(want), f"{name}: data channel messages at pc2")
    it.check_eq(sorted(res["dc_echoed"]), sorted("echo:" + m for m in want),
                f"{name}: data channel echoes at pc1")


def run_browser(env, server, name, cmd, extra_env=None):
    """Runs cmd (a browser opening the page) in the namespace; returns the
    page's result (or None) after killing the browser."""
    logpath = os.path.join(env.dir, f"{name}.log")
    e = dict(os.environ)
    e.update(extra_env or {})
    t = time.monotonic()
    with open(logpath, "w") as logf:
        proc = subprocess.Popen(["ip", "netns", "exec", env.ns] + cmd, stdout=logf,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=e,
                                preexec_fn=it._die_with_parent)
    try:
        res = server.wait(name, CLIENT_TIMEOUT, proc)
    finally:
        kill_group(proc)
    it.log(f"{name}: ran {time.monotonic() - t:.1f}s")
    if res is None:
        it.log(f"{name}: no result; browser exit {proc.returncode}; its log:\n{tail(logpath)}")
    return res


def chromium_cmd(exe, prof, client):
    """Headless Chromium opening the page as `client`, profile (and HOME) in `prof`."""
    return [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update",
            "--allow-loopback-in-peer-connection", "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
            f"--user-data-dir={prof}", f"http://{HTTP_HOST}:{HTTP_PORT}/?client={client}"]


def part_chromium(env, server):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        return "SKIP: chromium is not installed (Debian package chromium)"
    prof = tempfile.mkdtemp(prefix="chromium-", dir=env.dir)
    before = turn_stats(env)
    res = run_browser(env, server, "chromium", chromium_cmd(exe, prof, "chromium"),
                      {"HOME": prof})
    check_browser_result("chromium", res)
    d = delta(turn_stats(env), before)
    it.log(f"chromium: isard TURN counters grew by {d}")
    it.check(d["allocations_created"] >= 2, f"chromium: {d['allocations_created']} allocations created")
    it.check(d["channels_bound"] >= 2, f"chromium: {d['channels_bound']} channels bound")
    it.check(d["channel_data_pkts"] > 0, f"chromium: {d['channel_data_pkts']} ChannelData packets")
    it.check(d["hairpin_pkts"] > 20, f"chromium: {d['hairpin_pkts']} hairpin packets")
    return "PASS"


def part_firefox(env, server):
    exe = shutil.which("firefox-esr") or shutil.which("firefox")
    if exe is None:
        return "SKIP: firefox-esr is not installed (Debian package firefox-esr)"
    prof = tempfile.mkdtemp(prefix="firefox-", dir=env.dir)
    prefs = {
        "media.navigator.streams.fake": True,
        "media.navigator.permission.disabled": True,
        "media.peerconnection.ice.loopback": True,
        "media.peerconnection.ice.obfuscate_host_addresses": False,
        # Without it Firefox gathers only on the "default" address (the one
        # routing to the Internet), and the namespace has no default route:
        # "failed to find default addresses", no candidates at all.
        "media.peerconnection.ice.default_address_only": False,
        "media.autoplay.default": 0,
        "browser.shell.checkDefaultBrowser": False,
        "browser.startup.homepage_override.mstone": "ignore",
        "browser.aboutwelcome.enabled": False,
        "datareporting.policy.dataSubmissionEnabled": False,
        "toolkit.telemetry.reportingpolicy.firstRun": False,
        "app.update.enabled": False,
        "network.proxy.type": 0,
    }
    with open(os.path.join(prof, "user.js"), "w") as f:
        for k, v in prefs.items():
            f.write(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n")
    # Firefox's ICE (nICEr) also insists on finding the "default" local
    # address, the source of a route to the Internet ("failed to find default
    # addresses" and no candidates at all otherwise): give the namespace a
    # default route via isard for this part only (nothing is sent on it).
    env.ns_run(["ip", "route", "add", "default", "via", it.RELAY_IP])
    before = turn_stats(env)
    try:
        res = run_browser(env, server, "firefox", [
            exe, "--headless", "--no-remote", "--profile", prof,
            f"http://{HTTP_HOST}:{HTTP_PORT}/?client=firefox"],
            {"HOME": prof, "MOZ_HEADLESS": "1", "MOZ_CRASHREPORTER_DISABLE": "1",
             "MOZ_LOG": os.environ.get("ISAR_IT_MOZ_LOG", "")})
    finally:
        env.ns_run(["ip", "route", "del", "default"], check_rc=False)
    if os.environ.get("ISAR_IT_MOZ_LOG"):
        shutil.copy(os.path.join(env.dir, "firefox.log"), "/tmp/isarit-firefox.log")
    if res is None:
        log = tail(os.path.join(env.dir, "firefox.log"), 60)
        if "no DISPLAY" in log or "cannot open display" in log.lower():
            return "SKIP: firefox-esr cannot run headless here (no display)"
    check_browser_result("firefox", res)
    d = delta(turn_stats(env), before)
    it.log(f"firefox: isard TURN counters grew by {d}")
    it.check(d["allocations_created"] >= 2, f"firefox: {d['allocations_created']} allocations created")
    it.check(d["hairpin_pkts"] > 20, f"firefox: {d['hairpin_pkts']} hairpin packets "
             f"(Send/Data indications; {d['channel_data_pkts']} ChannelData)")
    return "PASS"


def aiortc_python():
    for py in (sys.executable, "/usr/bin/python3"):
        if py and os.access(py, os.X_OK) and subprocess.run(
                [py, "-c", "import aiortc"], capture_output=True, timeout=20).returncode == 0:
            return py
    return None


def part_aiortc(env):
    py = aiortc_python()
    if py is None:
        return "SKIP: aiortc is not installed (Debian package python3-aiortc)"
    user, cred = rest_credentials("aiortc")
    before = turn_stats(env)
    t = time.monotonic()
    try:
        p = subprocess.run(["ip", "netns", "exec", env.ns, py,
                            os.path.join(PAGE_DIR, "aiortc_call.py"), TURN_URL, user, cred,
                            str(MESSAGES)], capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise it.TestFailure(f"aiortc: no result within {CLIENT_TIMEOUT}s")
    it.log(f"aiortc: ran {time.monotonic() - t:.1f}s")
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise it.TestFailure(f"aiortc: no result (exit {p.returncode}): {p.stderr[-2000:]}")
    res = json.loads(lines[-1])
    it.log(f"aiortc: candidates {json.dumps(res.get('candidates'))}; "
           f"ice {res.get('ice1')}/{res.get('ice2')}")
    if not res.get("ok"):
        it.log(p.stderr[-2000:])
        raise it.TestFailure(f"aiortc: {res.get('error')} (received {len(res.get('dc_received', []))}, "
                             f"echoed {len(res.get('dc_echoed', []))})")
    for side in ("offer", "answer"):
        c = res["candidates"][side]
        it.check(c and all(" typ relay" in l for l in c),
                 f"aiortc: the {side} carries only relay candidates ({len(c)})")
    for pc in ("pc1_pairs", "pc2_pairs"):
        pairs = res[pc]
        it.check(pairs and all(x["local_type"] == "relay" and x["remote_type"] == "relay"
                               and x["protocol"] == "udp" for x in pairs),
                 f"aiortc: {pc[:3]} nominated pair relay/relay udp: {pairs}")
    want = [f"isar-msg-{i}" for i in range(MESSAGES)]
    it.check_eq(sorted(res["dc_received"]), sorted(want), "aiortc: data channel messages at pc2")
    it.check_eq(sorted(res["dc_echoed"]), sorted("echo:" + m for m in want),
                "aiortc: data channel echoes at pc1")
    d = delta(turn_stats(env), before)
    it.log(f"aiortc: isard TURN counters grew by {d}")
    it.check(d["allocations_created"] >= 2, f"aiortc: {d['allocations_created']} allocations created")
    it.check(d["hairpin_pkts"] > 0, f"aiortc: {d['hairpin_pkts']} hairpin packets")
    return "PASS"


def body(env):
    secret_path = os.path.join(env.dir, "turn-secret")
    with open(secret_path, "w") as f:
        f.write(SECRET + "\n")
    os.chmod(secret_path, 0o600)
    env.start()
    server = PageServer(env)
    outcome = {}
    only = os.environ.get("ISAR_IT_TURN_PARTS")  # e.g. "firefox,aiortc" (debugging)
    try:
        for name, fn in (("chromium", lambda: part_chromium(env, server)),
                         ("firefox", lambda: part_firefox(env, server)),
                         ("aiortc", lambda: part_aiortc(env))):
            if only and name not in only.split(","):
                outcome[name] = "SKIP: not in ISAR_IT_TURN_PARTS"
                continue
            t = time.monotonic()
            it.log(f"---- {name} ----")
            d0 = env.total_drops()
            outcome[name] = fn()
            d1 = env.total_drops()
            grew = {k: v - d0.get(k, 0) for k, v in d1.items() if v - d0.get(k, 0)}
            it.log(f"{name}: {outcome[name]} ({time.monotonic() - t:.1f}s); worker drops {grew}")
    finally:
        server.close()
    it.log(f"parts: {outcome}")
    if all(v.startswith("SKIP") for v in outcome.values()):
        raise it.Skip("; ".join(outcome.values()))
    st = turn_stats(env)
    it.log(f"isard TURN stats: {st}")
    drops = env.total_drops()
    # ICE races make a few drops normal here: a peer's checks can reach an
    # allocation before its own CreatePermission (turn_no_permission), and
    # packets in flight when a page closes its PCs find the allocation gone
    # (turn_no_alloc). A bad channel would be a relay bug.
    it.check(drops.get("turn_bad_channel", 0) == 0 and drops.get("turn_no_permission", 0) <= 60,
             f"no bad TURN drops (ICE races allowed): {drops}")
    allocs = env.request({"cmd": "turn.list"})["allocations"]
    it.log(f"{len(allocs)} allocation(s) left after the clients closed/were killed")
    for a in allocs:
        env.request({"cmd": "turn.delete", "allocation": a["id"]})
    it.wait_for(lambda: turn_stats(env)["allocations"] == 0, 5, "every allocation to be gone")
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "turn_browsers", extra_config=TURN_CONFIG))
