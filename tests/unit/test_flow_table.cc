// dataplane/flow_table.h: a worker's (interface, relay port) -> leg table:
// slots by key, duplicate and full tables refused, a stale delete never
// removes a newer leg, keys outside the interfaces refused; how many flows'
// hot lines the caches hold (the act pass's prefetch schedule).
#include "dataplane/flow_table.h"
#include "dataplane/leg.h"
#include "dataplane/turn_alloc.h"
#include "dataplane/worker.h"
#include "tests/support/eal_env.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>
#include <gtest/gtest.h>
#include <rte_lcore.h>

ISAR_TEST_EAL_ENV("test_flow_table");

using namespace isar;

namespace {

int socket() { return static_cast<int>(rte_socket_id()); }

} // namespace

TEST(FlowTable, InsertLookupErase)
{
    ASSERT_TRUE(test::eal_env::ready());
    dp::flow_table ft;
    ASSERT_EQ(ft.init(2, 16, socket()), 0);
    dp::leg a, b;
    const uint32_t ka = dp::flow_key(0, 30000), kb = dp::flow_key(1, 30000);
    EXPECT_EQ(ft.lookup(ka), nullptr);
    EXPECT_EQ(ft.insert(ka, &a), 0);
    EXPECT_EQ(ft.insert(kb, &b), 0); // same port, other interface: another slot
    EXPECT_EQ(ft.lookup(ka), &a);
    EXPECT_EQ(ft.lookup(kb), &b);
    EXPECT_EQ(ft.lookup(dp::flow_key(0, 30001)), nullptr);
    EXPECT_EQ(ft.size(), 2u);
    EXPECT_TRUE(ft.erase(ka, &a));
    EXPECT_EQ(ft.lookup(ka), nullptr);
    EXPECT_EQ(ft.lookup(kb), &b);
    EXPECT_EQ(ft.size(), 1u);
}

TEST(FlowTable, RefusesDuplicatesFullTablesAndForeignKeys)
{
    ASSERT_TRUE(test::eal_env::ready());
    dp::flow_table ft;
    ASSERT_EQ(ft.init(1, 2, socket()), 0);
    dp::leg a, b, c;
    EXPECT_EQ(ft.insert(dp::flow_key(0, 1), &a), 0);
    EXPECT_EQ(ft.insert(dp::flow_key(0, 1), &b), -EEXIST);
    EXPECT_EQ(ft.lookup(dp::flow_key(0, 1)), &a) << "a refused insert must not replace";
    EXPECT_EQ(ft.insert(dp::flow_key(0, 2), &b), 0);
    EXPECT_EQ(ft.insert(dp::flow_key(0, 3), &c), -ENOSPC) << "capacity is 2";
    EXPECT_EQ(ft.lookup(dp::flow_key(0, 3)), nullptr);
    // Interface 1 does not exist in a one-interface table.
    EXPECT_EQ(ft.insert(dp::flow_key(1, 3), &c), -EINVAL);
    EXPECT_EQ(ft.lookup(dp::flow_key(1, 3)), nullptr);
    EXPECT_FALSE(ft.erase(dp::flow_key(1, 3), &c));
    EXPECT_EQ(ft.size(), 2u);
}

TEST(FlowTable, StaleEraseKeepsTheNewerLeg)
{
    ASSERT_TRUE(test::eal_env::ready());
    dp::flow_table ft;
    ASSERT_EQ(ft.init(1, 8, socket()), 0);
    dp::leg old_leg, new_leg;
    const uint32_t k = dp::flow_key(0, 40000);
    ASSERT_EQ(ft.insert(k, &old_leg), 0);
    ASSERT_TRUE(ft.erase(k, &old_leg));
    ASSERT_EQ(ft.insert(k, &new_leg), 0); // the port was reused
    EXPECT_FALSE(ft.erase(k, &old_leg)) << "the old session's delete";
    EXPECT_EQ(ft.lookup(k), &new_leg);
    EXPECT_FALSE(ft.erase(k, static_cast<const dp::leg*>(nullptr)));
    EXPECT_EQ(ft.size(), 1u);
    ft.release();
    EXPECT_EQ(ft.lookup(k), nullptr) << "a released table holds nothing";
}

// A slot holds a leg or a TURN allocation (tagged): each is found only as
// what it is, and erasing one never removes the other.
TEST(FlowTable, AllocationsAreTagged)
{
    ASSERT_TRUE(test::eal_env::ready());
    dp::flow_table ft;
    ASSERT_EQ(ft.init(1, 16, socket()), 0);
    dp::turn_alloc a;
    dp::leg l;
    const uint32_t ka = dp::flow_key(0, 30010), kl = dp::flow_key(0, 30011);
    ASSERT_EQ(ft.insert(ka, &a), 0);
    ASSERT_EQ(ft.insert(kl, &l), 0);
    EXPECT_EQ(ft.lookup(ka), nullptr) << "an allocation is not a leg";
    EXPECT_EQ(dp::entry_alloc(ft.lookup_entry(ka)), &a);
    EXPECT_EQ(dp::entry_alloc(ft.lookup_entry(kl)), nullptr);
    EXPECT_EQ(ft.lookup(kl), &l);
    EXPECT_EQ(ft.insert(ka, &l), -EEXIST);
    EXPECT_FALSE(ft.erase(ka, reinterpret_cast<const dp::leg*>(&a)))
            << "the same address as a leg is another entry";
    EXPECT_TRUE(ft.erase(ka, &a));
    EXPECT_EQ(ft.lookup_entry(ka), 0u);
    EXPECT_EQ(ft.size(), 1u);
}

