// isard: parse, validate, start the dataplane, run the control loop, stop.
#include <sched.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/ranges.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <systemd/sd-daemon.h>

#include "control/commands.h"
#include "control/config.h"
#include "control/event_loop.h"
#include "control/log.h"
#include "control/neighbor_manager.h"
#include "control/session_manager.h"
#include "control/stream_server.h"
#include "control/tls_context.h"
#include "control/turn_manager.h"
#include "crypto/srtp_context.h"
#include "dataplane/dataplane.h"
#include "dataplane/srtp_memory.h"

using namespace isar;

namespace {

dp::dp_config dataplane_config(const ctl::config& c)
{
    dp::dp_config d;
    for (const auto& i : c.interfaces) {
        dp::iface_config f;
        f.port_id = i.port;
        for (const ctl::ip_prefix& a : i.addrs) {
            dp::addr_config ac;
            ac.family = a.addr.family;
            ac.prefix_len = a.len;
            if (a.addr.is_v6())
                ac.ip6 = ctl::to_dp6(a.addr.v6);
            else
                ac.ip_be = rte_cpu_to_be_32(a.addr.v4);
            f.addrs.push_back(ac);
        }
        f.gateway_be = rte_cpu_to_be_32(i.gateway);
        if (i.gateway6) {
            f.gateway6 = ctl::to_dp6(i.gateway6->v6);
            f.has_gateway6 = true;
        }
        f.tx_cksum_offload = i.tx_checksum_offload;
        f.kernel = c.turn.streams();
        f.kernel_iface = i.kernel_iface;
        f.kernel_all = i.kernel_forward_all;
        d.ifaces.push_back(std::move(f));
    }
    d.max_legs = c.max_legs;
    d.mbufs = c.mbufs;
    d.idle_sleep_us = c.idle_sleep_us;
    d.strict_source = c.strict_source;
    d.relay_min = c.port_min;
    d.relay_max = c.port_max;
    d.turn_ports = c.turn.listen_udp;
    d.max_allocations = c.turn.enabled() ? c.turn.max_allocations : 0;
    d.turn_requests_per_s = c.turn.max_requests_per_s;
    d.stream_threads = c.turn.streams() ? c.turn.stream_threads : 0;
    // TURN over TCP/TLS: a kernel interface per interface takes the TCP.
    d.stream_ports = c.turn.listen_tcp;
    d.stream_ports.insert(d.stream_ports.end(), c.turn.listen_tls.begin(),
                          c.turn.listen_tls.end());
    d.kernel_pps = c.kernel_pps;
    d.arp_reply_pps = c.arp_reply_pps;
    d.arp_request_pps = c.arp_request_pps;
    d.arp_other_pps = c.arp_other_pps;
    d.icmp_pps = c.icmp_pps;
    d.stun_pps = c.stun_pps;
    d.dtls_pps = c.dtls_pps;
    d.nd_pps = c.nd_pps;
    d.neighbors = c.neighbors;
    d.rss_ownership = c.rss_ownership;
    d.hold_per_next_hop = c.hold_per_next_hop;
    d.hold_total = c.hold_total;
    return d;
}

uint32_t log_level(const std::string& s)
{
    return s == "error" ? RTE_LOG_ERR
           : s == "warning" ? RTE_LOG_WARNING
           : s == "notice" ? RTE_LOG_NOTICE
           : s == "debug" ? RTE_LOG_DEBUG
                           : RTE_LOG_INFO;
}

// `boot` minus the CPUs of the worker lcores; `boot` itself when that
// leaves none (e.g. every CPU polls).
cpu_set_t stream_cpus(const cpu_set_t& boot)
{
    cpu_set_t s = boot;
    unsigned lc;
    RTE_LCORE_FOREACH_WORKER(lc)
    {
        const rte_cpuset_t w = rte_lcore_cpuset(lc);
        for (unsigned c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &w))
                CPU_CLR(c, &s);
    }
    return CPU_COUNT(&s) > 0 ? s : boot;
}

