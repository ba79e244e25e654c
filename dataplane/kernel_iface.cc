#include "dataplane/kernel_iface.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <rte_bus_vdev.h>
#include <rte_ethdev.h>

namespace isar::dp {

namespace {

std::string vdev_name(const std::string& name)
{
    return "net_tap_" + name;
}

std::string ip_str(uint32_t ip_be)
{
    char b[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &ip_be, b, sizeof(b));
    return b;
}

// One rtnetlink request at a time, each acknowledged (NLM_F_ACK).
class rtnl {
public:
    rtnl() { fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE); }
    ~rtnl()
    {
        if (fd_ >= 0)
            close(fd_);
    }
    rtnl(const rtnl&) = delete;
    rtnl& operator=(const rtnl&) = delete;
    bool ok() const { return fd_ >= 0; }

    // Starts a request of `type` with a fixed header of `hdr_len` bytes.
    void* begin(uint16_t type, uint16_t flags, size_t hdr_len)
    {
        memset(buf_, 0, sizeof(buf_));
        auto* h = reinterpret_cast<nlmsghdr*>(buf_);
        h->nlmsg_len = static_cast<uint32_t>(NLMSG_LENGTH(hdr_len));
        h->nlmsg_type = type;
        h->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
        h->nlmsg_seq = ++seq_;
        return NLMSG_DATA(h);
    }
    void attr(uint16_t type, const void* data, size_t len)
    {
        auto* h = reinterpret_cast<nlmsghdr*>(buf_);
        auto* a = reinterpret_cast<rtattr*>(buf_ + NLMSG_ALIGN(h->nlmsg_len));
        a->rta_type = type;
        a->rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
        memcpy(RTA_DATA(a), data, len);
        h->nlmsg_len = static_cast<uint32_t>(NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len));
    }
    void attr32(uint16_t type, uint32_t v) { attr(type, &v, sizeof(v)); }

    // Sends the request; 0 or -errno from the kernel's acknowledgement.
    int send()
    {
        auto* h = reinterpret_cast<nlmsghdr*>(buf_);
        sockaddr_nl kernel{};
        kernel.nl_family = AF_NETLINK;
        if (sendto(fd_, buf_, h->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
                   sizeof(kernel)) < 0)
            return -errno;
        for (int tries = 0; tries < 16; tries++) {
            char in[4096];
            const ssize_t n = recv(fd_, in, sizeof(in), 0);
            if (n < 0)
                return errno == EINTR ? -EINTR : -errno;
            auto len = static_cast<unsigned>(n);
            for (auto* r = reinterpret_cast<nlmsghdr*>(in); NLMSG_OK(r, len);
                 r = NLMSG_NEXT(r, len)) {
                if (r->nlmsg_seq != seq_ || r->nlmsg_type != NLMSG_ERROR)
                    continue;
                return static_cast<const nlmsgerr*>(NLMSG_DATA(r))->error;
            }
        }
        return -EPROTO;
    }

private:
    int fd_ = -1;
    uint32_t seq_ = 0;
    alignas(NLMSG_ALIGNTO) char buf_[512];
};

int fail(std::string& err, const kernel_iface_spec& s, const std::string& what, int rc)
{
    err = "kernel interface " + s.name + ": " + what + " failed: " + strerror(-rc);
    if (rc == -EPERM || rc == -EACCES)
        err += " (isard needs CAP_NET_ADMIN to set up its kernel interface)";
    return rc;
}

