// control/config.cc: the shipped example parses, every bad input is rejected
// with a message that names the offending key, and dump_config() round-trips.
#include "control/config.h"
#include "control/turn_manager.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <string>

using namespace isar::ctl;

namespace {

// The configuration from the issue (and systemd/isard.toml), verbatim.
const char* example = R"(
[eal]
args = ["--no-huge", "--no-pci", "-m", "512", "-l", "0-1", "--file-prefix", "isar",
        "--vdev", "net_af_packet0,iface=isar-dp,qpairs=2"]

[[interface]]
port = 0                    # DPDK port id
address = "198.18.0.1/24"   # the relay's address on this port
# gateway = "198.18.0.254"  # next hop for remotes outside the prefix

[relay]
port_min = 30000
port_max = 39999
idle_timeout_s = 60
strict_source = true
max_legs = 65536

[control]
socket = "/run/isar/isard.sock"
socket_mode = "0660"
max_clients = 64

[dataplane]
mbufs = 16383
idle_sleep_us = 0

[log]
level = "info"
)";

const char* minimal = R"(
[[interface]]
port = 0
address = "198.18.0.1/24"
)";

std::string parse_err(const std::string& text)
{
    std::string err;
    auto c = parse_config(text, err);
    EXPECT_FALSE(c.has_value()) << "accepted:\n" << text;
    EXPECT_FALSE(err.empty());
    return err;
}

bool same(const config& a, const config& b)
{
    if (a.interfaces.size() != b.interfaces.size())
        return false;
    for (size_t i = 0; i < a.interfaces.size(); i++) {
        const auto &x = a.interfaces[i], &y = b.interfaces[i];
        if (x.port != y.port || x.address != y.address || x.prefix_len != y.prefix_len ||
            x.gateway != y.gateway || x.tx_checksum_offload != y.tx_checksum_offload)
            return false;
    }
    return a.eal_args == b.eal_args && a.port_min == b.port_min && a.port_max == b.port_max &&
           a.idle_timeout_s == b.idle_timeout_s && a.strict_source == b.strict_source &&
           a.max_legs == b.max_legs && a.socket == b.socket && a.socket_mode == b.socket_mode &&
           a.max_clients == b.max_clients && a.mbufs == b.mbufs &&
           a.idle_sleep_us == b.idle_sleep_us && a.log_level == b.log_level;
}

} // namespace

TEST(Config, ExampleParses)
{
    std::string err;
    auto c = parse_config(example, err);
    ASSERT_TRUE(c) << err;
    ASSERT_EQ(c->eal_args.size(), 10u);
    EXPECT_EQ(c->eal_args[0], "--no-huge");
    EXPECT_EQ(c->eal_args[9], "net_af_packet0,iface=isar-dp,qpairs=2");
    ASSERT_EQ(c->interfaces.size(), 1u);
    EXPECT_EQ(c->interfaces[0].port, 0);
    EXPECT_EQ(c->interfaces[0].address, 0xc6120001u); // 198.18.0.1
    EXPECT_EQ(c->interfaces[0].prefix_len, 24);
    EXPECT_EQ(c->interfaces[0].gateway, 0u);
    EXPECT_EQ(c->port_min, 30000);
    EXPECT_EQ(c->port_max, 39999);
    EXPECT_EQ(c->idle_timeout_s, 60u);
    EXPECT_TRUE(c->strict_source);
    EXPECT_EQ(c->max_legs, 65536u);
    EXPECT_EQ(c->socket, "/run/isar/isard.sock");
    EXPECT_EQ(c->socket_mode, 0660u);
    EXPECT_EQ(c->max_clients, 64u);
    EXPECT_EQ(c->mbufs, 16383u);
    EXPECT_EQ(c->idle_sleep_us, 0u);
    EXPECT_EQ(c->log_level, "info");
}

TEST(Config, ShippedFileMatchesTheExample)
{
    // systemd/isard.toml is what operators copy: it must stay valid.
    std::string err;
    auto c = load_config(ISAR_SOURCE_ROOT "/systemd/isard.toml", err);
    ASSERT_TRUE(c) << err;
    auto e = parse_config(example, err);
    ASSERT_TRUE(e) << err;
    EXPECT_TRUE(same(*c, *e));
}

