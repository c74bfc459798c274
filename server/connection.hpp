// One client connection of the binary protocol, owned by the shard thread that accepted it:
// framing, HELLO and scopes, a ring of operations in flight, and replies gathered into few writes.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/shard.hpp"
#include "protocol/wire.hpp"
#include "server/limits.hpp"

namespace jifen::server {

class ShardThread;

// A session one shard hands to another when its HELLO asked for that shard (hello_flag_shard):
// the socket, the key's scope, and what the client sent after HELLO that was already read.
// Owns the descriptor until the new shard adopts it.
struct Handover {
    Handover() = default;
    Handover(Handover&& other) noexcept;
    Handover& operator=(Handover&&) = delete;
    ~Handover();

    int fd = -1;
    boost::asio::ip::tcp protocol = boost::asio::ip::tcp::v4();
    uint32_t scope = 0;
    uint64_t hello_request_id = 0;
    uint64_t number = 0;  // Connection::number(), kept across the move.
    std::vector<std::byte> unread;
};

// The reply to one operation while its frame is in flight: the wire struct, copied in when the
// outcome arrives, copied out when the whole frame is answered.
struct OpSlot {
    uint32_t frame_position;
    uint32_t reserved;
    alignas(8) std::byte reply[sizeof(protocol::AuditReply)];
};
static_assert(sizeof(protocol::AuditReply) >= sizeof(protocol::BalanceReply));
static_assert(sizeof(protocol::AuditReply) >= sizeof(protocol::OperationReply));

class Connection : public std::enable_shared_from_this<Connection> {
public:
    using Socket = boost::asio::ip::tcp::socket;
    using TlsStream = boost::asio::ssl::stream<Socket>;

    // tls: null for plain TCP. index/generation: this connection's entry in the shard's table.
    // number: what log lines call it, unique in the server's run (table entries are reused).
    Connection(ShardThread& shard, Socket socket, boost::asio::ssl::context* tls, uint32_t index,
               uint32_t generation, uint64_t number);
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void start();
    // Starts a session another shard handed over: answers its HELLO, then reads on.
    void start_handed_over(Handover& handover);
    // Closes the socket now; replies still in flight for it are dropped when they arrive.
    void close();
    // Refuses a connection over connections_max: one ErrorReply busy, then close.
    void refuse(Result result, std::string_view message);
    // Shutdown: take no new frames, finish those in flight.
    void begin_drain();
    // True when nothing is in flight and nothing is waiting to be written.
    bool idle() const noexcept;
    bool closed() const noexcept { return closed_; }
    uint32_t index() const noexcept { return index_; }
    uint32_t generation() const noexcept { return generation_; }
    uint64_t number() const noexcept { return number_; }
    std::string peer() const;  // "address:port", for log lines.

    // --- Used by the shard thread while it routes and answers this connection's frames. ---

    // Room for a frame of `count` operations (ops ring, frame ring, output backlog).
    bool can_open_frame(uint32_t count) const noexcept;
    // Opens an in-flight frame answered when `parts` completions arrived; returns the position
    // of its first operation slot (the frame's operations take count consecutive positions).
    uint32_t open_frame(const protocol::FrameHeader& request, uint32_t parts);
    OpSlot& slot(uint32_t op_position) noexcept;
    template <typename WireReply>
    void set_reply(uint32_t op_position, const WireReply& reply) noexcept;
    // The running audit sum of the frame an audit operation belongs to.
    engine::AuditReport& audit_sum(uint32_t op_position) noexcept;
    void set_frame_result(uint32_t op_position, Result result) noexcept;
    // `parts` more completions for the frame holding op_position; the last one queues its reply.
    void complete(uint32_t op_position, uint32_t parts);

    // A history request went to the history reader, or its page came back (send_frame).
    void history_submitted() noexcept { ++history_in_flight_; }
    void history_answered() noexcept { --history_in_flight_; }

    // Queues a reply frame that is answered at once (ping, stats, history, hello).
    void send_frame(protocol::Opcode opcode, uint64_t request_id, uint16_t count,
                    std::span<const std::byte> body);
    void send_error(uint64_t request_id, Result result, std::string_view message);

