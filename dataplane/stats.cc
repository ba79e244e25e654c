#include "dataplane/stats.h"

namespace isar::dp {

namespace {
constexpr const char* drop_names[] = {
#define ISAR_DROP_NAME(name, text) #name,
    ISAR_FOREACH_DROP(ISAR_DROP_NAME)
#undef ISAR_DROP_NAME
};
constexpr const char* drop_helps[] = {
#define ISAR_DROP_HELP(name, text) text,
    ISAR_FOREACH_DROP(ISAR_DROP_HELP)
#undef ISAR_DROP_HELP
};
static_assert(sizeof(drop_names) / sizeof(drop_names[0]) == n_drops);
} // namespace

const char* drop_name(drop d) noexcept
{
    auto i = static_cast<unsigned>(d);
    return i < n_drops ? drop_names[i] : "unknown";
}

const char* drop_help(drop d) noexcept
{
    auto i = static_cast<unsigned>(d);
    return i < n_drops ? drop_helps[i] : "unknown";
}

} // namespace isar::dp
