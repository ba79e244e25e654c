// isar-bench TURN Allocate rate (turn_load.h, run_allocs): n clients each
// send Allocate (401 + NONCE), then Allocate with REST-secret
// MESSAGE-INTEGRITY, through the worker and the real ctl::turn_manager on the
// main lcore.
#include "bench/load/turn_load.h"
#include "bench/load/turn_rig.h"

#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>

#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include "control/config.h"
#include "control/session_manager.h"
#include "control/turn_manager.h"
#include "turn/auth.h"
#include "turn/stun.h"

using json = nlohmann::json;

namespace isar::bench_turn {
namespace {

const std::string secret = "isar-bench-secret", realm = "bench.isar";

// The REST secret into a new file from the mkstemp template `path`.
bool write_secret(char* path)
{
    const int fd = mkstemp(path);
    if (fd < 0)
        return false;
    fchmod(fd, 0600);
    (void)!write(fd, (secret + "\n").data(), secret.size() + 1);
    close(fd);
    return true;
}

// The worker lcore, the port and the dataplane for n allocations, the
// secret at `path`; false (and err) when the dataplane does not start.
bool setup_rig(worker_rig& b, ctl::config& cfg, unsigned n, const char* path, std::string& err)
{
    unsigned l = 0;
    RTE_LCORE_FOREACH_WORKER(l)
    {
        b.lcore = l;
        break;
    }
    cfg.port_min = relay_base;
    cfg.port_max = 65535;
    cfg.max_legs = n + n / 8 + 64;
    cfg.turn.listen_udp = {listen_port};
    cfg.turn.realm = realm;
    cfg.turn.auth_secret_file = path;
    cfg.turn.allowed_peer = {"198.18.0.0/15"};
    cfg.turn.max_allocations = n + 64;
    cfg.turn.allocate_rate = 0;
    cfg.turn.max_requests_per_s = 0;
    dp::dp_config dc = turn_dp_config(65535, cfg.max_legs, n);
    auto p = std::make_unique<tport>("ta" + std::to_string(seq_no++), 2, 1u << 15, 1u << 15);
    ctl::interface_config ic;
    ic.port = static_cast<uint16_t>(p->port);
    ic.address = iface_ip(0);
    ic.prefix_len = 24;
    cfg.interfaces.push_back(ic);
    dc.ifaces.push_back({ic.port, {{4, rte_cpu_to_be_32(iface_ip(0)), {}, 24}}, 0, true});
    b.ports.push_back(std::move(p));
    b.dp = std::make_unique<dp::dataplane>();
    return b.dp->init(dc, 1, err) == 0;
}

// The Allocate exchanges of n clients. Client c: 198.18.0.(20 + c % 16),
// port 1024 + c / 16; state 0 = to send the first Allocate, 1 = awaiting
// 401, 2 = awaiting success, 3 = done.
struct exchange {
    worker_rig& b;
    const unsigned n;
    const std::string user = std::to_string(static_cast<long long>(time(nullptr)) + 3600) + ":bench";
    uint8_t key[turn::long_term_key_len];
    std::vector<uint8_t> st;
    std::vector<std::string> nonce;
    unsigned next = 0, done = 0, inflight = 0, challenged = 0, failed = 0;
    std::string first_err;
    std::vector<unsigned> retry;
    uint64_t t0 = 0, t_last = 0;

    exchange(worker_rig& rig, unsigned nn) : b(rig), n(nn), st(nn, 0), nonce(nn)
    {
        const std::string pass = turn::rest_password(secret, user);
        turn::long_term_key(user, realm, pass, key);
    }

