// Prometheus exposition (text format 0.0.4) of isard's counters, and the
// small HTTP/1.0-1.1 request parser the event loop's /metrics listener uses.
// Both are pure (no sockets) so that unit tests can drive them.
#pragma once

#include "dataplane/rtp_quality.h"

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace isar::dp {
class dataplane;
}

namespace isar::ctl {

class commands;
class session_manager;
class neighbor_manager;

// ---- HTTP ------------------------------------------------------------------
struct http_request {
    enum class status { incomplete, ok, bad, too_large, bad_method, bad_version };
    status st = status::incomplete;
    std::string method; // GET or HEAD when ok
    std::string path;   // without the query string
};
constexpr size_t http_max_request = 8192; // request line + headers

// Parses what has arrived so far. `incomplete` until the blank line that
// ends the headers; every other status is final.
http_request parse_http_request(std::string_view in);

// A whole response (Connection: close). `head_only` omits the body.
std::string http_response(int code, std::string_view content_type, std::string_view body,
                          bool head_only = false);

// ---- Prometheus text ---------------------------------------------------------
// A leg's RFC 3550 jitter in seconds (0 before the second RTP packet).
double jitter_seconds(const dp::rtp_quality& q);

// Label value escaping of the text format: backslash, double quote, newline.
std::string prom_escape(std::string_view v);

// Per-command latency histogram and counts (control requests).
struct request_histogram {
    static constexpr std::array<double, 12> bounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,   0.025,   0.05,   0.1,   0.5,    1.0};
    std::array<uint64_t, bounds.size()> buckets{}; // not cumulative; rendered cumulative
    uint64_t count = 0, errors = 0;
    double sum = 0;
    void observe(double seconds, bool error);
};

// Everything /metrics shows that is not read from the dataplane directly.
struct loop_info {
    bool draining = false;
    double uptime_s = 0;
    uint64_t http_requests = 0, http_errors = 0, watchdog_pings = 0;
};

struct prom_writer;

class metrics_exporter {
public:
    metrics_exporter(dp::dataplane& dp, session_manager& sm, neighbor_manager& nm, commands& cmds);
    // The whole exposition. Busy ratios are over the time since the previous
    // render (the first one: since construction).
    std::string render(const loop_info& li);

private:
    // render()'s parts, in the order it writes them.
    void render_workers(prom_writer& m, uint64_t now);
    void render_ports(prom_writer& m);
    void render_sessions(prom_writer& m);
    void render_control(prom_writer& m, const loop_info& li);
    void render_pools(prom_writer& m);
    void render_legs(prom_writer& m, uint64_t now);

    dp::dataplane& dp_;
    session_manager& sm_;
    neighbor_manager& nm_;
    commands& cmds_;
    std::vector<uint64_t> last_busy_, last_tsc_;
};

} // namespace isar::ctl
