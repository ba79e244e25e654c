#include "dataplane/ownership.h"

#include <cstring>

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_thash.h>

#include "dataplane/leg.h"

namespace isar::dp {

// The key of Microsoft's RSS specification (DPDK's testpmd and most PMDs
// default to it).
const uint8_t rss_key[rss_key_size] = {
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
        0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
        0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

const char* own_mode_name(own_mode m) noexcept
{
    switch (m) {
    case own_mode::single:
        return "single queue";
    case own_mode::pairs:
        return "port pairs + handoff";
    case own_mode::dst_port:
        return "RSS on UDP destination port";
    case own_mode::flow_rule:
        return "rte_flow RSS on UDP destination port";
    }
    return "?";
}

uint32_t rss_hash_dst(const local_addr& a, uint16_t port, const uint8_t* key) noexcept
{
    // rte_softrss reads the input as host-order 32-bit words, the first bit
    // of the hashed byte stream being bit 31 of word 0. The 6 (18) bytes of
    // address and port end in a half word: the trailing zero bits add
    // nothing to a Toeplitz hash.
    uint32_t in[5];
    unsigned n = 0;
    if (a.family == 4) {
        in[n++] = rte_be_to_cpu_32(a.ip4_be);
    } else {
        for (unsigned i = 0; i < 4; i++) {
            uint32_t w;
            std::memcpy(&w, a.ip6.b + 4 * i, 4);
            in[n++] = rte_be_to_cpu_32(w);
        }
    }
    in[n++] = static_cast<uint32_t>(port) << 16;
    return rte_softrss(in, n, key);
}

uint32_t rss_hash_4tuple(uint32_t src_be, uint32_t dst_be, uint16_t sport, uint16_t dport,
                         const uint8_t* key) noexcept
{
    // DPDK's rte_ipv4_tuple in host order: src, dst, sport << 16 | dport.
    rte_ipv4_tuple t{};
    t.src_addr = rte_be_to_cpu_32(src_be);
    t.dst_addr = rte_be_to_cpu_32(dst_be);
    t.sport = sport;
    t.dport = dport;
    return rte_softrss(reinterpret_cast<uint32_t*>(&t), RTE_THASH_V4_L4_LEN, key);
}

std::vector<uint16_t> paired_reta(unsigned size, unsigned nrxq, const uint8_t* key)
{
    std::vector<uint16_t> reta(size, 0);
    if (size == 0 || nrxq == 0)
        return reta;
    if ((size & (size - 1)) != 0) {
        for (unsigned e = 0; e < size; e++)
            reta[e] = static_cast<uint16_t>(e % nrxq);
        return reta;
    }
    local_addr a4, a6;
    a4.family = 4;
    a6.family = 6;
    const uint32_t mask = size - 1;
    const uint32_t d4 = (rss_hash_dst(a4, 0, key) ^ rss_hash_dst(a4, 1, key)) & mask;
    const uint32_t d6 = (rss_hash_dst(a6, 0, key) ^ rss_hash_dst(a6, 1, key)) & mask;
    std::vector<bool> done(size, false);
    unsigned next = 0;
    for (uint32_t e = 0; e < size; e++) {
        if (done[e])
            continue;
        const auto q = static_cast<uint16_t>(next++ % nrxq);
        for (const uint32_t x : {e, e ^ d4, e ^ d6, e ^ d4 ^ d6}) {
            reta[x] = q;
            done[x] = true;
        }
    }
    return reta;
}

void fill_pairs(port_owner_map& m, unsigned nworkers) noexcept
{
    for (unsigned p = 0; p < port_space; p++)
        m.owner[p] = static_cast<uint8_t>(owner_of_port(static_cast<uint16_t>(p), nworkers));
}

void fill_toeplitz(port_owner_map& m, const local_addr& a, const rss_layout& l,
                   const uint8_t* key) noexcept
{
    if (!(a.family == 6 ? l.v6 : l.v4) || l.reta.empty()) {
        fill_pairs(m, l.nworkers);
        return;
    }
    for (unsigned p = 0; p < port_space; p++)
        m.owner[p] = static_cast<uint8_t>(
                l.worker_of_hash(rss_hash_dst(a, static_cast<uint16_t>(p), key)));
}

} // namespace isar::dp

// ---- port set-up -------------------------------------------------------------
namespace isar::dp {

namespace {
constexpr uint64_t rss_dst_only = RTE_ETH_RSS_L3_DST_ONLY | RTE_ETH_RSS_L4_DST_ONLY;
} // namespace

bool rss_dst_capable(const rte_eth_dev_info& info) noexcept
{
    const uint64_t need = RTE_ETH_RSS_NONFRAG_IPV4_UDP | rss_dst_only;
    return (info.flow_type_rss_offloads & need) == need && info.reta_size > 0;
}

void rss_dst_conf(rte_eth_conf& conf, const rte_eth_dev_info& info, std::vector<uint8_t>& key)
{
    key.resize(info.hash_key_size != 0 ? info.hash_key_size : rss_key_size);
    for (size_t i = 0; i < key.size(); i++)
        key[i] = rss_key[i % rss_key_size];
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = key.data();
    conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<uint8_t>(key.size());
    // Destination address and port: both ours, so the hash of every packet
    // to a relay port is known before it comes. Other IP traffic has no
    // hash (queue 0).
    conf.rx_adv_conf.rss_conf.rss_hf =
            ((RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_NONFRAG_IPV6_UDP) &
             info.flow_type_rss_offloads) |
            rss_dst_only;
}

void rss_dst_families(const rte_eth_dev_info& info, rss_layout& l) noexcept
{
    l.v4 = true;
    l.v6 = (info.flow_type_rss_offloads & RTE_ETH_RSS_NONFRAG_IPV6_UDP) != 0;
}

int rss_program_reta(uint16_t port, uint16_t reta_size, uint16_t nrxq, rss_layout& l)
{
    if (reta_size == 0 || nrxq == 0)
        return -EINVAL;
    std::vector<rte_eth_rss_reta_entry64> conf((reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) /
                                               RTE_ETH_RETA_GROUP_SIZE);
    l.reta = paired_reta(reta_size, nrxq, rss_key);
    for (unsigned i = 0; i < reta_size; i++) {
        auto& g = conf[i / RTE_ETH_RETA_GROUP_SIZE];
        g.mask |= 1ull << (i % RTE_ETH_RETA_GROUP_SIZE);
        g.reta[i % RTE_ETH_RETA_GROUP_SIZE] = l.reta[i];
    }
    return rte_eth_dev_rss_reta_update(port, conf.data(), reta_size);
}

int rss_flow_rules(uint16_t port, uint16_t nrxq, rss_layout& l, std::string& why)
{
    if (nrxq < 2 || (nrxq & (nrxq - 1)) != 0) {
        why = std::to_string(nrxq) + " RX queues (rte_flow RSS needs a power of two)";
        return -EINVAL;
    }
    std::vector<uint16_t> queues(nrxq);
    for (uint16_t q = 0; q < nrxq; q++)
        queues[q] = q;
    for (const bool v6 : {false, true}) {
        rte_flow_attr attr{};
        attr.ingress = 1;
        const rte_flow_item pattern[] = {
                {RTE_FLOW_ITEM_TYPE_ETH, nullptr, nullptr, nullptr},
                {v6 ? RTE_FLOW_ITEM_TYPE_IPV6 : RTE_FLOW_ITEM_TYPE_IPV4, nullptr, nullptr,
                 nullptr},
                {RTE_FLOW_ITEM_TYPE_UDP, nullptr, nullptr, nullptr},
                {RTE_FLOW_ITEM_TYPE_END, nullptr, nullptr, nullptr},
        };
        rte_flow_action_rss rss{};
        rss.func = RTE_ETH_HASH_FUNCTION_TOEPLITZ;
        rss.types = (v6 ? RTE_ETH_RSS_NONFRAG_IPV6_UDP : RTE_ETH_RSS_NONFRAG_IPV4_UDP) |
                    rss_dst_only;
        rss.key_len = rss_key_size;
        rss.key = rss_key;
        rss.queue_num = nrxq;
        rss.queue = queues.data();
        const rte_flow_action actions[] = {{RTE_FLOW_ACTION_TYPE_RSS, &rss},
                                           {RTE_FLOW_ACTION_TYPE_END, nullptr}};
        rte_flow_error fe{};
        int rc = rte_flow_validate(port, &attr, pattern, actions, &fe);
        if (rc == 0 && rte_flow_create(port, &attr, pattern, actions, &fe) == nullptr)
            rc = -rte_errno;
        if (rc != 0) {
            if (v6) // IPv4 has its rule: IPv6 hashes as before (handoff, counted)
                continue;
            why = fe.message != nullptr ? fe.message : strerror(-rc);
            return rc;
        }
        (v6 ? l.v6 : l.v4) = true;
    }
    l.reta = queues;
    return 0;
}

} // namespace isar::dp
