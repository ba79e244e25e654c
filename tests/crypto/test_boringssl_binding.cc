// Proves that the BoringSSL functions Isar's crypto calls bind to BoringSSL
// (android/libcrypto.so) in a process where DPDK's EAL has autoloaded its PMDs,
// including librte_crypto_openssl, which brings OpenSSL's libcrypto.so.3 in.
// Both libraries export SHA1_Update, AES_set_encrypt_key, OPENSSL_cleanse, ...
// The same for libssl: the TURN-over-TLS stream threads (control/tls_context)
// must call BoringSSL's libssl (android/libssl.so), never OpenSSL's libssl.so.3
// (SSL_new, SSL_read, ... exist in both).
#include <dlfcn.h>

#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <rte_eal.h>

#include "control/tls_context.h"
#include "crypto/boringssl_probe.h"
#include "tests/crypto/crypto_test_util.h"

using namespace isar::crypto;
using namespace isar::crypto::test;

namespace {

bool eal_up()
{
    static const bool ok = [] {
        const char* argv[] = {"test_crypto_boringssl_binding", "--no-huge", "-m", "128", "--no-pci",
                "--file-prefix=test_bssl_bind", "--log-level=error"};
        int argc = int(sizeof argv / sizeof argv[0]);
        return rte_eal_init(argc, const_cast<char**>(argv)) >= 0;
    }();
    return ok;
}

std::string maps_line_matching(const std::string& needle_a, const std::string& needle_b)
{
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        if (line.find(needle_a) != std::string::npos && line.find(needle_b) != std::string::npos) {
            return line;
        }
    }
    return {};
}

// Runs before after_eal_init (which ends with rte_eal_cleanup()).
TEST(boringssl_binding, libssl_after_eal_init)
{
    ASSERT_TRUE(eal_up()) << "rte_eal_init failed (see stderr)";
    int n = 0;
    for (int i = 0;; ++i) {
        const void* addr = isar::ctl::detail::tls_symbol_probe(i);
        if (addr == nullptr) {
            break;
        }
        ++n;
        const char* name = isar::ctl::detail::tls_symbol_probe_name(i);
        Dl_info info{};
        ASSERT_NE(dladdr(addr, &info), 0) << name;
        ASSERT_NE(info.dli_fname, nullptr);
        std::string where = info.dli_fname;
        std::cout << "  " << name << " -> " << where << "\n";
        EXPECT_NE(where.find("android/libssl.so"), std::string::npos)
                << name << " resolved into " << where;
    }
    EXPECT_GE(n, 10);
    // No OpenSSL libssl in the process at all (a PMD could bring one in).
    std::string ossl = maps_line_matching("libssl.so.3", "/");
    EXPECT_TRUE(ossl.empty()) << "OpenSSL's libssl is loaded: " << ossl;
    // And the context loader runs in this process (a missing file is named).
    isar::ctl::tls_context ctx("/nonexistent.crt", "/nonexistent.key");
    std::string err;
    EXPECT_NE(ctx.reload(err), 0);
    EXPECT_NE(err.find("/nonexistent.crt"), std::string::npos) << err;
}

TEST(boringssl_binding, after_eal_init)
{
    ASSERT_TRUE(eal_up()) << "rte_eal_init failed (see stderr)";

    // Is OpenSSL's libcrypto in the process? Debian's EAL autoloads
    // librte_crypto_openssl from its PMD directory, which needs it.
    std::string openssl = maps_line_matching("libcrypto.so.3", "/usr/lib");
    if (openssl.empty()) {
        openssl = maps_line_matching("libcrypto.so.3", "/lib/");
    }
    bool pmd_present = std::ifstream(
            "/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0/librte_crypto_openssl.so.23").good();
    std::cout << "OpenSSL libcrypto.so.3 loaded: " << (openssl.empty() ? "no" : "yes")
              << (openssl.empty() ? "" : " (" + openssl.substr(openssl.rfind(' ') + 1) + ")")
              << "\n";
    if (pmd_present) {
        EXPECT_FALSE(openssl.empty())
                << "librte_crypto_openssl is installed but OpenSSL's libcrypto was not loaded: "
                   "this test would prove nothing";
    }

    int n = 0;
    for (int i = 0;; ++i) {
        const void* addr = detail::boringssl_symbol_probe(i);
        if (addr == nullptr) {
            break;
        }
        ++n;
        Dl_info info{};
        ASSERT_NE(dladdr(addr, &info), 0) << detail::boringssl_symbol_probe_name(i);
        ASSERT_NE(info.dli_fname, nullptr);
        std::string where = info.dli_fname;
        std::cout << "  " << detail::boringssl_symbol_probe_name(i) << " -> " << where << "\n";
        EXPECT_NE(where.find("android/libcrypto.so"), std::string::npos)
                << detail::boringssl_symbol_probe_name(i) << " resolved into " << where;
    }
    EXPECT_GE(n, 10);

    // And the engine works in this process: a boringssl GCM round-trip.
    std::mt19937 rng(5);
    for (suite s : {suite::aead_aes_128_gcm, suite::aead_aes_256_gcm, suite::aes_cm_128_hmac_sha1_80}) {
        key_material km = random_key(s, rng);
        std::string err;
        auto tx = srtp_context::create(km, engine::boringssl, err);
        auto rx = srtp_context::create(km, engine::boringssl, err);
        ASSERT_TRUE(tx && rx) << err;
        packet p = make_rtp(9, 1, 200, rng);
        packet w = p;
        ASSERT_EQ(tx->protect_rtp(w.data(), w.len, w.cap(), &w.len), status::ok);
        ASSERT_EQ(rx->unprotect_rtp(w.data(), w.len, &w.len), status::ok);
        EXPECT_EQ(w.view(), p.view());
    }
    // SDES parsing (EVP_DecodeBase64, OPENSSL_cleanse) in the same process.
    key_material km;
    std::string err;
    EXPECT_TRUE(parse_suite_key("AEAD_AES_128_GCM:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==", km, err))
            << err;
    rte_eal_cleanup();
}

} // namespace