TEST(Config, MinimalUsesDefaults)
{
    std::string err;
    auto c = parse_config(minimal, err);
    ASSERT_TRUE(c) << err;
    config d;
    EXPECT_EQ(c->port_min, d.port_min);
    EXPECT_EQ(c->port_max, d.port_max);
    EXPECT_EQ(c->socket, d.socket);
    EXPECT_EQ(c->socket_mode, d.socket_mode);
    EXPECT_TRUE(c->eal_args.empty());
}

TEST(Config, GatewayInsideSubnetAccepted)
{
    std::string err;
    auto c = parse_config(std::string(minimal) + "gateway = \"198.18.0.254\"\n", err);
    ASSERT_TRUE(c) << err;
    EXPECT_EQ(c->interfaces[0].gateway, 0xc61200feu);
}

TEST(Config, LoadMissingFileNamesThePath)
{
    std::string err;
    EXPECT_FALSE(load_config("/nonexistent/isard.toml", err));
    EXPECT_NE(err.find("/nonexistent/isard.toml"), std::string::npos) << err;
}

struct bad_case {
    const char* what;
    std::string text;
    const char* key; // must appear in the error message
};

class ConfigBad : public ::testing::TestWithParam<bad_case> {};

TEST_P(ConfigBad, ErrorNamesTheKey)
{
    const auto& p = GetParam();
    std::string err = parse_err(p.text);
    EXPECT_NE(err.find(p.key), std::string::npos)
            << p.what << ": error \"" << err << "\" does not name " << p.key;
}

const std::string iface0 = "[[interface]]\nport = 0\naddress = \"198.18.0.1/24\"\n";

