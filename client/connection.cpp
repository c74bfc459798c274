// One framed connection: connect, TLS, HELLO, then pipelined frames matched by request_id.
//
// Each open creates a fresh Session (socket, TLS stream, read buffer). Asio completions hold the
// Session they were started on, so a close followed by a reconnect can never mix bytes or free a
// stream under a pending operation: a completion for an old session just returns.
#include "client/connection.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace jifen::client {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// Read buffer: one largest frame plus room for the next read, so a frame is always contiguous.
constexpr size_t read_buffer_bytes = protocol::frame_bytes_max + 64 * 1024;
// The request-id low bits that carry the in-flight slot index.
constexpr uint64_t slot_index_mask = 0xFFFFu;
static_assert(frames_in_flight_limit <= slot_index_mask + 1);

// A view of the gathered write's buffers. Asio copies the buffer sequence into its write
// operation; copying this view is two pointers, where copying a std::vector would allocate on
// every write.
struct BufferView {
    using value_type = asio::const_buffer;
    using const_iterator = const asio::const_buffer*;
    const asio::const_buffer* first = nullptr;
    const asio::const_buffer* last = nullptr;
    const_iterator begin() const noexcept { return first; }
    const_iterator end() const noexcept { return last; }
};

void copy_padded(char* destination, size_t capacity, const std::string& source) {
    std::memcpy(destination, source.data(), std::min(capacity, source.size()));
}

}  // namespace

struct Connection::Impl : std::enable_shared_from_this<Impl> {
    enum class State : uint8_t { closed, connecting, hello, open };

