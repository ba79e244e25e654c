// isar-bench's IPv6 modes (plain6: IPv6 legs both sides; bridge46: leg a
// IPv4, leg b IPv6): the address plan, sessions installed with flow commands
// (control's session.create takes IPv4 legs only), and the comparison with
// plain of the same run.
#pragma once

#include "dataplane/dataplane.h"
#include "dataplane/ip6.h"

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace isar::bench_ip6 {

// 2001:2:0:IFC::HOST (the relay is HOST 1 on interface IFC's /64).
dp::ip6_addr ip6_of(unsigned ifc, unsigned host);

// Installs every session (legs filled in by the caller) with add_session
// flow commands, queueing as many as the worker's command ring takes.
// false (and `error`) when the worker refuses one.
bool add_sessions(dp::dataplane& dp, const std::vector<std::unique_ptr<dp::session>>& sessions,
                  std::string& error);

// For every plain6/bridge46 record without error: "vs_plain" (cycles and
// Mpps ratios to the plain record of the same legs and payload), printed too.
void add_plain_ratios(nlohmann::json& results);

} // namespace isar::bench_ip6
