// Stand-in for libFuzzer's main() where the compiler has none (gcc): feeds
// every file named on the command line, or found under a directory named
// there, to LLVMFuzzerTestOneInput once. The corpus thus runs as a test.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool run_file(const std::filesystem::path& p)
{
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "fuzz_main: cannot read %s\n", p.c_str());
        return false;
    }
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    // An exact-size heap copy, so a sanitizer build catches over-reads.
    std::vector<uint8_t> data(bytes.begin(), bytes.end());
    data.shrink_to_fit();
    LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    size_t n = 0;
    bool ok = true;
    for (int i = 1; i < argc; i++) {
        const std::filesystem::path arg(argv[i]);
        std::error_code ec;
        if (std::filesystem::is_directory(arg, ec)) {
            for (const auto& e : std::filesystem::recursive_directory_iterator(arg, ec)) {
                if (e.is_regular_file()) {
                    ok = run_file(e.path()) && ok;
                    n++;
                }
            }
        } else {
            ok = run_file(arg) && ok;
            n++;
        }
        if (ec) {
            std::fprintf(stderr, "fuzz_main: %s: %s\n", argv[i], ec.message().c_str());
            ok = false;
        }
    }
    std::printf("fuzz_main: %zu inputs replayed\n", n);
    return ok && n > 0 ? 0 : 1;
}