INSTANTIATE_TEST_SUITE_P(
        Cases, ConfigBad,
        ::testing::Values(
                bad_case{"toml syntax", "[[interface]\nport = 0\n", "line 1"},
                bad_case{"unknown top-level key", "bogus = 1\n" + iface0, "bogus: unknown key"},
                bad_case{"unknown section", iface0 + "[bogus]\nx = 1\n", "bogus"},
                bad_case{"unknown relay key", iface0 + "[relay]\nport_mni = 1\n", "relay.port_mni"},
                bad_case{"unknown interface key",
                         "[[interface]]\nport = 0\naddress = \"198.18.0.1/24\"\nmtu = 1500\n",
                         "interface[0].mtu"},
                bad_case{"tx_checksum_offload wrong type",
                         "[[interface]]\nport = 0\naddress = \"198.18.0.1/24\"\ntx_checksum_offload = 1\n",
                         "interface[0].tx_checksum_offload"},
                bad_case{"unknown eal key", iface0 + "[eal]\narg = []\n", "eal.arg"},
                bad_case{"eal args not an array", iface0 + "[eal]\nargs = \"-l 0\"\n", "eal.args"},
                bad_case{"eal arg not a string", iface0 + "[eal]\nargs = [\"-l\", 0]\n",
                         "eal.args[1]"},
                bad_case{"section not a table", "relay = 5\n" + iface0, "relay: must be a table"},
                bad_case{"port_min wrong type", iface0 + "[relay]\nport_min = \"30000\"\n",
                         "relay.port_min"},
                bad_case{"port_max float", iface0 + "[relay]\nport_max = 3.5\n", "relay.port_max"},
                bad_case{"strict_source wrong type", iface0 + "[relay]\nstrict_source = 1\n",
                         "relay.strict_source"},
                bad_case{"port_min too low", iface0 + "[relay]\nport_min = 80\n", "relay.port_min"},
                bad_case{"port_max too high", iface0 + "[relay]\nport_max = 70000\n",
                         "relay.port_max"},
                bad_case{"negative", iface0 + "[relay]\nidle_timeout_s = -1\n",
                         "relay.idle_timeout_s"},
                bad_case{"idle_timeout 0", iface0 + "[relay]\nidle_timeout_s = 0\n",
                         "relay.idle_timeout_s"},
                bad_case{"max_legs too small", iface0 + "[relay]\nmax_legs = 1\n",
                         "relay.max_legs"},
                bad_case{"port_min > port_max",
                         iface0 + "[relay]\nport_min = 40000\nport_max = 30000\n",
                         "relay.port_min"},
                bad_case{"pool of one port",
                         iface0 + "[relay]\nport_min = 30000\nport_max = 30000\n",
                         "relay.port_max"},
                bad_case{"missing interface", "[relay]\nport_min = 30000\n", "interface"},
                bad_case{"interface not array of tables", "interface = 5\n", "interface"},
                bad_case{"interface port missing", "[[interface]]\naddress = \"198.18.0.1/24\"\n",
                         "interface[0].port"},
                bad_case{"interface port wrong type",
                         "[[interface]]\nport = \"0\"\naddress = \"198.18.0.1/24\"\n",
                         "interface[0].port"},
                bad_case{"interface address missing", "[[interface]]\nport = 0\n",
                         "interface[0].address"},
                bad_case{"address not a string", "[[interface]]\nport = 0\naddress = 1\n",
                         "interface[0].address"},
                bad_case{"address without prefix",
                         "[[interface]]\nport = 0\naddress = \"198.18.0.1\"\n",
                         "interface[0].address"},
                bad_case{"address bad octet",
                         "[[interface]]\nport = 0\naddress = \"198.18.0.256/24\"\n",
                         "interface[0].address"},
                bad_case{"prefix 33", "[[interface]]\nport = 0\naddress = \"198.18.0.1/33\"\n",
                         "interface[0].address"},
                bad_case{"prefix 0", "[[interface]]\nport = 0\naddress = \"198.18.0.1/0\"\n",
                         "interface[0].address"},
                bad_case{"prefix garbage", "[[interface]]\nport = 0\naddress = \"198.18.0.1/2x\"\n",
                         "interface[0].address"},
                bad_case{"multicast address",
                         "[[interface]]\nport = 0\naddress = \"224.0.0.1/24\"\n",
                         "interface[0].address"},
                bad_case{"gateway outside subnet", iface0 + "gateway = \"198.19.0.1\"\n",
                         "interface[0].gateway"},
                bad_case{"gateway is own address", iface0 + "gateway = \"198.18.0.1\"\n",
                         "interface[0].gateway"},
                bad_case{"gateway not an address", iface0 + "gateway = \"router\"\n",
                         "interface[0].gateway"},
                bad_case{"duplicate port",
                         iface0 + "[[interface]]\nport = 0\naddress = \"198.19.0.1/24\"\n",
                         "interface[1].port"},
                bad_case{"second interface bad address",
                         iface0 + "[[interface]]\nport = 1\naddress = \"nope/24\"\n",
                         "interface[1].address"},
                bad_case{"socket relative", iface0 + "[control]\nsocket = \"isard.sock\"\n",
                         "control.socket"},
                bad_case{"socket too long",
                         iface0 + "[control]\nsocket = \"/" + std::string(120, 'a') + "\"\n",
                         "control.socket"},
                bad_case{"socket_mode not octal", iface0 + "[control]\nsocket_mode = \"0999\"\n",
                         "control.socket_mode"},
                bad_case{"socket_mode too big", iface0 + "[control]\nsocket_mode = \"01777\"\n",
                         "control.socket_mode"},
                bad_case{"socket_mode words", iface0 + "[control]\nsocket_mode = \"rw-rw----\"\n",
                         "control.socket_mode"},
                bad_case{"socket_mode negative", iface0 + "[control]\nsocket_mode = \"-1\"\n",
                         "control.socket_mode"},
                bad_case{"socket_mode integer", iface0 + "[control]\nsocket_mode = 660\n",
                         "control.socket_mode"},
                bad_case{"max_clients 0", iface0 + "[control]\nmax_clients = 0\n",
                         "control.max_clients"},
                bad_case{"mbufs too few", iface0 + "[dataplane]\nmbufs = 10\n", "dataplane.mbufs"},
                bad_case{"unknown dataplane key", iface0 + "[dataplane]\nworkers = 2\n",
                         "dataplane.workers"},
                bad_case{"log level", iface0 + "[log]\nlevel = \"loud\"\n", "log.level"}));

