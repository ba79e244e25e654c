"""Shared harness of the integration tests (Python 3 stdlib only).

Every test runs a real isard on net_af_packet bound to the host end of a veth
pair whose other end lives in a network namespace of its own; the call's
endpoints are plain kernel sockets created inside that namespace (setns(2) on
the calling thread, so the sockets live there while the test code runs here).

With `pmd="tap"` there is no veth: isard itself runs in the namespace on a
`net_tap` port, whose kernel side (a tap netdev the PMD creates in isard's
namespace) carries the endpoint addresses once `start()` returns. Unlike
net_af_packet, net_tap offers TX IPv4/UDP checksum offload (computed by the
PMD), and the endpoints' kernel verifies every checksum isard sends.

With `isard_ns=True` (net_af_packet only) isard runs in a second namespace of
its own that holds the host end of the veth: what isard creates in the kernel
(the kernel interface of TURN over TCP/TLS, carrying 198.18.0.1) lives there,
apart from the host's root namespace (tests run in parallel) and from the
endpoints (the kernel would route between them locally, past DPDK).
`env.in_isard_ns()` runs a block (e.g. a kernel TCP listener) in it.

Each test gets unique namespace/veth names, its own DPDK --file-prefix, config
directory and control socket, so tests never collide, and `Env` always tears
everything down (isard, sockets, veth, namespace, DPDK runtime dir), also on
failure, on SIGTERM from meson's timeout, and (through PR_SET_PDEATHSIG) when
the test itself is killed.

Usage (each test file):

    def body(env):            # env: Env, with namespace and veth set up
        env.start()           # isard with the test's config; waits for ping
        a = env.udp(A_IP, 4000)
        locs, answer = env.create("call", "a", "b")   # isarctl --json session create
        ...
        env.final_checks()    # alive, no mbuf leak, SIGTERM -> exit 0, socket gone
    sys.exit(isar_it.main(body, "call", **Env options))   # argv: ISARD ISARCTL

Exit codes: 0 pass, 1 fail, 77 skip (meson SKIP: not root / no netns).
"""

import contextlib
import ctypes
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

# The harness's building blocks that need no Env live in isar_it_base.py; the
# tests know them by these names (it.check, it.A_IP, ...).
from isar_it_base import (  # noqa: F401 - re-exported for the tests
    A_IP, A_IP6, B_IP, B_IP6, C_IP, C_IP6, RELAY_IP, RELAY_IP6, SKIP, Skip, TestFailure, check,
    check_eq, counter, drain, ep, expect_nothing, expect_stream, icmp_checksum, log,
    make_stream, read_line, recv_all, rtp_packet, rtp_parse, run, send_paced, split_ep,
    wait_for)

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


# ---- the environment ---------------------------------------------------------