    struct Session {
        std::optional<tcp::socket> plain;
        std::optional<asio::ssl::stream<tcp::socket>> tls;
        tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }
        std::vector<std::byte> read_buffer = std::vector<std::byte>(read_buffer_bytes);
        size_t read_begin = 0;
        size_t read_end = 0;
        bool writing = false;
    };

    struct Slot {
        ReplyHandler handler;
        protocol::FrameHeader header;
        std::span<const std::byte> body;
        Clock::time_point sent_at;
        bool busy = false;
    };

    Impl(asio::io_context& io_context, const Options& options_in)
        : io(io_context), options(options_in), resolver(io_context), timer(io_context) {
        const uint32_t depth =
            std::clamp<uint32_t>(options.frames_in_flight_max, 1, frames_in_flight_limit);
        options.frames_in_flight_max = depth;
        slots.resize(depth);
        free_slots.reserve(depth);
        for (uint32_t index = depth; index > 0; --index) {
            free_slots.push_back(static_cast<uint16_t>(index - 1));
        }
        write_queue.reserve(depth);
        writing_slots.reserve(depth);
        write_buffers.reserve(2 * size_t{depth});
    }

    // ---- opening ------------------------------------------------------------------------------

    void open(OpenHandler handler) {
        if (state != State::closed) {
            close({Failure::closed, Result::ok, "reconnecting"});
        }
        state = State::connecting;
        open_handler = std::move(handler);
        session = std::make_shared<Session>();
        if (!options.tls) {
            session->plain.emplace(io);
        } else {
            if (!ssl_context) {
                Status status = make_ssl_context();
                if (!status.ok()) {
                    // Reported from the io_context like every other open failure, never from
                    // inside async_open.
                    asio::post(io, [self = shared_from_this(), current = session, status] {
                        if (current == self->session) {
                            self->fail_open(status);
                        }
                    });
                    return;
                }
            }
            session->tls.emplace(io, *ssl_context);
        }
        arm_connect_deadline();
        resolver.async_resolve(
            options.host, std::to_string(options.port),
            [self = shared_from_this(), current = session](const boost::system::error_code& error,
                                                           tcp::resolver::results_type endpoints) {
                self->on_resolve(current, error, std::move(endpoints));
            });
    }

    // The certificate must name `host` in its subjectAltName (a DNS name, or an IP address when
    // host is one), checked by OpenSSL while it verifies the chain. Never the subject's CN,
    // which browsers and curl stopped trusting. A scoped IPv6 address is checked without its
    // scope (no certificate names one), a name without a trailing dot. False, and the caller
    // refuses to connect, when OpenSSL cannot take the name: the chain alone is never enough.
    static bool expect_host(SSL* ssl, const std::string& host) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(
            param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        boost::system::error_code not_an_address;
        asio::ip::make_address(host, not_an_address);
        if (!not_an_address) {
            const std::string address = host.substr(0, host.find('%'));
            return X509_VERIFY_PARAM_set1_ip_asc(param, address.c_str()) == 1;
        }
        const std::string name = host.ends_with('.') ? host.substr(0, host.size() - 1) : host;
        return !name.empty() && name.find('\0') == std::string::npos &&
               X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) == 1;
    }

    Status make_ssl_context() {
        try {
            ssl_context.emplace(asio::ssl::context::tls_client);
            if (options.tls_insecure_skip_verify) {
                ssl_context->set_verify_mode(asio::ssl::verify_none);
            } else {
                ssl_context->set_verify_mode(asio::ssl::verify_peer);
                if (options.tls_ca_file.empty()) {
                    ssl_context->set_default_verify_paths();
                } else {
                    ssl_context->load_verify_file(options.tls_ca_file);
                }
            }
        } catch (const boost::system::system_error& error) {
            ssl_context.reset();
            return {Failure::connect, Result::ok, std::string("TLS setup: ") + error.what()};
        }
        return {};
    }

    void arm_connect_deadline() {
        timer.expires_after(options.connect_timeout);
        timer.async_wait(
            [self = shared_from_this(), current = session](const boost::system::error_code& error) {
                if (error || current != self->session || self->state == State::open) {
                    return;
                }
                self->fail_open({Failure::timeout, Result::ok, "connect timed out"});
            });
    }

    void on_resolve(const std::shared_ptr<Session>& current, const boost::system::error_code& error,
                    tcp::resolver::results_type endpoints) {
        if (current != session) {
            return;
        }
        if (error) {
            fail_open(
                {Failure::connect, Result::ok, "resolve " + options.host + ": " + error.message()});
            return;
        }
        asio::async_connect(
            current->socket(), endpoints,
            [self = shared_from_this(), current](const boost::system::error_code& connect_error,
                                                 const tcp::endpoint&) {
                self->on_connect(current, connect_error);
            });
    }

    void on_connect(const std::shared_ptr<Session>& current,
                    const boost::system::error_code& error) {
        if (current != session) {
            return;
        }
        if (error) {
            fail_open({Failure::connect, Result::ok,
                       "connect " + options.host + ":" + std::to_string(options.port) + ": " +
                           error.message()});
            return;
        }
        boost::system::error_code ignored;
        current->socket().set_option(tcp::no_delay(true), ignored);
        if (!current->tls) {
            start_hello();
            return;
        }
        if (!options.tls_insecure_skip_verify) {
            // SNI and certificate host-name check against the name the caller asked for.
            SSL_set_tlsext_host_name(current->tls->native_handle(), options.host.c_str());
            if (!expect_host(current->tls->native_handle(), options.host)) {
                fail_open({Failure::connect, Result::ok,
                           "TLS: cannot check the server's certificate against host '" +
                               options.host + "'"});
                return;
            }
        }
        current->tls->async_handshake(
            asio::ssl::stream_base::client,
            [self = shared_from_this(), current](const boost::system::error_code& handshake_error) {
                if (current != self->session) {
                    return;
                }
                if (handshake_error) {
                    // OpenSSL's reason for a refused certificate ("hostname mismatch",
                    // "certificate has expired"), which the handshake error alone does not say.
                    // Without verification OpenSSL still records one; it is not the reason then.
                    const long verified =
                        self->options.tls_insecure_skip_verify
                            ? X509_V_OK
                            : SSL_get_verify_result(current->tls->native_handle());
                    self->fail_open(
                        {Failure::connect, Result::ok,
                         "TLS handshake: " + handshake_error.message() +
                             (verified == X509_V_OK
                                  ? std::string()
                                  : std::string(" (") + X509_verify_cert_error_string(verified) +
                                        ")")});
                    return;
                }
                self->start_hello();
            });
    }

    void start_hello() {
        state = State::hello;
        hello_request = {};
        copy_padded(hello_request.client_name, sizeof(hello_request.client_name),
                    options.client_name);
        copy_padded(hello_request.api_key, sizeof(hello_request.api_key), options.api_key);
        if (options.shard) {
            hello_request.flags = protocol::hello_flag_shard;
            hello_request.shard = *options.shard;
        }
        start_read(session);
        send_frame(protocol::Opcode::hello, 1, std::as_bytes(std::span(&hello_request, 1)),
                   [self = shared_from_this()](const Status& status, const protocol::FrameHeader&,
                                               std::span<const std::byte> body) {
                       self->on_hello(status, body);
                   });
    }

    void on_hello(const Status& status, std::span<const std::byte> body) {
        if (!status.ok()) {
            fail_open(status);
            return;
        }
        if (body.size() != sizeof(protocol::HelloReply)) {
            fail_open({Failure::protocol, Result::ok, "HELLO reply has the wrong size"});
            return;
        }
        std::memcpy(&hello_reply, body.data(), sizeof(hello_reply));
        const auto result = static_cast<Result>(hello_reply.result);
        if (result != Result::ok) {
            fail_open({Failure::refused, result, "HELLO refused"});
            return;
        }
        state = State::open;
        timer.cancel();
        arm_request_watchdog();
        OpenHandler handler = std::move(open_handler);
        open_handler = nullptr;
        if (handler) {
            handler(Status{});
        }
    }

    // Closing while opening reports the reason to the open handler (from close()).
    void fail_open(const Status& status) { close(status); }

    // ---- request timeout ------------------------------------------------------------------------

    // Checks the oldest frame in flight a few times per timeout; a frame older than the timeout
    // means the server or the path is stuck, and only closing tells the caller to retry.
    void arm_request_watchdog() {
        const auto period = std::max(options.request_timeout / 4, std::chrono::milliseconds(5));
        timer.expires_after(period);
        timer.async_wait(
            [self = shared_from_this(), current = session](const boost::system::error_code& error) {
                if (error || current != self->session || self->state != State::open) {
                    return;
                }
                const auto now = Clock::now();
                for (const Slot& slot : self->slots) {
                    if (slot.busy && now - slot.sent_at > self->options.request_timeout) {
                        self->close(
                            {Failure::timeout, Result::ok, "no reply within the request timeout"});
                        return;
                    }
                }
                self->arm_request_watchdog();
            });
    }

    // ---- writing --------------------------------------------------------------------------------

    void send_frame(protocol::Opcode opcode, uint16_t count, std::span<const std::byte> body,
                    ReplyHandler handler) {
        const uint16_t index = free_slots.back();
        free_slots.pop_back();
        Slot& slot = slots[index];
        ++request_sequence;
        slot.header = {};
        slot.header.opcode = static_cast<uint16_t>(opcode);
        slot.header.request_id = (request_sequence << 16) | index;
        slot.header.count = count;
        protocol::seal(&slot.header, body);
        slot.body = body;
        slot.handler = std::move(handler);
        slot.sent_at = Clock::now();
        slot.busy = true;
        write_queue.push_back(index);
        if (!session->writing) {
            start_write();
        }
    }

    void start_write() {
        writing_slots.swap(write_queue);
        write_queue.clear();
        write_buffers.clear();
        for (const uint16_t index : writing_slots) {
            const Slot& slot = slots[index];
            write_buffers.emplace_back(&slot.header, sizeof(slot.header));
            if (!slot.body.empty()) {
                write_buffers.emplace_back(slot.body.data(), slot.body.size());
            }
        }
        // write_buffers was reserved for every slot at construction, so it never reallocates
        // under a write in progress.
        const BufferView buffers{write_buffers.data(), write_buffers.data() + write_buffers.size()};
        session->writing = true;
        auto on_written = [self = shared_from_this(), current = session](
                              const boost::system::error_code& error, size_t) {
            if (current != self->session) {
                return;
            }
            current->writing = false;
            self->writing_slots.clear();
            if (error) {
                self->close({Failure::closed, Result::ok, "write: " + error.message()});
                return;
            }
            if (!self->write_queue.empty()) {
                self->start_write();
            }
        };
        if (session->tls) {
            asio::async_write(*session->tls, buffers, std::move(on_written));
        } else {
            asio::async_write(*session->plain, buffers, std::move(on_written));
        }
    }

    // ---- reading --------------------------------------------------------------------------------

    void start_read(const std::shared_ptr<Session>& current) {
        auto space = asio::buffer(current->read_buffer.data() + current->read_end,
                                  current->read_buffer.size() - current->read_end);
        auto on_read = [self = shared_from_this(), current](const boost::system::error_code& error,
                                                            size_t bytes) {
            self->on_read(current, error, bytes);
        };
        if (current->tls) {
            current->tls->async_read_some(space, std::move(on_read));
        } else {
            current->plain->async_read_some(space, std::move(on_read));
        }
    }

    void on_read(const std::shared_ptr<Session>& current, const boost::system::error_code& error,
                 size_t bytes) {
        if (current != session) {
            return;
        }
        if (error) {
            const bool eof =
                error == asio::error::eof || error == asio::ssl::error::stream_truncated;
            // Closed before it answered HELLO, on a plain connection: the usual cause is a TLS
            // port (it cannot read a plain frame and hangs up), which the message says.
            const bool before_hello = state == State::hello && !current->tls;
            close({Failure::closed, Result::ok,
                   eof ? std::string(before_hello ? "the server closed the connection before "
                                                    "answering HELLO (if its port is TLS, "
                                                    "connect with TLS)"
                                                  : "the server closed the connection")
                       : "read: " + error.message()});
            return;
        }
        current->read_end += bytes;
        while (current == session) {
            const size_t available = current->read_end - current->read_begin;
            if (available < protocol::frame_header_bytes) {
                break;
            }
            protocol::FrameHeader header;
            std::memcpy(&header, current->read_buffer.data() + current->read_begin, sizeof(header));
            const Result header_result = protocol::check_header(header);
            if (header_result != Result::ok) {
                close({Failure::protocol, header_result, "bad frame header from the server"});
                return;
            }
            if (available < protocol::frame_header_bytes + header.body_bytes) {
                break;
            }
            const std::span<const std::byte> body(
                current->read_buffer.data() + current->read_begin + protocol::frame_header_bytes,
                header.body_bytes);
            if (protocol::check_body(header, body) != Result::ok) {
                close({Failure::protocol, Result::bad_body_checksum,
                       "bad body checksum from the server"});
                return;
            }
            current->read_begin += protocol::frame_header_bytes + header.body_bytes;
            dispatch(header, body);
        }
        if (current != session) {
            return;
        }
        // Move the partial frame (if any) to the front so the next frame stays contiguous.
        const size_t remaining = current->read_end - current->read_begin;
        if (current->read_begin > 0) {
            std::memmove(current->read_buffer.data(),
                         current->read_buffer.data() + current->read_begin, remaining);
            current->read_begin = 0;
            current->read_end = remaining;
        }
        start_read(current);
    }

    static Status error_status(std::span<const std::byte> body) {
        protocol::ErrorReply error;
        if (body.size() < sizeof(error)) {
            return {Failure::protocol, Result::ok, "error frame too short"};
        }
        std::memcpy(&error, body.data(), sizeof(error));
        const size_t message_bytes =
            std::min<size_t>(error.message_bytes, body.size() - sizeof(error));
        std::string message(reinterpret_cast<const char*>(body.data() + sizeof(error)),
                            message_bytes);
        return {Failure::refused, static_cast<Result>(error.result), std::move(message)};
    }

    void dispatch(const protocol::FrameHeader& header, std::span<const std::byte> body) {
        const bool is_error = header.opcode == static_cast<uint16_t>(protocol::Opcode::error);
        const size_t index = header.request_id & slot_index_mask;
        const bool matches = (header.flags & protocol::flag_response) != 0 &&
                             index < slots.size() && slots[index].busy &&
                             slots[index].header.request_id == header.request_id &&
                             (is_error || slots[index].header.opcode == header.opcode);
        if (!matches) {
            // An error frame for no request of ours answers the stream as a whole (garbage,
            // a framing error): the server closes next, and so do we, with its reason.
            close(is_error ? error_status(body)
                           : Status{Failure::protocol, Result::ok,
                                    "reply matches no request in flight"});
            return;
        }
        Slot& slot = slots[index];
        ReplyHandler handler = std::move(slot.handler);
        slot.handler = nullptr;
        slot.busy = false;
        slot.body = {};
        free_slots.push_back(static_cast<uint16_t>(index));
        if (is_error) {
            const Status status = error_status(body);
            handler(status, protocol::FrameHeader{}, {});
            if (is_framing_error(status.result) && state != State::closed) {
                close(status);
            }
            return;
        }
        handler(Status{}, header, body);
    }

    // ---- closing --------------------------------------------------------------------------------

    void close(const Status& reason) {
        if (state == State::closed) {
            return;
        }
        state = State::closed;
        timer.cancel();
        resolver.cancel();
        if (session && (session->plain || session->tls)) {
            boost::system::error_code ignored;
            session->socket().shutdown(tcp::socket::shutdown_both, ignored);
            session->socket().close(ignored);
        }
        session.reset();
        write_queue.clear();
        writing_slots.clear();
        // Fail in request order, so callers see their operations fail in the order they sent them.
        std::vector<size_t> busy;
        for (size_t index = 0; index < slots.size(); ++index) {
            if (slots[index].busy) {
                busy.push_back(index);
            }
        }
        std::sort(busy.begin(), busy.end(), [this](size_t a, size_t b) {
            return slots[a].header.request_id < slots[b].header.request_id;
        });
        // Taken before any handler runs: a handler that opens the connection again installs its
        // own open handler, which must not hear this close.
        OpenHandler closed_open_handler = std::move(open_handler);
        open_handler = nullptr;
        std::vector<ReplyHandler> handlers;
        handlers.reserve(busy.size());
        for (const size_t index : busy) {
            handlers.push_back(std::move(slots[index].handler));
            slots[index] = Slot{};
            free_slots.push_back(static_cast<uint16_t>(index));
        }
        for (ReplyHandler& handler : handlers) {
            if (handler) {
                handler(reason, protocol::FrameHeader{}, {});
            }
        }
        if (closed_open_handler) {
            closed_open_handler(reason);
        }
    }

    asio::io_context& io;
    Options options;
    tcp::resolver resolver;
    asio::steady_timer timer;  // Connect deadline while opening, request watchdog once open.
    std::optional<asio::ssl::context> ssl_context;
    std::shared_ptr<Session> session;
    State state = State::closed;
    OpenHandler open_handler;
    protocol::HelloRequest hello_request;
    protocol::HelloReply hello_reply;

    std::vector<Slot> slots;
    std::vector<uint16_t> free_slots;
    uint64_t request_sequence = 0;
    std::vector<uint16_t> write_queue;    // Sealed, waiting for the current write to finish.
    std::vector<uint16_t> writing_slots;  // In the current gathered write.
    std::vector<asio::const_buffer> write_buffers;
};

Connection::Connection(boost::asio::io_context& io, const Options& options)
    : impl_(std::make_shared<Impl>(io, options)) {}

Connection::~Connection() { impl_->close({Failure::closed, Result::ok, "connection destroyed"}); }

void Connection::async_open(OpenHandler handler) { impl_->open(std::move(handler)); }

bool Connection::is_open() const noexcept { return impl_->state == Impl::State::open; }

const protocol::HelloReply& Connection::hello() const noexcept { return impl_->hello_reply; }

bool Connection::can_send() const noexcept { return is_open() && !impl_->free_slots.empty(); }

size_t Connection::frames_in_flight() const noexcept {
    return impl_->slots.size() - impl_->free_slots.size();
}

void Connection::send(protocol::Opcode opcode, uint16_t count, std::span<const std::byte> body,
                      ReplyHandler handler) {
    impl_->send_frame(opcode, count, body, std::move(handler));
}

void Connection::close(Status reason) { impl_->close(reason); }

}  // namespace jifen::client
