#!/usr/bin/env python3
"""isard under systemd's notify protocol, and its installed units.

1. `meson install --destdir D` puts isard, isarctl, the units, the example
   configuration and the tmpfiles entry in place, with @SBINDIR@ etc.
   substituted; `systemd-analyze verify --root D` accepts both units without a
   single warning (the host's own units are copied under D so that the
   default dependencies resolve).
2. isard runs with NOTIFY_SOCKET (a Python AF_UNIX datagram socket),
   WATCHDOG_USEC = 1 s and WATCHDOG_PID = isard's own pid (a wrapper that
   exports $$ and execs isard): READY=1, STATUS= lines with sessions, legs and
   pps, and WATCHDOG=1 about every 0.5 s.
3. `isarctl debug wedge-worker 0 --seconds 4` (allowed by [debug]
   allow_wedge): the pings stop while the worker is stuck (/healthz says 503),
   and resume once it moves again.
4. SIGTERM: STOPPING=1, exit 0.
argv: ISARD ISARCTL BUILD_DIR
"""
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import test_ops_common as oc  # noqa: E402


def check_install(build_dir, tmp):
    dest = os.path.join(tmp, "destdir")
    p = subprocess.run(["meson", "install", "-C", build_dir, "--destdir", dest, "--no-rebuild",
                        "--quiet"], capture_output=True, text=True, timeout=120)
    it.check(p.returncode == 0, f"meson install --destdir ({p.stderr.strip()[-300:]})")
    intro = subprocess.run(["meson", "introspect", "--buildoptions", build_dir],
                           capture_output=True, text=True, timeout=60)
    import json
    opts = {o["name"]: o["value"] for o in json.loads(intro.stdout)}
    prefix = opts["prefix"]
    root = dest + prefix
    want = {
        "sbin isard": os.path.join(root, opts["sbindir"], "isard"),
        "bin isarctl": os.path.join(root, opts["bindir"], "isarctl"),
        "isard.service": os.path.join(root, "lib/systemd/system/isard.service"),
        "isar-hugepages.service": os.path.join(root, "lib/systemd/system/isar-hugepages.service"),
        "tmpfiles entry": os.path.join(root, "lib/tmpfiles.d/isar.conf"),
        "example config": os.path.join(dest + (opts["sysconfdir"] if opts["sysconfdir"]
                                               .startswith("/") else
                                               os.path.join(prefix, opts["sysconfdir"])),
                                       "isar", "isard.toml"),
    }
    for what, path in want.items():
        it.check(os.path.isfile(path), f"installed {what}: {path[len(dest):]}")
    for exe in ("sbin isard", "bin isarctl"):
        it.check(os.access(want[exe], os.X_OK), f"{exe} is executable")
    unit = open(want["isard.service"]).read()
    it.check("@" not in unit, "isard.service has no unsubstituted @VARS@")
    it.check(f"ExecStart={os.path.join(prefix, opts['sbindir'], 'isard')} " in unit,
             "isard.service ExecStart points at the installed isard")
    for key in ("Type=notify", "WatchdogSec=", "NotifyAccess=main"):
        it.check(key in unit, f"isard.service has {key}")
    # The installed example configuration is valid.
    p = subprocess.run([want["sbin isard"], "--check", "-c", want["example config"]],
                       capture_output=True, text=True, timeout=20)
    it.check(p.returncode == 0, f"installed isard --check the installed example config "
             f"({p.stdout.strip()} {p.stderr.strip()})")

    if shutil.which("systemd-analyze") is None:
        it.log("systemd-analyze not installed: unit verification skipped")
        return
    sysunits = "/lib/systemd/system"
    shutil.copytree(sysunits, os.path.join(dest, "usr/lib/systemd/system"), symlinks=True,
                    dirs_exist_ok=True)
    units = [want["isard.service"], want["isar-hugepages.service"]]
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", "--root", dest] + units,
                       capture_output=True, text=True, timeout=60, cwd=tmp)
    out = (p.stdout + p.stderr).strip()
    it.check(p.returncode == 0 and out == "",
             f"systemd-analyze verify: both units clean (rc {p.returncode}: {out[:400]!r})")