class Env:
    """One test's world: namespace + veth + config dir + isard."""

    def __init__(self, name, argv, workers=1, idle_timeout_s=60, port_min=40000,
                 port_max=40999, strict_source=True, mbufs=4095, max_clients=64,
                 extra_ns_ips=(B_IP, C_IP), pmd="af_packet", iface_extra="", extra_config="",
                 isard_ns=False, addresses=None, ns_ip6=()):
        if len(argv) < 3:
            print(f"usage: {argv[0]} ISARD ISARCTL", file=sys.stderr)
            sys.exit(2)
        self.isard_bin = os.path.abspath(argv[1])
        self.isarctl_bin = os.path.abspath(argv[2])
        if pmd not in ("af_packet", "tap"):
            raise ValueError(f"pmd must be af_packet or tap, not {pmd!r}")
        if isard_ns and pmd != "af_packet":
            raise ValueError("isard_ns needs pmd=\"af_packet\"")
        self.name = name
        self.pmd = pmd
        self.iface_extra = iface_extra  # more [[interface]] keys, TOML lines
        self.extra_config = extra_config  # more sections (e.g. [turn]), TOML text
        tag = secrets.token_hex(3)
        self.tag = tag
        self.ns = f"isarit-{name}-{tag}"
        # isard's own namespace (isard_ns=True), else None: isard runs in the
        # caller's (host) namespace.
        self.isard_ns = f"isarit-{name}-{tag}-d" if isard_ns else None
        self._isard_ns_created = False
        if pmd == "tap":
            # The tap netdev (in the namespace) is the endpoints' interface;
            # isard's side of it is DPDK's, with a MAC of our choosing.
            self.host_if = None
            self.peer_if = f"iit{tag}t"
        else:
            self.host_if = f"iit{tag}h"  # <= 15 characters
            self.peer_if = f"iit{tag}p"
        self.file_prefix = f"isarit_{name}_{tag}"
        self.workers = workers
        self.idle_timeout_s = idle_timeout_s
        self.port_min = port_min
        self.port_max = port_max
        self.strict_source = strict_source
        self.mbufs = mbufs
        self.max_clients = max_clients
        self.extra_ns_ips = extra_ns_ips
        # isard's [[interface]] address: None = the old single string
        # (RELAY_IP/24); else a list of "A/P" of either family (issue #11).
        # May be changed between stop_isard() and start().
        self.addresses = list(addresses) if addresses is not None else None
        # IPv6 addresses (/64, nodad) of the endpoints' veth end; without any
        # the namespace side has IPv6 disabled (no chatter towards isard).
        self.ns_ip6 = tuple(ns_ip6)
        if self.ns_ip6 and pmd != "af_packet":
            raise ValueError("ns_ip6 needs pmd=\"af_packet\"")
        self.dir = None
        self.sock_path = None
        self.proc = None
        self.isard_log = None
        self.isard_mac = None
        self.peer_mac = None
        # mbufs a PMD holds by design (net_tap: a full RX ring per queue),
        # measured at start; check_health allows them on top of its bound.
        self.mbuf_baseline = 0
        self._sockets = []
        self._ns_created = False
        self._veth_created = False
        self._host_netns_fd = None
        self._ns_lock = threading.Lock()

    # -- context management: set up, and ALWAYS tear down ----------------------
    def __enter__(self):
        signal.signal(signal.SIGTERM, _raise_on_signal)
        signal.signal(signal.SIGINT, _raise_on_signal)
        self.t0 = time.monotonic()
        self.dir = tempfile.mkdtemp(prefix=f"isarit-{self.name}-")
        self.sock_path = os.path.join(self.dir, "isard.sock")
        try:
            self._preflight()
            self._setup_net()
        except BaseException:
            self._teardown_net()
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        return self

    def __exit__(self, et, ev, tb):
        errors = []
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.stop_isard(verify=False)
        except BaseException as e:  # noqa: BLE001 - teardown must go on
            errors.append(f"stopping isard: {e}")
        for s in self._sockets:
            with contextlib.suppress(Exception):
                s.close()
        self._sockets.clear()
        self._teardown_net()
        # DPDK's runtime directories of this test's isards (--file-prefix).
        for d in glob.glob(f"/var/run/dpdk/{self.file_prefix}*"):
            shutil.rmtree(d, ignore_errors=True)
        if self._host_netns_fd is not None:
            os.close(self._host_netns_fd)
            self._host_netns_fd = None
        failed = et is not None
        if failed or errors:
            self.dump_isard_log()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        if errors and not failed:
            raise TestFailure("; ".join(errors))
        return False

    def _preflight(self):
        if os.geteuid() != 0:
            raise Skip("needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for ip netns)")
        for tool in ("ip",):
            if shutil.which(tool) is None:
                raise Skip(f"`{tool}` (iproute2) is not installed")
        for b in (self.isard_bin, self.isarctl_bin):
            if not os.access(b, os.X_OK):
                raise TestFailure(f"{b} is not an executable")

    def _setup_net(self):
        p = run(["ip", "netns", "add", self.ns], check_rc=False)
        if p.returncode != 0:
            raise Skip(f"ip netns add failed: {p.stderr.strip()}")
        self._ns_created = True
        if self.pmd == "tap":
            self._setup_tap_ns()
            return
        p = run(["ip", "link", "add", self.host_if, "type", "veth", "peer", "name",
                 self.peer_if], check_rc=False)
        if p.returncode != 0:
            raise Skip(f"cannot create a veth pair: {p.stderr.strip()}")
        self._veth_created = True
        hx = []  # runs a command where the host end (isard's) lives
        if self.isard_ns:
            p = run(["ip", "netns", "add", self.isard_ns], check_rc=False)
            if p.returncode != 0:
                raise Skip(f"ip netns add failed: {p.stderr.strip()}")
            self._isard_ns_created = True
            run(["ip", "link", "set", self.host_if, "netns", self.isard_ns])
            hx = ["ip", "netns", "exec", self.isard_ns]
            run(hx + ["ip", "link", "set", "lo", "up"])
        # The host end belongs to DPDK: keep the host kernel quiet on it (no
        # IPv6 link-local chatter, no forwarding of what arrives on it).
        for key in (f"net.ipv6.conf.{self.host_if}.disable_ipv6=1",
                    f"net.ipv4.conf.{self.host_if}.forwarding=0"):
            run(hx + ["sysctl", "-q", "-w", key], check_rc=False)
        if self.isard_ns:
            # isard's kernel interface carries 198.18.0.1 in this namespace,
            # and Linux accepts a local address on any interface: without
            # these, its kernel would also take the endpoints' frames (and
            # answer their ARP) straight from the veth, past DPDK. Strict
            # reverse-path filtering drops them (their sources are routed via
            # the kernel interface); NOARP keeps it from answering ARP.
            run(hx + ["sysctl", "-q", "-w", f"net.ipv4.conf.{self.host_if}.rp_filter=1"])
            run(hx + ["ip", "link", "set", self.host_if, "arp", "off"])
        run(["ip", "link", "set", self.peer_if, "netns", self.ns])
        run(hx + ["ip", "link", "set", self.host_if, "up"])
        nsx = ["ip", "netns", "exec", self.ns]
        if self.isard_ns:
            # TCP through isard to its kernel: the endpoints' kernel must
            # send whole segments with whole checksums. A veth would pass
            # 64 KiB TSO super-frames and CHECKSUM_PARTIAL sums (only the
            # pseudo-header) to net_af_packet, which no NIC does.
            run(nsx + ["ethtool", "-K", self.peer_if, "tx", "off", "tso", "off", "gso", "off"],
                check_rc=False)
        if self.ns_ip6:
            # Dual stack endpoints: no DAD (isard would be asked, and the
            # addresses would stay tentative for a second), no router
            # advertisements; the kernel resolves isard's IPv6 address with
            # ND like any host (no static neighbour entry: the tests check
            # that isard answers). Its link-local address, MLD reports and
            # the like reach isard as on a real link.
            for key in ("disable_ipv6=0", "accept_dad=0", "accept_ra=0", "dad_transmits=0"):
                run(nsx + ["sysctl", "-q", "-w", f"net.ipv6.conf.{self.peer_if}.{key}"],
                    check_rc=False)
        else:
            run(nsx + ["sysctl", "-q", "-w", f"net.ipv6.conf.{self.peer_if}.disable_ipv6=1"],
                check_rc=False)
        run(nsx + ["ip", "link", "set", "lo", "up"])
        for ip in (A_IP,) + tuple(self.extra_ns_ips):
            run(nsx + ["ip", "addr", "add", f"{ip}/24", "dev", self.peer_if])
        for ip in self.ns_ip6:
            run(nsx + ["ip", "-6", "addr", "add", f"{ip}/64", "dev", self.peer_if, "nodad"])
        run(nsx + ["ip", "link", "set", self.peer_if, "up"])
        self.isard_mac = run(hx + ["cat", f"/sys/class/net/{self.host_if}/address"]
                             ).stdout.strip().lower()
        p = run(nsx + ["cat", f"/sys/class/net/{self.peer_if}/address"])
        self.peer_mac = p.stdout.strip().lower()
        self._host_netns_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        log(f"netns {self.ns}: {self.peer_if} ({self.peer_mac}) <-> {self.host_if} "
            f"({self.isard_mac}) in " +
            (f"isard's namespace {self.isard_ns}" if self.isard_ns else "the host namespace"))

    def _setup_tap_ns(self):
        """pmd="tap": only the namespace now; isard creates the tap in it
        (start() then gives it the endpoint addresses)."""
        if not os.path.exists("/dev/net/tun"):
            raise Skip("no /dev/net/tun (net_tap needs the tun driver)")
        nsx = ["ip", "netns", "exec", self.ns]
        # Interfaces created in the namespace from now on (the tap) have no
        # IPv6: no link-local chatter towards isard.
        for key in ("net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.all.disable_ipv6=1"):
            run(nsx + ["sysctl", "-q", "-w", key], check_rc=False)
        run(nsx + ["ip", "link", "set", "lo", "up"])
        # Locally administered, unique per test: isard's port MAC (vdev mac=).
        t = bytes.fromhex(self.tag)
        self.isard_mac = "02:15:a7:%02x:%02x:%02x" % (t[0], t[1], t[2])
        self._host_netns_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        log(f"netns {self.ns}: isard will run in it on net_tap {self.peer_if} "
            f"(isard's MAC {self.isard_mac})")

    def _configure_tap(self, timeout=10):
        """pmd="tap", after isard started: the PMD has created and raised the
        tap in the namespace; give it the endpoint addresses."""
        nsx = ["ip", "netns", "exec", self.ns]
        wait_for(lambda: self.ns_run(["ip", "link", "show", self.peer_if],
                                     check_rc=False).returncode == 0,
                 timeout, f"tap {self.peer_if} in {self.ns}", interval=0.1)
        run(nsx + ["sysctl", "-q", "-w", f"net.ipv6.conf.{self.peer_if}.disable_ipv6=1"],
            check_rc=False)
        have = self.ns_run(["ip", "-4", "-o", "addr", "show", "dev", self.peer_if]).stdout
        for ip in (A_IP,) + tuple(self.extra_ns_ips):
            if f" {ip}/" not in have:
                run(nsx + ["ip", "addr", "add", f"{ip}/24", "dev", self.peer_if])
        run(nsx + ["ip", "link", "set", self.peer_if, "up"])
        self.peer_mac = self.ns_run(["cat", f"/sys/class/net/{self.peer_if}/address"]
                                    ).stdout.strip().lower()
        log(f"tap {self.peer_if} ({self.peer_mac}) in {self.ns}: "
            f"{', '.join((A_IP,) + tuple(self.extra_ns_ips))}")

    def _teardown_net(self):
        if self._veth_created:
            run(["ip", "link", "del", self.host_if], check_rc=False)
            self._veth_created = False
        if self._ns_created:
            run(["ip", "netns", "del", self.ns], check_rc=False)
            self._ns_created = False
        if self._isard_ns_created:
            # Takes the host end of the veth and isard's kernel interface.
            run(["ip", "netns", "del", self.isard_ns], check_rc=False)
            self._isard_ns_created = False

    # -- namespace helpers -------------------------------------------------------
    @contextlib.contextmanager
    def in_ns(self, ns=None):
        """Moves the calling thread into the namespace (default: the
        endpoints') for the block."""
        ns = ns or self.ns
        with self._ns_lock:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise TestFailure(f"setns({ns}): {os.strerror(e)}")
                try:
                    yield
                finally:
                    if _libc.setns(self._host_netns_fd, CLONE_NEWNET) != 0:
                        e = ctypes.get_errno()
                        # Cannot go on in the wrong namespace.
                        print(f"FATAL: setns back: {os.strerror(e)}", file=sys.stderr)
                        os._exit(1)
            finally:
                os.close(fd)

    def in_isard_ns(self):
        """isard_ns=True: moves the calling thread into isard's namespace."""
        if not self.isard_ns:
            raise ValueError("in_isard_ns needs Env(isard_ns=True)")
        return self.in_ns(self.isard_ns)

    def isard_ns_run(self, cmd, check_rc=True):
        return run(["ip", "netns", "exec", self.isard_ns] + cmd, check_rc=check_rc)

    def ns_socket(self, family=socket.AF_INET, type_=socket.SOCK_DGRAM, proto=0, bind=None):
        with self.in_ns():
            s = socket.socket(family, type_, proto)
        self._sockets.append(s)
        if bind is not None:
            s.bind(bind)
        return s

    def udp(self, ip=A_IP, port=0):
        """A UDP endpoint in the namespace, bound to ip:port (an IPv6 ip
        gives an AF_INET6 socket)."""
        if ":" in ip:
            return self.udp6(ip, port)
        s = self.ns_socket(bind=(ip, port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        return s

    def udp6(self, ip=A_IP6, port=0):
        """An IPv6 UDP endpoint in the namespace, bound to [ip]:port (its
        recvfrom gives 4-tuples; recv_all/drain cut them to (ip, port))."""
        s = self.ns_socket(socket.AF_INET6, bind=(ip, port, 0, 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        return s

    def neigh(self, ip):
        """The namespace kernel's neighbour entry for ip on the veth, as
        (lladdr or None, state or None, the whole line)."""
        fam = "-6" if ":" in ip else "-4"
        out = self.ns_run(["ip", fam, "neigh", "show", ip, "dev", self.peer_if],
                          check_rc=False).stdout.strip()
        words = out.split()
        mac = words[words.index("lladdr") + 1].lower() if "lladdr" in words else None
        state = words[-1] if words else None
        return mac, state, out

    def wait_neigh(self, ip, mac, timeout=5):
        """Waits until the namespace kernel has resolved ip to mac (ND or
        ARP done, state REACHABLE, STALE, DELAY or PROBE); returns the line."""
        def ok():
            m, st, line = self.neigh(ip)
            return line if m == mac and st in ("REACHABLE", "STALE", "DELAY", "PROBE") else None
        return wait_for(ok, timeout, f"the namespace kernel to resolve {ip} to {mac}")

    def ns_run(self, cmd, check_rc=True):
        return run(["ip", "netns", "exec", self.ns] + cmd, check_rc=check_rc)

    # -- isard ---------------------------------------------------------------------
    def config_text(self, **override):
        if self.workers == 1:
            lcores = ["-l", "0-1"]
        else:
            # lcore 0 = control on CPU 0; workers share the remaining CPUs.
            ncpu = max(os.cpu_count() or 1, 1)
            parts = ["0@0"] + [f"{w + 1}@{(w % max(ncpu - 1, 1)) + (1 if ncpu > 1 else 0)}"
                               for w in range(self.workers)]
            lcores = ["--lcores", ",".join(parts)]
        if self.pmd == "tap":
            # Queues: isard configures as many RX as TX queues (workers + 1)
            # on net_tap, which has 16 of each.
            vdev = f"net_tap0,iface={self.peer_if},mac={self.isard_mac}"
        else:
            vdev = f"net_af_packet0,iface={self.host_if},qpairs={self.workers + 1}"
        eal = ["--no-huge", "--no-pci", "-m", "256"] + lcores + [
            "--file-prefix", self.file_prefix, "--vdev", vdev,
            "--log-level", "lib.*:warning"]
        v = dict(port_min=self.port_min, port_max=self.port_max,
                 idle_timeout_s=self.idle_timeout_s, strict_source=self.strict_source,
                 mbufs=self.mbufs, max_clients=self.max_clients)
        v.update(override)
        address = json.dumps(self.addresses) if self.addresses is not None \
            else "\"" + RELAY_IP + "/24\""
        return (
            "[eal]\nargs = " + json.dumps(eal) + "\n\n"
            "[[interface]]\nport = 0\naddress = " + address + "\n" + self.iface_extra + "\n"
            f"[relay]\nport_min = {v['port_min']}\nport_max = {v['port_max']}\n"
            f"idle_timeout_s = {v['idle_timeout_s']}\n"
            f"strict_source = {'true' if v['strict_source'] else 'false'}\n\n"
            # drain_timeout_s = 0: SIGTERM stops at once (the drain tests set their own).
            f"[control]\nsocket = \"{self.sock_path}\"\nmax_clients = {v['max_clients']}\n"
            "drain_timeout_s = 0\n\n"
            f"[dataplane]\nidle_sleep_us = 100\nmbufs = {v['mbufs']}\n\n"
            "[log]\nlevel = \"" + os.environ.get("ISAR_IT_LOG", "info") + "\"\n\n" + self.extra_config.replace("@DIR@", self.dir))

    def start(self, timeout=30):
        cfg = os.path.join(self.dir, "isard.toml")
        with open(cfg, "w") as f:
            f.write(self.config_text())
        self.isard_log = os.path.join(self.dir, "isard.log")
        logf = open(self.isard_log, "w")
        preexec = _die_with_parent
        ns_fd = None
        if self.pmd == "tap" or self.isard_ns:
            # isard runs in the namespace: net_tap creates its tap there.
            ns_fd = os.open(f"/run/netns/{self.isard_ns or self.ns}", os.O_RDONLY)

            def preexec():
                _die_with_parent()
                if _libc.setns(ns_fd, CLONE_NEWNET) != 0:
                    os._exit(126)
        try:
            self.proc = subprocess.Popen([self.isard_bin, "-c", cfg], stdout=logf,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         preexec_fn=preexec)
        finally:
            logf.close()
            if ns_fd is not None:
                os.close(ns_fd)
        t = time.monotonic()

        def ready():
            if self.proc.poll() is not None:
                raise TestFailure(f"isard exited early with {self.proc.returncode}")
            if not os.path.exists(self.sock_path):
                return False
            try:
                r = self.request({"cmd": "ping"}, timeout=2)
            except OSError:
                return False
            return r.get("pong") is True

        wait_for(ready, timeout, "isard to answer ping", interval=0.1)
        if self.pmd == "tap":
            self._configure_tap()
            self.mbuf_baseline = self.stats()["mbufs_in_use"]
            log(f"net_tap holds {self.mbuf_baseline} mbufs in its RX rings")
        elif self.isard_ns:
            # A kernel interface (net_tap) holds a full RX ring per queue.
            self.mbuf_baseline = self.stats()["mbufs_in_use"]
            log(f"isard holds {self.mbuf_baseline} mbufs at start (kernel interface RX rings)")
        log(f"isard pid {self.proc.pid} ready in {time.monotonic() - t:.1f}s "
            f"({self.workers} worker(s), socket {self.sock_path})")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop_isard(self, verify=True, timeout=15):
        """SIGTERM; with verify, isard must exit 0 and remove its socket."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                if verify:
                    raise TestFailure(f"isard did not stop within {timeout}s of SIGTERM")
        rc = self.proc.returncode
        if verify:
            check_eq(rc, 0, "isard exit status after SIGTERM")
            check(not os.path.exists(self.sock_path), "isard removed its control socket")
        return rc

    def dump_isard_log(self, tail=60):
        if self.isard_log and os.path.exists(self.isard_log):
            with open(self.isard_log, errors="replace") as f:
                lines = f.readlines()
            print(f"---- isard log (last {tail} lines) ----")
            sys.stdout.writelines(lines[-tail:])
            print("---- end of isard log ----", flush=True)

    # -- management socket ------------------------------------------------------
    def connect(self, timeout=5):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.sock_path)
        return s

    def request(self, req, timeout=5):
        """One request (dict, or raw str/bytes without the newline) on a
        fresh connection; returns the decoded answer."""
        with self.connect(timeout) as s:
            line = req if isinstance(req, (bytes, str)) else json.dumps(req)
            if isinstance(line, str):
                line = line.encode()
            s.sendall(line + b"\n")
            return json.loads(read_line(s, timeout))

    def ctl(self, *args, as_json=True, timeout=15):
        """Runs isarctl; returns CompletedProcess."""
        cmd = [self.isarctl_bin, "--socket", self.sock_path] + (["--json"] if as_json else [])
        return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout)

    def ctl_json(self, *args):
        p = self.ctl(*args)
        if p.returncode != 0:
            raise TestFailure(f"isarctl {' '.join(args)} failed ({p.returncode}): "
                              f"{p.stderr.strip()} {p.stdout.strip()}")
        return json.loads(p.stdout)

    def create(self, sid, *legs):
        """isarctl session create; legs are --leg specs. Returns
        {leg name: (ip, port)} and the raw answer."""
        args = ["session", "create", sid]
        for l in legs:
            args += ["--leg", l]
        r = self.ctl_json(*args)
        locs = {}
        for l in r["legs"]:
            locs[l["name"]] = split_ep(l["local"])
        return locs, r

    def show(self, sid):
        return self.ctl_json("session", "show", sid)

    def leg(self, sid, name):
        for l in self.show(sid)["legs"]:
            if l["name"] == name:
                return l
        raise TestFailure(f"session {sid} has no leg {name}")

    def stats(self):
        return self.ctl_json("stats")

    def session_ids(self):
        return sorted(s["session"] for s in self.ctl_json("session", "list")["sessions"])

    def total_drops(self):
        return self.stats()["total"]["drops"]

    def neighbor_entries(self, required=True):
        """isard's neighbour entries (ARP and ND), summed over its interfaces'
        tables (stats.neighbors.tables[].entries, issue #11); None when stats
        has none and not `required`."""
        n = self.stats().get("neighbors")
        if not isinstance(n, dict) or "tables" not in n:
            if not required:
                return None
            raise TestFailure(f"stats has no neighbors.tables: {n!r}")
        return sum(t.get("entries", 0) for t in n["tables"])

    def wait_drop(self, reason, at_least, timeout=5):
        return wait_for(lambda: self.total_drops().get(reason, 0) >= at_least, timeout,
                        f"worker drop counter {reason} >= {at_least}")

    def final_checks(self, mbuf_bound=64):
        """End of every test: isard alive and no mbuf leak; then a clean
        SIGTERM stop (exit 0, socket removed)."""
        self.check_health(mbuf_bound)
        self.stop_isard(verify=True)

    def check_health(self, mbuf_bound=64):
        """isard alive, answering, and mbufs_in_use back under a small bound."""
        check(self.alive(), "isard is still running")
        mbuf_bound += self.mbuf_baseline

        def settled():
            st = self.stats()
            return st if st["mbufs_in_use"] <= mbuf_bound else None
        try:
            st = wait_for(settled, 5, f"mbufs_in_use <= {mbuf_bound}", interval=0.2)
        except TestFailure:
            raise TestFailure(f"mbuf leak? mbufs_in_use = {self.stats()['mbufs_in_use']} "
                              f"(bound {mbuf_bound})")
        log(f"ok: mbufs_in_use = {st['mbufs_in_use']} (bound {mbuf_bound})")


def _die_with_parent():
    # isard must not outlive a test that was killed.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setpgrp()


def _raise_on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(body, name, argv=None, **env_kw):
    """Runs `body(env)` inside an Env and maps the outcome to an exit code."""
    argv = argv or sys.argv
    t0 = time.monotonic()
    try:
        with Env(name, argv, **env_kw) as env:
            body(env)
    except Skip as e:
        print(f"SKIP: {e}", flush=True)
        return SKIP
    except TestFailure as e:
        print(f"FAIL: {e}", flush=True)
        traceback.print_exc()
        return 1
    except BaseException as e:  # noqa: BLE001 - report anything as a failure
        print(f"FAIL: unexpected {type(e).__name__}: {e}", flush=True)
        traceback.print_exc()
        return 1
    print(f"PASS: {name} in {time.monotonic() - t0:.1f}s", flush=True)
    return 0
