// Bounded latching (RTP Bleed while a leg waits for its first packet): a
// leg without a remote latches only within [relay] latch_window_s after it
// was created or its remote cleared, and only from its latch_from network.
// Each case fails without its check in worker::forward.
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"

#include <chrono>
#include <gtest/gtest.h>
#include <thread>

ISAR_TEST_EAL_ENV("test_latching");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

uint64_t leg_drop(relay& r, const std::string& id, const std::string& name, const char* reason)
{
    json l = leg_of(r, id, name);
    return l["drops"].value(reason, uint64_t{0});
}

} // namespace

TEST_F(RelayTest, LatchWindowClosesAfterItsSeconds)
{
    start();
    r->cfg.latch_window_s = 1; // read by session_manager at each create / clear
    r->learn(alice);
    r->learn(bob);
    auto [pa, pb] = r->two_legs("early", std::nullopt, bob);
    ASSERT_NE(pa, 0);
    r->inject(r->from_peer(alice, pa, rtp(1, 1)));
    r->settle();
    EXPECT_EQ(r->sent_by_workers(0).size(), 1u) << "within the window: latched and forwarded";
    EXPECT_EQ(leg_of(*r, "early", "a")["remote"], alice.ep());

    auto [qa, qb] = r->two_legs("late", std::nullopt, bob);
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    r->inject(r->from_peer(mallory, qa, rtp(1, 1)));
    r->settle();
    EXPECT_EQ(r->sent_by_workers(0).size(), 0u) << "past the window: nobody latches";
    EXPECT_EQ(r->drops(drop::latch_closed), 1u);
    EXPECT_EQ(leg_drop(*r, "late", "a", "latch_closed"), 1u);
    EXPECT_TRUE(leg_of(*r, "late", "a")["remote"].is_null());

    // Clearing the remote opens a new window.
    json u = r->call({{"cmd", "leg.update"}, {"session", "late"}, {"leg", "a"}, {"remote", nullptr}});
    ASSERT_FALSE(u.contains("error")) << u.dump();
    r->inject(r->from_peer(alice, qa, rtp(2, 1)));
    r->settle();
    EXPECT_EQ(r->sent_by_workers(0).size(), 1u) << "a cleared remote latches again";
    EXPECT_EQ(leg_of(*r, "late", "a")["remote"], alice.ep());
    // A latched leg is not affected by its window any more.
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    r->inject(r->from_peer(alice, qa, rtp(3, 1)));
    r->settle();
    EXPECT_EQ(r->sent_by_workers(0).size(), 1u);
    r->expect_accounted("latch window");
}

TEST_F(RelayTest, LatchFromRefusesOtherNetworks)
{
    start();
    r->learn(alice);
    r->learn(bob);
    r->learn(mallory);
    // alice is 198.18.0.10, mallory 198.18.0.102: a /27 takes .0-.31.
    json rep = r->call({{"cmd", "session.create"},
                        {"session", "s"},
                        {"legs",
                         {{{"name", "a"}, {"latch_from", "198.18.0.0/27"}},
                          {{"name", "b"}, {"remote", bob.ep()}}}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    const uint16_t pa = relay::local_port(rep, "a");
    r->inject(r->from_peer(mallory, pa, rtp(1, 1)));
    r->settle();
    EXPECT_EQ(r->sent_by_workers(0).size(), 0u) << "mallory may not take the leg";
    EXPECT_EQ(r->drops(drop::latch_refused), 1u);
    EXPECT_EQ(leg_drop(*r, "s", "a", "latch_refused"), 1u);
    r->inject(r->from_peer(alice, pa, rtp(2, 1)));
    r->settle();
    EXPECT_EQ(r->sent_by_workers(0).size(), 1u) << "alice is inside latch_from";
    EXPECT_EQ(leg_of(*r, "s", "a")["remote"], alice.ep());

    for (const char* bad : {"198.18.0.0/33", "nonsense", "1.2.3.4/0"}) {
        json e = r->call({{"cmd", "session.create"},
                          {"session", "t"},
                          {"legs", {{{"name", "a"}, {"latch_from", bad}}, {{"name", "b"}}}}});
        ASSERT_TRUE(e.contains("error")) << bad;
        EXPECT_NE(e["error"]["message"].get<std::string>().find("legs[0].latch_from"),
                  std::string::npos)
                << e.dump();
    }
    r->expect_accounted("latch_from");
}
