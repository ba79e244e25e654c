#include "tests/dataplane/relay_fixture.h"

#include "control/addr.h"

#include <atomic>
#include <cstring>
#include <rte_byteorder.h>
#include <rte_mempool.h>
#include <rte_ring.h>

namespace isar::test {

namespace {
std::atomic<unsigned> next_relay{0};
}

const peer alice{0xc612000a, 5000, isar::test::mac(0x0a, 0x0a)};   // 198.18.0.10
const peer bob{0xc6120014, 6000, isar::test::mac(0x14, 0x14)};     // 198.18.0.20
const peer carol{0xc612001e, 7000, isar::test::mac(0x1e, 0x1e)};   // 198.18.0.30
const peer mallory{0xc6120066, 6666, isar::test::mac(0x66, 0x66)}; // 198.18.0.102

std::string peer::ep() const
{
    return ctl::format_endpoint({ip, port});
}

relay::relay(const relay_options& o) : opt(o)
{
    const unsigned id = next_relay.fetch_add(1);
    cfg.port_min = o.port_min;
    cfg.port_max = o.port_max;
    cfg.strict_source = o.strict_source;
    cfg.max_legs = o.max_legs;
    cfg.mbufs = o.mbufs;
    dp::dp_config dc;
    dc.mbufs = o.mbufs;
    dc.max_legs = o.max_legs;
    dc.strict_source = o.strict_source;
    dc.ring_size = o.ring_size;
    dc.rx_desc = 512;
    dc.tx_desc = 512;
    for (unsigned i = 0; i < o.nifaces; i++) {
        auto p = std::make_unique<ring_port>("t" + std::to_string(id) + "p" + std::to_string(i),
                                             o.nworkers + 1, o.port_ring_size);
        if (!p->ok()) {
            err_ = "cannot create ring port " + std::to_string(i);
            return;
        }
        ctl::interface_config ic;
        ic.port = p->id();
        ic.address = ip(i);
        ic.prefix_len = 24;
        ic.gateway = (o.gateway || i > 0) ? (ip(i) & 0xffffff00) | 254 : 0;
        cfg.interfaces.push_back(ic);
        dc.ifaces.push_back({ic.port, {{4, rte_cpu_to_be_32(ic.address), {}, ic.prefix_len}},
                             rte_cpu_to_be_32(ic.gateway)});
        ports.push_back(std::move(p));
    }
    if (o.tweak)
        o.tweak(dc);
    dp = std::make_unique<dp::dataplane>();
    if (dp->init(dc, o.nworkers, err_) != 0)
        return;
    sm = std::make_unique<ctl::session_manager>(*dp, cfg);
    nm = std::make_unique<ctl::neighbor_manager>(*dp);
    cmds = std::make_unique<ctl::commands>(*dp, *sm, *nm, cfg);
    baseline = dp->mbufs_in_use();
    ok_ = true;
}

relay::~relay()
{
    cmds.reset();
    nm.reset();
    sm.reset();
    dp.reset(); // stops the ports
    ports.clear();
}

uint32_t relay::ip(unsigned ifc) const
{
    return 0xc6120001 + (ifc << 8); // 198.18.0.1, 198.18.1.1, ...
}

rte_ether_addr relay::mac(unsigned ifc) const
{
    return dp->ifc(ifc).mac;
}

std::shared_ptr<std::optional<json>> relay::start(const json& req)
{
    auto slot = std::make_shared<std::optional<json>>();
    cmds->handle(req, [slot](const json& j) {
        EXPECT_FALSE(slot->has_value()) << "second reply: " << j.dump();
        *slot = j;
    });
    return slot;
}

json relay::call(const json& req, unsigned max_rounds)
{
    auto slot = start(req);
    for (unsigned i = 0; i < max_rounds && !slot->has_value(); i++)
        poll();
    EXPECT_TRUE(slot->has_value()) << "no reply to " << req.dump();
    return slot->value_or(json{{"error", {{"code", "test"}, {"message", "no reply"}}}});
}

unsigned relay::poll()
{
    unsigned work = 0;
    for (unsigned w = 0; w < dp->nworkers(); w++)
        work += dp->wk(w).poll_once();
    work += sm->poll();
    work += nm->poll();
    return work;
}

void relay::settle(unsigned max_rounds)
{
    for (unsigned i = 0; i < max_rounds; i++) {
        unsigned rx = 0;
        for (auto& p : ports)
            rx += p->rx_pending();
        if (poll() == 0 && rx == 0)
            return;
    }
    ADD_FAILURE() << "the relay did not settle";
}

rte_mbuf* relay::mbuf(const bytes& frame, unsigned ifc)
{
    rte_mbuf* m = exact ? make_exact_mbuf(dp->pool(), frame, ports[ifc]->id())
                        : make_mbuf(dp->pool(), frame, ports[ifc]->id());
    EXPECT_NE(m, nullptr) << "mempool empty or frame too big";
    return m;
}

void relay::inject(const bytes& frame, unsigned ifc)
{
    rte_mbuf* m = mbuf(frame, ifc);
    if (m != nullptr && ports[ifc]->inject(m) != 1) {
        ADD_FAILURE() << "RX ring full";
        rte_pktmbuf_free(m);
    }
}

void relay::inject(const std::vector<bytes>& frames, unsigned ifc)
{
    for (const auto& f : frames)
        inject(f, ifc);
}

std::vector<bytes> relay::sent(unsigned ifc, unsigned q)
{
    std::vector<bytes> out;
    auto pkts = ports[ifc]->take_tx(q);
    for (rte_mbuf* m : pkts) {
        out.push_back(mbuf_bytes(m));
        EXPECT_EQ(m->nb_segs, 1);
    }
    free_all(pkts);
    return out;
}

std::vector<bytes> relay::sent_by_workers(unsigned ifc)
{
    std::vector<bytes> out;
    for (unsigned q = 0; q < dp->nworkers(); q++) {
        auto v = sent(ifc, q);
        out.insert(out.end(), v.begin(), v.end());
    }
    return out;
}

unsigned relay::pending_tx() const
{
    unsigned n = 0;
    for (auto& p : ports)
        n += p->tx_pending_total();
    return n;
}

bytes relay::from_peer(const peer& from, uint16_t relay_port, const bytes& payload,
                       unsigned ifc) const
{
    udp4_spec s;
    s.src_mac = from.mac;
    s.dst_mac = dp->ifc(ifc).mac;
    s.src_ip = from.ip;
    s.dst_ip = ip(ifc);
    s.src_port = from.port;
    s.dst_port = relay_port;
    s.ttl = 57;
    s.tos = 0xb8;
    s.ip_id = 0x4242;
    s.frag = 0x4000; // DF
    s.payload = payload;
    return build(s);
}

bytes relay::expected(const peer& to, uint16_t src_port, const bytes& payload, unsigned ifc,
                      std::optional<rte_ether_addr> dst_mac) const
{
    udp4_spec s;
    s.src_mac = dp->ifc(ifc).mac;
    s.dst_mac = dst_mac.value_or(to.mac);
    s.src_ip = ip(ifc);
    s.dst_ip = to.ip;
    s.src_port = src_port;
    s.dst_port = to.port;
    s.ttl = 64;
    s.tos = 0xb8;
    s.ip_id = 0x4242;
    s.frag = 0x4000;
    s.payload = payload;
    return build(s);
}

void relay::learn(const peer& p, unsigned ifc)
{
    ASSERT_TRUE(dp->ifc(ifc).neigh->update(rte_cpu_to_be_32(p.ip), p.mac));
}

uint64_t relay::drops(dp::drop d) const
{
    uint64_t n = 0;
    for (unsigned w = 0; w < dp->nworkers(); w++)
        n += dp::read(dp->wk(w).stats.drops[static_cast<unsigned>(d)]);
    return n;
}

uint64_t relay::total_drops() const
{
    uint64_t n = 0;
    for (unsigned i = 0; i < dp::n_drops; i++)
        n += drops(static_cast<dp::drop>(i));
    return n;
}

uint64_t relay::sum(dp::counter dp::worker_stats::*c) const
{
    uint64_t n = 0;
    for (unsigned w = 0; w < dp->nworkers(); w++)
        n += dp::read(dp->wk(w).stats.*c);
    return n;
}

void relay::expect_accounted(const char* where) const
{
    const uint64_t rx = sum(&dp::worker_stats::rx_pkts);
    const uint64_t fwd = sum(&dp::worker_stats::fwd_pkts);
    const uint64_t exc = sum(&dp::worker_stats::exception_pkts);
    const uint64_t held = sum(&dp::worker_stats::held_pkts);
    EXPECT_EQ(total_drops() + fwd + exc + held, rx)
            << where << ": drops " << total_drops() << " fwd " << fwd << " exc " << exc << " held "
            << held << " rx " << rx;
}

uint16_t relay::local_port(const json& reply, const std::string& leg)
{
    for (const auto& l : reply.at("legs")) {
        if (l.at("name") == leg) {
            std::string err;
            auto ep = ctl::parse_endpoint(l.at("local").get<std::string>(), err);
            EXPECT_TRUE(ep) << err;
            return ep ? ep->port : 0;
        }
    }
    ADD_FAILURE() << "no leg " << leg << " in " << reply.dump();
    return 0;
}

std::pair<uint16_t, uint16_t> relay::two_legs(const std::string& id, const std::optional<peer>& ra,
                                              const std::optional<peer>& rb)
{
    json a{{"name", "a"}}, b{{"name", "b"}};
    if (ra)
        a["remote"] = ra->ep();
    if (rb)
        b["remote"] = rb->ep();
    json rep = call({{"cmd", "session.create"}, {"session", id}, {"legs", {a, b}}});
    EXPECT_FALSE(rep.contains("error")) << rep.dump();
    if (rep.contains("error"))
        return {0, 0};
    return {local_port(rep, "a"), local_port(rep, "b")};
}

void RelayTest::start(const relay_options& o)
{
    r = std::make_unique<relay>(o);
    ASSERT_TRUE(r->ok()) << r->error();
    EXPECT_EQ(r->baseline, 0u) << "a fresh dataplane holds no mbuf";
}

// What the pool holds, uncapped: rte_mempool_avail_count() caps it at the
// pool's size, which hides an mbuf returned twice (or a pointer that was
// never the pool's) behind a count that looks right.
// The default ring-based pools only (rte_mempool_ops_get_count is internal
// to DPDK): -1 for another kind.
static long pool_holds(const rte_mempool* mp)
{
    if (std::strncmp(rte_mempool_get_ops(mp->ops_index)->name, "ring_", 5) != 0)
        return -1;
    long n = rte_ring_count(static_cast<const rte_ring*>(mp->pool_data));
    if (mp->cache_size != 0)
        for (unsigned l = 0; l < RTE_MAX_LCORE; l++)
            n += mp->local_cache[l].len;
    return n;
}

void RelayTest::TearDown()
{
    if (!r || !r->ok())
        return;
    r->settle();
    for (auto& p : r->ports)
        p->flush(); // whatever the test did not look at
    // Held packets (waiting for ARP) are legitimately in use until control
    // gives up on them or is destroyed; otherwise nothing may be.
    if (!r->nm->holding()) {
        EXPECT_EQ(r->dp->mbufs_in_use(), r->baseline) << "mbuf leak";
    }
    r->nm.reset();
    EXPECT_EQ(r->dp->mbufs_in_use(), r->baseline) << "mbuf leak";
    if (const rte_mempool* mp = r->dp->pool(); mp != nullptr) {
        EXPECT_LE(pool_holds(mp), long{mp->size}) << "an mbuf went back to the pool twice";
    }
    r.reset();
}

} // namespace isar::test