TEST(Config, TxChecksumOffloadDefaultsOnAndCanBeTurnedOff)
{
    std::string err;
    auto on = parse_config("[[interface]]\nport = 0\naddress = \"198.18.0.1/24\"\n", err);
    ASSERT_TRUE(on) << err;
    EXPECT_TRUE(on->interfaces[0].tx_checksum_offload);
    auto off = parse_config(
            "[[interface]]\nport = 0\naddress = \"198.18.0.1/24\"\ntx_checksum_offload = false\n",
            err);
    ASSERT_TRUE(off) << err;
    EXPECT_FALSE(off->interfaces[0].tx_checksum_offload);
}

TEST(Config, KernelInterfaceKeys)
{
    std::string err;
    const std::string base = "[[interface]]\nport = 0\naddress = \"198.18.0.1/24\"\n";
    auto def = parse_config(base, err);
    ASSERT_TRUE(def) << err;
    EXPECT_EQ(def->interfaces[0].kernel_iface, "");
    EXPECT_FALSE(def->interfaces[0].kernel_forward_all);
    EXPECT_EQ(def->kernel_pps, 200000u);
    auto all = parse_config(base + "kernel_iface = \"relay0\"\nkernel_forward = \"all\"\n"
                                   "[exception]\nkernel_pps = 5000\n",
                            err);
    ASSERT_TRUE(all) << err;
    EXPECT_EQ(all->interfaces[0].kernel_iface, "relay0");
    EXPECT_TRUE(all->interfaces[0].kernel_forward_all);
    EXPECT_EQ(all->kernel_pps, 5000u);
    auto again = parse_config(dump_config(*all), err);
    ASSERT_TRUE(again) << err;
    EXPECT_TRUE(again->interfaces[0].kernel_forward_all);
    auto turn = parse_config(base + "kernel_forward = \"turn\"\n", err);
    ASSERT_TRUE(turn) << err;
    EXPECT_FALSE(turn->interfaces[0].kernel_forward_all);
    EXPECT_NE(parse_err(base + "kernel_forward = \"ssh\"\n").find("interface[0].kernel_forward"),
              std::string::npos);
}

TEST(Config, DumpRoundTrips)
{
    const std::string text = R"(
[eal]
args = ["--no-huge", "-l", "0-3", "--vdev", "net_pcap0,rx_pcap=/tmp/a \"b\".pcap"]

[[interface]]
port = 0
address = "198.18.0.1/24"
gateway = "198.18.0.254"

[[interface]]
port = 3
address = "10.1.2.3/32"
tx_checksum_offload = false

[relay]
port_min = 20000
port_max = 20100
idle_timeout_s = 5
strict_source = false
max_legs = 1024

[control]
socket = "/tmp/isar test.sock"
socket_mode = "0600"
max_clients = 3

[dataplane]
mbufs = 4095
idle_sleep_us = 10

[log]
level = "debug"
)";
    std::string err;
    auto a = parse_config(text, err);
    ASSERT_TRUE(a) << err;
    const std::string dumped = dump_config(*a);
    auto b = parse_config(dumped, err);
    ASSERT_TRUE(b) << err << "\n" << dumped;
    EXPECT_TRUE(same(*a, *b)) << dumped;
    EXPECT_EQ(dumped, dump_config(*b)); // a fixed point
    // And the values really are the non-default ones.
    EXPECT_FALSE(b->strict_source);
    EXPECT_EQ(b->socket_mode, 0600u);
    EXPECT_EQ(b->interfaces[1].prefix_len, 32);
    EXPECT_EQ(b->eal_args[4], "net_pcap0,rx_pcap=/tmp/a \"b\".pcap");
}

TEST(Config, DumpOfDefaultsRoundTrips)
{
    std::string err;
    auto a = parse_config(minimal, err);
    ASSERT_TRUE(a) << err;
    auto b = parse_config(dump_config(*a), err);
    ASSERT_TRUE(b) << err;
    EXPECT_TRUE(same(*a, *b));
}

