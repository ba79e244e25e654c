#!/usr/bin/env python3
"""Overload, rate limit and drain.

1. Overload: a separate process floods leg f1 at full speed for 2 s while call
   "steady" runs at 50 pps. The steady call keeps forwarding (bounded loss),
   every packet isard received is accounted for (forwarded, exception or a
   counted drop), and afterwards the flooded leg forwards normally (nothing
   got disabled by the burst).
2. Rate limit: leg l1 with max_pps=200 flooded for 1.5 s forwards at most
   200 pps + its burst; the rest is dropped as rate_limit; afterwards a paced
   stream passes whole.
3. Drain (`isarctl drain`): state draining, session.create refused with
   "draining", the existing call keeps forwarding; isard exits 0 by itself
   once the last session is deleted.
4. SIGTERM drains too and exits 0 after [control] drain_timeout_s with a
   session left; a second SIGTERM exits at once.
"""
import os
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import test_ops_common as oc  # noqa: E402

DRAIN_S = 4

FLOOD = r"""
import socket, struct, sys, time
src, sport, dst, dport, dur = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, sport))
pkts = [struct.pack("!BBHII", 0x80, 0, i, 160 * i, 0xF100D) + bytes(160) for i in range(1024)]
n = 0
end = time.monotonic() + dur
while time.monotonic() < end:
    for p in pkts[:256]:
        try:
            s.sendto(p, (dst, dport))
            n += 1
        except OSError:
            pass
    pkts = pkts[256:] + pkts[:256]
print(n)
"""


