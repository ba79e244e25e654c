#!/usr/bin/env python3
"""Configuration checking and a clean stop.

- `isard --check -c systemd/isard.toml` accepts the shipped example (when the
  source tree has it), and `--print-config` output is itself accepted.
- Bad files are rejected with exit status 1 and a message naming the key:
  unknown key, port_min > port_max, bad address, wrong type, missing
  interface, relative socket path, bad socket_mode, bad log level, TOML syntax
  error (line number), unreadable file.
- SIGTERM stops a running isard that has live sessions and traffic: exit 0,
  control socket removed. A second isard on the same socket is refused while
  the first runs (and the first keeps its socket).

Args: ISARD ISARCTL [SOURCE_ROOT]
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402

BASE = """
[eal]
args = ["--no-huge", "--no-pci", "-l", "0-1"]

[[interface]]
port = 0
address = "198.18.0.1/24"

[relay]
port_min = 30000
port_max = 39999
idle_timeout_s = 60

[control]
socket = "/run/isar-test/isard.sock"

[dataplane]
mbufs = 4095

[log]
level = "info"
"""


def isard_check(isard, text=None, path=None):
    with tempfile.TemporaryDirectory(prefix="isarit-cfg-") as d:
        if path is None:
            path = os.path.join(d, "isard.toml")
            with open(path, "w") as f:
                f.write(text)
        return subprocess.run([isard, "--check", "-c", path], capture_output=True, text=True,
                              timeout=20)


def check_phase(isard, source_root):
    # The shipped example.
    example = os.path.join(source_root, "systemd", "isard.toml") if source_root else None
    if example and os.path.exists(example):
        p = isard_check(isard, path=example)
        it.check(p.returncode == 0 and "configuration is valid" in p.stdout,
                 f"isard --check accepts {example}")
    else:
        it.log(f"note: no example configuration at {example}; not checked")

    p = isard_check(isard, BASE)
    it.check_eq(p.returncode, 0, "a minimal good file is accepted")

    # --print-config round trip.
    with tempfile.TemporaryDirectory(prefix="isarit-cfg-") as d:
        path = os.path.join(d, "in.toml")
        with open(path, "w") as f:
            f.write(BASE)
        p = subprocess.run([isard, "--print-config", "-c", path], capture_output=True,
                           text=True, timeout=20)
        it.check(p.returncode == 0 and "port_min = 30000" in p.stdout,
                 "isard --print-config prints the effective configuration")
        p2 = isard_check(isard, p.stdout)
        it.check_eq(p2.returncode, 0, "--print-config output is itself a valid configuration")

    bad = [
        ("unknown key", BASE.replace("idle_timeout_s = 60", "idle_timeout_s = 60\nbogus = 1"),
         "relay.bogus"),
        ("unknown section", BASE + "\n[nonsense]\nx = 1\n", "nonsense"),
        ("unknown interface key", BASE.replace("port = 0", "port = 0\nmtu = 9000"),
         "interface[0].mtu"),
        ("port_min > port_max", BASE.replace("port_min = 30000", "port_min = 40000"),
         "relay.port_min"),
        ("port_min below 1024", BASE.replace("port_min = 30000", "port_min = 80"),
         "relay.port_min"),
        ("bad address", BASE.replace('"198.18.0.1/24"', '"198.18.0.300/24"'),
         "interface[0].address"),
        ("address without prefix", BASE.replace('"198.18.0.1/24"', '"198.18.0.1"'),
         "interface[0].address"),
        ("bad gateway", BASE.replace('address = "198.18.0.1/24"',
                                     'address = "198.18.0.1/24"\ngateway = "10.0.0.1"'),
         "interface[0].gateway"),
        ("missing interface", BASE.replace('[[interface]]\nport = 0\naddress = "198.18.0.1/24"',
                                           ""), "interface"),
        ("wrong type", BASE.replace("idle_timeout_s = 60", 'idle_timeout_s = "60"'),
         "relay.idle_timeout_s"),
        ("eal.args not strings", BASE.replace('"-l", "0-1"]', '"-l", 1]'), "eal.args[3]"),
        ("relative socket", BASE.replace('"/run/isar-test/isard.sock"', '"isard.sock"'),
         "control.socket"),
        ("bad socket_mode", BASE.replace('socket = "/run/isar-test/isard.sock"',
                                         'socket = "/run/isar-test/isard.sock"\n'
                                         'socket_mode = "0999"'), "control.socket_mode"),
        ("too few mbufs", BASE.replace("mbufs = 4095", "mbufs = 10"), "dataplane.mbufs"),
        ("bad log level", BASE.replace('level = "info"', 'level = "chatty"'), "log.level"),
        ("TOML syntax error", BASE.replace("port_max = 39999", "port_max = = 39999"), "line"),
    ]
    for what, text, key in bad:
        p = isard_check(isard, text)
        msg = p.stderr.strip()
        it.check(p.returncode == 1 and key in msg and "configuration error" in msg,
                 f"rejected, {what}: exit {p.returncode}: {msg[:120]}")
    p = isard_check(isard, path="/nonexistent/isard.toml")
    it.check(p.returncode == 1 and "/nonexistent/isard.toml" in p.stderr,
             f"rejected, missing file: {p.stderr.strip()[:100]}")


def daemon_phase(env):
    env.start()
    a = env.udp(it.A_IP, 4000)
    b = env.udp(it.A_IP, 5000)
    locs, _ = env.create("c1", "a", "b")
    env.create("c2", "a", "b")

    # A second isard on the same control socket must refuse to start.
    cfg2 = os.path.join(env.dir, "second.toml")
    with open(cfg2, "w") as f:
        f.write(env.config_text().replace(env.file_prefix, env.file_prefix + "_2"))
    p = subprocess.run([env.isard_bin, "-c", cfg2], capture_output=True, text=True, timeout=30)
    out = p.stdout + p.stderr
    it.check(p.returncode != 0 and "already listening" in out,
             f"a second isard on the same socket exits {p.returncode}, saying so")
    it.check(os.path.exists(env.sock_path) and env.request({"cmd": "ping"}).get("pong"),
             "the first isard keeps its socket and answers")
    shutil.rmtree(f"/var/run/dpdk/{env.file_prefix}_2", ignore_errors=True)

    env.check_health()
    # Traffic in flight while SIGTERM arrives.
    b.sendto(it.rtp_packet(1, 0, 0xB, b"\0" * 160), locs["b"])
    it.wait_for(lambda: env.leg("c1", "b")["remote"], 3, "leg b to latch")
    for i in range(100):
        a.sendto(it.rtp_packet(i, i * 160, 0xA, b"\1" * 160), locs["a"])
    t = time.monotonic()
    rc = env.stop_isard(verify=True)
    it.check(time.monotonic() - t < 10, f"isard stopped {time.monotonic() - t:.1f}s after SIGTERM")
    it.check_eq(rc, 0, "exit status")
    with open(env.isard_log) as f:
        log_text = f.read()
    it.check("stopped" in log_text, "isard logged that it stopped")


def main():
    if len(sys.argv) < 3:
        print(f"usage: {sys.argv[0]} ISARD ISARCTL [SOURCE_ROOT]", file=sys.stderr)
        return 2
    isard = os.path.abspath(sys.argv[1])
    source_root = sys.argv[3] if len(sys.argv) > 3 else None
    t0 = time.monotonic()
    try:
        check_phase(isard, source_root)
    except it.TestFailure as e:
        print(f"FAIL: {e}", flush=True)
        return 1
    rc = it.main(daemon_phase, "config", argv=sys.argv[:3])
    if rc == it.SKIP:
        print("(the --check part passed; the daemon part needs root and ip netns)")
    else:
        print(f"total {time.monotonic() - t0:.1f}s", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
