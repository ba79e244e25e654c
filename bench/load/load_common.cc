// isar-bench: the run-wide state, the modes and the key plan (load_common.h).
#include "bench/load/load_common.h"

#include <cstring>

#include <unistd.h>

namespace isar::bench_load {

int perf_ctl_fd = -1;
void perf_ctl(const char* cmd)
{
    if (perf_ctl_fd >= 0 && write(perf_ctl_fd, cmd, strlen(cmd)) < 0)
        perf_ctl_fd = -1;
}
uint64_t hz;
int stamp_off = -1;
unsigned port_seq = 0;

bool mode_of(const std::string& n, mode_info& m)
{
    m = {};
    m.name = n;
    if (n == "plain")
        return true;
    if (n == "plain6") {
        m.fam[0] = m.fam[1] = 6;
        return true;
    }
    if (n == "bridge46") {
        m.fam[1] = 6;
        return true;
    }
    if (n == "srtp-pass") {
        m.s = crypto::suite::aes_cm_128_hmac_sha1_80;
        m.pass = true;
        return true;
    }
    if (n == "transcrypt-cm80") {
        m.s = crypto::suite::aes_cm_128_hmac_sha1_80;
        return true;
    }
    if (n == "transcrypt-gcm128") {
        m.s = crypto::suite::aead_aes_128_gcm;
        return true;
    }
    if (n == "transcrypt-gcm128-compact") {
        m.s = crypto::suite::aead_aes_128_gcm;
        m.compact = true;
        return true;
    }
    if (n == "fanout10") {
        m.fan = 10;
        return true;
    }
    if (n == "fanout199") { // a 200-leg conference: a key per receiver
        m.s = crypto::suite::aes_cm_128_hmac_sha1_80;
        m.fan = 199;
        return true;
    }
    return false;
}

void make_key(crypto::key_material& km, crypto::suite s, uint64_t seed)
{
    km.s = s;
    for (size_t i = 0; i < sizeof(km.key); i++)
        km.key[i] = static_cast<uint8_t>(splitmix(seed * 64 + i) >> 8);
    for (size_t i = 0; i < sizeof(km.salt); i++)
        km.salt[i] = static_cast<uint8_t>(splitmix(seed * 64 + 40 + i) >> 8);
}
std::string key_spec(crypto::suite s, uint64_t seed)
{
    crypto::key_material km;
    make_key(km, s, seed);
    std::vector<uint8_t> b(km.key, km.key + km.key_len());
    b.insert(b.end(), km.salt, km.salt + km.salt_len());
    return std::string(crypto::suite_name(s)) + ":" + base64(b.data(), b.size());
}
uint64_t key_id(const mode_info& m, uint64_t s, unsigned j, unsigned dir)
{
    if (m.pass) // in(a) == out(b), in(b) == out(a)
        return (s * 256 + (dir == 0 ? j : 1 - j)) * 2 + 1;
    return (s * 256 + j) * 2 + dir + 1000000000ull;
}

} // namespace isar::bench_load