// What the configuration points at, checked before anything starts: the
// TURN secrets (present, private) and the TLS certificate and key. False
// after printing why.
bool check_config_files(const ctl::config& cfg)
{
    std::string err;
    if (cfg.turn.enabled()) {
        // The copy read here is wiped at once.
        ctl::turn_secrets secrets;
        if (!ctl::load_turn_secrets(cfg.turn.auth_secret_file, secrets, err)) {
            fprintf(stderr, "isard: configuration error: turn.auth_secret_file: %s\n", err.c_str());
            return false;
        }
    }
    if (!cfg.turn.listen_tls.empty()) { // the certificate and key load (and the key is private)
        ctl::tls_context tls(cfg.turn.tls_cert, cfg.turn.tls_key);
        if (tls.reload(err) != 0) {
            fprintf(stderr, "isard: configuration error: turn.tls_cert/tls_key: %s\n", err.c_str());
            return false;
        }
    }
    return true;
}

// rte_eal_init with the configuration's [eal] args; false after printing why.
bool init_eal(const ctl::config& cfg)
{
    // Kept until exit, as argv would be: what EAL keeps of it is its business.
    static std::vector<std::string> eal;
    static std::vector<char*> eargv;
    eal = {"isard"};
    eal.insert(eal.end(), cfg.eal_args.begin(), cfg.eal_args.end());
    eargv.clear();
    for (auto& s : eal)
        eargv.push_back(s.data());
    if (rte_eal_init(static_cast<int>(eargv.size()), eargv.data()) < 0) {
        fprintf(stderr, "isard: EAL initialisation failed (see the EAL messages above); check "
                        "[eal] args: lcores (-l), --no-huge or hugepages, --vdev\n");
        return false;
    }
    return true;
}

// The "ready" lines in the log and to systemd, once the control loop runs.
void announce_ready(const ctl::config& cfg, dp::dataplane& dp, ctl::neighbor_manager& nm,
                    const ctl::turn_manager& turn, const ctl::stream_server* streams)
{
    nm.announce();
    ISAR_LOG(NOTICE, "ready: {} worker(s), {} interface(s), control socket {}", dp.nworkers(),
             dp.nifaces(), cfg.socket);
    if (turn.enabled())
        ISAR_LOG(NOTICE, "turn: UDP port(s) {} on every interface address, realm \"{}\"",
                 fmt::join(cfg.turn.listen_udp, ","), cfg.turn.realm);
    if (streams)
        ISAR_LOG(NOTICE, "turn: TCP port(s) [{}], TLS port(s) [{}], {} stream thread(s)",
                 fmt::join(streams->tcp_ports(), ","), fmt::join(streams->tls_ports(), ","),
                 streams->nthreads());
    sd_notifyf(0, "READY=1\nSTATUS=%u workers, %u interfaces", dp.nworkers(), dp.nifaces());
}

