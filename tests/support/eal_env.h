// EAL, booted once per test binary (a GoogleTest global environment).
//
//   ISAR_TEST_EAL_ENV("test_classify");   // at namespace scope in one .cc
//
// Arguments: --no-huge -m 256 --no-pci --no-telemetry --log-level=error and a
// --file-prefix unique to the binary and the process, so that suites run in
// parallel (and the ASan build next to the plain one) never share a runtime
// directory; that directory is removed again at the end. The main lcore may
// run on any CPU the process is allowed on, so parallel test binaries are not
// all pinned to CPU 0.
#pragma once

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace isar::test {

class eal_env : public ::testing::Environment {
public:
    explicit eal_env(std::string name, std::vector<std::string> extra_args = {});
    void SetUp() override;
    void TearDown() override;

    // True once rte_eal_init() succeeded in this process.
    static bool ready();

private:
    std::string name_;
    std::vector<std::string> extra_;
    std::string runtime_dir_;
};

} // namespace isar::test

#define ISAR_TEST_EAL_ENV(name)                                                                    \
    static ::testing::Environment* const isar_test_eal_env_ [[maybe_unused]] =                     \
            ::testing::AddGlobalTestEnvironment(new ::isar::test::eal_env(name))
