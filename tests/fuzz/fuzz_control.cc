// libFuzzer target for the control protocol (control/commands.h): each line
// of the input is a request, handled by a real ctl::commands over a real
// dataplane (one net_ring port, one worker) with its session_manager and
// neighbor_manager, stepped from this thread like tests/dataplane's relay
// fixture. After the lines, the worker and the managers are polled until every
// request has its reply (session.create, leg.update and session.delete answer
// only after the worker's acknowledgement). Checks (abort if not): exactly one
// reply per request, a JSON object that serializes the way the management
// socket does it; nothing throws out of handle_line. Then every session is
// deleted and the commands object is made anew, so inputs do not depend on
// each other (drain state included).
// Seeds (make_seeds.py): valid and invalid requests of every command.
#include "control/commands.h"
#include "control/config.h"
#include "control/neighbor_manager.h"
#include "control/session_manager.h"
#include "dataplane/dataplane.h"
#include "tests/fuzz/fuzz_eal.h"
#include "tests/support/ring_port.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <rte_byteorder.h>

using namespace isar;
using json = nlohmann::json;

namespace {

struct world {
    ctl::config cfg;
    std::unique_ptr<test::ring_port> port;
    std::unique_ptr<dp::dataplane> dp;
    std::unique_ptr<ctl::session_manager> sm;
    std::unique_ptr<ctl::neighbor_manager> nm;
    ~world()
    {
        nm.reset();
        sm.reset();
        dp.reset();
        port.reset();
    }
};
world* w;

[[noreturn]] void fail(const std::string& what)
{
    std::fprintf(stderr, "fuzz_control: %s\n", what.c_str());
    std::abort();
}

void init_once()
{
    if (w != nullptr)
        return;
    fuzz::eal_init("fuzz_control");
    w = new world;
    w->port = std::make_unique<test::ring_port>("fuzzctl0", 2, 1024);
    if (!w->port->ok())
        fail("cannot create the ring port");
    w->cfg.port_min = 30000;
    w->cfg.port_max = 30199;
    w->cfg.max_legs = 4096;
    w->cfg.mbufs = 4095;
    ctl::interface_config ic;
    ic.port = w->port->id();
    ic.address = 0xc6120001; // 198.18.0.1/24
    ic.prefix_len = 24;
    w->cfg.interfaces.push_back(ic);
    dp::dp_config dc;
    dc.mbufs = w->cfg.mbufs;
    dc.max_legs = w->cfg.max_legs;
    dc.ring_size = 1024;
    dc.rx_desc = 512;
    dc.tx_desc = 512;
    dc.relay_min = w->cfg.port_min;
    dc.relay_max = w->cfg.port_max;
    dc.ifaces.push_back({ic.port, {{4, rte_cpu_to_be_32(ic.address), {}, ic.prefix_len}}, 0});
    w->dp = std::make_unique<dp::dataplane>();
    std::string err;
    if (w->dp->init(dc, 1, err) != 0)
        fail("dataplane init: " + err);
    w->sm = std::make_unique<ctl::session_manager>(*w->dp, w->cfg);
    w->nm = std::make_unique<ctl::neighbor_manager>(*w->dp);
    std::atexit([] {
        delete w;
        w = nullptr;
    });
}

unsigned poll()
{
    unsigned work = 0;
    for (unsigned i = 0; i < w->dp->nworkers(); i++)
        work += w->dp->wk(i).poll_once();
    work += w->sm->poll();
    work += w->nm->poll();
    w->port->flush(); // whatever the worker sent
    return work;
}

struct pending {
    unsigned replies = 0;
};

ctl::commands::reply_fn checker(std::shared_ptr<pending> p)
{
    return [p](const json& j) {
        if (++p->replies > 1)
            fail("second reply: " + j.dump(-1, ' ', false, json::error_handler_t::replace));
        if (!j.is_object())
            fail("reply is not an object");
        // What mgmt_listener.cc does with it.
        std::string out = j.dump(-1, ' ', false, json::error_handler_t::replace);
        if (out.empty())
            fail("empty reply");
    };
}

void settle(const std::vector<std::shared_ptr<pending>>& ps)
{
    for (unsigned round = 0; round < 1000; round++) {
        bool all = true;
        for (auto& p : ps)
            all = all && p->replies == 1;
        if (all && !w->sm->pending())
            return;
        poll();
    }
    for (auto& p : ps)
        if (p->replies != 1)
            fail("a request got no reply");
    fail("the session manager did not settle");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    init_once();
    if (size > 8192)
        return 0;
    ctl::commands cmds(*w->dp, *w->sm, *w->nm, w->cfg);
    std::vector<std::shared_ptr<pending>> ps;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    unsigned nlines = 0;
    while (!in.empty() && nlines < 32) {
        const size_t nl = in.find('\n');
        const std::string_view line = in.substr(0, nl);
        in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
        nlines++;
        ps.push_back(std::make_shared<pending>());
        cmds.handle_line(line, checker(ps.back()));
        // Some requests are answered right away, some after the worker's ack;
        // a few polls between lines let both orders happen.
        if (nlines % 2 == 0)
            poll();
    }
    settle(ps);
    // Back to no sessions for the next input.
    std::vector<std::string> ids;
    for (const auto& [id, s] : w->sm->sessions())
        ids.push_back(id);
    ps.clear();
    for (const auto& id : ids) {
        ps.push_back(std::make_shared<pending>());
        cmds.handle(json{{"cmd", "session.delete"}, {"session", id}}, checker(ps.back()));
    }
    settle(ps);
    if (!w->sm->sessions().empty())
        fail("sessions left after deleting them all");
    return 0;
}
