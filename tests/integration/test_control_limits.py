#!/usr/bin/env python3
"""The management socket against hostile and careless clients, access, the
audit log and SRTP keys from files.

1. Access: [control] socket_group (a numeric gid) and socket_mode 0660: the
   socket has that group and mode; a process of uid 65534 in that group may
   use it, one outside it is refused by the kernel (EACCES). The log names the
   peer (SO_PEERCRED) of every command that changes state.
2. Hostile requests, each on a connection of its own: nesting 33 levels and
   60000 levels deep ("too_deep", before parsing), numbers beyond double
   (1e999), huge integers where indexes belong, 60 KiB strings, NUL bytes,
   invalid UTF-8, seeded random bytes: each gets an error answer (or the
   connection is closed) and isard keeps answering.
3. While a request waits for a (wedged) worker, the same client streams bytes
   without a newline: isard stops reading (it accepts at most a few MiB, not
   the 32 MiB offered), its RSS does not grow, and once the worker is back the
   waiting request is answered, then too_long and the connection closes.
   [control] max_inflight = 2: with two requests waiting, a third gets "busy".
4. [control] idle_timeout_s = 2: a silent client is closed after ~2 s; one that
   keeps talking is not.
5. isarctl takes SRTP keys from in=@FILE / out=@- (and leg update in=@FILE);
   a file holding anything but exactly one SUITE:BASE64 is refused without
   the key appearing in the message; no key ever appears in isard's log, and
   after the requests (one split over three reads) the base64 text of no key
   is left anywhere in isard's writable memory (/proc/PID/mem).
"""
import base64
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import test_ops_common as oc  # noqa: E402

GID = 4242          # the socket's group (numeric: no /etc/group entry needed)
NOBODY = 65534
IDLE_S = 2


def key(seed, suite="AES_CM_128_HMAC_SHA1_80", n=30):
    return suite + ":" + base64.b64encode(bytes((seed + i) % 256 for i in range(n))).decode()


def raw(env, data, timeout=5):
    """Sends raw bytes (newline appended); returns the answer (dict), or None
    when isard closed the connection without one."""
    with env.connect(timeout) as s:
        s.sendall(data + b"\n")
        try:
            return json.loads(it.read_line(s, timeout))
        except ConnectionError:
            return None


def expect_err(env, data, code, what):
    r = raw(env, data)
    got = (r or {}).get("error", {}).get("code")
    if code is not None and got != code:
        raise it.TestFailure(f"{what}: want error {code!r}, got {str(r)[:200]}")
    it.check(r is None or isinstance(r.get("error"), dict), f"{what}: error answer ({got})")
    return r


def as_user(env, uid, gid, groups):
    """Connects and pings as uid/gid in a forked child; returns 'ok' or an errno name."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        res = "?"
        try:
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(env.sock_path)
            s.sendall(b'{"cmd":"drain_not","id":1}\n{"cmd":"ping"}\n')
            buf = b""
            while buf.count(b"\n") < 2:
                c = s.recv(4096)
                if not c:
                    break
                buf += c
            res = "ok" if b'"pong":true' in buf else "noanswer"
        except OSError as e:
            res = e.__class__.__name__
        os.write(wr, res.encode())
        os._exit(0)
    os.close(wr)
    out = os.read(rd, 100).decode()
    os.close(rd)
    os.waitpid(pid, 0)
    return out


def read_lines(s, n, timeout):
    """Up to n answer lines, then whether isard closed the connection (EOF or
    reset) within the timeout."""
    buf = b""
    closed = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            c = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not c:
            closed = True
            break
        buf += c
    return [l for l in buf.split(b"\n") if l][:n], closed


def memory_holds(pid, needles):
    """The needles found anywhere in isard's writable memory."""
    found = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            f = line.split()
            if "rw" not in f[1][:2]:
                continue
            a, b = (int(x, 16) for x in f[0].split("-"))
            try:
                mem.seek(a)
                data = mem.read(b - a)
            except (OSError, ValueError, OverflowError):
                continue
            found.update(n for n in needles if n in data)
    return found


