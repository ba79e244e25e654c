// RFC 8656 §7.2 address-family rules (see families.h).
#include "turn/families.h"

namespace isar::turn {

family_choice choose_families(const message& m, bool have4, bool have6) noexcept
{
    family_choice c;
    const attr_view* raf = m.find(attr::requested_address_family);
    const attr_view* aaf = m.find(attr::additional_address_family);
    if (raf != nullptr && aaf != nullptr) {
        c.error = 400;
        return c;
    }
    if (raf != nullptr) {
        uint8_t fam = 0;
        if (!read_address_family(*raf, fam)) {
            c.error = 400;
        } else if (fam == 0 || (fam == 4 && !have4) || (fam == 6 && !have6)) {
            c.error = 440;
        } else {
            c.first = fam;
        }
        return c;
    }
    if (aaf != nullptr) {
        uint8_t fam = 0;
        if (!read_address_family(*aaf, fam) || fam != 6) {
            c.error = 400;
            return c;
        }
    }
    if (!have4) {
        c.error = 440;
        return c;
    }
    if (aaf != nullptr) {
        if (have6)
            c.second = 6;
        else
            c.second_error = 440;
    }
    return c;
}

} // namespace isar::turn
