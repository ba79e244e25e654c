// TURN over TCP and TLS: the stream threads (stream_server.h).
#include "control/stream_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "control/commands.h"
#include "control/log.h"
#include "control/stream_thread.h"
#include "dataplane/dataplane.h"

namespace isar::ctl {

namespace {

struct ctr_info {
    const char* name;
    bool gauge;
    const char* help;
};
constexpr bool counter = false, gauge = true;
constexpr ctr_info ctr_infos[] = {
#define ISAR_X(name, kind, help) {#name, kind, help},
        ISAR_STREAM_COUNTERS(ISAR_X)
#undef ISAR_X
};
static_assert(std::size(ctr_infos) == stream_ctr_count);

// A listening socket on ip:port with SO_REUSEPORT (each thread has its own).
int listen_on(uint32_t ip_be, uint16_t port, std::string& err)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = std::string("socket: ") + strerror(errno);
        return -errno;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = ip_be;
    a.sin_port = htons(port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4096) != 0) {
        const int e = errno;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a.sin_addr, ip, sizeof ip);
        err = std::string("cannot listen on ") + ip + ":" + std::to_string(port) + ": " +
              strerror(e) + (e == EACCES ? " (ports below 1024 need CAP_NET_BIND_SERVICE)" : "");
        ::close(fd);
        return -e;
    }
    return fd;
}

uint16_t bound_port(int fd)
{
    sockaddr_in a{};
    socklen_t len = sizeof a;
    return getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 ? ntohs(a.sin_port) : 0;
}

} // namespace

const char* stream_ctr_name(unsigned i) noexcept
{
    return i < stream_ctr_count ? ctr_infos[i].name : "?";
}
const char* stream_ctr_help(unsigned i) noexcept
{
    return i < stream_ctr_count ? ctr_infos[i].help : "?";
}
bool stream_ctr_is_gauge(unsigned i) noexcept
{
    return i < stream_ctr_count && ctr_infos[i].gauge;
}

stream_dp stream_dp_of(dp::dataplane& dp, unsigned nthreads)
{
    stream_dp d;
    d.pool = dp.pool();
    d.nworkers = dp.nworkers();
    for (unsigned t = 0; t < nthreads; t++)
        for (unsigned w = 0; w < d.nworkers; w++) {
            d.in.push_back(dp.stream_in(t, w));
            d.out.push_back(dp.stream_out(w, t));
        }
    return d;
}

stream_server::stream_server(const turn_config& cfg, stream_hub& hub, stream_dp dp,
                             uint32_t bind_ip_be)
    : cfg_(cfg), hub_(hub), dp_(std::move(dp)), bind_ip_be_(bind_ip_be)
{
}

stream_server::~stream_server()
{
    stop();
}

int stream_server::start(std::string& err)
{
    const unsigned n = cfg_.stream_threads;
    if (n == 0 || n > stream_max_threads || hub_.nthreads() != n ||
        dp_.in.size() != size_t{n} * dp_.nworkers || dp_.out.size() != dp_.in.size()) {
        err = "stream_threads must be 1-" + std::to_string(stream_max_threads) +
              " and match the hub and the rings";
        return -EINVAL;
    }
    if (!cfg_.listen_tls.empty()) {
        tls_ = std::make_unique<tls_context>(cfg_.tls_cert, cfg_.tls_key);
        if (int rc = tls_->reload(err); rc != 0)
            return rc;
    }
    for (unsigned t = 0; t < n; t++)
        threads_.push_back(std::make_unique<stream_thread>(*this, t));
    if (int rc = open_listeners(err); rc != 0) {
        threads_.clear();
        return rc;
    }
    for (auto& t : threads_) {
        if (int rc = t->start(err); rc != 0) {
            stop();
            threads_.clear();
            return rc;
        }
    }
    return 0;
}

// Every thread gets its own socket on every port; a port 0 is bound by the
// first thread and the others join the port it got.
int stream_server::open_listeners(std::string& err)
{
    const struct {
        const std::vector<uint16_t>& ports;
        std::vector<uint16_t>& bound;
        bool tls;
    } kinds[] = {{cfg_.listen_tcp, tcp_ports_, false}, {cfg_.listen_tls, tls_ports_, true}};
    for (const auto& k : kinds) {
        for (uint16_t port : k.ports) {
            uint16_t p = port;
            for (auto& t : threads_) {
                const int fd = listen_on(bind_ip_be_, p, err);
                if (fd < 0)
                    return fd;
                t->add_listener(fd, k.tls);
                p = bound_port(fd);
            }
            k.bound.push_back(p);
        }
    }
    return 0;
}

void stream_server::stop()
{
    stop_.store(true, std::memory_order_relaxed);
    for (auto& t : threads_)
        t->join();
}

int stream_server::reload_tls(std::string& err)
{
    if (!tls_) {
        err = "no TLS listener";
        ISAR_LOG(NOTICE, "turn: SIGHUP: no TLS listener, nothing to reload");
        return -ENOENT;
    }
    const int rc = tls_->reload(err);
    if (rc == 0)
        ISAR_LOG(NOTICE, "turn: TLS certificate reloaded from {} (new connections use it)",
                 cfg_.tls_cert);
    else
        ISAR_LOG(WARNING, "turn: TLS certificate not reloaded, kept the old one because {}", err);
    return rc;
}

const stream_counters& stream_server::counters(unsigned t) const
{
    return threads_.at(t)->counters();
}

uint64_t stream_server::total(stream_ctr c) const
{
    uint64_t sum = 0;
    for (const auto& t : threads_)
        sum += t->counters().get(c);
    return sum;
}

// The `stats` command's "turn_streams": totals, then each thread's.
commands::json commands::streams_json() const
{
    if (streams_ == nullptr)
        return json{{"enabled", false}};
    const auto block = [](const stream_counters& c) {
        json o = json::object();
        for (unsigned i = 0; i < stream_ctr_count; i++)
            o[stream_ctr_name(i)] = c.v[i].load(std::memory_order_relaxed);
        return o;
    };
    json total = json::object();
    for (unsigned i = 0; i < stream_ctr_count; i++)
        total[stream_ctr_name(i)] = streams_->total(static_cast<stream_ctr>(i));
    json threads = json::array();
    for (unsigned t = 0; t < streams_->nthreads(); t++)
        threads.push_back(block(streams_->counters(t)));
    return json{{"enabled", true},
                {"threads", streams_->nthreads()},
                {"max_connections", streams_->cfg().max_connections},
                {"total", total},
                {"per_thread", threads}};
}

} // namespace isar::ctl
