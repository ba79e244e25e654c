// What every request handler uses to read and check a request (commands.cc
// and the files with more handlers of the same class).
#pragma once

#include <initializer_list>
#include <string>

#include <nlohmann/json.hpp>

namespace isar::ctl {

using json = nlohmann::json;

struct bad_request {
    std::string code;
    std::string message;
};

[[noreturn]] inline void invalid(const std::string& field, const std::string& what)
{
    throw bad_request{"invalid", field + ": " + what};
}

inline const std::string& get_string(const json& o, const std::string& field, const std::string& where)
{
    auto it = o.find(field);
    if (it == o.end())
        invalid(where + field, "missing");
    if (!it->is_string())
        invalid(where + field, "must be a string");
    return it->get_ref<const std::string&>();
}

inline void check_fields(const json& o, std::initializer_list<const char*> known, const std::string& where)
{
    for (auto it = o.begin(); it != o.end(); ++it) {
        bool ok = false;
        for (const char* k : known)
            ok = ok || it.key() == k;
        if (!ok)
            invalid(where + it.key(), "unknown field");
    }
}

} // namespace isar::ctl
