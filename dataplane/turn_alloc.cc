#include "dataplane/turn_alloc.h"

#include <rte_hash.h>
#include <rte_hash_crc.h>

namespace isar::dp {

int turn_client_table::init(const char* name, uint32_t capacity, int socket) noexcept
{
    release();
    rte_hash_parameters p{};
    p.name = name;
    // rte_hash needs room beyond the entries it is asked to hold (buckets
    // fill unevenly); the capacity itself is enforced by insert().
    p.entries = capacity < 64 ? 128 : capacity + capacity / 4;
    p.key_len = sizeof(turn_client_key);
    p.hash_func = rte_hash_crc;
    p.hash_func_init_val = 0;
    p.socket_id = socket;
    p.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
    h_ = rte_hash_create(&p);
    if (h_ == nullptr)
        return -ENOMEM;
    capacity_ = capacity;
    size_ = 0;
    return 0;
}

void turn_client_table::release() noexcept
{
    if (h_ != nullptr)
        rte_hash_free(h_);
    h_ = nullptr;
    size_ = capacity_ = 0;
}

turn_alloc* turn_client_table::lookup(const turn_client_key& k) const noexcept
{
    void* v = nullptr;
    if (h_ == nullptr || rte_hash_lookup_data(h_, &k, &v) < 0)
        return nullptr;
    return static_cast<turn_alloc*>(v);
}

void turn_client_table::lookup_bulk(const turn_client_key** keys, unsigned n,
                                    turn_alloc** out) const noexcept
{
    if (n > max_bulk)
        n = max_bulk;
    void* data[max_bulk];
    uint64_t hits = 0;
    if (h_ == nullptr || n == 0 ||
        rte_hash_lookup_bulk_data(h_, reinterpret_cast<const void**>(keys), n, &hits, data) < 0)
        hits = 0;
    for (unsigned i = 0; i < n; i++)
        out[i] = (hits >> i) & 1 ? static_cast<turn_alloc*>(data[i]) : nullptr;
}

int turn_client_table::insert(const turn_client_key& k, turn_alloc* a) noexcept
{
    if (h_ == nullptr)
        return -ENOSPC;
    if (lookup(k) != nullptr)
        return -EEXIST;
    if (size_ >= capacity_)
        return -ENOSPC;
    if (rte_hash_add_key_data(h_, &k, a) != 0)
        return -ENOSPC;
    size_++;
    return 0;
}

bool turn_client_table::erase(const turn_client_key& k, const turn_alloc* a) noexcept
{
    if (a == nullptr || lookup(k) != a)
        return false;
    rte_hash_del_key(h_, &k);
    size_--;
    return true;
}

} // namespace isar::dp
