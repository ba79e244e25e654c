// Fan-out: one received packet to every target of a conference leg
// (worker::fan_out). The last target gets the packet itself, every other one
// a copy. Hot path: no allocation beyond the mbuf pool, no lock, syscall or log.
//
// rte_pktmbuf_copy() costs a copy several cache misses in series: it
// allocates an mbuf whose header line is cold (the mbufs a pool hands out
// were last freed by whoever transmitted them), reads that line back (reset
// reads buf_len and ol_flags), then copies the metadata into the second
// line. Here copies come from a per-worker stash of pool mbufs whose two
// header lines and first data lines were prefetched for writing while
// earlier packets were copied, so the misses overlap; the copy itself then
// only stores into them - the same fields rte_pktmbuf_copy() sets, the
// dynamic fields included (single segment: classify drops chained packets).
#include <cpuid.h>

#include <bit>
#include <cstddef>
#include <cstring>

#include <rte_mempool.h>
#include <rte_prefetch.h>

#include "dataplane/send_inl.h"
#include "dataplane/worker.h"

namespace isar::dp {

namespace {

// PREFETCHW (CPUID 0x80000001 ECX bit 8, "3DNowPrefetch": AMD since K8,
// Intel since Broadwell) asks for a line in the exclusive state a store
// needs; a plain prefetch of a line another core last wrote brings it
// shared, and the store then waits for a second round trip to own it.
bool cpu_has_prefetchw() noexcept
{
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(0x80000001, &a, &b, &c, &d) != 0 && (c & (1u << 8)) != 0;
}

inline void prefetch_for_store(const void* p, bool prefetchw) noexcept
{
    if (prefetchw)
        asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
    else
        __builtin_prefetch(p, 1, 3);
}

} // namespace

void worker::init_copy_layout() noexcept
{
    // Where a pool mbuf's data starts after rte_pktmbuf_reset(): the pool's
    // private size and data room are fixed, so the address is known without
    // reading the (cold) mbuf.
    const uint16_t room = rte_pktmbuf_data_room_size(pool);
    copy_data_off_ = static_cast<uint16_t>(RTE_MIN(uint16_t{RTE_PKTMBUF_HEADROOM}, room));
    copy_buf_off_ = static_cast<uint32_t>(sizeof(rte_mbuf)) + rte_pktmbuf_priv_size(pool);
    copy_room_ = room;
    copy_prefetchw_ = cpu_has_prefetchw();
    copy_avx2_ = __builtin_cpu_supports("avx2") != 0;
}

// Prefetches, for writing, the lines a copy of `data_len` bytes stores into:
// both header lines and the data lines (up to four: a voice or small video
// packet whole, the start of a larger one, whose rest the store buffer
// absorbs).
template <bool prefetchw>
static inline void prefetch_copies_as(rte_mbuf* const* c, unsigned n, uint32_t data_at,
                                      uint32_t lines) noexcept
{
    for (unsigned i = 0; i < n; i++) {
        auto* b = reinterpret_cast<char*>(c[i]);
        prefetch_for_store(b, prefetchw);
        prefetch_for_store(b + RTE_CACHE_LINE_SIZE, prefetchw);
        for (uint32_t k = 0; k < lines; k++)
            prefetch_for_store(b + data_at + 64 * k, prefetchw);
    }
}

void worker::prefetch_copies(rte_mbuf* const* c, unsigned n, uint32_t data_len) const noexcept
{
    const uint32_t lines = data_len > 4 * 64 ? 4 : (data_len + 63) / 64;
    const uint32_t data_at = copy_buf_off_ + copy_data_off_;
    if (copy_prefetchw_)
        prefetch_copies_as<true>(c, n, data_at, lines);
    else
        prefetch_copies_as<false>(c, n, data_at, lines);
}

// Takes up to `n` raw mbufs into `out`: first the stash's (prefetched while
// earlier packets were copied), then straight from the pool. When this call
// got all it asked for and fewer than copy_stash_ahead are left, refills the
// stash from the pool (to copy_stash_cap, or at least to copy_stash_ahead
// when the pool is short). Then prefetches the stash's next ones up to
// copy_stash_ahead, for the packets after this one: a copy's lines are then
// in cache when it is written, instead of each copy waiting for its own.
// Returns how many it got (fewer: the pool is short).
unsigned worker::take_copies(rte_mbuf** out, unsigned n, uint32_t data_len) noexcept
{
    const unsigned from_stash = RTE_MIN(n, copy_stash_n_ - copy_stash_pos_);
    for (unsigned i = 0; i < from_stash; i++)
        out[i] = copy_stash_[copy_stash_pos_ + i];
    copy_stash_pos_ += from_stash;
    unsigned got = from_stash;
    if (got < n) {
        if (rte_mempool_get_bulk(pool, reinterpret_cast<void**>(&out[got]), n - got) == 0) {
            prefetch_copies(&out[got], n - got, data_len);
            got = n;
        } else { // the pool is short: as many as it still has
            while (got < n && rte_mempool_get(pool, reinterpret_cast<void**>(&out[got])) == 0)
                got++;
        }
    }
    unsigned left = copy_stash_n_ - copy_stash_pos_;
    if (left < copy_stash_ahead && got == n) {
        // Refill: what is left (fewer than copy_stash_ahead) moves to the
        // front, the pool fills the rest.
        for (unsigned i = 0; i < left; i++)
            copy_stash_[i] = copy_stash_[copy_stash_pos_ + i];
        copy_stash_pf_ = copy_stash_pf_ > copy_stash_pos_ ? copy_stash_pf_ - copy_stash_pos_ : 0;
        copy_stash_pos_ = 0;
        copy_stash_n_ = left;
        if (rte_mempool_get_bulk(pool, reinterpret_cast<void**>(&copy_stash_[left]),
                                 copy_stash_cap - left) == 0)
            copy_stash_n_ = copy_stash_cap;
        else if (rte_mempool_get_bulk(pool, reinterpret_cast<void**>(&copy_stash_[left]),
                                      copy_stash_ahead - left) == 0)
            copy_stash_n_ = copy_stash_ahead; // a short pool: no more than the lead
        left = copy_stash_n_;
    }
    if (copy_stash_pf_ < copy_stash_pos_)
        copy_stash_pf_ = copy_stash_pos_;
    const unsigned pf_end = copy_stash_pos_ + RTE_MIN(left, copy_stash_ahead);
    if (copy_stash_pf_ < pf_end) {
        prefetch_copies(&copy_stash_[copy_stash_pf_], pf_end - copy_stash_pf_, data_len);
        copy_stash_pf_ = pf_end;
    }
    return got;
}

void worker::release_copy_stash() noexcept
{
    if (copy_stash_n_ > copy_stash_pos_)
        rte_mempool_put_bulk(pool, reinterpret_cast<void**>(&copy_stash_[copy_stash_pos_]),
                             copy_stash_n_ - copy_stash_pos_);
    copy_stash_n_ = copy_stash_pos_ = copy_stash_pf_ = 0;
}

// One 64-byte line: as two 32-byte vectors (two loads and two stores) in a
// function built for AVX2 (`wide`: copy_lines_avx2; a 64-byte memcpy becomes
// four 16-byte moves even there), else as a memcpy, four 16-byte moves (a
// 32-byte vector would go through the stack without AVX).
template <bool wide>
[[gnu::always_inline]] inline void copy_line(char* to, const char* from) noexcept
{
    if constexpr (wide) {
        using half = char __attribute__((vector_size(32)));
        half a, b;
        std::memcpy(&a, from, 32);
        std::memcpy(&b, from + 32, 32);
        std::memcpy(to, &a, 32);
        std::memcpy(to + 32, &b, 32);
    } else {
        std::memcpy(to, from, 64);
    }
}

// How many whole 64-byte lines a copy of `m` takes when its frame is small
// enough (up to 4: a voice frame) and both buffers have room for the bytes
// past its end, else 0 (copy the bytes alone).
uint32_t worker::copy_lines_of(const rte_mbuf* m) const noexcept
{
    const uint32_t whole = (uint32_t{m->data_len} + 63) & ~uint32_t{63};
    if (whole <= 4 * 64 && m->data_off + whole <= m->buf_len && copy_data_off_ + whole <= copy_room_)
        return whole / 64;
    return 0;
}

// `c` (raw from the pool: refcnt 1, one segment, no next - the pool's
// invariants) becomes a copy of the single-segment `m`: the fields a fresh
// mbuf must have, the receive flags the checksum choice reads, the data -
// `lines` whole lines (copy_lines_of(m)), unrolled: rte_memcpy's size
// dispatch costs more than the bytes past the frame's end; 0: the bytes
// (not with `wide`, whose callers always pass lines).
template <bool wide>
[[gnu::always_inline]] inline void worker::copy_into_inl(rte_mbuf* c, const rte_mbuf* m,
                                                         uint32_t lines) noexcept
{
    // data_off, refcnt (1, as the pool has it), nb_segs and port: one
    // 8-byte store, as PMDs rearm an mbuf (a little-endian word).
    static_assert(std::endian::native == std::endian::little);
    static_assert(offsetof(rte_mbuf, refcnt) == offsetof(rte_mbuf, data_off) + 2 &&
                  offsetof(rte_mbuf, nb_segs) == offsetof(rte_mbuf, data_off) + 4 &&
                  offsetof(rte_mbuf, port) == offsetof(rte_mbuf, data_off) + 6);
    const uint64_t rearm = uint64_t{copy_data_off_} | uint64_t{1} << 16 | uint64_t{1} << 32 |
                           uint64_t{m->port} << 48;
    std::memcpy(reinterpret_cast<char*>(c) + offsetof(rte_mbuf, data_off), &rearm, 8);
    // No external or indirect buffer: a pool mbuf's own.
    c->ol_flags = m->ol_flags & ~(RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT);
    // packet_type, pkt_len, data_len, vlan_tci, hash and vlan_tci_outer in
    // one copy (not buf_len, the pool's); one segment: pkt_len is data_len.
    constexpr size_t desc = offsetof(rte_mbuf, packet_type);
    static_assert(offsetof(rte_mbuf, vlan_tci_outer) + 2 == offsetof(rte_mbuf, buf_len) &&
                  offsetof(rte_mbuf, pkt_len) > desc && offsetof(rte_mbuf, hash) > desc);
    std::memcpy(reinterpret_cast<char*>(c) + desc, reinterpret_cast<const char*>(m) + desc,
                offsetof(rte_mbuf, buf_len) - desc);
    c->pkt_len = m->data_len;
    // The second line: offload lengths and the dynamic fields (a NIC's RX
    // timestamp, an application's stamp), as rte_pktmbuf_copy() has them.
    c->tx_offload = m->tx_offload;
    std::memcpy(c->dynfield1, m->dynfield1, sizeof(c->dynfield1));
    // The address from the layout, not from the (maybe still arriving)
    // header line's buf_addr.
    char* to = reinterpret_cast<char*>(c) + copy_buf_off_ + copy_data_off_;
    const char* from = rte_pktmbuf_mtod(m, const char*);
    switch (lines) {
    case 4:
        copy_line<wide>(to + 192, from + 192);
        [[fallthrough]];
    case 3:
        copy_line<wide>(to + 128, from + 128);
        [[fallthrough]];
    case 2:
        copy_line<wide>(to + 64, from + 64);
        [[fallthrough]];
    case 1:
        copy_line<wide>(to, from);
        return;
    default:
        break;
    }
    if constexpr (!wide)
        rte_memcpy(to, from, m->data_len);
}

void worker::copy_into(rte_mbuf* c, const rte_mbuf* m, uint32_t lines) noexcept
{
    copy_into_inl<false>(c, m, lines);
}

// The same for a small frame (lines 1-4), its lines in 32-byte moves (the
// build's baseline ISA has 16-byte ones); called where the CPU has AVX2
// (copy_avx2_). tune=generic: DPDK's -march=corei7 tuning would split every
// unaligned 32-byte load and store in two halves. Larger frames go to
// copy_into, whose rte_memcpy this function could not inline.
[[gnu::target("avx2,tune=generic")]] void worker::copy_lines_avx2(rte_mbuf* c, const rte_mbuf* m,
                                                                 uint32_t lines) noexcept
{
    copy_into_inl<true>(c, m, lines);
}

void worker::use_baseline_copies() noexcept
{
    init_copy_layout();
    copy_avx2_ = false;
}

void worker::fan_out(rte_mbuf* m, const pkt_meta& meta, leg* const* ready,
                     const packed_ep* remotes, unsigned n, bool protect, bool changed) noexcept
{
    // A copy must fit where the pool's mbufs have room (a jumbo frame
    // received into a larger pool's mbuf would not).
    rte_mbuf* copies[max_legs_per_session];
    unsigned got = 0;
    if (copy_room_ == 0) // the first fan-out of this worker (or its pool)
        init_copy_layout();
    if (m->nb_segs == 1 && m->data_len <= copy_room_ - copy_data_off_) {
        // The payload lines were prefetched (prefetch_leg_more, prefetch_ahead).
        rte_prefetch0(&m->tx_offload); // the second line (the dynamic fields)
        got = take_copies(copies, n - 1, m->data_len);
    }
    // The targets' next hops in the neighbour table (IPv4 out; an IPv6
    // target's is looked up as it is sent), while the copies' lines arrive;
    // not those emit()'s memo holds (a gateway: every target's).
    for (unsigned i = 0; i < n; i++) {
        const local_addr& la = laddrs[ready[i]->laddr];
        if (la.family == 4 && !ep_is_v6(remotes[i])) {
            const iface& out = ifaces[la.iface];
            const uint32_t nh = out.next_hop(ep_ip(remotes[i]));
            if (nh != memo_of(la.iface, nh).ip_be)
                out.neigh->prefetch(nh);
        }
    }
    if (got != 0) {
        const uint32_t lines = copy_lines_of(m); // the same for every copy
        if (copy_avx2_ && lines != 0) {
            for (unsigned i = 0; i < got; i++)
                copy_lines_avx2(copies[i], m, lines);
        } else {
            for (unsigned i = 0; i < got; i++)
                copy_into(copies[i], m, lines);
        }
    }
    for (unsigned i = got; i + 1 < n; i++) {
        ready[i]->stats.drop_pkt(drop::no_mbuf);
        stats.drop_pkt(drop::no_mbuf);
    }
    // Each copy is sent while the next ones' lines are still arriving. An
    // IPv4 packet's copies share what their checksums take from the header
    // they replace: summed here once, not read back from every copy.
    // (The sums known to be there, the rewrite reads nothing of the old
    // header. A copy SRTP protects gets new lengths and checksums: send_to,
    // its cost the cipher's.)
    if (meta.family == 4 && got != 0) {
        const auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, meta.l4_off);
        rewrite_sums sums =
                rewrite_sums_of(rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, meta.l3_off),
                                udp, meta.l4_off - meta.l3_off, 64);
        // Every copy has m's checksum and receive flags (copy_into).
        sums.ck = choose_udp_cksum(m, udp, changed, ifaces[meta.iface].rx_partial_cksum, false);
        for (unsigned i = 0; i < got; i++) {
            if (protect && ready[i]->out_ctx != nullptr)
                send_to(copies[i], meta, ready[i], remotes[i], true, changed);
            else
                send_to_inl(copies[i], meta, ready[i], remotes[i], false, changed, &sums);
        }
    } else {
        for (unsigned i = 0; i < got; i++)
            send_to_inl(copies[i], meta, ready[i], remotes[i], protect, changed);
    }
    send_to(m, meta, ready[n - 1], remotes[n - 1], protect, changed);
}

} // namespace isar::dp
