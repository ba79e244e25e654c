#!/usr/bin/env bash
# tools/demo.sh BUILD_DIR — a live RTP call through isard, no NIC needed.
#
# Called by `tools/isar demo` after the build. As root, it
#   1. creates a network namespace and a veth pair (unique names): the
#      namespace end carries the call's two endpoints, A = 198.18.0.2 and
#      B = 198.18.0.3; isard drives the other end through DPDK net_af_packet
#      as the relay 198.18.0.1;
#   2. writes a configuration into a temporary directory and starts isard;
#   3. creates a session with isarctl (two legs, a and b);
#   4. streams 5 s of G.711 (20 ms packets, 160-byte payload) A -> relay -> B
#      and B -> relay -> A at the same time, with a small python3
#      sender/receiver, and prints what each end received;
#   5. prints `isarctl session show` and `isarctl stats`, deletes the session;
#   6. TURN: coturn's own test client (turnutils_uclient, Debian package
#      coturn) in A relays through isard, as Jitsi's and BigBlueButton's
#      clients do, to turnutils_peer in B, with the REST shared secret; it
#      prints what the client counted and `isarctl turn list` / `stats`;
#   7. stops isard with SIGTERM.
# Everything it made is removed on exit, also on failure or Ctrl-C.
set -euo pipefail

build=${1:-}
if [ -z "$build" ]; then
    echo "usage: $0 BUILD_DIR   (e.g. $0 build; or: tools/isar demo)" >&2
    exit 2
fi
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

build=$(cd "$build" 2>/dev/null && pwd) || die "no build directory $1 (run tools/isar build)"
isard=$build/control/isard
isarctl=$build/control/isarctl
[ "$(id -u)" -eq 0 ] || die "run as root: it creates a network namespace and a veth pair"
{ [ -x "$isard" ] && [ -x "$isarctl" ]; } || die "no isard/isarctl in $build/control (run tools/isar build)"
command -v ip >/dev/null || die "ip (iproute2) is not installed"
command -v python3 >/dev/null || die "python3 is not installed"

tag=$(printf '%04x%02x' $$ $((RANDOM % 256)) | tail -c 6)
ns=isar-demo-$tag
host_if=isd${tag}h      # isard's end (stays in this namespace, no IP)
peer_if=isd${tag}p      # the endpoints' end (moved into $ns)
prefix=isar_demo_$tag   # DPDK --file-prefix
work=$(mktemp -d /tmp/isar-demo.XXXXXX)
sock=$work/isard.sock
log=$work/isard.log
isard_pid=

