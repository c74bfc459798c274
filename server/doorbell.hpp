// Wakes a shard thread that may be asleep in its io_context: an eventfd the thread waits on, rung
// at most once between two of the thread's wake-ups however many producers ring it.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cerrno>
#include <cstdint>
#include <system_error>
#include <utility>

namespace jifen::server {

class Doorbell {
public:
    explicit Doorbell(boost::asio::io_context& io) : descriptor_(io) {
        const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) {
            throw std::system_error(errno, std::generic_category(), "eventfd");
        }
        descriptor_.assign(fd);
    }

    // Any thread, after publishing work (e.g. Inbox::try_push). Both sides use read-modify-writes
    // on the flag, so they are ordered: if this exchange comes after the owner's acknowledge(),
    // it reads false and writes the eventfd; if before, the owner's exchange reads our true and,
    // acquiring it, sees the work published before it. Costs one syscall per wake-up of the
    // target, not one per message.
    void ring() noexcept {
        if (!rung_.exchange(true, std::memory_order_acq_rel)) {
            const uint64_t one = 1;
            // EAGAIN means the counter is already non-zero: the thread will wake anyway.
            [[maybe_unused]] const ssize_t written = ::write(descriptor_.native_handle(), &one, 8);
        }
    }

    // Owning thread: waits until rung. The handler must call acknowledge() before draining.
    template <typename Handler>
    void async_wait(Handler&& handler) {
        descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                               std::forward<Handler>(handler));
    }

    // Owning thread: clears the eventfd and the flag; everything published before a later
    // ring() is visible to the drain that follows.
    void acknowledge() noexcept {
        uint64_t count = 0;
        [[maybe_unused]] const ssize_t got = ::read(descriptor_.native_handle(), &count, 8);
        rung_.exchange(false, std::memory_order_acq_rel);
    }

    // Owning thread, at shutdown: drops the pending wait. The eventfd itself stays open until
    // destruction, so a late ring() from the log writer never writes to a reused descriptor.
    void cancel() {
        boost::system::error_code ignored;
        descriptor_.cancel(ignored);
    }

private:
    boost::asio::posix::stream_descriptor descriptor_;
    std::atomic<bool> rung_{false};
};

}  // namespace jifen::server
