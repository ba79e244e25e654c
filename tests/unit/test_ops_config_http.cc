// The operations keys of the configuration ([metrics], [control]
// drain_timeout_s, [debug]) and the /metrics HTTP request parser.
#include "control/config.h"
#include "control/metrics.h"

#include <gtest/gtest.h>
#include <string>

using namespace isar::ctl;

namespace {

const std::string base = "[[interface]]\nport = 0\naddress = \"198.18.0.1/24\"\n";

std::string parse_err(const std::string& extra)
{
    std::string err;
    auto c = parse_config(base + extra, err);
    EXPECT_FALSE(c.has_value()) << extra;
    return err;
}

} // namespace

TEST(OpsConfig, Defaults)
{
    std::string err;
    auto c = parse_config(base, err);
    ASSERT_TRUE(c) << err;
    EXPECT_EQ(c->metrics_listen, "127.0.0.1:9477");
    EXPECT_EQ(c->metrics_ip, 0x7f000001u);
    EXPECT_EQ(c->metrics_port, 9477);
    EXPECT_EQ(c->drain_timeout_s, 30u);
    EXPECT_FALSE(c->allow_wedge);
}

TEST(OpsConfig, Values)
{
    std::string err;
    auto c = parse_config(base + "[metrics]\nlisten = \"0.0.0.0:9100\"\n[control]\n"
                                 "drain_timeout_s = 0\n[debug]\nallow_wedge = true\n",
                          err);
    ASSERT_TRUE(c) << err;
    EXPECT_EQ(c->metrics_ip, 0u);
    EXPECT_EQ(c->metrics_port, 9100);
    EXPECT_EQ(c->drain_timeout_s, 0u);
    EXPECT_TRUE(c->allow_wedge);
    c = parse_config(base + "[metrics]\nlisten = \"\"\n", err);
    ASSERT_TRUE(c) << err;
    EXPECT_TRUE(c->metrics_listen.empty());
    // The dump round-trips.
    auto d = parse_config(dump_config(*c), err);
    ASSERT_TRUE(d) << err;
    EXPECT_TRUE(d->metrics_listen.empty());
}

TEST(OpsConfig, ErrorsNameTheKey)
{
    for (const char* bad :
         {"[metrics]\nlisten = \"9477\"\n", "[metrics]\nlisten = \"1.2.3:80\"\n",
          "[metrics]\nlisten = \"127.0.0.1:0\"\n", "[metrics]\nlisten = \"127.0.0.1:70000\"\n",
          "[metrics]\nlisten = \"127.0.0.1:-1\"\n", "[metrics]\nlisten = 9477\n"})
        EXPECT_NE(parse_err(bad).find("metrics.listen"), std::string::npos) << bad;
    EXPECT_NE(parse_err("[metrics]\nport = 1\n").find("metrics.port: unknown key"),
              std::string::npos);
    EXPECT_NE(parse_err("[control]\ndrain_timeout_s = -1\n").find("control.drain_timeout_s"),
              std::string::npos);
    EXPECT_NE(parse_err("[debug]\nallow_wedge = 1\n").find("debug.allow_wedge"), std::string::npos);
}

TEST(HttpParse, Requests)
{
    using st = http_request::status;
    auto p = parse_http_request("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(p.st, st::ok);
    EXPECT_EQ(p.method, "GET");
    EXPECT_EQ(p.path, "/metrics");
    p = parse_http_request("HEAD /healthz?x=1 HTTP/1.0\n\n");
    EXPECT_EQ(p.st, st::ok);
    EXPECT_EQ(p.path, "/healthz");
    EXPECT_EQ(parse_http_request("GET /metrics HTTP/1.1\r\nHost").st, st::incomplete);
    EXPECT_EQ(parse_http_request("").st, st::incomplete);
    EXPECT_EQ(parse_http_request("POST /metrics HTTP/1.1\r\n\r\n").st, st::bad_method);
    EXPECT_EQ(parse_http_request("GET /metrics HTTP/2.0\r\n\r\n").st, st::bad_version);
    EXPECT_EQ(parse_http_request("GET /metrics\r\n\r\n").st, st::bad);
    EXPECT_EQ(parse_http_request("GET  /metrics HTTP/1.1\r\n\r\n").st, st::bad);
    EXPECT_EQ(parse_http_request("get /metrics HTTP/1.1\r\n\r\n").st, st::bad);
    EXPECT_EQ(parse_http_request("GET metrics HTTP/1.1\r\n\r\n").st, st::bad);
    EXPECT_EQ(parse_http_request("GET /m HTTP/1.1 x\r\n\r\n").st, st::bad);
    EXPECT_EQ(parse_http_request(std::string("\x16\x03\x01\x00", 4)).st, st::bad);
    EXPECT_EQ(parse_http_request("GET /\xff HTTP/1.1\r\n\r\n").st, st::bad);
    EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nX: " + std::string(9000, 'a')).st,
              st::too_large);
    EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n").st,
              st::too_large);
}

TEST(HttpParse, Responses)
{
    const std::string r = http_response(200, "text/plain", "abc");
    EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
    EXPECT_NE(r.find("Content-Length: 3\r\n"), std::string::npos);
    EXPECT_NE(r.find("Connection: close\r\n\r\nabc"), std::string::npos);
    const std::string h = http_response(200, "text/plain", "abc", true);
    EXPECT_EQ(h.substr(h.size() - 4), "\r\n\r\n");
    EXPECT_NE(http_response(405, "text/plain", "").find("Allow: GET, HEAD"), std::string::npos);
    EXPECT_EQ(prom_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(HttpParse, Histogram)
{
    request_histogram h;
    h.observe(0.00005, false);
    h.observe(0.003, true);
    h.observe(5.0, false);
    EXPECT_EQ(h.count, 3u);
    EXPECT_EQ(h.errors, 1u);
    EXPECT_EQ(h.buckets[0], 1u);
    EXPECT_EQ(h.buckets[5], 1u); // <= 0.005
    uint64_t in_buckets = 0;
    for (auto b : h.buckets)
        in_buckets += b;
    EXPECT_EQ(in_buckets, 2u); // 5 s only in +Inf
}
