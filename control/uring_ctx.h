// The control loop's io_uring as its listeners see it. Every SQE carries
// user_data `id << 8 | kind`: the 8-bit kind says whose operation completed,
// the id which of its clients. Kind 0 is the loop's own (the signalfd read);
// each listener (a uring_owner) reserves a range of kinds when it is built,
// so a new listener needs no change to the loop's dispatch or to the others.
#pragma once

#include <array>
#include <cstdint>

#include <liburing.h>

namespace isar::ctl {

class uring_owner;

class uring_ctx {
public:
    uring_ctx() = default;
    ~uring_ctx() { exit(); }
    uring_ctx(const uring_ctx&) = delete;
    uring_ctx& operator=(const uring_ctx&) = delete;

    // io_uring_queue_init; 0 or -errno.
    int init(unsigned entries);
    // Tears the ring down (pending operations are cancelled). Idempotent.
    void exit();
    io_uring* ring() { return &ring_; }
    // A free SQE; submits what is queued first when the queue is full.
    io_uring_sqe* sqe();

    // The loop is stopping: owners no longer re-arm their accepts.
    void stop() { stopping_ = true; }
    bool stopping() const { return stopping_; }

    static constexpr uint8_t kind_loop = 0;
    static uint64_t ud(uint64_t id, uint8_t kind) { return (id << 8) | kind; }
    // Reserves `n` consecutive kinds for `o` and returns the first. 0xff is
    // never handed out: liburing's own timeout completions carry user_data -1.
    uint8_t attach(uring_owner& o, unsigned n);
    // Hands a completion to the owner of its kind; false when no one owns it.
    bool dispatch(uint64_t user_data, int res);

private:
    struct slot {
        uring_owner* owner = nullptr;
        uint8_t base = 0;
    };
    io_uring ring_{};
    bool ok_ = false;
    bool stopping_ = false;
    unsigned next_kind_ = kind_loop + 1;
    std::array<slot, 256> slots_{};
};

// A user of the ring (a listener): its operations are numbered 0..nops-1 and
// come back to on_cqe() with that number.
class uring_owner {
public:
    uring_owner(const uring_owner&) = delete;
    uring_owner& operator=(const uring_owner&) = delete;

    virtual void on_cqe(uint8_t op, uint64_t id, int res) = 0;

protected:
    uring_owner(uring_ctx& ctx, unsigned nops) : ctx_(ctx), base_(ctx.attach(*this, nops)) {}
    ~uring_owner() = default;

    io_uring_sqe* sqe() { return ctx_.sqe(); }
    // The user_data that brings a completion back here as (op, id).
    uint64_t ud(uint64_t id, uint8_t op) const
    {
        return uring_ctx::ud(id, static_cast<uint8_t>(base_ + op));
    }
    bool stopping() const { return ctx_.stopping(); }

private:
    uring_ctx& ctx_;
    uint8_t base_;
};

} // namespace isar::ctl
