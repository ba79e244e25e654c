"""Not a test: helpers shared by the test_ops_*.py integration tests (stdlib only):
a free TCP port for isard's /metrics listener, config overrides on top of
isar_it.Env's config, a bounded HTTP client and a Prometheus text parser."""

import re
import socket
import time

import isar_it as it


def free_tcp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def patch_config(env, control_extra="", sections=""):
    """Adds keys to [control] and whole sections to the config isar_it.Env
    writes (its own port/socket/namespace choices stay)."""
    orig = env.config_text

    def text(**override):
        t = orig(**override)
        if control_extra:
            # A key the base config already sets is replaced, not repeated.
            for line in control_extra.splitlines():
                key = line.split("=", 1)[0].strip()
                t = re.sub(rf"(?m)^{re.escape(key)}\s*=.*\n", "", t)
            t = t.replace("[control]\n", "[control]\n" + control_extra, 1)
        return t + sections
    env.config_text = text


def http(port, raw, timeout=5.0, host="127.0.0.1"):
    """Sends `raw` bytes, reads until the server closes. Returns
    (status code, headers dict, body bytes)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        if raw:
            s.sendall(raw)
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            if len(buf) > 64 << 20:
                raise it.TestFailure("HTTP answer too long")
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/1.1 "):
        raise it.TestFailure(f"not an HTTP answer: {buf[:80]!r}")
    code = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return code, headers, body


def get(port, path, method="GET"):
    return http(port, f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())


_line = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prom(text):
    """Prometheus text format 0.0.4 -> {(name, frozenset(labels)): value};
    checks every line's syntax and that each family has HELP and TYPE."""
    out = {}
    typed = set()
    for ln in text.splitlines():
        if not ln:
            continue
        if ln.startswith("# HELP ") or ln.startswith("# TYPE "):
            parts = ln.split(" ", 3)
            if len(parts) < 4:
                raise it.TestFailure(f"bad comment line: {ln!r}")
            if parts[1] == "TYPE":
                if parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise it.TestFailure(f"bad TYPE: {ln!r}")
                typed.add(parts[2])
            continue
        m = _line.match(ln)
        if not m:
            raise it.TestFailure(f"bad sample line: {ln!r}")
        name = m.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in typed and base not in typed:
            raise it.TestFailure(f"sample without TYPE: {ln!r}")
        if not name.startswith("isar_"):
            raise it.TestFailure(f"metric name without isar_ prefix: {name}")
        labels = frozenset(_label.findall(m.group(3) or ""))
        out[(name, labels)] = float(m.group(4))
    return out


def val(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())))


def scrape(port):
    code, headers, body = get(port, "/metrics")
    if code != 200:
        raise it.TestFailure(f"/metrics answered {code}")
    if not headers.get("content-type", "").startswith("text/plain; version=0.0.4"):
        raise it.TestFailure(f"/metrics content type {headers.get('content-type')!r}")
    if int(headers.get("content-length", -1)) != len(body):
        raise it.TestFailure("/metrics Content-Length does not match the body")
    return parse_prom(body.decode())
