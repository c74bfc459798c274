// One thread per core, running the io_context of the shards it hosts (docs/architecture.md,
// "The server: shards on core threads").
//
// Shards partition the members and are fixed per data directory; threads are what the machine
// has. A core thread runs every handler of its shards (their connections, inboxes, timers and
// doorbells are all on its io_context), so with more shards than cores the shards take turns on
// one thread instead of eight threads sleeping and waking on two cores. Nothing in a shard assumes
// a thread of its own: the shards it shares the thread with are still reached only through their
// inboxes and doorbells, and the transaction index's growth never blocks a thread
// (server/txn_index_growth.hpp).
#pragma once

#include <pthread.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstdint>
#include <string>
#include <thread>

namespace jifen::server {

class CoreThread {
public:
    explicit CoreThread(uint32_t index) : index_(index), io_(1) {}
    ~CoreThread() { stop_and_join(); }
    CoreThread(const CoreThread&) = delete;
    CoreThread& operator=(const CoreThread&) = delete;

    // Where the hosted shards create their sockets, timers and doorbells, and post their work.
    boost::asio::io_context& io() noexcept { return io_; }

    // Runs the io_context until stop_and_join(); work the shards posted before runs first.
    void start() {
        thread_ = std::thread([this] {
            // Names show in top -H, perf and /proc/<pid>/task/*/comm (at most 15 characters).
            const std::string name = "jifen-core-" + std::to_string(index_);
            pthread_setname_np(pthread_self(), name.c_str());
            io_.run();
        });
    }

    // Any thread: lets the handlers posted so far run (the shards' finish_stop work), then stops
    // the io_context and joins the thread. Handlers of operations still outstanding are dropped
    // unrun, as the connections are closed by then.
    void stop_and_join() {
        if (!thread_.joinable()) {
            return;
        }
        boost::asio::post(io_, [this] { io_.stop(); });
        thread_.join();
    }

private:
    const uint32_t index_;
    boost::asio::io_context io_;
    std::thread thread_;
};

}  // namespace jifen::server