def log_text(env):
    with open(env.isard_log, errors="replace") as f:
        return f.read()


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def part_access(env):
    st = os.stat(env.sock_path)
    it.check_eq((st.st_gid, st.st_mode & 0o777), (GID, 0o660), "socket group and mode")
    os.chmod(env.dir, 0o711)  # let uid 65534 reach the socket in the test's directory
    it.check_eq(as_user(env, NOBODY, GID, []), "ok", "uid 65534 in the socket's group: allowed")
    it.check_eq(as_user(env, NOBODY, NOBODY, []), "PermissionError",
                "uid 65534 outside the socket's group: refused")


def part_hostile(env):
    expect_err(env, b'{"cmd":"ping","id":' + b"[" * 33 + b"]" * 33 + b"}", "too_deep",
               "33 levels of nesting")
    r = raw(env, b'{"cmd":"ping","id":' + b"[" * 30 + b"]" * 30 + b"}")
    it.check(r is not None and r.get("pong") is True, "30 levels of nesting are fine")
    expect_err(env, b'{"cmd":"ping","id":' + b"[" * 60000, "too_deep", "60000 x [")
    expect_err(env, b'{"a":' * 10000 + b"1" + b"}" * 10000, "too_deep", "10000 nested objects")
    expect_err(env, b'"' + b"[" * 60000 + b'"', "invalid",
               "brackets inside a string are not nesting")
    for num in (b"1e999", b"-1e999", b"1" * 400, b"-" + b"9" * 400, b"1e-999"):
        r = raw(env, b'{"cmd":"ping","id":' + num + b"}")
        it.check(r is not None and (("error" in r) or r.get("pong") is True),
                 f"number {num[:12].decode()}...: {str(r)[:80]}")
    for field, v in (("interface", b"18446744073709551616"), ("interface", b"1e300"),
                     ("clock_rate", b"-1e308"), ("max_pps", b"4294967297")):
        expect_err(env, b'{"cmd":"session.create","session":"n","legs":[{"name":"a","' +
                   field.encode() + b'":' + v + b'},{"name":"b"}]}', "invalid",
                   f"{field} = {v.decode()}")
    big = "x" * (60 * 1024)
    r = raw(env, json.dumps({"cmd": "session.get", "session": big}).encode())
    it.check(r is not None and "error" in r and len(json.dumps(r)) < 200000,
             "session.get of a 60 KiB id: an error")
    r = raw(env, json.dumps({"cmd": big}).encode())
    it.check(r is not None and r["error"]["code"] == "unknown_command", "a 60 KiB cmd")
    r = raw(env, json.dumps({"cmd": "session.create", "session": big,
                             "legs": [{"name": "a"}, {"name": "b"}]}).encode())
    it.check(r is not None, f"session.create with a 60 KiB id: answered ({str(r)[:60]})")
    if r and "error" not in r:
        env.request({"cmd": "session.delete", "session": big})
    expect_err(env, b'{"cmd":"ping\x00"}', "parse", "NUL inside a string")
    expect_err(env, b"\x00" * 5000, "parse", "5000 NUL bytes")
    expect_err(env, b'{"cmd":"\xff\xfe"}', "parse", "invalid UTF-8 in a string")
    expect_err(env, b'{"cmd":"ping","id":"\xc3"}', "parse", "truncated UTF-8 sequence")
    expect_err(env, b'\xef\xbb\xbf\xc0\xaf{}', "parse", "overlong UTF-8 outside strings")
    rnd = random.Random(4242)
    for i in range(150):
        n = rnd.choice([1, 10, 100, 1000, 30000])
        data = bytes(rnd.choice(b'{}[]":,0123456789eE+-.\\ntrufalsn\x00\xff\xc3 ')
                     for _ in range(n)).replace(b"\n", b" ")
        r = raw(env, data)
        if r is not None and "error" not in r and r.get("pong") is not True:
            raise it.TestFailure(f"random line {i}: unexpected answer {str(r)[:100]}")
    it.check(True, "150 seeded random lines: each answered with an error or closed")
    it.check_eq(env.request({"cmd": "ping"}).get("pong"), True, "isard answers after all that")


