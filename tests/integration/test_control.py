#!/usr/bin/env python3
"""Control-protocol robustness against a running isard, and isarctl.

- Malformed JSON, a non-object, an unknown or missing cmd, and every kind of
  missing/invalid/unknown field of every command each get
  {"error":{"code","message"}} whose message names the field, and change
  nothing: `session list` and the session counters stay as they were, and no
  relay port is consumed (after ~30 failed creates, many failing on their 2nd
  leg, the next good create gets the very next ports of the pool).
- A duplicate session id is refused ("exists") and the first session is intact.
- "id" is echoed; pipelined requests on one connection are answered in order,
  also those that wait for a worker (create/get/delete/get/create/delete).
- A request line over 64 KiB gets a too_long error and the connection is
  closed (also when the newline comes in the same read that crosses the
  limit); the daemon keeps serving. So does a client that disconnects in the
  middle of a line, or right after sending a request (which still happens).
- 50 concurrent clients, all connected at once, each get their pong; client
  number max_clients + 1 is refused as busy.
- isarctl: exit 0 on success; non-zero and exactly one line on stderr on
  error (unknown session, bad argument, no daemon); --json output shape of
  session create: {"session":ID,"legs":[{"name","local":"IP:PORT","remote"}]}.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402

PORT_MIN = 42000


def expect_error(env, req, field, code=None, what=None):
    r = env.request(req)
    what = what or (req if isinstance(req, str) else json.dumps(req))[:90]
    err = r.get("error")
    if not isinstance(err, dict) or not isinstance(err.get("code"), str) or \
            not isinstance(err.get("message"), str):
        raise it.TestFailure(f"{what}: expected an error object, got {r}")
    if code is not None and err["code"] != code:
        raise it.TestFailure(f"{what}: error code {err['code']!r}, want {code!r} ({err})")
    if field is not None and field not in err["message"]:
        raise it.TestFailure(f"{what}: error message does not name {field!r}: {err['message']}")
    it.log(f"ok: {what} -> {err['code']}: {err['message'][:100]}")
    return err


def snapshot(env):
    st = env.stats()
    return ([(s["session"], s["legs"]) for s in env.ctl_json("session", "list")["sessions"]],
            st["sessions"]["active"], st["sessions"]["legs"], st["sessions"]["created"],
            st["sessions"]["failed"])


def body(env):
    env.start()

    # ---- isarctl --json create: shape ---------------------------------------
    p = env.ctl("session", "create", "keep", "--leg", "a",
                "--leg", f"b,remote={it.B_IP}:5000")
    it.check_eq(p.returncode, 0, "isarctl --json session create exit status")
    r = json.loads(p.stdout)
    it.check_eq(sorted(r.keys()), ["legs", "session"], "create answer keys")
    it.check_eq(r["session"], "keep", "create answer session")
    it.check_eq([sorted(l.keys()) for l in r["legs"]], [["family", "local", "name", "remote"]] * 2,
                "create answer leg keys")
    it.check_eq([l["family"] for l in r["legs"]], [4, 4], "create answer leg families (IPv4 remote, no family=)")
    it.check_eq([l["name"] for l in r["legs"]], ["a", "b"], "leg names")
    locals_ = [l["local"] for l in r["legs"]]
    it.check(len(set(locals_)) == 2 and all(
        a.startswith(f"{it.RELAY_IP}:") and PORT_MIN <= int(a.rsplit(":", 1)[1]) < PORT_MIN + 100
        for a in locals_), f"legs' local IP:PORT from the pool (drawn at random): {locals_}")
    it.check_eq([l["remote"] for l in r["legs"]], [None, f"{it.B_IP}:5000"], "legs' remote")
    it.check_eq(p.stderr, "", "nothing on stderr on success")
    before = snapshot(env)
    requests0 = env.stats()["control"]
    ports_free0 = env.stats()["relay_ports"][0]["free"]

    # ---- malformed requests ---------------------------------------------------
    expect_error(env, '{"cmd": "ping"', None, "parse", "truncated JSON")
    expect_error(env, "this is not json", None, "parse", "garbage")
    expect_error(env, b'{"cmd":"ping","x":"\xff\xfe"}', None, None, "invalid UTF-8")
    expect_error(env, "[1,2,3]", "request", "invalid", "JSON array")
    expect_error(env, '"ping"', "request", "invalid", "JSON string")
    expect_error(env, {}, "cmd", "invalid", "missing cmd")
    expect_error(env, {"cmd": 5}, "cmd", "invalid", "cmd not a string")
    expect_error(env, {"cmd": "session.frobnicate"}, "cmd", "unknown_command", "unknown cmd")
    expect_error(env, {"cmd": "ping", "extra": 1}, "extra", "invalid", "unknown field on ping")

    # ---- session.create: every field ------------------------------------------
    good_legs = [{"name": "a"}, {"name": "b"}]
    cases = [
        ({"cmd": "session.create", "legs": good_legs}, "session", "missing session"),
        ({"cmd": "session.create", "session": 7, "legs": good_legs}, "session",
         "session not a string"),
        ({"cmd": "session.create", "session": "", "legs": good_legs}, "session", "empty id"),
        ({"cmd": "session.create", "session": "has space", "legs": good_legs}, "session",
         "id with a space"),
        ({"cmd": "session.create", "session": "x" * 65, "legs": good_legs}, "session",
         "id of 65 characters"),
        ({"cmd": "session.create", "session": "s"}, "legs", "missing legs"),
        ({"cmd": "session.create", "session": "s", "legs": {"name": "a"}}, "legs",
         "legs not an array"),
        ({"cmd": "session.create", "session": "s", "legs": []}, "legs", "no legs"),
        ({"cmd": "session.create", "session": "s", "legs": [{"name": "a"}]}, "legs",
         "one leg"),
        ({"cmd": "session.create", "session": "s",
          "legs": [{"name": f"l{i}"} for i in range(257)]}, "legs", "257 legs"),
        ({"cmd": "session.create", "session": "s", "legs": good_legs, "bogus": 1}, "bogus",
         "unknown top-level field"),
        ({"cmd": "session.create", "session": "s", "legs": ["a", "b"]}, "legs[0]",
         "leg not an object"),
        ({"cmd": "session.create", "session": "s", "legs": [{}, {"name": "b"}]},
         "legs[0].name", "leg without a name"),
        ({"cmd": "session.create", "session": "s", "legs": [{"name": "a"}, {"name": "b/c"}]},
         "legs[1].name", "bad leg name"),
        ({"cmd": "session.create", "session": "s", "legs": [{"name": "a"}, {"name": "a"}]},
         "legs[1].name", "duplicate leg name"),
        ({"cmd": "session.create", "session": "s",
          "legs": [{"name": "a"}, {"name": "b", "remote": "198.18.0.2"}]},
         "legs[1].remote", "remote without a port"),
        ({"cmd": "session.create", "session": "s",
          "legs": [{"name": "a"}, {"name": "b", "remote": "198.18.0.300:5"}]},
         "legs[1].remote", "remote with a bad address"),
        ({"cmd": "session.create", "session": "s",
          "legs": [{"name": "a"}, {"name": "b", "remote": "198.18.0.2:70000"}]},
         "legs[1].remote", "remote with a bad port"),
        ({"cmd": "session.create", "session": "s",
          "legs": [{"name": "a"}, {"name": "b", "remote": "198.18.0.2:0"}]},
         "legs[1].remote", "remote with port 0"),
        ({"cmd": "session.create", "session": "s",
          "legs": [{"name": "a"}, {"name": "b", "remote": "224.0.0.1:5000"}]},
         "legs[1].remote", "multicast remote"),
        ({"cmd": "session.create", "session": "s",
          "legs": [{"name": "a"}, {"name": "b", "remote": 5000}]},
         "legs[1].remote", "remote not a string"),
        ({"cmd": "session.create", "session": "s",
          "legs": [{"name": "a"}, {"name": "b", "targets": ["zz"]}]},
         "legs[1].targets", "unknown target"),
        ({"cmd": "session.create", "session": "s",
          "legs": [{"name": "a"}, {"name": "b", "targets": ["b"]}]},
         "legs[1].targets", "leg targets itself"),
        ({"cmd": "session.create", "session": "s",
          "legs": [{"name": "a"}, {"name": "b", "targets": "a"}]},
         "legs[1].targets", "targets not an array"),
        ({"cmd": "session.create", "session": "s",
          "legs": [{"name": "a"}, {"name": "b", "interface": 3}]},
         "legs[1].interface", "no such interface"),
        ({"cmd": "session.create", "session": "s",
          "legs": [{"name": "a"}, {"name": "b", "interface": -1}]},
         "legs[1].interface", "negative interface"),
        ({"cmd": "session.create", "session": "s",
          "legs": [{"name": "a"}, {"name": "b", "colour": "red"}]},
         "legs[1].colour", "unknown leg field"),
        ({"cmd": "session.create", "session": "keep", "legs": good_legs}, "keep",
         "duplicate session id"),
    ]
    for req, field, what in cases:
        code = "exists" if what == "duplicate session id" else "invalid"
        expect_error(env, req, field, code, what)
    it.check_eq(snapshot(env), before, "session list and counters unchanged by the bad creates")

    # ---- other commands -----------------------------------------------------------
    for req, field, code, what in [
        ({"cmd": "session.get"}, "session", "invalid", "get without session"),
        ({"cmd": "session.get", "session": "nope"}, "nope", "not_found", "get unknown"),
        ({"cmd": "session.delete", "session": "nope"}, "nope", "not_found", "delete unknown"),
        ({"cmd": "session.delete", "session": ["keep"]}, "session", "invalid",
         "delete with an array id"),
        ({"cmd": "session.list", "session": "keep"}, "session", "invalid", "list with a field"),
        ({"cmd": "leg.update", "session": "keep", "leg": "a"}, "remote", "invalid",
         "leg.update without remote"),
        ({"cmd": "leg.update", "session": "keep", "remote": None}, "leg", "invalid",
         "leg.update without leg"),
        ({"cmd": "leg.update", "session": "keep", "leg": "zz", "remote": None}, "zz",
         "not_found", "leg.update of an unknown leg"),
        ({"cmd": "leg.update", "session": "nope", "leg": "a", "remote": None}, "nope",
         "not_found", "leg.update of an unknown session"),
        ({"cmd": "leg.update", "session": "keep", "leg": "a", "remote": "1.2.3.4"}, "remote",
         "invalid", "leg.update with a bad remote"),
        ({"cmd": "leg.update", "session": "keep", "leg": "a", "remote": 12}, "remote",
         "invalid", "leg.update with a numeric remote"),
        ({"cmd": "stats", "verbose": True}, "verbose", "invalid", "stats with a field"),
    ]:
        expect_error(env, req, field, code, what)
    it.check_eq(snapshot(env), before, "nothing changed after the bad requests")
    leg_a = env.leg("keep", "a")
    it.check_eq(leg_a["remote"], None, "keep/a untouched by the failed leg.update")
    it.check_eq(env.leg("keep", "b")["remote"], f"{it.B_IP}:5000", "keep/b untouched")

    # ---- no port consumed by the failed creates ---------------------------------------
    it.check_eq(env.stats()["relay_ports"][0]["free"], ports_free0,
                "no port was consumed by the failed creates (stats relay_ports.free)")
    r = env.request({"cmd": "session.create", "session": "next",
                     "legs": [{"name": "a"}, {"name": "b"}]})
    it.check_eq(env.stats()["relay_ports"][0]["free"], ports_free0 - 2,
                "a good create takes two ports")
    env.request({"cmd": "session.delete", "session": "next"})
    stats1 = env.stats()["control"]
    it.check(stats1["errors"] > requests0["errors"] + 40, "stats control.errors counted them")

    # ---- id echo and pipelining -----------------------------------------------------
    with env.connect() as s:
        s.sendall(b'{"cmd":"ping","id":7}\n{"cmd":"nope","id":"x"}\n'
                  b'{"cmd":"session.get","session":"keep","id":[1]}\n')
        buf = b""
        deadline = time.monotonic() + 5
        while buf.count(b"\n") < 3 and time.monotonic() < deadline:
            s.settimeout(max(deadline - time.monotonic(), 0.01))
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        answers = [json.loads(x) for x in buf.split(b"\n") if x]
    it.check_eq([a.get("id") for a in answers], [7, "x", [1]], "ids echoed in order")
    it.check(answers[0].get("pong") is True and "error" in answers[1] and
             answers[2].get("session") == "keep", "pipelined answers are the right ones")
    # Requests that wait for a worker (create, delete) keep the order too.
    with env.connect() as s:
        legs = [{"name": "a"}, {"name": "b"}]
        s.sendall("".join(json.dumps(r) + "\n" for r in [
            {"cmd": "session.create", "session": "pipe", "legs": legs, "id": 1},
            {"cmd": "session.get", "session": "pipe", "id": 2},
            {"cmd": "session.delete", "session": "pipe", "id": 3},
            {"cmd": "session.get", "session": "pipe", "id": 4},
            {"cmd": "session.create", "session": "pipe", "legs": legs, "id": 5},
            {"cmd": "session.delete", "session": "pipe", "id": 6}]).encode())
        buf = b""
        deadline = time.monotonic() + 5
        while buf.count(b"\n") < 6 and time.monotonic() < deadline:
            s.settimeout(max(deadline - time.monotonic(), 0.01))
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        answers = [json.loads(x) for x in buf.split(b"\n") if x]
    it.check_eq([a.get("id") for a in answers], [1, 2, 3, 4, 5, 6], "pipelined ids in order")
    it.check(answers[1].get("state") == "active" and answers[2].get("deleted") is True and
             answers[3].get("error", {}).get("code") == "not_found" and
             answers[4].get("session") == "pipe" and answers[5].get("deleted") is True,
             "pipelined create/get/delete/get/create/delete each saw the previous one")

    # ---- over-long lines -----------------------------------------------------------------
    for size, newline in ((70000, False), (200000, True), (65537 + 100, True)):
        what = f"a {size}-byte line{' with newline' if newline else ' without newline'}"
        pad = size - len('{"cmd":"ping","pad":""}')
        line = ('{"cmd":"ping","pad":"' + "x" * pad + '"}').encode()
        assert len(line) == size
        with env.connect() as s:
            try:
                s.sendall(line + (b"\n" if newline else b""))
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed while we were still sending: read what came back
            try:
                ans = json.loads(it.read_line(s, 5))
            except ConnectionError:
                raise it.TestFailure(f"{what}: closed without an error answer")
            err = ans.get("error", {})
            it.check_eq(err.get("code"), "too_long", f"{what}: error code")
            closed = False
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                s.settimeout(max(deadline - time.monotonic(), 0.01))
                try:
                    chunk = s.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    closed = True
                    break
                if not chunk:
                    closed = True
                    break
            it.check(closed, f"{what}: isard closed the connection")
        it.check_eq(env.request({"cmd": "ping"}).get("pong"), True, "isard still answers")

    # ---- clients that go away ----------------------------------------------------------------
    with env.connect() as s:
        s.sendall(b'{"cmd":"session.cre')
    with env.connect() as s:
        s.sendall(b'{"cmd":"session.create","session":"gone","legs":[{"name":"a"},{"name":"b"}]}\n')
    with env.connect():
        pass
    it.check_eq(env.request({"cmd": "ping"}).get("pong"), True,
                "isard answers after clients vanished mid-line / before reading")
    # A request whose client vanished still took effect (and only once).
    it.wait_for(lambda: "gone" in env.session_ids(), 3, "the vanished client's create")
    it.check_eq(env.session_ids(), ["gone", "keep"], "session list")
    env.ctl_json("session", "delete", "gone")

    # ---- 50 concurrent clients -------------------------------------------------------------
    n_clients = 50
    conns = [env.connect(timeout=10) for _ in range(n_clients)]
    results = [None] * n_clients
    start = threading.Barrier(n_clients)

    def client(i):
        try:
            start.wait(timeout=10)
            conns[i].sendall(json.dumps({"cmd": "ping", "id": i}).encode() + b"\n")
            results[i] = json.loads(it.read_line(conns[i], 10))
        except Exception as e:  # noqa: BLE001
            results[i] = {"exception": repr(e)}
    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    for c in conns:
        c.close()
    bad = [(i, r) for i, r in enumerate(results)
           if not (isinstance(r, dict) and r.get("pong") is True and r.get("id") == i)]
    it.check(not bad, f"{n_clients} concurrent clients all got their pong (bad: {bad[:3]})")

    # ---- more clients than control.max_clients: the extra one is refused ------------
    held = [env.connect() for _ in range(env.max_clients)]
    try:
        with env.connect() as s:
            try:
                ans = json.loads(it.read_line(s, 5))
            except ConnectionError:
                ans = {}
            it.check_eq(ans.get("error", {}).get("code"), "busy",
                        f"client number {env.max_clients + 1} is refused as busy")
    finally:
        for c in held:
            c.close()
    it.wait_for(lambda: env.request({"cmd": "ping"}).get("pong"), 5,
                "isard to serve again once the clients left")
    it.check(True, "isard serves again once the clients left")

    # ---- isarctl exit codes and stderr -----------------------------------------------------
    def one_line_error(p, what, contains=None):
        lines = p.stderr.strip("\n").split("\n")
        ok = p.returncode != 0 and len(lines) == 1 and lines[0].startswith("isarctl:") and \
            (contains is None or contains in lines[0])
        it.check(ok, f"{what}: exit {p.returncode}, stderr {lines}")

    p = env.ctl("ping", as_json=False)
    it.check(p.returncode == 0 and p.stdout.startswith("pong"), "isarctl ping: exit 0")
    p = env.ctl("session", "show", "nope", as_json=False)
    one_line_error(p, "isarctl session show <unknown>", "nope")
    it.check_eq(p.stdout, "", "no stdout on error without --json")
    p = env.ctl("session", "show", "nope")
    one_line_error(p, "isarctl --json session show <unknown>", "nope")
    it.check(json.loads(p.stdout)["error"]["code"] == "not_found",
             "--json prints the error object on stdout")
    p = env.ctl("session", "delete", "nope", as_json=False)
    one_line_error(p, "isarctl session delete <unknown>", "nope")
    p = env.ctl("session", "create", "keep", "--leg", "a", "--leg", "b", as_json=False)
    one_line_error(p, "isarctl session create <duplicate>", "keep")
    p = env.ctl("session", "create", "s2", "--leg", "a", "--leg", "b,remote=nope",
                as_json=False)
    one_line_error(p, "isarctl session create with a bad remote", "remote")
    p = env.ctl("session", "create", "s2", "--leg", "a", "--leg", "b,colour=red",
                as_json=False)
    one_line_error(p, "isarctl --leg with an unknown key", "colour")
    for v in ("x", "-1", "99999999999999999999"):
        p = env.ctl("session", "create", "s2", "--leg", "a", "--leg", f"b,interface={v}",
                    as_json=False)
        one_line_error(p, f"isarctl --leg b,interface={v} (no crash)", "interface")
    p = env.ctl("leg", "update", "keep", "a", "bogus", as_json=False)
    one_line_error(p, "isarctl leg update with a bad spec", "remote")
    p = subprocess_ctl(env, ["--socket", os.path.join(env.dir, "no.sock"), "ping"])
    one_line_error(p, "isarctl against a missing socket", "no.sock")
    p = subprocess_ctl(env, ["session", "frobnicate"])
    it.check(p.returncode != 0, f"isarctl with an unknown subcommand: exit {p.returncode}")

    it.check_eq(env.session_ids(), ["keep"], "only the first session is left")
    env.ctl_json("session", "delete", "keep")
    env.final_checks()


def subprocess_ctl(env, args):
    return subprocess.run([env.isarctl_bin] + args, capture_output=True, text=True, timeout=15,
                          env=dict(os.environ, ISAR_SOCKET=env.sock_path))


if __name__ == "__main__":
    sys.exit(it.main(body, "control", port_min=PORT_MIN, port_max=PORT_MIN + 99))
