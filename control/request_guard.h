// What the management socket does to a request line before and after it is
// parsed, so that SRTP keys never pass through a buffer that is not wiped and
// never reach a log: the depth bound, taking the keys out of the text and
// back into the parsed request, wiping them, and the audit line of a command
// that changes state (commands.cc calls these).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace isar::ctl {

// Deepest nesting the parser is given (nlohmann's parser recurses per level);
// also bounds the walks below.
constexpr unsigned max_json_depth = 32;

// Deepest nesting of arrays/objects in a JSON text (brackets inside strings
// do not count); stops counting once past `limit`.
unsigned nesting_depth(std::string_view t, unsigned limit);
// The request line with the value of every "in"/"out" member (an SRTP key)
// moved to `keys` and replaced by a placeholder.
std::string extract_keys(std::string_view t, std::vector<std::string>& keys);
// Puts them back into the parsed request and wipes what is left in `keys`.
void restore_keys(nlohmann::json& j, std::vector<std::string>& keys, unsigned depth = 0);
// Wipes every "in"/"out" string member at any depth.
void wipe_keys(nlohmann::json& j, unsigned depth = 0);
// A request's value fit for a log line: printable ASCII, at most 64 bytes.
std::string log_safe(const nlohmann::json& v);
// Logs who changed what (never a key).
void audit(std::string_view who, const std::string& cmd, const nlohmann::json& req);

} // namespace isar::ctl
