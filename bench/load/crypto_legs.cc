// isar-bench baseline "raw crypto at N legs": the relay's SRTP engine with as
// many contexts as the relay has at a leg count, measured in the same run as
// the modes it explains.
//
// The raw-crypto baseline (load_baselines.cc) decrypts and encrypts with one
// pair of contexts, always in cache. A relay with 100k SRTP legs reads a
// different pair for every packet: the receiving leg's context and its
// target's, 2 x 100k contexts of about a kilobyte that no cache holds. This
// loop does what the worker's crypto does and nothing else: N pairs visited
// in a random order, each visit an unprotect with rx[i] and a protect with
// tx[i] (verify: a verify with rx[i]), the pair two visits ahead asked for
// with prefetch_line0() and the next one with prefetch(), as the worker's
// pipeline does (dataplane/burst.cc), on the worker's lcore. Its cycles per packet are what the
// engine itself costs at that many keys on this machine: the relay's SRTP
// rows divided by it say how much the relay adds beyond the memory the keys
// need. Contexts come from the same allocator as the relay's (hugepage slabs
// when place_srtp_contexts() was installed).
//
// Packets: every rx context has the sender's key and every tx context one
// other key, so one packet protected per round serves every pair (round r:
// sequence number r + 1, each pair visited once a round), and every context
// sees its indices in order. Bounded: at most 0.15 s and 16 384 rounds a
// measurement, and 100 000 pairs (the run's larger leg counts are skipped).
#include "bench/load/load_common.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include "crypto/srtp_context.h"

