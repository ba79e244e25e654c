// SRTP contexts on the DPDK heap (srtp_memory.h).
//
// A context is one object of a size fixed per engine and suite (1-2 KiB).
// rte_malloc() would put a 64-byte header before each and round each up to a
// line: ~200 bytes more per SRTP leg than the C++ heap, 200 MB at a million
// legs. So contexts come from slabs instead: 2 MiB chunks of the DPDK heap,
// each cut into objects of one size class (size and alignment), no header
// per object. An empty chunk goes back to the heap unless it is its class's
// last one with room.
// Control-plane only (a mutex, no per-packet work).
#include "dataplane/srtp_memory.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_memory.h>

#include "crypto/srtp_context.h"

namespace isar::dp {

namespace {

constexpr size_t chunk_bytes = size_t{2} << 20;

struct chunk {
    char* base = nullptr;
    size_t obj = 0;       // object size (a multiple of the alignment)
    uint32_t nobj = 0;    // objects the chunk holds
    uint32_t used = 0;    // objects handed out and not freed
    uint32_t fresh = 0;   // objects never handed out start here
    void* free = nullptr; // freed objects, linked through their first word
    struct size_class* cls = nullptr;
};

struct size_class {
    size_t obj = 0, align = 0;
    std::vector<chunk*> partial; // chunks with room
};

struct slabs {
    std::mutex mu;
    std::map<std::pair<size_t, size_t>, std::unique_ptr<size_class>> classes;
    std::map<uintptr_t, std::unique_ptr<chunk>> chunks; // by base address
};
slabs& g_slabs()
{
    // Never destroyed: a context freed during static destruction still
    // finds its slab.
    static slabs* s = new slabs;
    return *s;
}

// Read by the metrics (control thread too; atomic all the same).
std::atomic<uint64_t> g_live{0}; // contexts on the DPDK heap now
std::atomic<uint64_t> g_cxx{0};  // allocations the DPDK heap could not serve, ever

// A new slab for class c, listed as having room; nullptr when the DPDK heap
// has no 2 MiB left. May throw bad_alloc (the bookkeeping), never with the
// slab taken.
chunk* new_chunk(slabs& s, size_class& c)
{
    auto ch = std::make_unique<chunk>();
    c.partial.reserve(c.partial.size() + 1); // the push_back below cannot throw
    // SOCKET_ID_ANY: the calling (control) thread's socket first.
    void* mem = rte_malloc_socket("isar_srtp", chunk_bytes, static_cast<unsigned>(c.align),
                                  SOCKET_ID_ANY);
    if (mem == nullptr)
        return nullptr;
    ch->base = static_cast<char*>(mem);
    ch->obj = c.obj;
    ch->nobj = static_cast<uint32_t>(chunk_bytes / c.obj);
    ch->cls = &c;
    chunk* raw = ch.get();
    try {
        s.chunks.emplace(reinterpret_cast<uintptr_t>(mem), std::move(ch));
    } catch (...) {
        rte_free(mem);
        throw;
    }
    c.partial.push_back(raw);
    return raw;
}

void* slab_alloc(size_t n, size_t align)
{
    align = std::max<size_t>(align, alignof(void*));
    const size_t obj = srtp_slab_stride(n, align);
    if (obj > chunk_bytes / 4) // not a context: leave it to the C++ heap
        return nullptr;
    slabs& s = g_slabs();
    std::lock_guard lk(s.mu);
    auto& cp = s.classes[{obj, align}];
    if (!cp) {
        cp = std::make_unique<size_class>();
        cp->obj = obj;
        cp->align = align;
    }
    size_class& c = *cp;
    chunk* ch = c.partial.empty() ? new_chunk(s, c) : c.partial.back();
    if (ch == nullptr)
        return nullptr;
    void* p;
    if (ch->free != nullptr) {
        p = ch->free;
        ch->free = *static_cast<void**>(p);
    } else {
        p = ch->base + size_t{ch->fresh++} * ch->obj;
    }
    if (++ch->used == ch->nobj)
        c.partial.pop_back(); // the one just used: always the last
    g_live.fetch_add(1, std::memory_order_relaxed);
    return p;
}

void* dpdk_alloc(size_t n, size_t align) noexcept
{
    void* p = nullptr;
    try {
        p = slab_alloc(n, align);
    } catch (const std::bad_alloc&) { // the bookkeeping's: the C++ heap is short too
        p = nullptr;
    }
    if (p == nullptr)
        g_cxx.fetch_add(1, std::memory_order_relaxed); // a metric says so
    return p; // nullptr: the C++ heap's (srtp_context_impl::operator new)
}

bool dpdk_release(void* p) noexcept
{
    slabs& s = g_slabs();
    std::lock_guard lk(s.mu);
    const auto a = reinterpret_cast<uintptr_t>(p);
    auto it = s.chunks.upper_bound(a);
    if (it == s.chunks.begin())
        return false; // the C++ heap's
    --it;
    chunk& ch = *it->second;
    if (a >= it->first + size_t{ch.nobj} * ch.obj)
        return false;
    size_class& c = *ch.cls;
    g_live.fetch_sub(1, std::memory_order_relaxed);
    *static_cast<void**>(p) = ch.free;
    ch.free = p;
    if (ch.used-- == ch.nobj) {
        try {
            c.partial.push_back(&ch); // room again (capacity kept: see below)
        } catch (const std::bad_alloc&) {
            // Not listed: its slots wait until it empties. Nothing is lost.
        }
    }
    // An empty slab goes back to the heap unless it is the class's last one
    // with room: a call created and ended at a slab's edge would otherwise
    // map and unmap 2 MiB (and, with VFIO, its DMA mapping) every time.
    if (ch.used == 0 && c.partial.size() > 1) {
        auto pos = std::find(c.partial.begin(), c.partial.end(), &ch);
        if (pos != c.partial.end())
            c.partial.erase(pos);
        rte_free(ch.base);
        s.chunks.erase(it);
    }
    return true;
}
} // namespace

size_t srtp_slab_stride(size_t size, size_t align) noexcept
{
    align = std::max<size_t>(align, alignof(void*));
    size_t obj = (size + align - 1) / align * align;
    // An odd number of lines between neighbours: with an even one (1 KiB, say)
    // the same field of every context would fall into a few cache sets only
    // (rte_mempool spreads its objects the same way).
    if (align <= 64 && obj % 64 == 0 && (obj / 64) % 2 == 0)
        obj += 64;
    return obj;
}

bool place_srtp_contexts(bool without_hugepages) noexcept
{
    if (!without_hugepages && rte_eal_has_hugepages() == 0)
        return false;
    crypto::set_context_memory({dpdk_alloc, dpdk_release});
    return true;
}

srtp_context_count srtp_context_counts() noexcept
{
    return {g_live.load(std::memory_order_relaxed), g_cxx.load(std::memory_order_relaxed)};
}

} // namespace isar::dp