// [turn]: off by default (with the default deny list ready), a full section
// parses and survives --print-config, and every bad key is named.
TEST(Config, TurnOffByDefault)
{
    std::string err;
    auto c = parse_config(minimal, err);
    ASSERT_TRUE(c) << err;
    EXPECT_FALSE(c->turn.enabled());
    EXPECT_FALSE(c->turn.denied_peer.empty()) << "the default deny list";
    EXPECT_EQ(c->turn.max_allocations, 100000u);
    EXPECT_EQ(c->turn.default_lifetime_s, 600u);
    EXPECT_EQ(c->turn.max_lifetime_s, 3600u);
}

TEST(Config, TurnSectionParsesAndRoundTrips)
{
    const std::string text = std::string(minimal) + R"(
[turn]
listen_udp = [3478, 3479]
realm = "meet.example.org"
auth_secret_file = "/etc/isar/turn-secret"
allowed_peer = ["198.18.0.0/24"]
denied_peer = ["10.0.0.0/8", "fc00::/7"]
max_allocations = 5000
user_quota = 4
allocate_rate = 7
max_requests_per_s = 900
default_lifetime_s = 300
max_lifetime_s = 1200
nonce_lifetime_s = 60
)";
    std::string err;
    auto c = parse_config(text, err);
    ASSERT_TRUE(c) << err;
    const turn_config& t = c->turn;
    EXPECT_TRUE(t.enabled());
    EXPECT_EQ(t.listen_udp, (std::vector<uint16_t>{3478, 3479}));
    EXPECT_EQ(t.realm, "meet.example.org");
    EXPECT_EQ(t.allowed_peer, (std::vector<std::string>{"198.18.0.0/24"}));
    EXPECT_EQ(t.denied_peer, (std::vector<std::string>{"10.0.0.0/8", "fc00::/7"}));
    EXPECT_EQ(t.max_allocations, 5000u);
    EXPECT_EQ(t.user_quota, 4u);
    EXPECT_EQ(t.allocate_rate, 7u);
    EXPECT_EQ(t.max_requests_per_s, 900u);
    EXPECT_EQ(t.default_lifetime_s, 300u);
    EXPECT_EQ(t.max_lifetime_s, 1200u);
    EXPECT_EQ(t.nonce_lifetime_s, 60u);
    auto again = parse_config(dump_config(*c), err);
    ASSERT_TRUE(again) << err << "\n" << dump_config(*c);
    EXPECT_EQ(again->turn.listen_udp, t.listen_udp);
    EXPECT_EQ(again->turn.denied_peer, t.denied_peer);
    EXPECT_EQ(again->turn.allowed_peer, t.allowed_peer);
    EXPECT_EQ(again->turn.realm, t.realm);
    EXPECT_EQ(again->turn.auth_secret_file, t.auth_secret_file);
    EXPECT_EQ(again->turn.nonce_lifetime_s, t.nonce_lifetime_s);
}

TEST(Config, TurnBadKeysAreNamed)
{
    const std::string base = std::string(minimal) + "\n[turn]\n";
    const std::string ok = "realm = \"r\"\nauth_secret_file = \"/s\"\n";
    struct bad {
        std::string body, key;
    };
    const bad cases[] = {
            {"listen_udp = [35000]\n" + ok, "turn.listen_udp[0]"}, // inside the relay pool
            {"listen_udp = [3478, 3478]\n" + ok, "turn.listen_udp[1]"},
            {"listen_udp = [0]\n" + ok, "turn.listen_udp[0]"},
            {"listen_udp = 3478\n" + ok, "turn.listen_udp"},
            {"listen_udp = [3478]\nauth_secret_file = \"/s\"\n", "turn.realm"},
            {"listen_udp = [3478]\nrealm = \"r\"\n", "turn.auth_secret_file"},
            {"listen_udp = [3478]\nrealm = \"r\"\nauth_secret_file = \"rel\"\n",
             "turn.auth_secret_file"},
            {"allowed_peer = [\"10.0.0.0/33\"]\n", "turn.allowed_peer[0]"},
            {"denied_peer = [\"nonsense\"]\n", "turn.denied_peer[0]"},
            {"max_allocations = 0\n", "turn.max_allocations"},
            {"default_lifetime_s = 4000\n", "turn.default_lifetime_s"},
            {"secret = \"x\"\n", "turn.secret"},
    };
    for (const auto& b : cases) {
        const std::string err = parse_err(base + b.body);
        EXPECT_EQ(err.rfind(b.key + ":", 0), 0u) << "want " << b.key << ", got: " << err;
    }
}

