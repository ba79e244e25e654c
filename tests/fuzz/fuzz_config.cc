// libFuzzer target for the configuration (control/config.h): parse_config on
// arbitrary TOML text. What parses must dump (dump_config, isard
// --print-config) to TOML that parses again to the same dump (abort if not).
// Seeds: systemd/isard.toml and the README's examples (make_seeds.py).
#include "control/config.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size > 16384)
        return 0;
    const std::string text(reinterpret_cast<const char*>(data), size);
    std::string err;
    auto c = isar::ctl::parse_config(text, err);
    if (!c)
        return 0;
    const std::string dumped = isar::ctl::dump_config(*c);
    std::string err2;
    auto c2 = isar::ctl::parse_config(dumped, err2);
    if (!c2) {
        std::fprintf(stderr, "fuzz_config: the dump does not parse: %s\n--- dump ---\n%s\n",
                     err2.c_str(), dumped.c_str());
        std::abort();
    }
    const std::string again = isar::ctl::dump_config(*c2);
    if (again != dumped) {
        std::fprintf(stderr, "fuzz_config: dump -> parse -> dump differs\n--- first ---\n%s\n"
                             "--- second ---\n%s\n", dumped.c_str(), again.c_str());
        std::abort();
    }
    return 0;
}