def part_pipeline(env):
    it.check_eq(env.request({"cmd": "debug.wedge_worker", "worker": 0, "seconds": 4})
                .get("wedged_s"), 4, "worker 0 wedged for 4 s")
    rss0 = vm_rss_kb(env.proc.pid)
    w1 = env.connect(10)
    w1.sendall(b'{"cmd":"session.create","session":"w1","legs":[{"name":"a"},{"name":"b"}]}\n')
    w2 = env.connect(10)
    w2.sendall(b'{"cmd":"session.create","session":"w2","legs":[{"name":"a"},{"name":"b"}]}\n')
    time.sleep(0.3)
    r = env.request({"cmd": "ping"})
    it.check_eq(r.get("error", {}).get("code"), "busy",
                "max_inflight = 2: a third request while two wait is refused as busy")
    # w1 streams a never-ending line while its create waits.
    w1.setblocking(False)
    chunk = b"x" * 65536
    offered = accepted = 0
    end = time.monotonic() + 2.0
    while time.monotonic() < end and offered < (32 << 20):
        offered += len(chunk)
        try:
            accepted += w1.send(chunk)
        except BlockingIOError:
            time.sleep(0.01)
    rss1 = vm_rss_kb(env.proc.pid)
    it.log(f"offered {offered >> 10} KiB, isard accepted {accepted >> 10} KiB; "
           f"RSS {rss0} -> {rss1} KiB")
    it.check(accepted < (4 << 20), f"isard stopped reading a waiting client's stream "
             f"({accepted >> 10} KiB accepted)")
    it.check(rss1 - rss0 < 16 << 10, f"isard's RSS did not grow ({rss1 - rss0} KiB)")
    w1.setblocking(True)
    w1.settimeout(10)
    lines, closed = read_lines(w1, 2, 10)
    it.check_eq(json.loads(lines[0]).get("session") if lines else None, "w1",
                "the waiting create is answered once the worker is back")
    it.check_eq(json.loads(lines[1]).get("error", {}).get("code") if len(lines) > 1 else None,
                "too_long", "then the endless line: too_long")
    it.check(closed, "and the connection is closed")
    it.check_eq(json.loads(it.read_line(w2, 10)).get("session"), "w2", "w2's create answered")
    for s in (w1, w2):
        s.close()
    for sid in ("w1", "w2"):
        env.ctl_json("session", "delete", sid)


def part_idle(env):
    silent = env.connect(10)
    talker = env.connect(10)
    t0 = time.monotonic()
    closed_at = None
    silent.settimeout(0.2)
    while time.monotonic() - t0 < IDLE_S + 3:
        talker.sendall(b'{"cmd":"ping"}\n')
        it.read_line(talker, 3)
        try:
            if silent.recv(100) == b"" and closed_at is None:
                closed_at = time.monotonic() - t0
        except socket.timeout:
            pass
        except OSError:
            closed_at = closed_at or time.monotonic() - t0
        time.sleep(0.3)
    it.check(closed_at is not None and IDLE_S - 0.5 <= closed_at <= IDLE_S + 2,
             f"a silent client is closed after idle_timeout_s = {IDLE_S} (at {closed_at})")
    talker.sendall(b'{"cmd":"ping"}\n')
    it.check(json.loads(it.read_line(talker, 3)).get("pong") is True,
             f"a client that keeps talking stays open ({time.monotonic() - t0:.1f} s)")
    silent.close()
    talker.close()


