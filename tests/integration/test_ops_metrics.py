#!/usr/bin/env python3
"""GET /metrics and /healthz on isard's io_uring loop during a live call.

A (198.18.0.2:4000) and B (198.18.0.3:5000) talk through session "m", created
with "metrics": true. A sends PCMU (PT 0, 8 kHz) with 3 sequence numbers
skipped and uneven spacing (10 ms / 30 ms gaps for 20 ms of timestamp), B sends
evenly with no gap. /metrics is scraped during the call and after it:
- the counters move between scrapes while the call runs;
- per worker and per port RX/TX, forwarded packets, sessions and legs agree
  with what the endpoints sent and received;
- leg a: RFC 3550 received/expected/lost = what A sent/skipped, jitter > 0;
  leg b: lost 0; the values equal session.get's "rtp";
- a session without "metrics" has no per-leg series;
- control request counters and the latency histogram count our requests;
- /healthz is 200; unknown path 404, garbage 400, POST 405, HTTP/2.0 505,
  an oversized request 431, a silent client 408 after the io_uring timeout,
  and neither a silent client nor 32 parallel clients block the loop.
"""
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import test_ops_common as oc  # noqa: E402

N_A = 120     # A's packets (3 more sequence numbers are skipped)
SKIP = {40, 41, 90}
N_B = 100
PAYLOAD = 160
ETH_IP_UDP = 14 + 20 + 8


