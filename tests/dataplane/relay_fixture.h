// The whole relay minus threads and sockets: ring ports, a dp::dataplane, and
// the control plane (session_manager, neighbor_manager, commands) on top. The
// test thread steps every worker with worker::poll_once() and the control side
// with session_manager::poll() / neighbor_manager::poll(); requests go through
// commands::handle(), the same entry point the management socket uses.
//
// RelayTest checks after every test that the mempool is back to its baseline:
// every mbuf the test or the dataplane allocated was freed, and none was
// returned twice (the pool holds no more than its size).
#pragma once

#include "control/commands.h"
#include "control/config.h"
#include "control/neighbor_manager.h"
#include "control/session_manager.h"
#include "dataplane/dataplane.h"
#include "tests/support/packet_builder.h"
#include "tests/support/ring_port.h"
#include "turn/auth.h"
#include "turn/stun.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <gtest/gtest.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace isar::test {

using json = nlohmann::json;

struct relay_options {
    unsigned nworkers = 1;
    unsigned nifaces = 1; // iface i: 198.18+i.0.1/24 (gateway .254 on iface 1+)
    bool strict_source = true;
    bool gateway = false; // give every interface a gateway (.254)
    uint16_t port_min = 30000;
    uint16_t port_max = 30199;
    uint32_t mbufs = 4095;
    uint32_t max_legs = 4096;
    uint32_t ring_size = 1024;      // command, completion, exception, handoff rings
    unsigned port_ring_size = 4096; // the ring ports' RX and TX rings
    std::function<void(dp::dp_config&)> tweak; // last changes to the dataplane config
};

// Addresses used throughout: remotes on iface 0's subnet.
struct peer {
    uint32_t ip; // host order
    uint16_t port;
    rte_ether_addr mac;
    std::string ep() const;
};

class relay {
public:
    explicit relay(const relay_options& o);
    ~relay();

    bool ok() const { return ok_; }
    const std::string& error() const { return err_; }

    // ---- control --------------------------------------------------------
    // Runs a request and polls until its reply arrives (or fails the test).
    json call(const json& req, unsigned max_rounds = 200);
    // Starts a request; the reply lands in the returned slot when it comes.
    std::shared_ptr<std::optional<json>> start(const json& req);
    // One round: every worker once, then acknowledgements and exceptions.
    unsigned poll();
    // Rounds until nothing moves (RX rings empty, no handoff or exception).
    void settle(unsigned max_rounds = 1000);
    unsigned poll_worker(unsigned w) { return dp->wk(w).poll_once(); }

    // ---- packets ----------------------------------------------------------
    rte_mbuf* mbuf(const bytes& frame, unsigned ifc = 0);
    // Frames injected while `exact` is set live in exactly-sized malloc()ed
    // buffers (see make_exact_mbuf): ASan catches reads past their end.
    bool exact = false;
    void inject(const bytes& frame, unsigned ifc = 0);
    void inject(const std::vector<bytes>& frames, unsigned ifc = 0);
    // Everything sent on interface `ifc` queue `q` (q = nworkers: control).
    std::vector<bytes> sent(unsigned ifc, unsigned q);
    // Everything sent on `ifc` by the workers (all worker queues).
    std::vector<bytes> sent_by_workers(unsigned ifc);
    unsigned pending_tx() const;

    // A UDP frame from `from` to this relay's `relay_port` on `ifc`.
    bytes from_peer(const peer& from, uint16_t relay_port, const bytes& payload,
                    unsigned ifc = 0) const;
    // The frame the relay must emit on `ifc` for `to`, leaving from relay
    // port `src_port`, for an input frame built by from_peer().
    bytes expected(const peer& to, uint16_t src_port, const bytes& payload, unsigned ifc = 0,
                   std::optional<rte_ether_addr> dst_mac = std::nullopt) const;

    void learn(const peer& p, unsigned ifc = 0);
    uint32_t ip(unsigned ifc) const; // host order
    rte_ether_addr mac(unsigned ifc) const;

    // ---- counters -----------------------------------------------------------
    uint64_t drops(dp::drop d) const; // summed over workers
    uint64_t total_drops() const;
    uint64_t sum(dp::counter dp::worker_stats::*c) const;
    // Σ drops + fwd + exceptions + held == rx: every packet ended somewhere.
    void expect_accounted(const char* where) const;

    // A two-leg session (a: remote `ra` if set, b: remote `rb` if set);
    // returns the relay ports of a and b.
    std::pair<uint16_t, uint16_t> two_legs(const std::string& id, const std::optional<peer>& ra,
                                           const std::optional<peer>& rb);
    static uint16_t local_port(const json& create_reply, const std::string& leg);

    relay_options opt;
    ctl::config cfg;
    std::vector<std::unique_ptr<ring_port>> ports;
    std::unique_ptr<dp::dataplane> dp;
    std::unique_ptr<ctl::session_manager> sm;
    std::unique_ptr<ctl::neighbor_manager> nm;
    std::unique_ptr<ctl::commands> cmds;
    unsigned baseline = 0; // mbufs in use right after start

private:
    bool ok_ = false;
    std::string err_;
};

// Remote endpoints on iface 0's subnet (198.18.0.0/24).
extern const peer alice, bob, carol, mallory;

class RelayTest : public ::testing::Test {
protected:
    void start(const relay_options& o = {});
    void TearDown() override;
    std::unique_ptr<relay> r;
};

// An extra address slot for relay_options::tweak.
inline dp::addr_config slot6(const dp::ip6_addr& ip, uint8_t prefix_len = 64)
{
    dp::addr_config a;
    a.family = 6;
    a.ip6 = ip;
    a.prefix_len = prefix_len;
    return a;
}
inline dp::addr_config slot4(uint32_t ip_host, uint8_t prefix_len = 24)
{
    dp::addr_config a;
    a.family = 4;
    a.ip_be = rte_cpu_to_be_32(ip_host);
    a.prefix_len = prefix_len;
    return a;
}

