// Answers history requests on a thread of its own. History is read from the log's LMDB file, and
// a read that misses the page cache is a page fault that waits for the disk: that must never stall
// a shard thread, whose members' operations would wait behind it. Shard threads validate the
// request, hand it over here (lock-free inbox and doorbell, as between shards) and go on; the
// reader builds the reply and posts it back to the shard thread that owns the connection.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "protocol/wire.hpp"
#include "server/doorbell.hpp"
#include "server/inbox.hpp"
#include "wal/log.hpp"

namespace jifen::server {

struct HistoryJob {
    uint32_t shard = 0;  // The shard thread that owns the connection.
    uint32_t connection_index = 0;
    uint32_t connection_generation = 0;
    uint64_t request_id = 0;
    protocol::HistoryRequest request;  // Already validated.
};

class HistoryReader {
public:
    // deliver(job, reply_body) runs on the reader thread; it must hand the body to the shard
    // thread named by job.shard (ShardThread::deliver_history).
    using Deliver = std::function<void(const HistoryJob& job, std::vector<std::byte> body)>;

    HistoryReader(const wal::Log& log, Deliver deliver);
    ~HistoryReader();
    HistoryReader(const HistoryReader&) = delete;
    HistoryReader& operator=(const HistoryReader&) = delete;

    void start();
    // Answers what is queued, then stops the thread. Idempotent.
    void stop();

    // Any shard thread. False when the queue is full: the caller answers busy.
    bool submit(const HistoryJob& job) noexcept;

private:
    // The reply body for a page of history: HistoryReplyHeader and its entries.
    static std::vector<std::byte> reply_body(const protocol::HistoryRequest& request,
                                             const wal::HistoryPage& page);

    void arm();
    void drain();

    const wal::Log& log_;
    Deliver deliver_;
    boost::asio::io_context io_;
    Doorbell doorbell_;
    Inbox<HistoryJob> jobs_;
    std::thread thread_;
};

}  // namespace jifen::server