    // Starts writing what is queued unless a write is in progress (called once per wake-up).
    void flush();
    // Parses what is buffered again after the shard freed room (see ShardThread::stall).
    void resume();
    // Closes the connection when it was idle, stuck in a frame, or not reading its replies for
    // too long.
    void check_timeouts(uint64_t now_ms);

private:
    struct InFlightFrame {
        protocol::FrameHeader request;
        uint32_t first_op = 0;
        uint32_t parts_remaining = 0;
        bool finished = false;
        Result result = Result::ok;  // Audit: a part that could not be asked.
        engine::AuditReport audit;
    };

    void on_handshake(const boost::system::error_code& error);
    void do_read();
    void on_read(const boost::system::error_code& error, size_t bytes);
    void parse();
    bool handle_frame(const protocol::FrameHeader& header, std::span<const std::byte> body);
    void handle_hello(const protocol::FrameHeader& header, std::span<const std::byte> body);
    protocol::HelloReply hello_reply() const noexcept;
    // A HELLO asked for another shard: true when nothing of this session would be left behind.
    bool can_hand_over() const noexcept;
    void hand_over();
    void fail(uint64_t request_id, Result result, std::string_view message);
    void finish_frame(InFlightFrame& frame);
    // Counts a reply (a wire reply item, or a reply body other than ping's) that is not ok: each
    // starts with its result (protocol/wire.hpp).
    void count_if_refused(const std::byte* reply) noexcept;
    void write_chunk();
    void on_write(const boost::system::error_code& error);
    void compact() noexcept;
    std::byte* reserve_output(size_t bytes);

    template <typename Handler>
    void async_read_some(std::byte* data, size_t size, Handler&& handler);
    template <typename Handler>
    void async_write(Handler&& handler);

    ShardThread& shard_;
    Socket socket_;
    std::unique_ptr<TlsStream> tls_stream_;  // Set when TLS is on; then it owns the socket.
    const uint32_t index_;
    const uint32_t generation_;
    const uint64_t number_;

    // Requests arrive here; a complete frame is parsed in place (no copy).
    std::unique_ptr<std::byte[]> read_buffer_;
    size_t read_begin_ = 0;
    size_t read_end_ = 0;

    std::unique_ptr<OpSlot[]> slots_;
    uint32_t ops_head_ = 0;  // Oldest operation in flight (positions count up, wrap at 2^32).
    uint32_t ops_tail_ = 0;
    std::unique_ptr<InFlightFrame[]> frames_;
    uint32_t frames_head_ = 0;
    uint32_t frames_tail_ = 0;

    // Replies waiting for the socket, and the batch being written now.
    std::vector<std::byte> output_;
    std::vector<std::byte> writing_;
    size_t written_ = 0;  // Of writing_, by completed chunks.
    bool write_active_ = false;
    uint64_t write_progress_ms_ = 0;  // When the write began or last finished a chunk.
    uint32_t history_in_flight_ = 0;  // Requests with the history reader.
    bool audit_in_flight_ = false;    // One at a time: each holds every shard's thread a while.

    bool flush_scheduled_ = false;

    bool read_active_ = false;
    bool handshake_done_ = false;
    bool authenticated_ = false;
    uint32_t scope_ = 0;
    bool paused_ = false;    // Waiting for room; a frame may sit parsed-but-unrouted in the buffer.
    bool closing_ = false;   // Close once the output is written (after a framing error).
    bool draining_ = false;  // Shutdown: no new frames.
    bool closed_ = false;
    static constexpr uint32_t no_shard = UINT32_MAX;
    uint32_t hand_over_to_ = no_shard;  // Set by a HELLO; the parse loop stops and hands over.
    uint64_t hello_request_id_ = 0;
    uint64_t last_activity_ms_ = 0;
    uint64_t accepted_ms_ = 0;       // A connection must authenticate within frame_timeout_ms.
    uint64_t partial_since_ms_ = 0;  // When the incomplete frame in the buffer began; 0: none.

    friend class ShardThread;
};

template <typename WireReply>
void Connection::set_reply(uint32_t op_position, const WireReply& reply) noexcept {
    static_assert(sizeof(WireReply) <= sizeof(OpSlot::reply));
    std::memcpy(slot(op_position).reply, &reply, sizeof(reply));
}

}  // namespace jifen::server