// A RelayTest whose test installs one session with flow commands directly
// (sess_); it is deleted again in TearDown.
class FlowRelayTest : public RelayTest {
protected:
    void TearDown() override
    {
        if (sess_)
            command(dp::cmd_op::del_session);
        sess_.reset();
        RelayTest::TearDown();
    }
    // Runs `op` on sess_ through worker 0 and checks it completed.
    void command(dp::cmd_op op)
    {
        dp::flow_cmd c;
        c.op = op;
        c.sess = sess_.get();
        run_command(c);
    }
    // worker::apply's set_crypto on sess_'s leg `i` through worker 0: its
    // in and out contexts as `flags` says (crypto_set_in, crypto_set_out),
    // no leg verify_only.
    void set_crypto(unsigned i, uint8_t flags, crypto::srtp_context* in,
                    crypto::srtp_context* out)
    {
        dp::flow_cmd c;
        c.op = dp::cmd_op::set_crypto;
        c.sess = sess_.get();
        c.leg_index = static_cast<uint8_t>(i);
        c.flags = flags;
        c.in_ctx = in;
        c.out_ctx = out;
        run_command(c);
    }
    // `c` through worker 0; checks that it completed.
    void run_command(dp::flow_cmd& c)
    {
        ASSERT_EQ(r->dp->submit(&c), 0);
        r->poll_worker(0);
        dp::flow_cmd* done[2];
        ASSERT_EQ(r->dp->poll_done(done, 2), 1u);
        ASSERT_EQ(done[0], &c);
        ASSERT_EQ(c.status, 0);
    }
    // Installs sess_: two legs on interface 0, leg i forwarding to leg
    // 1 - i; `fill(leg, i)` sets the addresses (laddr, family, ports, remote).
    template <typename Fill>
    void install_two_legs(Fill&& fill)
    {
        sess_ = std::make_unique<dp::session>(2);
        for (unsigned i = 0; i < 2; i++) {
            dp::leg& l = sess_->legs[i];
            l.sess = sess_.get();
            l.peers = sess_->legs.get();
            l.index = static_cast<uint8_t>(i);
            l.iface = 0;
            l.port_id = r->ports[0]->id();
            fill(l, i);
            l.target_mask = static_cast<uint16_t>(1u << (1 - i));
            l.ntargets = 1;
            l.targets[0] = static_cast<uint8_t>(1 - i);
        }
        command(dp::cmd_op::add_session);
    }
    // `f` into interface 0, one worker round; what the workers sent.
    std::vector<bytes> run(const bytes& f)
    {
        r->inject(f);
        r->poll_worker(0);
        return r->sent_by_workers(0);
    }
    std::unique_ptr<dp::session> sess_;
};

// A TURN secret file (mode 0600) holding `secret`, in a fresh directory
// made from `tmpl` (mkdtemp template); remove() deletes both.
struct secret_dir {
    std::string dir, file;
    void make(const char* tmpl, const char* secret)
    {
        std::string t = tmpl;
        ASSERT_NE(mkdtemp(t.data()), nullptr);
        dir = t;
        file = dir + "/secrets";
        {
            std::ofstream f(file);
            f << secret << "\n";
        }
        ASSERT_EQ(chmod(file.c_str(), 0600), 0);
    }
    void remove() const
    {
        ::unlink(file.c_str());
        ::rmdir(dir.c_str());
    }
};

// A TURN REST username valid for an hour ("<expiry>:alice") for `secret`;
// `key`: its long-term key in `realm`.
inline std::string rest_credentials(const char* secret, const char* realm,
                                    uint8_t (&key)[turn::long_term_key_len])
{
    std::string username = std::to_string(::time(nullptr) + 3600) + ":alice";
    const std::string pw = turn::rest_password(secret, username);
    turn::long_term_key(username, realm, pw, key);
    return username;
}

// A TURN request; transaction id txid0, txid0 + 1, ...; `fill` adds the
// attributes. Signed (USERNAME, REALM, NONCE, MESSAGE-INTEGRITY with `key`)
// when `nonce` is not empty; FINGERPRINT last.
template <typename Fill>
bytes turn_request(turn::method m, const std::string& nonce, uint8_t txid0, Fill&& fill,
                   const std::string& username, const char* realm,
                   const uint8_t (&key)[turn::long_term_key_len])
{
    uint8_t txid[12];
    for (unsigned i = 0; i < 12; i++)
        txid[i] = static_cast<uint8_t>(txid0 + i);
    bytes buf(1024);
    turn::builder b(buf.data(), buf.size(), turn::make_type(m, turn::msg_class::request), txid);
    fill(b);
    if (!nonce.empty()) {
        b.add_string(turn::attr::username, username);
        b.add_string(turn::attr::realm, realm);
        b.add_string(turn::attr::nonce, nonce);
        b.add_integrity(key, sizeof(key));
    }
    b.add_fingerprint();
    EXPECT_TRUE(b.ok());
    buf.resize(b.size());
    return buf;
}

// The leg named `name` of a session.get answer (null when there is none).
inline json leg_of(const json& session, const std::string& name)
{
    if (session.contains("legs"))
        for (const auto& l : session.at("legs"))
            if (l.at("name") == name)
                return l;
    return json();
}

// Leg `name` of session `id` as session.get reports it now.
inline json leg_of(relay& r, const std::string& id, const std::string& name)
{
    return leg_of(r.call({{"cmd", "session.get"}, {"session", id}}), name);
}

} // namespace isar::test
