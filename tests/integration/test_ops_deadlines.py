#!/usr/bin/env python3
"""Deadlines that clients cannot stretch.

1. /metrics: max_http_clients (64) connections each send one byte per second
   and never finish their request (slowloris), plus 8 that send nothing.
   /healthz still answers 200 within 2 s (a new connection evicts the oldest
   when all slots are taken), and every slow connection is closed by its
   deadline (http_total_timeout_s = 10 s from accept), whatever it sends.
2. Drain ends by drain_timeout_s whatever the management clients do: one
   pipelines requests and never reads the answers (its socket fills up), one
   keeps sending requests all along; a session stays. isard exits 0 within
   drain_timeout_s + 2 s of `drain`.
"""
import json
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import test_ops_common as oc  # noqa: E402

DRAIN_S = 3
SLOTS = 64
DEADLINE_S = 10


def slowloris(port, n, stop, closed_at, t0):
    """n connections; one byte per second each until closed by the server."""
    conns = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setblocking(False)
        conns.append(s)
    req = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    pos = 0
    tick = 0
    while not stop.is_set() and len(closed_at) < n:
        tick += 1
        send_now = tick % 5 == 0  # checks every 0.2 s, one byte a second
        for i, s in enumerate(conns):
            if i in closed_at:
                continue
            try:
                d = s.recv(4096)
                if d == b"":
                    closed_at[i] = time.monotonic() - t0
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed_at[i] = time.monotonic() - t0
                continue
            if not send_now:
                continue
            try:
                s.send(req[pos % len(req):pos % len(req) + 1])
            except BlockingIOError:
                pass
            except OSError:
                closed_at[i] = time.monotonic() - t0
        if send_now:
            pos += 1
        stop.wait(0.2)
    for s in conns:
        s.close()


def part_slowloris(env, port):
    stop = threading.Event()
    closed_at = {}
    t0 = time.monotonic()
    th = threading.Thread(target=slowloris, args=(port, SLOTS, stop, closed_at, t0))
    th.start()
    silent = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
    try:
        time.sleep(2.5)
        for attempt in range(3):
            a = time.monotonic()
            code, _h, body = oc.http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=2)
            took = time.monotonic() - a
            it.check(code == 200 and took < 2.0,
                     f"/healthz answers {code} in {took:.2f}s while {SLOTS} slow clients "
                     f"hold the slots (try {attempt + 1})")
        it.wait_for(lambda: len(closed_at) >= SLOTS, DEADLINE_S + 4,
                    "every slow connection closed by the server", interval=0.2)
        late = max(closed_at.values())
        it.check(late <= DEADLINE_S + 2,
                 f"the last slow connection was closed {late:.1f}s after it opened "
                 f"(deadline {DEADLINE_S}s)")
        shut = 0
        for s in silent:
            s.settimeout(max(0.1, t0 + DEADLINE_S + 3 - time.monotonic()))
            try:
                while s.recv(4096):
                    pass
                shut += 1
            except socket.timeout:
                pass
            except OSError:
                shut += 1
        it.check_eq(shut, len(silent), "connections that send nothing are closed by the deadline")
    finally:
        stop.set()
        th.join(15)
        for s in silent:
            s.close()
    code, _h, _b = oc.get(port, "/healthz")
    it.check_eq(code, 200, "/healthz afterwards")


def part_drain(env):
    env.create("stay", "a", "b")
    size = len(json.dumps(env.request({"cmd": "stats"})))
    count = max(50, min(2000, (2 << 20) // size))
    deaf = env.connect(5)
    deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    deaf.sendall(b'{"cmd":"stats"}\n' * count)
    it.log(f"the deaf client asked {count} stats ({size} bytes each) and reads nothing")
    stop = threading.Event()
    sent = [0]

    def chatty():
        try:
            with env.connect(5) as s:
                while not stop.is_set():
                    s.sendall(b'{"cmd":"status"}\n')
                    it.read_line(s, 5)
                    sent[0] += 1
                    time.sleep(0.01)
        except (OSError, it.TestFailure, ConnectionError):
            pass
    th = threading.Thread(target=chatty)
    th.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    with env.connect(5) as s:
        s.sendall(b'{"cmd":"drain"}\n')
        it.check_eq(json.loads(it.read_line(s, 5)).get("state"), "draining", "drain")
    try:
        rc = env.proc.wait(timeout=DRAIN_S + 10)
    except Exception:  # noqa: BLE001
        rc = None
    took = time.monotonic() - t0
    stop.set()
    th.join(10)
    deaf.close()
    it.check(rc == 0 and took <= DRAIN_S + 2,
             f"isard exited {rc} {took:.1f}s after drain (drain_timeout_s {DRAIN_S}) with a deaf "
             f"and a chatty client ({sent[0]} requests) connected")


def body(env):
    port = oc.free_tcp_port()
    oc.patch_config(env, control_extra=f"drain_timeout_s = {DRAIN_S}\n",
                    sections=f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    env.start()
    part_slowloris(env, port)
    it.check(env.alive(), "isard alive after the slow clients")
    env.check_health()
    part_drain(env)


if __name__ == "__main__":
    sys.exit(it.main(body, "ops_deadlines"))