class notify_listener:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.msgs = []  # (monotonic time, {key: value})
        self.lock = threading.Lock()
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            kv = {}
            for line in data.decode(errors="replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    kv[k] = v
            with self.lock:
                self.msgs.append((time.monotonic(), kv))

    def times(self, key):
        with self.lock:
            return [t for t, kv in self.msgs if key in kv]

    def values(self, key):
        with self.lock:
            return [kv[key] for t, kv in self.msgs if key in kv]

    def close(self):
        self.stop = True
        self.t.join(2)
        self.sock.close()


def body(env, build_dir):
    check_install(build_dir, env.dir)

    port = oc.free_tcp_port()
    oc.patch_config(env, control_extra="drain_timeout_s = 5\n",
                    sections=f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n'
                             "\n[debug]\nallow_wedge = true\n")
    npath = os.path.join(env.dir, "notify.sock")
    n = notify_listener(npath)
    try:
        wrapper = os.path.join(env.dir, "isard-wrapper.sh")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\n# systemd sets WATCHDOG_PID to the service's main pid.\n"
                    f"export NOTIFY_SOCKET={npath} WATCHDOG_USEC=1000000 WATCHDOG_PID=$$\n"
                    f'exec {env.isard_bin} "$@"\n')
        os.chmod(wrapper, 0o755)
        env.isard_bin = wrapper
        env.start()
        it.wait_for(lambda: n.values("READY"), 5, "READY=1")
        it.check_eq(n.values("READY")[0], "1", "READY=1")
        env.create("s1", "a", "b")
        it.wait_for(lambda: any("sessions" in v and "pps" in v for v in n.values("STATUS")), 8,
                    "a periodic STATUS= line with sessions and pps")
        st = [v for v in n.values("STATUS") if "pps" in v][-1]
        it.check("1 sessions, 2 legs" in st, f"STATUS= line counts the session: {st!r}")
        it.wait_for(lambda: len(n.times("WATCHDOG")) >= 4, 5, "4 WATCHDOG=1 pings")
        ts = n.times("WATCHDOG")
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        it.check(all(g < 0.9 for g in gaps), f"pings about every 0.5 s (gaps {gaps})")

        # ---- a stuck worker stops the pings -----------------------------------------
        r = env.ctl_json("debug", "wedge-worker", "0", "--seconds", "4")
        t_wedge = time.monotonic()
        it.check_eq(r["worker"], 0, "debug.wedge_worker answered")
        it.wait_for(lambda: oc.get(port, "/healthz")[0] == 503, 3, "/healthz 503 while stuck")
        time.sleep(max(0.0, t_wedge + 3.0 - time.monotonic()))
        during = [t for t in n.times("WATCHDOG") if t_wedge + 1.0 < t < t_wedge + 3.0]
        it.check_eq(during, [], "no WATCHDOG=1 from 1 s to 3 s into the 4 s wedge")
        it.wait_for(lambda: [t for t in n.times("WATCHDOG") if t > t_wedge + 3.9], 4,
                    "WATCHDOG=1 pings to resume after the wedge")
        it.check_eq(oc.get(port, "/healthz")[0], 200, "/healthz 200 again")
        m = oc.scrape(port)
        it.check(oc.val(m, "isar_watchdog_pings_total") >= 4, "isar_watchdog_pings_total")
        env.ctl_json("session", "delete", "s1")
        env.final_checks()
        it.wait_for(lambda: n.values("STOPPING"), 3, "STOPPING=1")
        it.check_eq(n.values("STOPPING")[0], "1", "STOPPING=1 before exit")
    finally:
        n.close()


def main():
    if len(sys.argv) < 4:
        print(f"usage: {sys.argv[0]} ISARD ISARCTL BUILD_DIR", file=sys.stderr)
        return 2
    build_dir = sys.argv[3]
    return it.main(lambda env: body(env, build_dir), "ops_systemd", argv=sys.argv[:3])


if __name__ == "__main__":
    sys.exit(main())