// A leg's entry may carry the plain-path hint (leg_plain_tag): the leg is
// found the same with or without it, the hint follows set_plain only for
// the leg the slot holds, and erasing works whatever the hint.
TEST(FlowTable, PlainHintTagsALegEntry)
{
    ASSERT_TRUE(test::eal_env::ready());
    dp::flow_table ft;
    ASSERT_EQ(ft.init(1, 16, socket()), 0);
    dp::leg l, other;
    dp::turn_alloc a;
    const uint32_t kl = dp::flow_key(0, 30020), ka = dp::flow_key(0, 30021);
    ASSERT_EQ(ft.insert(kl, &l, true), 0);
    ASSERT_EQ(ft.insert(ka, &a), 0);
    EXPECT_EQ(ft.lookup(kl), &l);
    EXPECT_TRUE(dp::entry_leg_plain(ft.lookup_entry(kl)));
    EXPECT_FALSE(dp::entry_leg_plain(ft.lookup_entry(ka))) << "an allocation is never plain";
    ft.set_plain(kl, &l, false);
    EXPECT_FALSE(dp::entry_leg_plain(ft.lookup_entry(kl)));
    EXPECT_EQ(ft.lookup(kl), &l);
    ft.set_plain(kl, &other, true); // not the slot's leg: no change
    EXPECT_FALSE(dp::entry_leg_plain(ft.lookup_entry(kl)));
    EXPECT_EQ(ft.lookup(kl), &l);
    ft.set_plain(ka, reinterpret_cast<const dp::leg*>(&a), true); // an allocation's slot
    EXPECT_EQ(dp::entry_alloc(ft.lookup_entry(ka)), &a);
    ft.set_plain(kl, &l, true);
    EXPECT_FALSE(ft.erase(kl, &other));
    EXPECT_TRUE(ft.erase(kl, &l));
    EXPECT_EQ(ft.lookup_entry(kl), 0u);
    EXPECT_EQ(ft.size(), 1u);
}

// How many flows' hot lines (128 bytes each) fit in half of the L2 or of the
// LLC (worker::spread_min_flows/spread_max_flows, burst.cc): sizes as sysfs
// writes them, the LLC shared by the workers, the L2 each core's own.
TEST(FlowTable, CacheSizesAsSysfsWritesThem)
{
    char dir[] = "/tmp/isar_cacheXXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    const std::string f = std::string(dir) + "/size";
    const auto size_of = [&](const char* text) {
        FILE* w = fopen(f.c_str(), "w");
        EXPECT_NE(w, nullptr);
        if (w == nullptr)
            return uint64_t{1};
        fputs(text, w);
        fclose(w);
        return dp::cache_size_file(f.c_str());
    };
    EXPECT_EQ(size_of("32768K\n"), uint64_t{32} << 20);
    EXPECT_EQ(size_of("1024K\n"), uint64_t{1} << 20);
    EXPECT_EQ(size_of("2M\n"), uint64_t{2} << 20);
    EXPECT_EQ(size_of("4096"), 4096u);
    EXPECT_EQ(size_of("1G\n"), uint64_t{1} << 30);
    EXPECT_EQ(size_of("2000G\n"), 0u); // beyond any cache
    EXPECT_EQ(size_of("K\n"), 0u);      // no number
    EXPECT_EQ(size_of(""), 0u);          // empty
    EXPECT_EQ(size_of("-5K\n"), 0u);    // not a size
    EXPECT_EQ(size_of("99999999999999K"), 0u); // beyond any cache
    remove(f.c_str());
    EXPECT_EQ(dp::cache_size_file(f.c_str()), 0u); // missing
    rmdir(dir);
}

TEST(FlowTable, FlowsInCache)
{
    EXPECT_EQ(dp::flows_in_cache(uint64_t{32} << 20, 1), 131072u); // 16 MiB / 128 B
    EXPECT_EQ(dp::flows_in_cache(uint64_t{32} << 20, 2), 65536u);
    EXPECT_EQ(dp::flows_in_cache(uint64_t{32} << 20, 0), 131072u); // no division by 0
    EXPECT_EQ(dp::flows_in_cache(uint64_t{1} << 20, 1), 4096u);
    EXPECT_EQ(dp::flows_in_cache(uint64_t{1} << 45, 1), UINT32_MAX); // clamped
    // This machine's, each CPU's from its own sysfs files (the fallbacks where
    // it has none, as for a CPU that does not exist): the L2 each core's own,
    // the LLC divided among the workers.
    const unsigned ncpu = static_cast<unsigned>(sysconf(_SC_NPROCESSORS_CONF));
    for (unsigned cpu : {0u, ncpu - 1, 1u << 20}) {
        for (unsigned index : {2u, 3u}) {
            const std::string f = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) +
                                  "/cache/index" + std::to_string(index) + "/size";
            const uint64_t sysfs = dp::cache_size_file(f.c_str());
            const uint64_t bytes =
                    sysfs != 0 ? sysfs : index == 2 ? uint64_t{512} << 10 : uint64_t{8} << 20;
            EXPECT_EQ(dp::flows_in_cpu_cache(index, 1, cpu), dp::flows_in_cache(bytes, 1)) << f;
        }
    }
    EXPECT_EQ(dp::flows_in_cpu_cache(2, 1, 1u << 20), 2048u); // 512 KiB / 2 / 128 B
    EXPECT_EQ(dp::flows_in_cpu_cache(3, 1, 1u << 20), 32768u); // 8 MiB
    EXPECT_EQ(dp::flows_in_cpu_cache(2, 4, 0), dp::flows_in_cpu_cache(2, 1, 0));
    EXPECT_EQ(dp::flows_in_cpu_cache(3, 2, 0), dp::flows_in_cpu_cache(3, 1, 0) / 2);
}