def flood(env, src_port, dst, seconds):
    """Starts the flooder in the namespace (a separate process: real
    parallelism, bounded by `seconds`)."""
    return subprocess.Popen(["ip", "netns", "exec", env.ns, sys.executable, "-c", FLOOD, it.A_IP,
                             str(src_port), dst[0], str(dst[1]), str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def steady_call(a, dst, count, pps, out):
    gap = 1.0 / pps
    t = time.monotonic()
    for i in range(count):
        a.sendto(it.rtp_packet(100 + i, 160 * i, 0x57EAD, bytes(160)), dst)
        t += gap
        time.sleep(max(0.0, t - time.monotonic()))
    out["sent"] = count


def accounted(st):
    """Forwarded (held packets included) + exception + drops, minus tx_full
    (a packet counted as forwarded that the TX queue then refused)."""
    t = st["total"]
    return (t["fwd_pkts"] + t["exception_pkts"] + sum(t["drops"].values()) -
            t["drops"].get("tx_full", 0))


def body(env):
    port = oc.free_tcp_port()
    oc.patch_config(env, control_extra=f"drain_timeout_s = {DRAIN_S}\n",
                    sections=f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    env.start()
    a = env.udp(it.A_IP, 4000)
    b = env.udp(it.B_IP, 5000)
    fb = env.udp(it.B_IP, 5002)
    lb = env.udp(it.B_IP, 5004)

    ls, _ = env.create("steady", "s1", f"s2,remote={it.B_IP}:5000")
    lf, _ = env.create("flood", "f1", f"f2,remote={it.B_IP}:5002")
    ll, _ = env.create("lim", "l1,max_pps=200", f"l2,remote={it.B_IP}:5004")
    it.check_eq(env.leg("lim", "l1")["max_pps"], 200, "session.get shows max_pps")
    # Resolve B's MAC before the test (the first packet waits for ARP).
    a.sendto(it.rtp_packet(99, 0, 0x57EAD, bytes(160)), ls["s1"])
    it.check_eq(len(it.recv_all(b, 1, 3)), 1, "steady call: first packet relayed")

    # ---- 1. overload -------------------------------------------------------
    st0 = env.stats()
    info = {}
    th = threading.Thread(target=steady_call, args=(a, ls["s1"], 150, 50, info))
    fl = flood(env, 4002, lf["f1"], 2.0)
    th.start()
    got = []
    rx_thread = threading.Thread(target=lambda: got.extend(it.recv_all(b, 150, 6)))
    rx_thread.start()
    out, err = fl.communicate(timeout=20)
    th.join(10)
    rx_thread.join(10)
    flood_sent = int(out.strip() or 0)
    it.log(f"flooder sent {flood_sent} packets in 2 s ({flood_sent / 2:.0f} pps)")
    it.check(flood_sent > 20000, f"the flood was a flood ({flood_sent} packets)")
    it.check(len(got) >= 150 * 0.8,
             f"steady call kept forwarding during the flood: {len(got)}/150 arrived")
    flood_got = len(it.drain(fb, 0.5, max_total=10 ** 7))
    it.log(f"flooded leg's target received {flood_got}")
    try:
        st = it.wait_for(lambda: (lambda s: s if accounted(s) == s["total"]["rx_pkts"] else None)(
            env.stats()), 5, "every received packet forwarded, handed to control or dropped")
    except it.TestFailure:
        st = env.stats()
        raise it.TestFailure(f"accounting: rx {st['total']['rx_pkts']} != {accounted(st)}: "
                             f"{st['total']}")
    it.check(True, "every received packet was forwarded, handed to control or counted as a drop")
    t = st["total"]
    it.log(f"rx {t['rx_pkts'] - st0['total']['rx_pkts']}, fwd {t['fwd_pkts'] - st0['total']['fwd_pkts']}, "
           f"drops {t['drops']}")
    m = oc.scrape(port)
    missed = oc.val(m, "isar_port_rx_missed_total", port="0")
    it.log(f"port rx_missed (PMD) {missed}")
    it.check(env.alive(), "isard survived the flood")

    # The flooded leg forwards normally afterwards.
    after = [it.rtp_packet(5000 + i, 160 * i, 0xF100D, bytes(160)) for i in range(50)]
    sock_f = env.udp(it.A_IP, 4002)  # the flooder's address: the leg latched it
    it.send_paced(sock_f, after, lf["f1"])
    it.expect_stream(fb, after, lf["f2"], "flooded leg after the flood")

    # ---- 2. rate limit -------------------------------------------------------------
    d0 = env.leg("lim", "l1")["drops"].get("rate_limit", 0)
    fl = flood(env, 4004, ll["l1"], 1.5)
    t0 = time.monotonic()
    out, _ = fl.communicate(timeout=20)
    dur = time.monotonic() - t0
    lim_sent = int(out.strip() or 0)
    lim_got = len(it.drain(lb, 0.5, max_total=10 ** 7))
    l1 = env.leg("lim", "l1")
    rl = l1["drops"].get("rate_limit", 0) - d0
    it.log(f"limited leg: sent {lim_sent}, forwarded {lim_got}, rate_limit drops {rl} "
           f"in {dur:.1f}s")
    it.check(lim_got <= 200 * dur + 20 + 5, f"max_pps=200 held: {lim_got} forwarded in {dur:.1f}s")
    it.check(lim_got >= 200 * 1.0, f"the limited leg still forwarded {lim_got} (>= 200)")
    it.check(rl > 0 and rl + lim_got <= l1["in"]["packets"] + rl,
             f"rate_limit drops counted on the leg ({rl})")
    it.check(env.total_drops().get("rate_limit", 0) >= rl, "stats drops.rate_limit")
    time.sleep(0.2)
    sock_l = env.udp(it.A_IP, 4004)
    paced = [it.rtp_packet(9000 + i, 160 * i, 0x11, bytes(160)) for i in range(30)]
    for p in paced:
        sock_l.sendto(p, ll["l1"])
        time.sleep(0.01)  # 100 pps < 200
    it.expect_stream(lb, paced, ll["l2"], "limited leg below its rate after the flood")

    # ---- 3. drain by command ---------------------------------------------------------
    env.ctl_json("session", "delete", "flood")
    env.ctl_json("session", "delete", "lim")
    r = env.ctl_json("drain")
    it.check_eq((r["state"], r["sessions"]), ("draining", 1), "isarctl drain")
    p = env.ctl("session", "create", "late", "--leg", "x", "--leg", "y")
    it.check(p.returncode == 1 and "draining" in p.stderr,
             f"session.create while draining is refused: {p.stderr.strip()}")
    r = env.request({"cmd": "session.create", "session": "late2",
                     "legs": [{"name": "x"}, {"name": "y"}]})
    it.check_eq(r.get("error", {}).get("code"), "draining", "session.create error code")
    s = env.ctl_json("status")
    it.check_eq((s["state"], s["sessions"], s["legs"], s["workers"]), ("draining", 1, 2, 1),
                "isarctl status while draining")
    it.check(s["uptime_s"] > 0, "status uptime")
    p = env.ctl("status", as_json=False)
    it.check(p.returncode == 0 and "state draining" in p.stdout, f"isarctl status: {p.stdout}")
    it.check_eq(oc.get(port, "/healthz")[0], 503, "/healthz 503 while draining")
    it.check(oc.val(oc.scrape(port), "isar_up", state="draining") == 1.0,
             "isar_up{state=draining}")
    burst = [it.rtp_packet(700 + i, 0, 0x57EAD, bytes(160)) for i in range(20)]
    it.drain(b, 0.2)
    it.send_paced(a, burst, ls["s1"])
    it.expect_stream(b, burst, ls["s2"], "the existing call forwards while draining")
    time.sleep(DRAIN_S / 2)
    it.check(env.alive(), "isard waits for the last session")
    t0 = time.monotonic()
    env.ctl_json("session", "delete", "steady")
    rc = env.proc.wait(timeout=5)
    it.check_eq(rc, 0, f"isard exited 0 {time.monotonic() - t0:.1f}s after the last session went")
    it.check(not os.path.exists(env.sock_path), "control socket removed")

    # ---- 4. SIGTERM drains until drain_timeout_s; a second SIGTERM is at once -----
    env.start()
    env.create("stay", "a", "b")
    t0 = time.monotonic()
    env.proc.send_signal(15)
    it.wait_for(lambda: env.ctl_json("status")["state"] == "draining", 3, "SIGTERM -> draining")
    it.check(env.alive(), "still running right after SIGTERM (draining)")
    rc = env.proc.wait(timeout=DRAIN_S + 6)
    took = time.monotonic() - t0
    it.check(rc == 0 and DRAIN_S - 0.5 <= took <= DRAIN_S + 3,
             f"exit {rc} {took:.1f}s after SIGTERM with a session left (drain_timeout_s "
             f"{DRAIN_S})")
    env.start()
    env.create("stay", "a", "b")
    env.proc.send_signal(15)
    it.wait_for(lambda: env.ctl_json("status")["state"] == "draining", 3, "SIGTERM -> draining")
    t0 = time.monotonic()
    env.proc.send_signal(15)
    rc = env.proc.wait(timeout=5)
    it.check(rc == 0 and time.monotonic() - t0 < 2,
             f"second SIGTERM: exit {rc} after {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":
    sys.exit(it.main(body, "ops_overload"))