// After rte_eal_init: the dataplane, the control plane and TURN set up, the
// control loop run until it ends (a signal, a drain), everything stopped.
// The control loop's result (0 = a clean stop); 1 if the start failed.
int run_relay(const ctl::config& cfg, const cpu_set_t* boot_cpus)
{
    std::string err;
    // Before any SRTP context exists and before the workers prepare
    // their engine state (dataplane::launch).
    crypto::set_compact_gcm(cfg.srtp_compact_keys);
    if (!dp::place_srtp_contexts()) // hugepages, like the legs
        ISAR_LOG(INFO, "SRTP contexts: on the C++ heap (the EAL has no hugepages)");
    dp::dataplane dp;
    if (dp.init(dataplane_config(cfg), 0, err) != 0) {
        ISAR_LOG(ERR, "dataplane: {}", err);
        return 1;
    }
    for (unsigned i = 0; i < dp.nifaces(); i++) {
        ISAR_LOG(INFO, "interface {}: {}", i, dp.port_desc(i));
        ISAR_LOG(INFO, "interface {}: {}", i, dp.ownership_desc(i));
    }
    ctl::session_manager sm(dp, cfg);
    ctl::neighbor_manager nm(dp);
    ctl::commands cmds(dp, sm, nm, cfg);
    // TURN over TCP/TLS: the stream threads' mailbox to control, whose
    // turn_manager takes its events and issues its commands.
    ctl::stream_hub hub(cfg.turn.streams() ? cfg.turn.stream_threads : 1);
    ctl::turn_manager turn(dp, cfg, sm);
    if (cfg.turn.streams())
        turn.set_hub(&hub);
    if (turn.init(err) != 0) {
        ISAR_LOG(ERR, "turn: {}", err);
        return 1;
    }
    if (turn.enabled()) {
        cmds.set_turn(&turn);
        sm.on_other_ack = [&turn](dp::flow_cmd* c) { turn.on_ack(c); };
    }
    ctl::event_loop loop(cfg, cmds, sm, nm);
    if (loop.open(err) != 0) {
        ISAR_LOG(ERR, "control: {}", err);
        return 1;
    }
    if (dp.launch(err) != 0) {
        ISAR_LOG(ERR, "dataplane: {}", err);
        return 1;
    }
    // TURN over TCP/TLS: the stream threads, once the workers run.
    std::unique_ptr<ctl::stream_server> streams;
    if (cfg.turn.streams()) {
        streams = std::make_unique<ctl::stream_server>(
                cfg.turn, hub, ctl::stream_dp_of(dp, cfg.turn.stream_threads));
        if (boot_cpus != nullptr)
            streams->set_cpus(stream_cpus(*boot_cpus));
        if (streams->start(err) != 0) {
            ISAR_LOG(ERR, "turn: {}", err);
            dp.stop();
            return 1;
        }
        cmds.set_streams(streams.get());
        loop.on_reload([&streams] {
            std::string e;
            streams->reload_tls(e); // logs the outcome
        });
    }
    const int rc = loop.run([&] { announce_ready(cfg, dp, nm, turn, streams.get()); });
    sd_notify(0, "STOPPING=1");
    if (streams)
        streams->stop(); // before the workers: they share the stream rings
    dp.stop();
    ISAR_LOG(NOTICE, "stopped");
    return rc;
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"isard: the Isar media relay daemon"};
    std::string path = "/etc/isar/isard.toml";
    bool check = false, print = false;
    app.add_option("-c,--config", path, "configuration file (TOML)");
    app.add_flag("--check", check, "validate the configuration and exit");
    app.add_flag("--print-config", print, "print the effective configuration and exit");
    CLI11_PARSE(app, argc, argv);

    std::string err;
    auto cfg = ctl::load_config(path, err);
    if (!cfg) {
        fprintf(stderr, "isard: configuration error: %s\n", err.c_str());
        return 1;
    }
    if (!check_config_files(*cfg))
        return 1;
    if (print)
        fputs(ctl::dump_config(*cfg).c_str(), stdout);
    if (check || print) {
        if (check)
            printf("isard: %s: configuration is valid\n", path.c_str());
        return 0;
    }

    if (ctl::event_loop::socket_in_use(cfg->socket)) {
        fprintf(stderr, "isard: %s: another isard is already listening there\n",
                cfg->socket.c_str());
        return 1;
    }

    // SIGINT/SIGTERM/SIGHUP go to the control loop's signalfd: blocked before
    // EAL (or anyone) starts threads, which inherit the mask.
    ctl::block_control_signals();
    // The CPUs isard was started on (systemd's CPUAffinity=): the TURN stream
    // threads run there, minus the workers' CPUs (EAL pins the main thread).
    cpu_set_t boot_cpus;
    CPU_ZERO(&boot_cpus);
    const bool have_boot_cpus = sched_getaffinity(0, sizeof(boot_cpus), &boot_cpus) == 0;
    if (!init_eal(*cfg))
        return 1;
    rte_log_set_level(ctl::logtype, log_level(cfg->log_level));
    const int rc = run_relay(*cfg, have_boot_cpus ? &boot_cpus : nullptr);
    rte_eal_cleanup();
    return rc == 0 ? 0 : 1;
}
