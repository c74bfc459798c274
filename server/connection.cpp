// One binary-protocol connection: framing, HELLO, scopes, in-flight frames and gathered writes.
#include "server/connection.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstring>
#include <string>
#include <utility>

#include "engine/assert.hpp"
#include "server/dispatch.hpp"
#include "server/shard_thread.hpp"

namespace jifen::server {

namespace {

using protocol::FrameHeader;
using protocol::Opcode;

constexpr size_t read_buffer_bytes = protocol::frame_bytes_max;
static_assert((connection_ops_in_flight_max & (connection_ops_in_flight_max - 1)) == 0);
static_assert((connection_frames_in_flight_max & (connection_frames_in_flight_max - 1)) == 0);
constexpr uint32_t ops_mask = connection_ops_in_flight_max - 1;
constexpr uint32_t frames_mask = connection_frames_in_flight_max - 1;

// The text of an ErrorReply: what was wrong, in words a client developer can act on.
std::string_view describe(Result result) noexcept {
    struct Text {
        Result result;
        std::string_view text;
    };
    static constexpr Text texts[] = {
        {Result::bad_magic, "frame does not start with the magic \"JIFN\""},
        {Result::bad_version, "unsupported protocol version"},
        {Result::bad_header_checksum, "header checksum mismatch"},
        {Result::bad_body_checksum, "body checksum mismatch"},
        {Result::frame_too_large, "body_bytes above body_bytes_max"},
        {Result::unknown_opcode, "unknown opcode"},
        {Result::bad_body_length, "body length or count does not match the opcode"},
        {Result::batch_too_large, "more operations than batch_ops_max"},
        {Result::reserved_not_zero, "reserved header flags set"},
        {Result::not_authenticated, "the first frame must be HELLO"},
    };
    for (const Text& text : texts) {
        if (text.result == result) {
            return text.text;
        }
    }
    return to_string(result);
}

}  // namespace

Handover::Handover(Handover&& other) noexcept
    : fd(std::exchange(other.fd, -1)),
      protocol(other.protocol),
      scope(other.scope),
      hello_request_id(other.hello_request_id),
      number(other.number),
      unread(std::move(other.unread)) {}

Handover::~Handover() {
    if (fd >= 0) {
        ::close(fd);  // Never adopted (the server stopped first): the client sees it close.
    }
}

Connection::Connection(ShardThread& shard, Socket socket, boost::asio::ssl::context* tls,
                       uint32_t index, uint32_t generation, uint64_t number)
    : shard_(shard),
      socket_(std::move(socket)),
      index_(index),
      generation_(generation),
      number_(number),
      // Not value-initialised: pages are only touched as frames use them.
      read_buffer_(new std::byte[read_buffer_bytes]),
      slots_(new OpSlot[connection_ops_in_flight_max]),
      frames_(std::make_unique<InFlightFrame[]>(connection_frames_in_flight_max)) {
    if (tls != nullptr) {
        tls_stream_ = std::make_unique<TlsStream>(std::move(socket_), *tls);
    }
    last_activity_ms_ = shard_.now_ms();
    accepted_ms_ = last_activity_ms_;
}

void Connection::start() {
    boost::system::error_code ignored;
    auto& lowest = tls_stream_ ? tls_stream_->next_layer() : socket_;
    lowest.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
    if (tls_stream_) {
        tls_stream_->async_handshake(
            boost::asio::ssl::stream_base::server,
            [self = shared_from_this()](const boost::system::error_code& error) {
                self->on_handshake(error);
            });
        return;
    }
    handshake_done_ = true;
    do_read();
}

void Connection::start_handed_over(Handover& handover) {
    const auto self = shared_from_this();  // parse() may close this connection.
    handshake_done_ = true;
    authenticated_ = true;
    scope_ = handover.scope;
    if (!handover.unread.empty()) {
        std::memcpy(read_buffer_.get(), handover.unread.data(), handover.unread.size());
    }
    read_end_ = handover.unread.size();
    protocol::HelloReply reply = hello_reply();
    reply.result = static_cast<uint32_t>(Result::ok);
    reply.scope = scope_;
    send_frame(Opcode::hello, handover.hello_request_id, 1,
               std::as_bytes(std::span<const protocol::HelloReply>(&reply, 1)));
    parse();
    do_read();
}

void Connection::on_handshake(const boost::system::error_code& error) {
    if (error) {
        spdlog::debug("connection {}: TLS handshake failed: {}", number_, error.message());
        close();
        shard_.after_work();
        return;
    }
    handshake_done_ = true;
    do_read();
}

template <typename Handler>
void Connection::async_read_some(std::byte* data, size_t size, Handler&& handler) {
    if (tls_stream_) {
        tls_stream_->async_read_some(boost::asio::buffer(data, size),
                                     std::forward<Handler>(handler));
    } else {
        socket_.async_read_some(boost::asio::buffer(data, size), std::forward<Handler>(handler));
    }
}

// The next chunk of writing_ (connection_write_chunk_bytes at most).
template <typename Handler>
void Connection::async_write(Handler&& handler) {
    const auto chunk =
        boost::asio::buffer(writing_.data() + written_,
                            std::min(writing_.size() - written_, connection_write_chunk_bytes));
    if (tls_stream_) {
        boost::asio::async_write(*tls_stream_, chunk, std::forward<Handler>(handler));
    } else {
        boost::asio::async_write(socket_, chunk, std::forward<Handler>(handler));
    }
}

void Connection::close() {
    if (closed_) {
        return;
    }
    closed_ = true;
    const auto self = shared_from_this();  // The shard's table drops its reference below.
    boost::system::error_code ignored;
    auto& lowest = tls_stream_ ? tls_stream_->next_layer() : socket_;
    lowest.shutdown(Socket::shutdown_both, ignored);
    lowest.close(ignored);
    shard_.on_connection_closed(*this);
}

void Connection::refuse(Result result, std::string_view message) {
    if (tls_stream_) {
        // No TLS session yet, so no way to send a frame: the client sees the connection end.
        close();
        return;
    }
    handshake_done_ = true;
    send_error(0, result, message);
    closing_ = true;
    flush();
}

void Connection::begin_drain() { draining_ = true; }

bool Connection::idle() const noexcept {
    return closed_ || (frames_head_ == frames_tail_ && output_.empty() && !write_active_);
}

void Connection::do_read() {
    if (read_active_ || closed_ || closing_ || draining_ || paused_) {
        return;
    }
    if (read_end_ == read_buffer_bytes) {
        compact();
    }
    read_active_ = true;
    async_read_some(read_buffer_.get() + read_end_, read_buffer_bytes - read_end_,
                    [self = shared_from_this()](const boost::system::error_code& error,
                                                size_t bytes) { self->on_read(error, bytes); });
}

void Connection::on_read(const boost::system::error_code& error, size_t bytes) {
    read_active_ = false;
    if (closed_) {
        return;
    }
    if (error) {
        if (error != boost::asio::error::eof && error != boost::asio::error::operation_aborted) {
            spdlog::debug("connection {}: read failed: {}", number_, error.message());
        }
        close();
        shard_.after_work();
        return;
    }
    read_end_ += bytes;
    last_activity_ms_ = shard_.now_ms();
    parse();
    shard_.after_work();
    do_read();
}

void Connection::compact() noexcept {
    if (read_begin_ == 0) {
        return;
    }
    const size_t remaining = read_end_ - read_begin_;
    std::memmove(read_buffer_.get(), read_buffer_.get() + read_begin_, remaining);
    read_begin_ = 0;
    read_end_ = remaining;
}

void Connection::parse() {
    while (!closed_ && !closing_ && hand_over_to_ == no_shard) {
        const size_t available = read_end_ - read_begin_;
        if (available < protocol::frame_header_bytes) {
            break;
        }
        FrameHeader header;
        std::memcpy(&header, read_buffer_.get() + read_begin_, sizeof(header));
        const Result header_result = protocol::check_header(header);
        if (header_result != Result::ok) {
            fail(header.request_id, header_result, describe(header_result));
            return;
        }
        const size_t frame_bytes = protocol::frame_header_bytes + header.body_bytes;
        if (available < frame_bytes) {
            if (read_begin_ + frame_bytes > read_buffer_bytes) {
                compact();
            }
            break;
        }
        const std::span<const std::byte> body(
            read_buffer_.get() + read_begin_ + protocol::frame_header_bytes, header.body_bytes);
        const Result body_result = protocol::check_body(header, body);
        if (body_result != Result::ok) {
            fail(header.request_id, body_result, describe(body_result));
            return;
        }
        if (draining_) {
            // Already read but not started: say so, so the client retries elsewhere or later.
            send_error(header.request_id, Result::shutting_down, "the server is stopping");
        } else if (!handle_frame(header, body)) {
            paused_ = true;
            shard_.stall(*this);
            break;
        }
        read_begin_ += frame_bytes;
        partial_since_ms_ = 0;
    }
    if (hand_over_to_ != no_shard) {
        hand_over();
        return;
    }
    if (read_begin_ == read_end_) {
        read_begin_ = 0;
        read_end_ = 0;
        partial_since_ms_ = 0;
    } else if (partial_since_ms_ == 0 && !paused_) {
        partial_since_ms_ = shard_.now_ms();
    }
}

bool Connection::handle_frame(const FrameHeader& header, std::span<const std::byte> body) {
    const auto opcode = static_cast<Opcode>(header.opcode);
    if (!authenticated_ && opcode != Opcode::hello) {
        // Closed rather than answered and kept: a client that never authenticates would
        // otherwise hold a connection slot for as long as it keeps sending.
        fail(header.request_id, Result::not_authenticated, describe(Result::not_authenticated));
        return true;
    }
    const Result shape = protocol::check_request_shape(header);
    if (shape != Result::ok && !authenticated_) {
        fail(header.request_id, shape, describe(shape));  // A malformed HELLO: likewise.
        return true;
    }
    if (shape != Result::ok) {
        send_error(header.request_id, shape, describe(shape));
        return true;
    }
    if (opcode == Opcode::hello) {
        handle_hello(header, body);
        return true;
    }
    if (const uint32_t required = protocol::scope_required(opcode); (scope_ & required) == 0) {
        // The narrowest scope that would do: "earn needs pos scope".
        const std::string_view needed = (required & protocol::scope_read) != 0  ? "read"
                                        : (required & protocol::scope_pos) != 0 ? "pos"
                                                                                : "admin";
        send_error(header.request_id, Result::forbidden,
                   fmt::format("{} needs {} scope", protocol::to_string(opcode), needed));
        return true;
    }
    if (output_.size() > connection_output_bytes_soft_max ||
        (opcode == Opcode::history && history_in_flight_ >= connection_history_in_flight_max)) {
        return false;  // The client is not reading its replies: stop reading its requests.
    }
    if (opcode == Opcode::audit) {
        // An audit walks each shard on its thread: the next waits for this one's reply, so a
        // pipelined stream of them cannot hold the shards from everyone else.
        if (audit_in_flight_) {
            return false;
        }
        audit_in_flight_ = true;  // Before routing: an audit answered at once finishes inside.
        if (!shard_.handle_frame(*this, header, body)) {
            audit_in_flight_ = false;
            return false;
        }
        return true;
    }
    return shard_.handle_frame(*this, header, body);
}

protocol::HelloReply Connection::hello_reply() const noexcept {
    protocol::HelloReply reply;  // result and scope are the caller's.
    reply.shard_count = static_cast<uint32_t>(shard_.shared().shards.size());
    reply.shard = shard_.index();
    reply.server_time_us =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
    std::memcpy(reply.server_name, "jifend", 6);
    return reply;
}

void Connection::handle_hello(const FrameHeader& header, std::span<const std::byte> body) {
    protocol::HelloRequest hello;
    std::memcpy(&hello, body.data(), sizeof(hello));
    const auto send_reply = [&](Result result) {
        protocol::HelloReply reply = hello_reply();
        reply.result = static_cast<uint32_t>(result);
        reply.scope = result == Result::ok ? scope_ : 0;
        send_frame(Opcode::hello, header.request_id, 1,
                   std::as_bytes(std::span<const protocol::HelloReply>(&reply, 1)));
    };
    const Result checked = check_hello(hello, static_cast<uint32_t>(shard_.shared().shards.size()));
    if (checked != Result::ok) {
        send_reply(checked);
        if (checked == Result::bad_version) {
            closing_ = true;  // Nothing more on this connection can be read as this version.
        }
        return;
    }
    const bool wants_shard = (hello.flags & protocol::hello_flag_shard) != 0;
    const std::string_view secret(hello.api_key, strnlen(hello.api_key, sizeof(hello.api_key)));
    const std::string_view client_name(hello.client_name,
                                       strnlen(hello.client_name, sizeof(hello.client_name)));
    const auto who = shard_.shared().keys->authenticate(secret);
    if (!who) {
        // The secret is never logged. The client name is the client's own label, escaped
        // ({:?}) so that control characters in it cannot forge log lines.
        LogThrottle& log = shard_.refused_keys_log();
        if (log.allow()) {
            spdlog::warn("connection {} on shard {}: authentication failed from {} (client {:?}){}",
                         number_, shard_.index(), peer(), client_name, log.suffix("refused"));
        }
        authenticated_ = false;
        send_reply(Result::auth_failed);
        closing_ = true;
        return;
    }
    authenticated_ = true;
    scope_ = who->scope;
    spdlog::debug("connection {} on shard {}: key \"{}\" (client {:?})", number_, shard_.index(),
                  who->name, client_name);
    if (wants_shard && hello.shard != shard_.index() && can_hand_over()) {
        // The shard asked for answers the HELLO once it owns the socket (start_handed_over).
        hand_over_to_ = hello.shard;
        hello_request_id_ = header.request_id;
        return;
    }
    send_reply(Result::ok);
}

std::string Connection::peer() const {
    boost::system::error_code error;
    const auto& lowest = tls_stream_ ? tls_stream_->next_layer() : socket_;
    const auto endpoint = lowest.remote_endpoint(error);
    return error ? std::string("an unknown peer")
                 : fmt::format("{}:{}", endpoint.address().to_string(), endpoint.port());
}

bool Connection::can_hand_over() const noexcept {
    // A TLS session cannot leave its thread's io_context; frames in flight would be answered on
    // this shard; replies queued here would be overtaken.
    return !tls_stream_ && !draining_ && frames_head_ == frames_tail_ && output_.empty() &&
           !write_active_;
}

void Connection::hand_over() {
    Handover handover;
    handover.scope = scope_;
    handover.hello_request_id = hello_request_id_;
    handover.number = number_;
    handover.unread.assign(read_buffer_.get() + read_begin_, read_buffer_.get() + read_end_);
    boost::system::error_code error;
    handover.protocol = socket_.local_endpoint(error).protocol();
    if (!error) {
        handover.fd = socket_.release(error);
    }
    if (error) {
        spdlog::debug("connection {}: cannot hand over to shard {}: {}", number_, hand_over_to_,
                      error.message());
        close();
        return;
    }
    const auto self = shared_from_this();  // The shard's table drops its reference below.
    closed_ = true;
    shard_.on_connection_closed(*this);
    shard_.shared().shards[hand_over_to_]->adopt(std::move(handover));
}

void Connection::fail(uint64_t request_id, Result result, std::string_view message) {
    spdlog::debug("connection {} on shard {}: closing after {}", number_, shard_.index(),
                  to_string(result));
    send_error(request_id, result, message);
    closing_ = true;
}

bool Connection::can_open_frame(uint32_t count) const noexcept {
    return frames_tail_ - frames_head_ < connection_frames_in_flight_max &&
           ops_tail_ - ops_head_ + count <= connection_ops_in_flight_max;
}

uint32_t Connection::open_frame(const FrameHeader& request, uint32_t parts) {
    const uint32_t first = ops_tail_;
    InFlightFrame& frame = frames_[frames_tail_ & frames_mask];
    frame.request = request;
    frame.first_op = first;
    frame.parts_remaining = parts;
    frame.finished = false;
    frame.result = Result::ok;
    frame.audit = engine::AuditReport{};
    for (uint32_t i = 0; i < request.count; ++i) {
        slots_[(first + i) & ops_mask].frame_position = frames_tail_;
    }
    ++frames_tail_;
    ops_tail_ += request.count;
    return first;
}

OpSlot& Connection::slot(uint32_t op_position) noexcept { return slots_[op_position & ops_mask]; }

engine::AuditReport& Connection::audit_sum(uint32_t op_position) noexcept {
    return frames_[slot(op_position).frame_position & frames_mask].audit;
}

void Connection::set_frame_result(uint32_t op_position, Result result) noexcept {
    frames_[slot(op_position).frame_position & frames_mask].result = result;
}

void Connection::complete(uint32_t op_position, uint32_t parts) {
    InFlightFrame& frame = frames_[slot(op_position).frame_position & frames_mask];
    JIFEN_ASSERT(!frame.finished && frame.parts_remaining >= parts);
    frame.parts_remaining -= parts;
    if (frame.parts_remaining == 0) {
        finish_frame(frame);
    }
}

void Connection::finish_frame(InFlightFrame& frame) {
    frame.finished = true;
    last_activity_ms_ = shard_.now_ms();
    const auto opcode = static_cast<Opcode>(frame.request.opcode);
    if (!closed_ && !closing_) {
        if (opcode == Opcode::audit) {
            audit_in_flight_ = false;
            protocol::AuditReply reply = to_audit_reply(frame.audit);
            if (frame.result != Result::ok) {
                reply = protocol::AuditReply{};
                reply.result = static_cast<uint32_t>(frame.result);
            }
            set_reply(frame.first_op, reply);
        }
        const size_t item_bytes = reply_item_bytes(opcode);
        const size_t body_bytes = item_bytes * frame.request.count;
        std::byte* out = reserve_output(protocol::frame_header_bytes + body_bytes);
        std::byte* body = out + protocol::frame_header_bytes;
        for (uint32_t i = 0; i < frame.request.count; ++i) {
            const std::byte* reply = slot(frame.first_op + i).reply;
            std::memcpy(body + i * item_bytes, reply, item_bytes);
            count_if_refused(reply);
        }
        FrameHeader header;
        header.opcode = frame.request.opcode;
        header.request_id = frame.request.request_id;
        header.count = frame.request.count;
        header.flags = protocol::flag_response;
        protocol::seal(&header, std::span<const std::byte>(body, body_bytes));
        std::memcpy(out, &header, sizeof(header));
        shard_.schedule_flush(*this);
    }
    // Slots are reused in order: advance past every finished frame at the head.
    while (frames_head_ != frames_tail_ && frames_[frames_head_ & frames_mask].finished) {
        const InFlightFrame& head = frames_[frames_head_ & frames_mask];
        ops_head_ = head.first_op + head.request.count;
        ++frames_head_;
    }
    if (frames_head_ == frames_tail_) {
        // Nothing refers to any position now: start again at 0 so a connection that never has
        // much in flight keeps touching the same few pages.
        frames_head_ = frames_tail_ = 0;
        ops_head_ = ops_tail_ = 0;
    }
}

std::byte* Connection::reserve_output(size_t bytes) {
    const size_t at = output_.size();
    output_.resize(at + bytes);
    return output_.data() + at;
}

void Connection::send_frame(Opcode opcode, uint64_t request_id, uint16_t count,
                            std::span<const std::byte> body) {
    if (closed_ || closing_) {
        return;
    }
    if (opcode != Opcode::ping && body.size() >= sizeof(uint32_t)) {
        count_if_refused(body.data());
    }
    FrameHeader header;
    header.opcode = static_cast<uint16_t>(opcode);
    header.request_id = request_id;
    header.count = count;
    header.flags = protocol::flag_response;
    protocol::seal(&header, body);
    std::byte* out = reserve_output(protocol::frame_header_bytes + body.size());
    std::memcpy(out, &header, sizeof(header));
    if (!body.empty()) {
        std::memcpy(out + protocol::frame_header_bytes, body.data(), body.size());
    }
    shard_.schedule_flush(*this);
}

void Connection::count_if_refused(const std::byte* reply) noexcept {
    uint32_t result = 0;
    std::memcpy(&result, reply, sizeof(result));
    if (result != 0) {
        shard_.count_refusal(result);
    }
}

void Connection::send_error(uint64_t request_id, Result result, std::string_view message) {
    std::byte body[sizeof(protocol::ErrorReply) + protocol::error_message_bytes_max];
    protocol::ErrorReply error;
    error.result = static_cast<uint32_t>(result);
    error.message_bytes =
        static_cast<uint32_t>(std::min<size_t>(message.size(), protocol::error_message_bytes_max));
    std::memcpy(body, &error, sizeof(error));
    std::memcpy(body + sizeof(error), message.data(), error.message_bytes);
    send_frame(Opcode::error, request_id, 1,
               std::span<const std::byte>(body, sizeof(error) + error.message_bytes));
}

void Connection::flush() {
    flush_scheduled_ = false;
    if (closed_ || write_active_ || !handshake_done_) {
        return;
    }
    if (output_.empty()) {
        if (closing_) {
            close();
        }
        return;
    }
    writing_.swap(output_);
    output_.clear();
    written_ = 0;
    write_active_ = true;
    write_progress_ms_ = shard_.now_ms();
    write_chunk();
}

void Connection::write_chunk() {
    async_write([self = shared_from_this()](const boost::system::error_code& error, size_t bytes) {
        self->written_ += bytes;
        self->on_write(error);
    });
}

void Connection::on_write(const boost::system::error_code& error) {
    if (!closed_ && !error && written_ < writing_.size()) {
        write_progress_ms_ = shard_.now_ms();
        write_chunk();
        return;
    }
    write_active_ = false;
    writing_.clear();
    if (closed_) {
        return;
    }
    if (error) {
        spdlog::debug("connection {}: write failed: {}", number_, error.message());
        close();
        shard_.after_work();
        return;
    }
    flush();
    if (paused_) {
        shard_.stall(*this);
    }
    shard_.after_work();
}

void Connection::resume() {
    if (closed_) {
        return;
    }
    const auto self = shared_from_this();  // parse() may close this connection.
    paused_ = false;
    parse();
    do_read();
}

void Connection::check_timeouts(uint64_t now_ms) {
    if (closed_) {
        return;
    }
    const Config& config = *shard_.shared().config;
    if (partial_since_ms_ != 0 && !paused_ &&
        now_ms - partial_since_ms_ > config.frame_timeout_ms) {
        spdlog::debug("connection {} on shard {}: frame timeout", number_, shard_.index());
        close();
        return;
    }
    // Frames keep a connection from idling out, but not from authenticating: one that retries
    // refused HELLOs (or sends nothing) would otherwise hold a connection slot for ever.
    if (!authenticated_ && now_ms - accepted_ms_ > config.frame_timeout_ms) {
        spdlog::debug("connection {} on shard {}: not authenticated in time", number_,
                      shard_.index());
        close();
        return;
    }
    // Replies waiting while the client takes none: it stopped reading (a paused connection
    // reads nothing, so no other timeout would ever close it).
    if (write_active_ && now_ms - write_progress_ms_ > config.frame_timeout_ms) {
        spdlog::debug("connection {} on shard {}: replies not read in time", number_,
                      shard_.index());
        close();
        return;
    }
    const bool nothing_in_flight = frames_head_ == frames_tail_ && read_begin_ == read_end_;
    if (nothing_in_flight && now_ms - last_activity_ms_ > config.idle_timeout_ms) {
        spdlog::debug("connection {} on shard {}: idle timeout", number_, shard_.index());
        close();
    }
}

}  // namespace jifen::server
