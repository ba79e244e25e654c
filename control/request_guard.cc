#include "control/request_guard.h"

#include <string.h>

#include <algorithm>
#include <map>

#include "control/log.h"

namespace isar::ctl {

using json = nlohmann::json;

namespace {

void wipe_string(json& j)
{
    if (j.is_string()) {
        std::string& s = j.get_ref<std::string&>();
        explicit_bzero(s.data(), s.size());
    }
}

} // namespace

// Deepest nesting of arrays/objects in a JSON text (brackets inside strings
// do not count); stops counting once past `limit`.
unsigned nesting_depth(std::string_view t, unsigned limit)
{
    unsigned depth = 0, max = 0;
    bool in_str = false, esc = false;
    for (char ch : t) {
        if (in_str) {
            if (esc)
                esc = false;
            else if (ch == '\\')
                esc = true;
            else if (ch == '"')
                in_str = false;
        } else if (ch == '"') {
            in_str = true;
        } else if (ch == '[' || ch == '{') {
            if (++depth > max && (max = depth) > limit)
                break;
        } else if ((ch == ']' || ch == '}') && depth > 0) {
            depth--;
        }
    }
    return max;
}

// The request line with the value of every "in"/"out" member (a plain string
// without escapes: an SRTP key) moved to `keys` and replaced by a placeholder
// "isar-key:N", so that no copy of a key passes through nlohmann's lexer,
// whose buffers are freed without being wiped. restore_keys() puts them back.
std::string extract_keys(std::string_view t, std::vector<std::string>& keys)
{
    std::string out;
    out.reserve(t.size());
    size_t i = 0;
    bool key_name = false; // the previous token was the member name "in" or "out"
    auto string_end = [&](size_t p, bool& esc) { // p at the opening quote
        size_t e = p + 1;
        esc = false;
        while (e < t.size() && t[e] != '"') {
            if (t[e] == '\\') {
                esc = true;
                e++;
            }
            e++;
        }
        return e; // at the closing quote, or t.size()
    };
    while (i < t.size()) {
        if (t[i] != '"') {
            if (t[i] != ' ' && t[i] != '\t' && t[i] != ':')
                key_name = false;
            out += t[i++];
            continue;
        }
        bool esc = false;
        const size_t e = string_end(i, esc);
        if (e >= t.size()) {
            out.append(t.substr(i));
            break;
        }
        const std::string_view content = t.substr(i + 1, e - i - 1);
        size_t n = e + 1;
        while (n < t.size() && (t[n] == ' ' || t[n] == '\t'))
            n++;
        const bool is_name = n < t.size() && t[n] == ':';
        // Printable ASCII only (what a key is): anything else, escapes
        // included, goes through the parser and its checks.
        const bool plain = !esc && std::all_of(content.begin(), content.end(), [](char ch) {
            return ch >= 0x20 && ch <= 0x7e;
        });
        if (!is_name && key_name && plain) {
            out += "\"isar-key:" + std::to_string(keys.size()) + "\"";
            keys.emplace_back(content);
        } else {
            out.append(t.substr(i, e + 1 - i));
        }
        key_name = is_name && (content == "in" || content == "out");
        i = e + 1;
    }
    return out;
}

// Puts the keys extract_keys() took back into the members "in"/"out" at any
// depth (swapped: no further copy), and wipes what is left in `keys`.
void restore_keys(json& j, std::vector<std::string>& keys, unsigned depth)
{
    if (depth > max_json_depth)
        return;
    if (j.is_array()) {
        for (json& e : j)
            restore_keys(e, keys, depth + 1);
        return;
    }
    if (!j.is_object())
        return;
    for (auto it = j.begin(); it != j.end(); ++it) {
        if ((it.key() == "in" || it.key() == "out") && it->is_string()) {
            std::string& v = it->get_ref<std::string&>();
            size_t n = 0;
            if (v.rfind("isar-key:", 0) == 0 && v.size() > 9 && v.size() < 19 &&
                v.find_first_not_of("0123456789", 9) == std::string::npos &&
                (n = std::stoul(v.substr(9))) < keys.size())
                v.swap(keys[n]);
        } else {
            restore_keys(*it, keys, depth + 1);
        }
    }
}

// The SRTP key strings a request may hold: "in"/"out" of leg.update and of
// every leg of session.create (members of that name at any depth).
void wipe_keys(json& j, unsigned depth)
{
    if (depth > max_json_depth)
        return;
    if (j.is_array()) {
        for (json& e : j)
            wipe_keys(e, depth + 1);
    } else if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) {
            if (it.key() == "in" || it.key() == "out")
                wipe_string(*it);
            else
                wipe_keys(*it, depth + 1);
        }
    }
}

// A request's value fit for a log line: printable ASCII, at most 64 bytes.
std::string log_safe(const json& v)
{
    std::string s = v.is_string() ? v.get_ref<const std::string&>() : v.is_number() ? v.dump()
                                                                                    : "-";
    if (s.size() > 64)
        s = s.substr(0, 64) + "...";
    for (char& ch : s)
        if (ch < 0x20 || ch > 0x7e)
            ch = '?';
    return s;
}

// The audit line of a command that changes state: who, what, on which
// object. Never a key: leg.update says only which fields it changes.
void audit(std::string_view who, const std::string& cmd, const json& req)
{
    static const std::map<std::string, std::vector<const char*>> changing = {
            {"session.create", {"session"}},   {"session.delete", {"session"}},
            {"leg.update", {"session", "leg"}}, {"drain", {}},
            {"turn.delete", {"allocation"}},   {"debug.wedge_worker", {"worker", "seconds"}},
    };
    auto c = changing.find(cmd);
    if (c == changing.end())
        return;
    std::string what = cmd;
    for (const char* f : c->second)
        what += " " + log_safe(req.contains(f) ? req[f] : json());
    if (cmd == "leg.update")
        for (const char* f : {"remote", "in", "out"})
            if (req.contains(f))
                what += std::string(" ") + f + (std::string(f) == "remote"
                                                        ? "=" + log_safe(req[f])
                                                        : req[f].is_null() ? "=none" : "=(key)");
    ISAR_LOG(NOTICE, "{}: {}", who.empty() ? std::string_view("local") : who, what);
}

} // namespace isar::ctl
