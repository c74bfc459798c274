#include "server/history_reader.hpp"

#include <pthread.h>

#include <boost/asio/post.hpp>
#include <cstring>

#include "server/dispatch.hpp"
#include "server/limits.hpp"

namespace jifen::server {

HistoryReader::HistoryReader(const wal::Log& log, Deliver deliver)
    : log_(log), deliver_(std::move(deliver)), doorbell_(io_), jobs_(history_jobs_max) {}

HistoryReader::~HistoryReader() { stop(); }

void HistoryReader::start() {
    boost::asio::post(io_, [this] { arm(); });
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "jifen-history");
        io_.run();
    });
}

void HistoryReader::stop() {
    if (!thread_.joinable()) {
        return;
    }
    boost::asio::post(io_, [this] {
        drain();
        doorbell_.cancel();
    });
    thread_.join();
}

bool HistoryReader::submit(const HistoryJob& job) noexcept {
    if (!jobs_.try_push(job)) {
        return false;
    }
    doorbell_.ring();
    return true;
}

void HistoryReader::arm() {
    doorbell_.async_wait([this](const boost::system::error_code& error) {
        if (error) {
            return;  // Cancelled by stop().
        }
        doorbell_.acknowledge();
        drain();
        arm();
    });
}

void HistoryReader::drain() {
    HistoryJob job;
    while (jobs_.try_pop(&job)) {
        const wal::HistoryPage page =
            log_.history(job.request.member_id, job.request.before_seq, job.request.limit);
        deliver_(job, reply_body(job.request, page));
    }
}

std::vector<std::byte> HistoryReader::reply_body(const protocol::HistoryRequest& request,
                                                 const wal::HistoryPage& page) {
    protocol::HistoryReplyHeader reply;
    if (page.result != Result::ok) {
        reply.result = static_cast<uint32_t>(page.result);
    } else if (page.entries.empty() && request.before_seq == 0) {
        // Every member's history starts with its enroll: none at all means no such member.
        reply.result = static_cast<uint32_t>(Result::member_not_found);
    } else {
        reply.result = static_cast<uint32_t>(Result::ok);
        reply.count = static_cast<uint32_t>(page.entries.size());
        reply.next_before_seq = page.next_before_seq;
    }
    std::vector<std::byte> body(sizeof(reply) + reply.count * sizeof(protocol::HistoryEntry));
    std::memcpy(body.data(), &reply, sizeof(reply));
    for (uint32_t i = 0; i < reply.count; ++i) {
        const protocol::HistoryEntry entry =
            to_history_entry(page.entries[i].first, page.entries[i].second);
        std::memcpy(body.data() + sizeof(reply) + i * sizeof(entry), &entry, sizeof(entry));
    }
    return body;
}

}  // namespace jifen::server