// ip link set NAME [up] [arp off] [address MAC] [mtu MTU]
int set_link(rtnl& nl, const kernel_iface_spec& s, unsigned idx, unsigned flags, unsigned change,
             bool addr_mtu)
{
    auto* ifi = static_cast<ifinfomsg*>(nl.begin(RTM_NEWLINK, 0, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = static_cast<int>(idx);
    ifi->ifi_flags = flags;
    ifi->ifi_change = change;
    if (addr_mtu) {
        nl.attr(IFLA_ADDRESS, s.mac.addr_bytes, RTE_ETHER_ADDR_LEN);
        nl.attr32(IFLA_MTU, s.mtu);
    }
    return nl.send();
}

int write_sysctl(const std::string& path, const char* value)
{
    const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    const ssize_t n = write(fd, value, strlen(value));
    const int e = n < 0 ? -errno : 0;
    close(fd);
    return e;
}

} // namespace

int kernel_tap_create(const kernel_iface_spec& s, uint16_t& port_id, std::string& err)
{
    if (if_nametoindex(s.name.c_str()) != 0) {
        err = "kernel interface " + s.name + ": the name is taken by an existing interface; " +
              "choose another with [[interface]] kernel_iface";
        return -EEXIST;
    }
    char mac[RTE_ETHER_ADDR_FMT_SIZE];
    rte_ether_format_addr(mac, sizeof(mac), &s.mac);
    const std::string vdev = vdev_name(s.name);
    const std::string args = "iface=" + s.name + ",mac=" + mac;
    int rc = rte_vdev_init(vdev.c_str(), args.c_str());
    if (rc != 0) {
        err = "kernel interface " + s.name + ": cannot create the net_tap device (" + vdev + "," +
              args + "): " + strerror(rc < 0 ? -rc : EINVAL) +
              "; isard needs CAP_NET_ADMIN and /dev/net/tun (modprobe tun), and DPDK's net_tap "
              "driver (see the EAL messages above)";
        return rc < 0 ? rc : -EINVAL;
    }
    rc = rte_eth_dev_get_port_by_name(vdev.c_str(), &port_id);
    if (rc != 0) {
        rte_vdev_uninit(vdev.c_str());
        err = "kernel interface " + s.name + ": net_tap device " + vdev + " has no port";
        return -ENODEV;
    }
    return 0;
}

int kernel_iface_configure(const kernel_iface_spec& s, std::string& err)
{
    const unsigned idx = if_nametoindex(s.name.c_str());
    if (idx == 0)
        return fail(err, s, "finding the interface", -errno);
    // No IPv6 before the link goes up: the kernel sends no RS, MLD or ND.
    // Without IPv6 in the kernel there is no such file and nothing to do.
    const int rc6 = write_sysctl("/proc/sys/net/ipv6/conf/" + s.name + "/disable_ipv6", "1");
    if (rc6 != 0 && rc6 != -ENOENT)
        return fail(err, s, "disabling IPv6 (/proc/sys/net/ipv6/conf/" + s.name + ")", rc6);
    rtnl nl;
    if (!nl.ok())
        return fail(err, s, "opening a netlink socket", -errno);
    int rc = set_link(nl, s, idx, IFF_NOARP, IFF_NOARP, true);
    if (rc != 0)
        return fail(err, s, "setting NOARP, MAC and MTU " + std::to_string(s.mtu), rc);
    auto* ifa = static_cast<ifaddrmsg*>(
            nl.begin(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, sizeof(ifaddrmsg)));
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = s.prefix_len;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = idx;
    nl.attr32(IFA_LOCAL, s.ip_be);
    nl.attr32(IFA_ADDRESS, s.ip_be);
    rc = nl.send();
    if (rc != 0)
        return fail(err, s, "adding the address " + ip_str(s.ip_be) + "/" +
                                    std::to_string(s.prefix_len), rc);
    return 0;
}

int kernel_iface_up(const kernel_iface_spec& s, std::string& err)
{
    const unsigned idx = if_nametoindex(s.name.c_str());
    if (idx == 0)
        return fail(err, s, "finding the interface", -errno);
    rtnl nl;
    if (!nl.ok())
        return fail(err, s, "opening a netlink socket", -errno);
    int rc = set_link(nl, s, idx, IFF_UP, IFF_UP, false);
    if (rc != 0)
        return fail(err, s, "setting the link up", rc);
    if (s.gateway_be == 0)
        return 0;
    // A default route through the gateway with a high metric: a box that has
    // another default route (a management NIC) keeps using that one.
    auto* rt = static_cast<rtmsg*>(nl.begin(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL,
                                            sizeof(rtmsg)));
    rt->rtm_family = AF_INET;
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_protocol = RTPROT_STATIC;
    rt->rtm_scope = RT_SCOPE_UNIVERSE;
    rt->rtm_type = RTN_UNICAST;
    nl.attr32(RTA_GATEWAY, s.gateway_be);
    nl.attr32(RTA_OIF, idx);
    nl.attr32(RTA_PRIORITY, 1024);
    rc = nl.send();
    if (rc != 0 && rc != -EEXIST)
        return fail(err, s, "adding the default route via " + ip_str(s.gateway_be), rc);
    return 0;
}

void kernel_tap_remove(uint16_t port_id)
{
    char name[RTE_ETH_NAME_MAX_LEN];
    if (rte_eth_dev_get_name_by_port(port_id, name) != 0)
        return;
    rte_eth_dev_stop(port_id);
    rte_eth_dev_close(port_id);
    rte_vdev_uninit(name);
}

} // namespace isar::dp