def part_keys(env):
    k_in, k_out, k_new = key(1), key(101), key(201, "AEAD_AES_128_GCM", 28)
    kf = os.path.join(env.dir, "in.key")
    with open(kf, "w") as f:
        f.write(k_in + "\n")
    p = subprocess.run([env.isarctl_bin, "--socket", env.sock_path, "--json", "session", "create",
                        "sk", "--leg", f"a,in=@{kf},out=@-", "--leg", "b"],
                       input=k_out + "\n", capture_output=True, text=True, timeout=15)
    it.check_eq(p.returncode, 0, f"create with in=@FILE, out=@- ({p.stderr.strip()})")
    srtp = env.leg("sk", "a")["srtp"]
    it.check_eq((srtp["in"], srtp["out"]), ("AES_CM_128_HMAC_SHA1_80",) * 2,
                "both keys arrived (session show)")
    nf = os.path.join(env.dir, "new.key")
    with open(nf, "w") as f:
        f.write(k_new)
    p = env.ctl("leg", "update", "sk", "a", f"in=@{nf}")
    it.check_eq(p.returncode, 0, f"leg update in=@FILE without a newline ({p.stderr.strip()})")
    it.check_eq(env.leg("sk", "a")["srtp"]["in"], "AEAD_AES_128_GCM", "re-keyed from the file")
    bad = os.path.join(env.dir, "bad.key")
    for content, what in ((k_in + "\n" + k_out + "\n", "two keys"), (k_in + " x", "a space"),
                          ("", "empty"), ("AES_CM_128_HMAC_SHA1_80:!!!" + k_in[-20:], "bad b64")):
        with open(bad, "w") as f:
            f.write(content)
        p = env.ctl("leg", "update", "sk", "a", f"in=@{bad}")
        secret = content.split(":", 1)[-1].strip()[:16]
        it.check(p.returncode != 0 and (not secret or secret not in p.stderr + p.stdout),
                 f"key file with {what}: refused, key not shown ({p.stderr.strip()[:100]})")
    p = env.ctl("leg", "update", "sk", "a", f"in=@{env.dir}/missing.key")
    it.check(p.returncode == 2 and "missing.key" in p.stderr, "a missing key file is named")
    # A pipelined request with keys, split over several reads.
    k_a, k_b = key(31), key(61, "AEAD_AES_256_GCM", 44)
    line = json.dumps({"cmd": "session.create", "session": "sk2", "legs": [
        {"name": "a", "in": k_a, "out": k_b}, {"name": "b", "out": k_a}]}).encode()
    with env.connect(5) as c:
        c.sendall(b'{"cmd":"ping"}\n' + line[:50])
        time.sleep(0.2)
        c.sendall(line[50:120])
        time.sleep(0.2)
        c.sendall(line[120:] + b"\n")
        lines, _ = read_lines(c, 2, 5)
    it.check(len(lines) == 2 and json.loads(lines[1]).get("session") == "sk2",
             "a create with keys split over three reads")
    needles = [k.split(":")[1][:24].encode() for k in (k_in, k_out, k_new, k_a, k_b)]
    left = memory_holds(env.proc.pid, needles)
    it.check(not left, f"no key text left anywhere in isard's memory "
             f"({len(left)} of {len(needles)} found)")
    env.ctl_json("session", "delete", "sk")
    env.ctl_json("session", "delete", "sk2")
    text = log_text(env)
    for k in (k_in, k_out, k_new):
        it.check(k.split(":")[1][:20] not in text, "no key material in isard's log")
    it.check("ctl: uid 0 gid 0 pid " in text and ": session.create sk" in text,
             "the log names the peer of session.create")
    it.check(": leg.update sk a in=(key)" in text, "leg.update logged without its key")
    it.check(f"ctl: uid {NOBODY} gid {GID} pid" not in text,
             "the unprivileged client changed nothing (nothing logged for it)")
    it.check(": session.delete sk" in text, "session.delete logged")


def body(env):
    oc.patch_config(env, control_extra=(f'socket_group = "{GID}"\nsocket_mode = "0660"\n'
                                        f"idle_timeout_s = {IDLE_S}\nmax_inflight = 2\n"),
                    sections="\n[debug]\nallow_wedge = true\n")
    env.start()
    part_access(env)
    part_hostile(env)
    part_pipeline(env)
    part_idle(env)
    part_keys(env)
    it.check("debug.wedge_worker 0 4" in log_text(env), "debug.wedge_worker logged")
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "control_limits"))