// auth_secret_file: one secret per line, comments skipped, and refused when
// anyone but its owner may read it (or when it holds no secret).
TEST(Config, TurnSecretsFile)
{
    char tmpl[] = "/tmp/isar-secret-XXXXXX";
    const int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    const std::string path = tmpl;
    const std::string body = "# rotated\n  first-secret  \n\nsecond\n";
    ASSERT_EQ(write(fd, body.data(), body.size()), static_cast<ssize_t>(body.size()));
    close(fd);
    std::string err;
    {
        turn_secrets s;
        ASSERT_EQ(chmod(path.c_str(), 0600), 0);
        ASSERT_TRUE(load_turn_secrets(path, s, err)) << err;
        EXPECT_EQ(s.list, (std::vector<std::string>{"first-secret", "second"}));
    }
    {
        turn_secrets s;
        ASSERT_EQ(chmod(path.c_str(), 0640), 0);
        EXPECT_TRUE(load_turn_secrets(path, s, err)) << "group-readable for a service user";
    }
    for (mode_t m : {0644, 0604, 0660, 0602}) {
        turn_secrets s;
        ASSERT_EQ(chmod(path.c_str(), m), 0);
        EXPECT_FALSE(load_turn_secrets(path, s, err)) << std::oct << m;
        EXPECT_NE(err.find("chmod 600"), std::string::npos) << err;
        EXPECT_EQ(err.find("first-secret"), std::string::npos) << "never quotes a secret";
    }
    {
        ASSERT_EQ(chmod(path.c_str(), 0600), 0);
        std::ofstream(path) << "# only a comment\n\n";
        turn_secrets s;
        EXPECT_FALSE(load_turn_secrets(path, s, err));
        EXPECT_NE(err.find("no secret"), std::string::npos) << err;
    }
    unlink(path.c_str());
    turn_secrets s;
    EXPECT_FALSE(load_turn_secrets(path, s, err)) << "missing file";
}

// [dataplane] port_ownership (dataplane/ownership.h): "auto" by default,
// "pairs" turns RSS-aware ownership off, anything else is named; dump
// round-trips it.
TEST(Config, PortOwnership)
{
    std::string err;
    auto c = parse_config(minimal, err);
    ASSERT_TRUE(c) << err;
    EXPECT_TRUE(c->rss_ownership);
    const std::string dp = std::string(minimal) + "\n[dataplane]\n";
    c = parse_config(dp + "port_ownership = \"pairs\"\n", err);
    ASSERT_TRUE(c) << err;
    EXPECT_FALSE(c->rss_ownership);
    auto again = parse_config(dump_config(*c), err);
    ASSERT_TRUE(again) << err;
    EXPECT_FALSE(again->rss_ownership);
    c = parse_config(dp + "port_ownership = \"auto\"\n", err);
    ASSERT_TRUE(c) << err;
    EXPECT_TRUE(c->rss_ownership);
    for (const char* bad : {"port_ownership = \"rss\"\n", "port_ownership = 1\n",
                            "port_ownership = \"\"\n"})
        EXPECT_NE(parse_err(dp + bad).find("dataplane.port_ownership"), std::string::npos)
                << bad;
}

TEST(Config, SrtpCompactKeys)
{
    std::string err;
    auto c = parse_config(minimal, err);
    ASSERT_TRUE(c) << err;
    EXPECT_FALSE(c->srtp_compact_keys);
    const std::string relay = std::string(minimal) + "\n[relay]\n";
    c = parse_config(relay + "srtp_compact_keys = true\n", err);
    ASSERT_TRUE(c) << err;
    EXPECT_TRUE(c->srtp_compact_keys);
    auto again = parse_config(dump_config(*c), err);
    ASSERT_TRUE(again) << err;
    EXPECT_TRUE(again->srtp_compact_keys);
    EXPECT_NE(parse_err(relay + "srtp_compact_keys = \"yes\"\n").find("relay.srtp_compact_keys"),
              std::string::npos);
}
