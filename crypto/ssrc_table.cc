// The SSRC table's cold paths: reserving the overflow (control thread),
// claiming and recycling slots (first packet of a new SSRC, on the worker:
// no allocation), and the coarse clock slots are stamped with.
#include "crypto/ssrc_table.h"

#include <atomic>
#include <new>

namespace isar::crypto {

namespace {
std::atomic<uint32_t> g_clock_s{0};
}

thread_local constinit relay_hint tls_relay_hint;

void set_clock_seconds(uint32_t now) noexcept { g_clock_s.store(now, std::memory_order_relaxed); }
uint32_t clock_seconds() noexcept { return g_clock_s.load(std::memory_order_relaxed); }

namespace detail {

bool ssrc_table::reserve(uint32_t slots, uint32_t per_source)
{
    if (slots > max_reserved_ssrcs || used() != 0) {
        return false; // only before first use: slot numbers must not move
    }
    if (slots <= max_ssrcs) {
        ovf_.reset();
        return true;
    }
    auto o = std::unique_ptr<ssrc_overflow>(new (std::nothrow) ssrc_overflow);
    if (o == nullptr) {
        return false;
    }
    o->cap = slots - static_cast<uint32_t>(max_ssrcs);
    o->per_source = per_source;
    uint32_t hs = 1;
    while (hs < 2 * o->cap) {
        hs <<= 1;
    }
    o->hmask = hs - 1;
    o->slots.reset(new (std::nothrow) ssrc_state[o->cap]);
    o->hash.reset(new (std::nothrow) uint16_t[hs]());
    if (!o->slots || !o->hash) {
        return false;
    }
    ovf_ = std::move(o);
    return true;
}

size_t ssrc_table::heap_bytes() const noexcept
{
    if (ovf_ == nullptr) {
        return 0;
    }
    return sizeof(ssrc_overflow) +
           size_t{ovf_->cap} * sizeof(ssrc_state) +
           (size_t{ovf_->hmask} + 1) * sizeof(uint16_t);
}

ssrc_state* ssrc_table::find_overflow(uint32_t ssrc) noexcept
{
    ssrc_overflow& o = *ovf_;
    for (uint32_t j = home(ssrc);; j = (j + 1) & o.hmask) {
        const uint16_t e = o.hash[j];
        if (e == 0) {
            return nullptr;
        }
        if (o.slots[e - 1].ssrc == ssrc) {
            return &o.slots[e - 1];
        }
    }
}

void ssrc_table::hash_insert(uint32_t id) noexcept
{
    ssrc_overflow& o = *ovf_;
    const uint32_t k = id - static_cast<uint32_t>(max_ssrcs);
    uint32_t j = home(o.slots[k].ssrc);
    while (o.hash[j] != 0) {
        j = (j + 1) & o.hmask;
    }
    o.hash[j] = static_cast<uint16_t>(k + 1);
}

// Linear probing, deletion by backward shift (no tombstones to clean up).
void ssrc_table::hash_erase(uint32_t id) noexcept
{
    ssrc_overflow& o = *ovf_;
    const uint32_t k = id - static_cast<uint32_t>(max_ssrcs);
    uint32_t i = home(o.slots[k].ssrc);
    while (o.hash[i] != k + 1) {
        i = (i + 1) & o.hmask;
    }
    for (uint32_t j = (i + 1) & o.hmask; o.hash[j] != 0; j = (j + 1) & o.hmask) {
        const uint32_t h = home(o.slots[o.hash[j] - 1].ssrc);
        // Move the entry at j to the hole at i unless its home lies
        // cyclically in (i, j].
        const bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (!stays) {
            o.hash[i] = o.hash[j];
            i = j;
        }
    }
    o.hash[i] = 0;
}

// The least recently used slot: of `src` (any age) or, with !own_only, of
// anyone but idle for at least ssrc_idle_evict_s. -1: none.
int64_t ssrc_table::pick_victim(uint8_t src, bool own_only, uint16_t now) noexcept
{
    int64_t best = -1;
    uint16_t best_age = 0;
    const uint32_t nov = ovf_ != nullptr ? ovf_->used : 0;
    for (uint32_t i = 0; i < n_ + nov; ++i) {
        const uint32_t id = i < n_ ? i : static_cast<uint32_t>(max_ssrcs) + (i - n_);
        if (own_only && at(id).src != src) {
            continue;
        }
        const uint16_t age = static_cast<uint16_t>(now - at(id).stamp);
        if (!own_only && age < ssrc_idle_evict_s) {
            continue;
        }
        if (best < 0 || age > best_age) {
            best = id;
            best_age = age;
        }
    }
    return best;
}

bool ssrc_table::may_claim() const noexcept
{
    if (n_ < max_ssrcs || (ovf_ != nullptr && (ovf_->used < ovf_->cap || ovf_->per_source != 0))) {
        return true;
    }
    const uint16_t now = static_cast<uint16_t>(clock_seconds());
    for (uint32_t i = 0; i < n_; ++i) {
        if (static_cast<uint16_t>(now - slots_[i].stamp) >= ssrc_idle_evict_s) {
            return true;
        }
    }
    for (uint32_t i = 0; ovf_ != nullptr && i < ovf_->used; ++i) {
        if (static_cast<uint16_t>(now - ovf_->slots[i].stamp) >= ssrc_idle_evict_s) {
            return true;
        }
    }
    return false;
}

ssrc_state* ssrc_table::claim(uint32_t ssrc) noexcept
{
    const relay_hint& h = tls_relay_hint;
    const uint8_t src = h.armed ? h.source : 0;
    const uint16_t now = static_cast<uint16_t>(clock_seconds());
    int64_t id = -1;
    bool fresh = true;
    if (ovf_ != nullptr && ovf_->per_source != 0 && ovf_->count[src] >= ovf_->per_source) {
        id = pick_victim(src, true, now); // at its quota: recycle its own
        fresh = false;
    } else if (n_ < max_ssrcs) {
        id = n_++;
    } else if (ovf_ != nullptr && ovf_->used < ovf_->cap) {
        id = static_cast<int64_t>(max_ssrcs) + ovf_->used++;
    } else {
        id = pick_victim(src, false, now);
        fresh = false;
    }
    if (id < 0) {
        return nullptr;
    }
    const auto uid = static_cast<uint32_t>(id);
    const bool in_ovf = uid >= max_ssrcs;
    ssrc_state& s = at(uid);
    if (!fresh) { // forget the old SSRC: its ROC and replay window go with it
        if (ovf_ != nullptr) {
            ovf_->count[s.src]--;
        }
        if (in_ovf) {
            hash_erase(uid);
        }
    }
    s = ssrc_state{};
    s.ssrc = ssrc;
    s.stamp = now;
    s.src = src;
    if (ovf_ != nullptr) {
        ovf_->count[src]++;
    }
    if (in_ovf) {
        hash_insert(uid);
    } else {
        last_ = uid;
    }
    return &s;
}

} // namespace detail
} // namespace isar::crypto
