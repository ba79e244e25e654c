#include "control/uring_ctx.h"

#include <cstdlib>

namespace isar::ctl {

int uring_ctx::init(unsigned entries)
{
    int rc = io_uring_queue_init(entries, &ring_, 0);
    ok_ = rc == 0;
    return rc;
}

void uring_ctx::exit()
{
    if (ok_)
        io_uring_queue_exit(&ring_);
    ok_ = false;
}

io_uring_sqe* uring_ctx::sqe()
{
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (s == nullptr) {
        io_uring_submit(&ring_);
        s = io_uring_get_sqe(&ring_);
    }
    return s;
}

uint8_t uring_ctx::attach(uring_owner& o, unsigned n)
{
    // A programming error, found by the first run of any test.
    if (n == 0 || next_kind_ + n > 0xff)
        std::abort();
    const auto base = static_cast<uint8_t>(next_kind_);
    for (unsigned k = next_kind_; k < next_kind_ + n; k++)
        slots_[k] = {&o, base};
    next_kind_ += n;
    return base;
}

bool uring_ctx::dispatch(uint64_t user_data, int res)
{
    const uint8_t kind = user_data & 0xff;
    const slot& s = slots_[kind];
    if (s.owner == nullptr)
        return false;
    s.owner->on_cqe(static_cast<uint8_t>(kind - s.base), user_data >> 8, res);
    return true;
}

} // namespace isar::ctl