namespace isar::bench_load {
namespace {

constexpr unsigned max_pairs = 100000;
constexpr unsigned batch = 512; // packets copied, untimed, then processed, timed
// Rounds a measurement may use: the tx contexts sit out a verify measurement's
// rounds, and a context estimates an index right only across a gap of fewer
// than 2^15 sequence numbers (RFC 3711 §3.3.1).
constexpr uint32_t max_rounds = 16384;
constexpr size_t room = 1600;

struct pair_set {
    std::unique_ptr<crypto::srtp_context> snd; // protects each round's packet
    std::vector<std::unique_ptr<crypto::srtp_context>> rx, tx;
    std::vector<uint32_t> order;
};

bool make_pairs(pair_set& ps, crypto::suite s, crypto::engine e, unsigned n, std::string& err)
{
    crypto::key_material k1, k2;
    make_key(k1, s, 11);
    make_key(k2, s, 12);
    ps.snd = crypto::srtp_context::create(k1, e, err);
    if (!ps.snd)
        return false;
    ps.rx.reserve(n);
    ps.tx.reserve(n);
    for (unsigned i = 0; i < n; i++) {
        ps.rx.push_back(crypto::srtp_context::create(k1, e, err));
        ps.tx.push_back(crypto::srtp_context::create(k2, e, err));
        if (!ps.rx.back() || !ps.tx.back())
            return false;
    }
    ps.order.resize(n);
    for (unsigned i = 0; i < n; i++)
        ps.order[i] = i;
    std::shuffle(ps.order.begin(), ps.order.end(), std::mt19937(n));
    return true;
}

// Round r's packet, protected by the sender: sequence number r + 1, which
// wraps as RTP's does (every context sees the rounds in order, so each
// estimates the rollover counter as the sender does).
bool round_packet(pair_set& ps, unsigned payload, uint32_t r, uint8_t* out, size_t& len)
{
    const auto seq = static_cast<uint16_t>(r + 1);
    memset(out, 0x5a, 12 + payload);
    out[0] = 0x80;
    out[1] = 0;
    out[2] = static_cast<uint8_t>(seq >> 8);
    out[3] = static_cast<uint8_t>(seq);
    out[8] = 0x12;
    return ps.snd->protect_rtp(out, 12 + payload, room, &len) == crypto::status::ok;
}

struct measured {
    double cycles = 0;
    bool bad = false;
    uint32_t rounds_used = 0; // the next free round
};

// Cycles per packet over bounded batches of visits, starting at round
// `first_round`: transcrypt (rx unprotect + tx protect) or verify (rx).
measured run_visits(pair_set& ps, unsigned payload, bool verify, uint32_t first_round,
                    double seconds)
{
    const unsigned n = static_cast<unsigned>(ps.rx.size());
    static uint8_t w[batch][room];
    // A batch's contexts in visit order, as the worker finds them in its
    // legs (not through the pair arrays, which the relay does not have).
    static crypto::srtp_context* rx[batch];
    static crypto::srtp_context* tx[batch];
    uint8_t tmpl[room];
    size_t tlen = 0;
    uint32_t round = first_round, next = 0; // visit `next` of `round`
    measured m;
    m.rounds_used = round + 1;
    if (!round_packet(ps, payload, round, tmpl, tlen)) {
        m.bad = true;
        return m;
    }
    uint64_t cyc = 0, pkts = 0;
    const uint64_t end = rte_rdtsc() + static_cast<uint64_t>(seconds * static_cast<double>(hz));
    do {
        size_t plen[batch];
        for (unsigned k = 0; k < batch; k++) { // untimed: the packets
            if (next == n) {
                next = 0;
                m.rounds_used = ++round + 1;
                if (!round_packet(ps, payload, round, tmpl, tlen)) {
                    m.bad = true;
                    return m;
                }
            }
            const uint32_t i = ps.order[next++];
            rx[k] = ps.rx[i].get();
            tx[k] = ps.tx[i].get();
            memcpy(w[k], tmpl, tlen);
            plen[k] = tlen;
        }
        const auto ctx_ahead = [&](unsigned k) {
            rx[k]->prefetch_line0();
            if (!verify)
                tx[k]->prefetch_line0();
        };
        const auto sched_ahead = [&](unsigned k) {
            rx[k]->prefetch();
            if (!verify)
                tx[k]->prefetch();
        };
        const uint64_t t = rte_rdtsc();
        ctx_ahead(0);
        ctx_ahead(1);
        sched_ahead(0);
        for (unsigned k = 0; k < batch; k++) {
            if (k + 2 < batch)
                ctx_ahead(k + 2);
            if (k + 1 < batch)
                sched_ahead(k + 1);
            if (verify) {
                m.bad |= rx[k]->verify_rtp(w[k], plen[k]) != crypto::status::ok;
                continue;
            }
            size_t l = 0, l2 = 0;
            m.bad |= rx[k]->unprotect_rtp(w[k], plen[k], &l) != crypto::status::ok ||
                     tx[k]->protect_rtp(w[k], l, room, &l2) != crypto::status::ok;
        }
        cyc += rte_rdtsc() - t;
        pkts += batch;
    } while (rte_rdtsc() < end && !m.bad && round - first_round + batch / n + 2 < max_rounds);
    m.cycles = static_cast<double>(cyc) / static_cast<double>(pkts);
    return m;
}

// run_visits() on the worker's lcore, as the relay's crypto runs there.
struct visits_job {
    pair_set* ps;
    unsigned payload;
    bool verify;
    uint32_t first_round;
    double seconds;
    measured out;
};

int visits_main(void* arg)
{
    auto* j = static_cast<visits_job*>(arg);
    crypto::prepare_thread();
    j->out = run_visits(*j->ps, j->payload, j->verify, j->first_round, j->seconds);
    return 0;
}

measured on_lcore(unsigned lcore, pair_set& ps, unsigned payload, bool verify,
                  uint32_t first_round, double seconds)
{
    visits_job j{&ps, payload, verify, first_round, seconds, {}};
    if (lcore >= RTE_MAX_LCORE || rte_eal_remote_launch(visits_main, &j, lcore) != 0) {
        j.out.bad = true; // no worker lcore
        return j.out;
    }
    rte_eal_wait_lcore(lcore);
    return j.out;
}

} // namespace

void run_crypto_legs(const options& o)
{
    std::vector<unsigned> counts(o.legs.begin(), o.legs.end());
    std::sort(counts.begin(), counts.end());
    counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
    const crypto::suite suites[] = {crypto::suite::aes_cm_128_hmac_sha1_80,
                                    crypto::suite::aead_aes_128_gcm};
    const unsigned lcore = rte_get_next_lcore(-1, 1, 0); // the worker's, as leg-lines
    for (auto s : suites) {
        const crypto::engine e = crypto::auto_engine(s); // the relay's
        for (unsigned legs : counts) {
            if (legs < 2 || legs > max_pairs)
                continue; // 1 leg: the raw-crypto baseline itself
            pair_set ps;
            std::string err;
            if (!make_pairs(ps, s, e, legs, err)) {
                errors.push_back("raw crypto at " + std::to_string(legs) + " legs: " + err);
                continue;
            }
            uint32_t round = 0;
            for (unsigned payload : o.payloads) {
                if (12 + payload + crypto::max_trailer > room)
                    continue; // a frame's worth at most (the relay's rows are too)
                const double sec = std::min(0.15, o.phase_s / 2);
                const measured t = on_lcore(lcore, ps, payload, false, round, sec);
                const measured v = t.bad ? t : on_lcore(lcore, ps, payload, true, t.rounds_used, sec);
                round = v.rounds_used;
                json j{{"suite", std::string(crypto::suite_name(s))},
                       {"engine", crypto::engine_name(e)},
                       {"payload", payload},
                       {"legs", legs},
                       {"transcrypt_cycles", t.cycles},
                       {"verify_cycles", v.cycles}};
                if (t.bad || v.bad) {
                    j["error"] = "crypto round trip failed";
                    errors.push_back("raw crypto at " + std::to_string(legs) +
                                     " legs: a round trip failed");
                }
                crypto_legs_j.push_back(j);
                fprintf(stderr,
                        "isar-bench: raw crypto %s %s %u B at %u legs (%u context pairs, "
                        "prefetched): decrypt+encrypt %.0f cyc, verify %.0f cyc\n",
                        std::string(crypto::suite_name(s)).c_str(), crypto::engine_name(e),
                        payload, legs, legs, t.cycles, v.cycles);
                if (t.bad || v.bad)
                    break; // these contexts' replay state is no longer known
            }
        }
    }
}

} // namespace isar::bench_load