def body(env):
    port = oc.free_tcp_port()
    oc.patch_config(env, sections=f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    env.start()
    a = env.udp(it.A_IP, 4000)
    b = env.udp(it.B_IP, 5000)

    m0 = oc.scrape(port)
    it.check_eq(oc.val(m0, "isar_sessions"), 0.0, "isar_sessions before any call")
    it.check_eq(oc.val(m0, "isar_workers"), 1.0, "isar_workers")
    it.check(oc.val(m0, "isar_up", state="running") == 1.0, "isar_up{state=running}")

    r = env.ctl_json("session", "create", "m", "--metrics", "--leg", "a", "--leg", "b")
    locs = {l["name"]: (l["local"].rsplit(":", 1)[0], int(l["local"].rsplit(":", 1)[1]))
            for l in r["legs"]}
    env.create("quiet", "x", "y")  # no per-leg series for this one
    # B speaks first so that leg b latches (its hello has no target yet).
    b.sendto(it.rtp_packet(6, 0, 0xB0B, b"\x01" * PAYLOAD), locs["b"])
    it.wait_for(lambda: env.leg("m", "b")["remote"], 3, "leg b to latch")

    # ---- the call: A with gaps and uneven spacing, B even --------------------
    sent_a = []
    seq = 1000
    for i in range(N_A + len(SKIP)):
        if i in SKIP:
            seq += 1
            continue
        p = it.rtp_packet(seq, 160 * (seq - 1000), 0xA11CE, bytes([i & 0xFF]) * PAYLOAD)
        sent_a.append(p)
        seq += 1
    first, last = 1000, seq - 1

    mid = {}

    def scrape_mid():
        time.sleep(0.8)
        mid["m"] = oc.scrape(port)

    t = threading.Thread(target=scrape_mid)
    t.start()
    t0 = time.monotonic()
    for i, p in enumerate(sent_a):
        a.sendto(p, locs["a"])
        time.sleep(0.010 if i % 2 == 0 else 0.030)
    t.join(10)
    it.check("m" in mid, "a scrape during the call answered")
    got_b = it.recv_all(b, len(sent_a), 5)
    it.check_eq(len(got_b), len(sent_a), "B received A's packets")
    it.log(f"A's stream took {time.monotonic() - t0:.1f}s")

    sent_b = it.make_stream(0xB0B, N_B, PAYLOAD, seq0=7)
    it.send_paced(b, sent_b, locs["b"])
    got_a = it.recv_all(a, N_B, 5)
    it.check_eq(len(got_a), N_B, "A received B's packets")

    # ---- counters agree with the endpoints ------------------------------------
    want_fwd = len(sent_a) + N_B

    def settled():
        m = oc.scrape(port)
        return m if oc.val(m, "isar_worker_forwarded_packets_total", worker="0") == want_fwd \
            else None
    m = it.wait_for(settled, 5, f"isar_worker_forwarded_packets_total == {want_fwd}")
    mm = mid["m"]
    for name in ("isar_worker_rx_packets_total", "isar_worker_forwarded_packets_total"):
        it.check(oc.val(m0, name, worker="0") < oc.val(mm, name, worker="0") <
                 oc.val(m, name, worker="0"), f"{name} moved between the three scrapes")
    it.check(oc.val(m, "isar_worker_rx_packets_total", worker="0") >= want_fwd,
             "isar_worker_rx_packets_total >= packets relayed")
    tx = oc.val(m, "isar_worker_tx_packets_total", worker="0")
    # Held as the worker saw it: control may find the MAC already learnt and
    # send the packet without queueing it (then its own "held" does not move).
    held = oc.val(m, "isar_worker_held_packets_total", worker="0")
    it.check_eq(tx + held, float(want_fwd), "worker tx_packets + held packets == relayed")
    it.check(oc.val(m, "isar_worker_tx_bytes_total", worker="0") >=
             (want_fwd - held) * (12 + PAYLOAD + ETH_IP_UDP), "worker tx_bytes")
    it.check(oc.val(m, "isar_port_rx_packets_total", port="0") >= want_fwd,
             "isar_port_rx_packets_total (PMD) >= packets relayed")
    it.check(oc.val(m, "isar_port_tx_packets_total", port="0") >= tx,
             "isar_port_tx_packets_total (PMD) >= worker tx")
    it.check_eq(oc.val(m, "isar_sessions"), 2.0, "isar_sessions")
    it.check_eq(oc.val(m, "isar_legs"), 4.0, "isar_legs")
    it.check(oc.val(m, "isar_mbufs_in_use") is not None, "isar_mbufs_in_use present")
    # Plain calls only: no SRTP context anywhere, none fell back to the C++ heap.
    it.check_eq(oc.val(m, "isar_srtp_contexts_dpdk_heap"), 0.0, "isar_srtp_contexts_dpdk_heap")
    it.check_eq(oc.val(m, "isar_srtp_contexts_heap_fallback_total"), 0.0,
                "isar_srtp_contexts_heap_fallback_total")
    br = oc.val(m, "isar_worker_busy_ratio", worker="0")
    it.check(br is not None and 0.0 <= br <= 1.0, f"isar_worker_busy_ratio {br} in [0, 1]")
    it.check_eq(oc.val(m, "isar_worker_drops_total", worker="0", reason="no_flow"), 0.0,
                "drops{reason=no_flow} is exported (0)")
    it.check(oc.val(m, "isar_worker_drops_total", worker="0", reason="rate_limit") == 0.0,
             "drops{reason=rate_limit} is exported (0)")

    L = dict(session="m", leg="a")
    it.check_eq(oc.val(m, "isar_leg_packets_total", dir="in", **L), float(len(sent_a)),
                "leg a packets in == A sent")
    it.check_eq(oc.val(m, "isar_leg_bytes_total", dir="in", **L),
                float(sum(len(p) + ETH_IP_UDP for p in sent_a)), "leg a bytes in")
    it.check_eq(oc.val(m, "isar_leg_packets_total", session="m", leg="b", dir="out"),
                float(len(sent_a)), "leg b packets out == A sent")
    # RFC 3550 A.1: the first packet is the probation, counting starts at the second.
    exp = last - (first + 1) + 1
    it.check_eq(oc.val(m, "isar_leg_rtp_expected_total", **L), float(exp),
                "leg a rtp expected (extended highest seq - base + 1)")
    it.check_eq(oc.val(m, "isar_leg_rtp_received_total", **L), float(len(sent_a) - 1),
                "leg a rtp received")
    it.check_eq(oc.val(m, "isar_leg_rtp_lost", **L), float(len(SKIP)),
                "leg a rtp lost == sequence numbers A skipped")
    jit = oc.val(m, "isar_leg_rtp_jitter_seconds", **L)
    it.check(jit is not None and 0.002 < jit < 0.1,
             f"leg a jitter {jit} s > 0 with 10/30 ms spacing (expected ~0.010)")
    it.check_eq(oc.val(m, "isar_leg_rtp_lost", session="m", leg="b"), 0.0, "leg b rtp lost")
    age = oc.val(m, "isar_leg_last_packet_age_seconds", **L)
    it.check(age is not None and 0 <= age < 10, f"leg a last packet age {age}")
    it.check(not any(k[0].startswith("isar_leg_") and ("session", "quiet") in k[1] for k in m),
             "no per-leg series for a session created without metrics")

    s = env.show("m")
    la = [l for l in s["legs"] if l["name"] == "a"][0]
    it.check_eq((la["rtp"]["expected"], la["rtp"]["received"], la["rtp"]["lost"]),
                (exp, len(sent_a) - 1, len(SKIP)), "session.get rtp expected/received/lost")
    it.check(abs(la["rtp"]["jitter_ms"] / 1000.0 - jit) < 1e-9,
             "session.get jitter_ms == /metrics jitter")
    it.check_eq(la["rtp"]["clock_rate"], 8000, "jitter clock of PT 0 is 8000 Hz")
    it.check_eq(s["metrics"], True, "session.get metrics flag")
    p = env.ctl("session", "show", "m", as_json=False)
    it.check(p.returncode == 0 and "JITTER_MS" in p.stdout and "LOST" in p.stdout,
             "isarctl session show prints the RTP quality")
    print(p.stdout, end="")

    cr = oc.val(m, "isar_control_requests_total", cmd="session.create")
    it.check(cr is not None and cr >= 2, "isar_control_requests_total{cmd=session.create} >= 2")
    it.check_eq(oc.val(m, "isar_control_request_duration_seconds_count", cmd="session.create"),
                cr, "latency histogram count == requests")
    it.check_eq(oc.val(m, "isar_control_request_duration_seconds_bucket", cmd="session.create",
                       le="+Inf"), cr, "latency histogram +Inf bucket == count")

    # ---- HTTP edge cases -----------------------------------------------------
    code, _, body_ = oc.get(port, "/healthz")
    it.check_eq((code, body_), (200, b"ok\n"), "/healthz")
    code, h, body_ = oc.get(port, "/metrics", method="HEAD")
    it.check(code == 200 and body_ == b"" and int(h["content-length"]) > 0, "HEAD /metrics")
    it.check_eq(oc.get(port, "/nope")[0], 404, "unknown path -> 404")
    it.check_eq(oc.http(port, b"\x16\x03\x01\x00\xff garbage\r\n\r\n")[0], 400, "garbage -> 400")
    it.check_eq(oc.http(port, b"hello there\r\n\r\n")[0], 400, "no HTTP request line -> 400")
    it.check_eq(oc.http(port, b"POST /metrics HTTP/1.1\r\n\r\n")[0], 405, "POST -> 405")
    it.check_eq(oc.http(port, b"GET /metrics HTTP/2.0\r\n\r\n")[0], 505, "HTTP/2.0 -> 505")
    it.check_eq(oc.http(port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 10000 + b"\r\n\r\n")[0],
                431, "10 kB of headers -> 431")
    it.check_eq(oc.http(port, b"GET /metrics?x=1 HTTP/1.0\n\n")[0], 200,
                "HTTP/1.0, LF-only, query string -> 200")

    # A silent client does not block anyone, and is cut off by the io_uring timeout.
    silent = socket.create_connection(("127.0.0.1", port), timeout=10)
    t1 = time.monotonic()
    it.check_eq(oc.get(port, "/healthz")[0], 200, "/healthz while a silent client is connected")
    it.check(time.monotonic() - t1 < 1.0, "answered at once next to the silent client")

    results = []

    def one():
        try:
            results.append(oc.get(port, "/metrics")[0])
        except Exception as e:  # noqa: BLE001
            results.append(repr(e))
    ts = [threading.Thread(target=one) for _ in range(32)]
    for th in ts:
        th.start()
    for th in ts:
        th.join(15)
    it.check_eq(results, [200] * 32, "32 parallel scrapes all answered 200")
    it.check(env.request({"cmd": "ping"})["pong"], "management socket answers meanwhile")

    silent.settimeout(10)
    data = b""
    try:
        while True:
            c = silent.recv(4096)
            if not c:
                break
            data += c
    except socket.timeout:
        pass
    waited = time.monotonic() - t1
    silent.close()
    it.check(data.startswith(b"HTTP/1.1 408") and 4 <= waited <= 8,
             f"silent client got 408 and was closed after {waited:.1f}s (timeout 5 s)")
    m2 = oc.scrape(port)
    it.check(oc.val(m2, "isar_metrics_http_errors_total") >= 7,
             "isar_metrics_http_errors_total counts the refused requests")

    env.ctl_json("session", "delete", "m")
    env.ctl_json("session", "delete", "quiet")
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "ops_metrics"))