cleanup() {
    local rc=$?
    set +e
    if [ -n "$isard_pid" ] && kill -0 "$isard_pid" 2>/dev/null; then
        kill -TERM "$isard_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$isard_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$isard_pid" 2>/dev/null
    fi
    if [ "$rc" -ne 0 ] && [ -s "$log" ]; then
        echo "---- isard log ----" >&2
        tail -n 40 "$log" >&2
    fi
    ip link del "$host_if" 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    rm -rf "$work" "/var/run/dpdk/$prefix"
    if [ "$rc" -eq 0 ]; then
        echo
        echo "demo: done; namespace $ns, veth $host_if/$peer_if and $work removed"
    else
        echo "demo: failed (exit $rc); cleaned up" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. network ----------------------------------------------------------------
say "network: namespace $ns, veth $peer_if (in $ns) <-> $host_if (isard, DPDK af_packet)"
ip netns add "$ns"
ip link add "$host_if" type veth peer name "$peer_if"
sysctl -q -w "net.ipv6.conf.$host_if.disable_ipv6=1" 2>/dev/null || true
ip link set "$peer_if" netns "$ns"
ip link set "$host_if" up
ip netns exec "$ns" sysctl -q -w "net.ipv6.conf.$peer_if.disable_ipv6=1" 2>/dev/null || true
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" ip addr add 198.18.0.2/24 dev "$peer_if"
ip netns exec "$ns" ip addr add 198.18.0.3/24 dev "$peer_if"
ip netns exec "$ns" ip link set "$peer_if" up
echo "endpoint A: 198.18.0.2, endpoint B: 198.18.0.3 (in $ns); relay: 198.18.0.1 (isard)"

# ---- 2. isard --------------------------------------------------------------------
if [ "$(nproc)" -ge 2 ]; then lcores='"-l", "0-1"'; else lcores='"--lcores", "0@0,1@0"'; fi
cat >"$work/isard.toml" <<EOF
# isard configuration of this demo (see systemd/isard.toml for every key)
[eal]
args = ["--no-huge", "--no-pci", "-m", "256", $lcores, "--file-prefix", "$prefix",
        "--vdev", "net_af_packet0,iface=$host_if,qpairs=2", "--log-level", "lib.*:warning"]

[[interface]]
port = 0
address = "198.18.0.1/24"

[relay]
port_min = 30000
port_max = 30999
idle_timeout_s = 60

[control]
socket = "$sock"

[dataplane]
mbufs = 4095
idle_sleep_us = 100

[turn]
listen_udp = [3478]
realm = "demo.example.org"
auth_secret_file = "$work/turn-secret"
allowed_peer = ["198.18.0.0/24"]   # the demo's peer is in the benchmarking range
EOF
# The TURN REST secret: a file only isard's user may read (never on isard's
# command line; coturn's test client below takes it with -W).
(umask 077 && head -c 24 /dev/urandom | base64 >"$work/turn-secret")
say "starting isard with $work/isard.toml"
sed -e 's/^/    /' "$work/isard.toml"
"$isard" --check -c "$work/isard.toml"
"$isard" -c "$work/isard.toml" >"$log" 2>&1 &
isard_pid=$!
export ISAR_SOCKET=$sock
for _ in $(seq 100); do
    kill -0 "$isard_pid" 2>/dev/null || die "isard exited during start-up"
    "$isarctl" ping >/dev/null 2>&1 && break
    sleep 0.2
done
"$isarctl" ping >/dev/null 2>&1 || die "isard did not answer within 20 s"

ctl() {
    printf '\n$ isarctl %s\n' "$*"
    "$isarctl" "$@"
}
ctl ping

# ---- 3. session -------------------------------------------------------------------
say "creating a session: one leg per endpoint; each leg gets a relay port"
ctl session create demo --leg a --leg b
read -r port_a port_b < <("$isarctl" --json session show demo | python3 -c '
import json, sys
legs = {l["name"]: l["local"].rsplit(":", 1)[1] for l in json.load(sys.stdin)["legs"]}
print(legs["a"], legs["b"])')
echo
echo "A sends to 198.18.0.1:$port_a (leg a), B sends to 198.18.0.1:$port_b (leg b);"
echo "each leg learns (latches) its remote from the first packet it receives."

# ---- 4. the call ------------------------------------------------------------------
say "call: 5 s of G.711 both ways (250 RTP packets of 160 bytes each, every 20 ms)"
ip netns exec "$ns" python3 - "$port_a" "$port_b" <<'PY'
import socket, struct, sys, threading, time

RELAY = "198.18.0.1"
port_a, port_b = int(sys.argv[1]), int(sys.argv[2])
COUNT, PTIME, PAYLOAD = 250, 0.020, 160

def endpoint(ip, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return s

a = endpoint("198.18.0.2", 4000)
b = endpoint("198.18.0.3", 5000)
to_a, to_b = (RELAY, port_a), (RELAY, port_b)

def rtp(seq, ssrc):
    payload = bytes(((seq + i) & 0x7F) | 0x80 for i in range(PAYLOAD))  # PCMU-ish bytes
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + payload

# Latching: B speaks first (dropped: leg a has no remote yet), then A; from
# now on both legs know where to send.
b.sendto(rtp(0, 0xB), to_b)
time.sleep(0.1)
a.sendto(rtp(0, 0xA), to_a)
a_hello = None
b.settimeout(2)
try:
    data, src = b.recvfrom(2048)
    a_hello = src
except socket.timeout:
    pass

results = {}

def receive(name, sock, ssrc, expect):
    got, seqs, bad, sources, t_first, t_last = 0, [], 0, set(), None, None
    sock.settimeout(1.5)
    deadline = time.monotonic() + COUNT * PTIME + 5
    while got < expect and time.monotonic() < deadline:
        try:
            data, src = sock.recvfrom(2048)
        except socket.timeout:
            break
        now = time.monotonic()
        t_first = t_first or now
        t_last = now
        sources.add(f"{src[0]}:{src[1]}")
        v, pt, seq, ts, s = struct.unpack("!BBHII", data[:12])
        if s != ssrc or data != rtp(seq, ssrc):
            bad += 1
            continue
        got += 1
        seqs.append(seq)
    results[name] = (got, seqs, bad, sources, t_first, t_last)

def send(sock, ssrc, dest):
    t0 = time.monotonic()
    for seq in range(1, COUNT + 1):
        sock.sendto(rtp(seq, ssrc), dest)
        delay = t0 + seq * PTIME - time.monotonic()
        if delay > 0:
            time.sleep(delay)

threads = [threading.Thread(target=receive, args=("B", b, 0xA, COUNT)),
           threading.Thread(target=receive, args=("A", a, 0xB, COUNT)),
           threading.Thread(target=send, args=(a, 0xA, to_a)),
           threading.Thread(target=send, args=(b, 0xB, to_b))]
t0 = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join(timeout=COUNT * PTIME + 10)
elapsed = time.monotonic() - t0

print(f"latching: A's first packet reached B from {a_hello[0]}:{a_hello[1]}" if a_hello
      else "latching: A's first packet did not reach B")
ok = True
for rx, tx, relay_port in (("B", "A", port_b), ("A", "B", port_a)):
    got, seqs, bad, sources, t1, t2 = results.get(rx, (0, [], 0, set(), None, None))
    in_order = seqs == sorted(seqs)
    span = f"over {t2 - t1:.2f} s" if t1 and t2 else ""
    print(f"  {tx} -> relay -> {rx}: {tx} sent {COUNT}, {rx} received {got} "
          f"({COUNT - got} lost{', in order' if in_order else ', REORDERED'}"
          f"{f', {bad} corrupted' if bad else ''}) {span}, from {', '.join(sorted(sources)) or '-'}")
    ok = ok and got == COUNT and bad == 0 and sources == {f"{RELAY}:{relay_port}"}
print(f"call lasted {elapsed:.1f} s: {'every packet arrived intact, from the relay' if ok else 'PACKETS MISSING'}")
sys.exit(0 if ok else 1)
PY

# ---- 5. what isard saw ---------------------------------------------------------------
say "what isard counted"
ctl session show demo
ctl stats
say "ending the call"
ctl session delete demo
ctl session list

# ---- 6. TURN ------------------------------------------------------------------------
if command -v turnutils_uclient >/dev/null && command -v turnutils_peer >/dev/null; then
    say "TURN: coturn's turnutils_uclient (A) -> isard:3478 -> turnutils_peer (B)"
    ip netns exec "$ns" turnutils_peer -L 198.18.0.3 -p 3480 >/dev/null 2>&1 &
    peer_pid=$!
    sleep 0.3
    for mode in "" "-s"; do
        printf '\n$ turnutils_uclient -W SECRET -u demo -e 198.18.0.3 -n 100 -l 160 %s 198.18.0.1\n' "$mode"
        if [ -n "$mode" ]; then what="Send/Data indications"; else what="channels"; fi
        echo "  ($what, an RTP/RTCP pair of allocations; uclient's own summary:)"
        ip netns exec "$ns" turnutils_uclient -W "$(cat "$work/turn-secret")" -u demo -L 198.18.0.2 \
            -e 198.18.0.3 -r 3480 -n 100 -l 160 $mode 198.18.0.1 2>&1 |
            grep -E "start_mclient: tot_send_msgs=|Total lost packets" |
            sed -e 's/^[0-9]*: : /    /' || true
    done
    kill "$peer_pid" 2>/dev/null || true
    ctl turn list
    "$isarctl" --json stats | python3 -c '
import json, sys
t = json.load(sys.stdin)["turn"]
print("\nisard counted: %d allocations, %d packets relayed to peers and %d back (%d as ChannelData), "
      "%d first Allocates answered 401 with a nonce" % (t["allocations_created"], t["to_peers_pkts"],
      t["from_peers_pkts"], t["channel_data_pkts"], t["auth_failures"]["challenged"]))'
else
    say "TURN: skipped (apt-get install coturn for turnutils_uclient/turnutils_peer)"
fi

say "stopping isard (SIGTERM)"
kill -TERM "$isard_pid"
rc=0
wait "$isard_pid" || rc=$?
isard_pid=
echo "isard exited with status $rc; its log:"
sed -e 's/^/    /' "$log"
[ "$rc" -eq 0 ] || die "isard did not stop cleanly"
[ ! -e "$sock" ] || die "isard left its socket behind"
