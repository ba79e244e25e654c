// Internal test hook: the addresses of the BoringSSL functions Isar's crypto
// calls, taken where they are called (engine_boringssl.cc, suite.cc,
// srtp_context.cc share the same binding), so a test can dladdr() them and
// prove they resolve into BoringSSL and not into an OpenSSL libcrypto that a
// DPDK PMD pulled into the process. See crypto/README.md.
#pragma once

namespace isar::crypto::detail {

// nullptr past the last probe.
const void* boringssl_symbol_probe(int i) noexcept;
const char* boringssl_symbol_probe_name(int i) noexcept;

} // namespace isar::crypto::detail