    bool send(unsigned c, bool auth)
    {
        rte_mbuf* m = rte_pktmbuf_alloc(b.dp->pool());
        if (m == nullptr)
            return false;
        uint8_t* f = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, 42 + 256));
        uint8_t txid[12];
        memcpy(txid, &c, 4);
        txid[4] = auth ? 2 : 1;
        memset(txid + 5, 0x5a, 7);
        turn::builder bl(f + 42, 256, turn::make_type(turn::method::allocate, turn::msg_class::request), txid);
        const uint32_t udp17 = 17u << 24;
        bl.add_u32(turn::attr::requested_transport, udp17);
        if (auth) {
            bl.add_string(turn::attr::username, user);
            bl.add_string(turn::attr::realm, realm);
            bl.add_string(turn::attr::nonce, nonce[c]);
            bl.add_integrity(key, sizeof(key));
        }
        bl.add_fingerprint();
        const unsigned ulen = static_cast<unsigned>(bl.size());
        rte_pktmbuf_trim(m, static_cast<uint16_t>(256 - ulen));
        auto* eth = reinterpret_cast<rte_ether_hdr*>(f);
        eth->dst_addr = b.dp->ifc(0).mac;
        eth->src_addr = host_mac(client_ip(0, c));
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(f + 14);
        memset(ip, 0, sizeof(*ip));
        ip->version_ihl = 0x45;
        ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(28 + ulen));
        ip->time_to_live = 64;
        ip->next_proto_id = IPPROTO_UDP;
        ip->src_addr = rte_cpu_to_be_32(client_ip(0, c));
        ip->dst_addr = rte_cpu_to_be_32(iface_ip(0));
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        auto* udp = reinterpret_cast<rte_udp_hdr*>(f + 34);
        udp->src_port = rte_cpu_to_be_16(client_port(c));
        udp->dst_port = rte_cpu_to_be_16(listen_port);
        udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(8 + ulen));
        udp->dgram_cksum = 0;
        udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
        m->port = static_cast<uint16_t>(b.ports[0]->port);
        if (rte_ring_sp_enqueue(b.ports[0]->rx, m) != 0) {
            rte_pktmbuf_free(m);
            return false;
        }
        return true;
    }

    void on_response(rte_mbuf* m)
    {
        const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
        const unsigned len = rte_pktmbuf_data_len(m);
        turn::message msg;
        unsigned c = 0;
        if (len > 42 && turn::parse(f + 42, len - 42, msg) == turn::parse_status::ok)
            memcpy(&c, msg.txid, 4);
        if (c >= n || len <= 42) {
            if (first_err.empty())
                first_err = "unparseable response";
            failed++;
        } else if (st[c] == 1 && msg.cls == turn::msg_class::error) {
            const auto* nn = msg.find(turn::attr::nonce);
            uint16_t code = 0;
            const auto* ec = msg.find(turn::attr::error_code);
            if (ec)
                turn::read_error_code(*ec, code);
            if (code != 401 || nn == nullptr) {
                if (first_err.empty())
                    first_err = "first Allocate: error " + std::to_string(code);
                failed++;
                inflight--;
            } else {
                nonce[c] = std::string(turn::as_string(*nn));
                challenged++;
                st[c] = 2;
                retry.push_back(c);
            }
        } else if (st[c] == 2 && msg.cls == turn::msg_class::success &&
                   turn::check_integrity(msg, key, sizeof(key)) &&
                   msg.find(turn::attr::xor_relayed_address) != nullptr) {
            st[c] = 3;
            done++;
            inflight--;
            t_last = rte_rdtsc();
        } else {
            uint16_t code = 0;
            if (const auto* ec = msg.find(turn::attr::error_code))
                turn::read_error_code(*ec, code);
            if (first_err.empty())
                first_err = "Allocate answered class " + std::to_string(static_cast<int>(msg.cls)) +
                            " code " + std::to_string(code) + " in state " + std::to_string(st[c]);
            failed++;
            inflight--;
        }
    }

    void run(ctl::turn_manager& tm, ctl::session_manager& sm, uint64_t hz)
    {
        const unsigned window = 256;
        t0 = rte_rdtsc();
        const uint64_t lim = t0 + 30 * hz;
        t_last = t0;
        while (done + failed < n && rte_rdtsc() < lim) {
            while (inflight < window && next < n) {
                if (!send(next, false))
                    break;
                st[next++] = 1;
                inflight++;
            }
            tm.poll(256);
            sm.poll();
            rte_mbuf* r[32];
            for (rte_ring* q : b.ports[0]->tx) {
                const unsigned k = rte_ring_sc_dequeue_burst(q, reinterpret_cast<void**>(r), 32, nullptr);
                for (unsigned x = 0; x < k; x++)
                    on_response(r[x]);
                if (k)
                    rte_pktmbuf_free_bulk(r, k);
            }
            while (!retry.empty()) {
                if (!send(retry.back(), true))
                    break;
                retry.pop_back();
            }
        }
    }
};

// The record of the exchanges into j.
void record(json& j, const exchange& x, ctl::turn_manager& tm, uint64_t hz,
            std::vector<std::string>& errors)
{
    const unsigned n = x.n, done = x.done, challenged = x.challenged, failed = x.failed;
    const double s = secs(x.t_last - x.t0, hz);
    j["allocations_done"] = done;
    j["seconds"] = s;
    j["allocations_per_s"] = done / s;
    j["challenged_401"] = challenged;
    j["turn_manager_allocations"] = tm.allocations().size();
    j["exchange"] = "Allocate -> 401 (REALM, NONCE) -> Allocate with REST-secret MESSAGE-INTEGRITY -> success, 256 clients in flight";
    if (done != n || failed) {
        j["error"] = "allocations " + std::to_string(done) + "/" + std::to_string(n) + ", failed " +
                     std::to_string(failed) + ": " + x.first_err;
        errors.push_back("turn allocations: " + j["error"].get<std::string>());
        fprintf(stderr, "isar-bench: turn allocations ERROR %s\n", j["error"].get<std::string>().c_str());
    } else {
        fprintf(stderr, "isar-bench: turn allocations: %.0f allocations/s (%u Allocate pairs through turn_manager in %.3f s)\n",
                done / s, n, s);
    }
}

} // namespace

json run_allocs(const options& o, unsigned n, std::vector<std::string>& errors)
{
    json j{{"allocations", n}};
    char path[] = "/tmp/isar-bench-turn-XXXXXX";
    if (!write_secret(path)) {
        j["error"] = "mkstemp";
        errors.push_back("turn allocations: mkstemp");
        return j;
    }
    auto b = std::make_unique<worker_rig>();
    ctl::config cfg;
    std::string err;
    if (!setup_rig(*b, cfg, n, path, err)) {
        j["error"] = err;
        errors.push_back("turn allocations: " + err);
        unlink(path);
        return j;
    }
    {
        ctl::session_manager sm(*b->dp, cfg);
        ctl::turn_manager tm(*b->dp, cfg, sm);
        if (tm.init(err) != 0) {
            unlink(path);
            j["error"] = err;
            errors.push_back("turn allocations: " + err);
            b->stop();
            return j;
        }
        unlink(path);
        sm.on_other_ack = [&tm](dp::flow_cmd* c) { tm.on_ack(c); };
        for (unsigned x = 0; x < 16; x++)
            b->dp->ifc(0).neigh->update(rte_cpu_to_be_32(client_ip(0, x)), host_mac(client_ip(0, x)));
        b->start();
        exchange x(*b, n);
        x.run(tm, sm, o.hz);
        record(j, x, tm, o.hz, errors);
        b->stop();
        for (auto& pt : b->ports)
            pt->drain();
    }
    return j;
}

} // namespace isar::bench_turn
