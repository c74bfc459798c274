// The HTTP admin port on Boost.Beast: one io_context on one thread, an acceptor, and a session
// per connection in the do_x/on_x shape. The only translation unit that includes Beast.
#include "server/http_admin.hpp"

#include <fmt/format.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <unordered_set>
#include <utility>

#include "protocol/wire.hpp"
#include "server/log_throttle.hpp"
#include "server/tls.hpp"

namespace jifen::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

using Response = http::response<http::string_body>;

constexpr std::string_view content_type_json = "application/json";
// Prometheus text exposition format, version 0.0.4.
constexpr std::string_view content_type_metrics = "text/plain; version=0.0.4; charset=utf-8";

std::string json_error(std::string_view error, std::string_view message) {
    // Both strings are our own constants: no escaping needed.
    return fmt::format("{{\"error\":\"{}\",\"message\":\"{}\"}}\n", error, message);
}

// The secret after "Bearer ", or empty when the header is missing or uses another scheme.
std::string_view bearer_secret(std::string_view authorization) {
    constexpr std::string_view scheme = "Bearer ";
    if (authorization.size() <= scheme.size()) {
        return {};
    }
    for (size_t index = 0; index < scheme.size(); index++) {
        // The scheme name is case-insensitive (RFC 9110, 11.1).
        const char c = authorization[index];
        const char lower = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
        const char expected = scheme[index];
        const char expected_lower =
            expected >= 'A' && expected <= 'Z' ? static_cast<char>(expected - 'A' + 'a') : expected;
        if (lower != expected_lower) {
            return {};
        }
    }
    std::string_view secret = authorization.substr(scheme.size());
    while (!secret.empty() && secret.front() == ' ') {
        secret.remove_prefix(1);
    }
    while (!secret.empty() && secret.back() == ' ') {
        secret.remove_suffix(1);
    }
    return secret;
}

// A live connection, as seen by the acceptor: stop() closes them all.
class SessionBase {
public:
    virtual ~SessionBase() = default;
    virtual void close() = 0;
};

// Everything the HTTP thread shares: sessions refer to it, HttpAdmin::Impl is it.
struct AdminCore {
    AdminCore(const Config& config_in, const KeyRing& keys_in, HttpAdmin::Callbacks callbacks_in)
        : config(config_in),
          keys(keys_in),
          callbacks(std::move(callbacks_in)),
          config_json(to_json(config_in)),
          started_at(std::chrono::steady_clock::now()),
          acceptor(io) {
        if (config.tls.enabled()) {
            tls.emplace(make_server_tls_context(config.tls));
        }
    }

    uint16_t start();
    void stop();
    void do_accept();
    void on_accept(beast::error_code error, tcp::socket socket);
    Response handle(const http::request<http::string_body>& request);
    std::optional<Response> require_admin(const http::request<http::string_body>& request);

    const Config config;
    const KeyRing keys;
    const HttpAdmin::Callbacks callbacks;
    const std::string config_json;  // Rendered once: the configuration never changes at runtime.
    const std::chrono::steady_clock::time_point started_at;

    asio::io_context io{1};
    std::optional<asio::ssl::context> tls;
    tcp::acceptor acceptor;
    std::thread thread;
    // Touched only on the HTTP thread.
    std::unordered_set<SessionBase*> sessions;
    bool stopping = false;
    // Refused keys are logged at most once a second, with how many were not (a client guessing
    // keys must not flood the log).
    LogThrottle refused_keys_log;

    void note_refused_key(const tcp::endpoint& peer, std::string_view target);
};

template <typename Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
public:
    static constexpr bool is_tls = !std::is_same_v<Stream, beast::tcp_stream>;

    Session(AdminCore& admin, Stream stream)
        : admin_(admin),
          stream_(std::move(stream)),
          buffer_(http_header_bytes_max + http_body_bytes_max) {
        admin_.sessions.insert(this);
    }
    ~Session() override { admin_.sessions.erase(this); }

    void run() {
        if constexpr (is_tls) {
            do_handshake();
        } else {
            do_read();
        }
    }

    void close() override {
        beast::error_code ignored;
        beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
        beast::get_lowest_layer(stream_).close();
    }

private:
    void arm_timeout() {
        beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(http_timeout_ms));
    }

    void do_handshake() {
        if constexpr (is_tls) {
            arm_timeout();
            stream_.async_handshake(
                asio::ssl::stream_base::server,
                beast::bind_front_handler(&Session::on_handshake, this->shared_from_this()));
        }
    }

    void on_handshake(beast::error_code error) {
        if (error) {
            spdlog::debug("http admin: TLS handshake failed: {}", error.message());
            return;
        }
        do_read();
    }

    void do_read() {
        if (admin_.stopping) {
            return;
        }
        parser_.emplace();
        parser_->header_limit(http_header_bytes_max);
        parser_->body_limit(http_body_bytes_max);
        arm_timeout();
        http::async_read(stream_, buffer_, *parser_,
                         beast::bind_front_handler(&Session::on_read, this->shared_from_this()));
    }

    void on_read(beast::error_code error, size_t /*bytes*/) {
        if (error == http::error::end_of_stream) {
            do_close();
            return;
        }
        if (error == http::error::header_limit || error == http::error::body_limit ||
            error == http::error::buffer_overflow) {
            respond_and_close(http::status::payload_too_large, "too_large",
                              "request larger than the admin port accepts");
            return;
        }
        if (error.category() == http::make_error_code(http::error::bad_method).category()) {
            respond_and_close(http::status::bad_request, "bad_request", "malformed HTTP request");
            return;
        }
        if (error) {
            // Timeout, reset or stop(): nothing to answer.
            return;
        }
        response_ = admin_.handle(parser_->get());
        if (response_.result() == http::status::unauthorized &&
            parser_->get().find(http::field::authorization) != parser_->get().end()) {
            beast::error_code ignored;
            admin_.note_refused_key(
                beast::get_lowest_layer(stream_).socket().remote_endpoint(ignored),
                parser_->get().target());
        }
        do_write();
    }

    void respond_and_close(http::status status, std::string_view error, std::string_view message) {
        response_ = Response(status, 11);
        response_.set(http::field::content_type, content_type_json);
        response_.body() = json_error(error, message);
        response_.keep_alive(false);
        response_.prepare_payload();
        do_write();
    }

    void do_write() {
        arm_timeout();
        http::async_write(stream_, response_,
                          beast::bind_front_handler(&Session::on_write, this->shared_from_this(),
                                                    response_.keep_alive()));
    }

    void on_write(bool keep_alive, beast::error_code error, size_t /*bytes*/) {
        if (error) {
            return;
        }
        if (!keep_alive || admin_.stopping) {
            do_close();
            return;
        }
        do_read();
    }

    void do_close() {
        if constexpr (is_tls) {
            arm_timeout();
            stream_.async_shutdown(
                beast::bind_front_handler(&Session::on_shutdown, this->shared_from_this()));
        } else {
            beast::error_code ignored;
            stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        }
    }

    void on_shutdown(beast::error_code /*error*/) {
        // The peer may drop without a close_notify; either way the session ends here.
    }

    AdminCore& admin_;
    Stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    Response response_;
};

Response make_response(const http::request<http::string_body>& request, http::status status,
                       std::string_view content_type, std::string body) {
    Response response(status, request.version());
    response.set(http::field::server, "jifend");
    response.set(http::field::content_type, content_type);
    response.set(http::field::cache_control, "no-store");
    response.keep_alive(request.keep_alive());
    const size_t body_bytes = body.size();
    if (request.method() != http::verb::head) {
        response.body() = std::move(body);
    }
    response.content_length(body_bytes);
    return response;
}

Response make_error(const http::request<http::string_body>& request, http::status status,
                    std::string_view error, std::string_view message) {
    return make_response(request, status, content_type_json, json_error(error, message));
}

uint16_t AdminCore::start() {
    beast::error_code error;
    const auto address = asio::ip::make_address(config.bind_address, error);
    if (error) {
        throw std::system_error(
            static_cast<std::error_code>(error),
            fmt::format("http admin: bad bind address {}", config.bind_address));
    }
    const tcp::endpoint endpoint(address, config.http_port);
    auto check = [&](std::string_view what) {
        if (error) {
            throw std::system_error(
                static_cast<std::error_code>(error),
                fmt::format("http admin: {} {}:{}", what, config.bind_address, config.http_port));
        }
    };
    acceptor.open(endpoint.protocol(), error);
    check("cannot open a socket for");
    acceptor.set_option(asio::socket_base::reuse_address(true), error);
    check("cannot set SO_REUSEADDR on");
    acceptor.bind(endpoint, error);
    check("cannot bind");
    acceptor.listen(asio::socket_base::max_listen_connections, error);
    check("cannot listen on");
    const uint16_t port = acceptor.local_endpoint().port();

    do_accept();
    thread = std::thread([this] {
        pthread_setname_np(pthread_self(), "jifen-http");
        // Handlers catch what they can throw; anything else is a bug worth stopping for.
        io.run();
    });
    // The server's own startup line reports the port; this one is for debugging embedders.
    spdlog::debug("http admin listening on {}:{}{}", config.bind_address, port,
                  tls ? " (TLS)" : "");
    return port;
}

void AdminCore::stop() {
    if (!thread.joinable()) {
        return;
    }
    // Closing the acceptor and every socket completes all pending operations with an error; no
    // session re-arms once stopping is set, so io.run() runs out of work and returns.
    asio::post(io, [this] {
        stopping = true;
        beast::error_code ignored;
        acceptor.close(ignored);
        for (SessionBase* session : sessions) {
            session->close();
        }
    });
    thread.join();
}

void AdminCore::do_accept() {
    acceptor.async_accept(beast::bind_front_handler(&AdminCore::on_accept, this));
}

void AdminCore::on_accept(beast::error_code error, tcp::socket socket) {
    if (stopping || error == asio::error::operation_aborted) {
        return;
    }
    if (error) {
        // Out of file descriptors and the like: refuse this one, keep accepting.
        spdlog::warn("http admin: accept failed: {}", error.message());
    } else if (sessions.size() >= http_connections_max) {
        beast::error_code ignored;
        socket.close(ignored);
    } else if (tls) {
        using TlsStream = beast::ssl_stream<beast::tcp_stream>;
        std::make_shared<Session<TlsStream>>(*this, TlsStream(std::move(socket), *tls))->run();
    } else {
        std::make_shared<Session<beast::tcp_stream>>(*this, beast::tcp_stream(std::move(socket)))
            ->run();
    }
    do_accept();
}

void AdminCore::note_refused_key(const tcp::endpoint& peer, std::string_view target) {
    if (!refused_keys_log.allow()) {
        return;
    }
    // The key itself is a secret even when wrong (a typo of the real one): never logged.
    spdlog::warn("http admin: unknown API key from {} for {:?}{}", peer.address().to_string(),
                 target.substr(0, 200), refused_keys_log.suffix("refused"));
}

std::optional<Response> AdminCore::require_admin(const http::request<http::string_body>& request) {
    const auto header = request.find(http::field::authorization);
    const std::string_view secret =
        header == request.end() ? std::string_view() : bearer_secret(header->value());
    if (secret.empty()) {
        Response response = make_error(request, http::status::unauthorized, "unauthorized",
                                       "send an admin key as Authorization: Bearer <secret>");
        response.set(http::field::www_authenticate, "Bearer realm=\"jifen\"");
        return response;
    }
    const auto who = keys.authenticate(secret);
    if (!who) {
        Response response =
            make_error(request, http::status::unauthorized, "unauthorized", "unknown API key");
        response.set(http::field::www_authenticate, "Bearer realm=\"jifen\"");
        return response;
    }
    if ((who->scope & protocol::scope_admin) == 0) {
        return make_error(request, http::status::forbidden, "forbidden",
                          "this key lacks the admin scope");
    }
    return std::nullopt;
}

Response AdminCore::handle(const http::request<http::string_body>& request) {
    std::string_view path = request.target();
    path = path.substr(0, path.find('?'));

    const bool known =
        path == "/health" || path == "/metrics" || path == "/stats" || path == "/config";
    if (!known) {
        return make_error(request, http::status::not_found, "not_found",
                          "endpoints: /health /metrics /stats /config");
    }
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
        Response response = make_error(request, http::status::method_not_allowed,
                                       "method_not_allowed", "only GET and HEAD");
        response.set(http::field::allow, "GET, HEAD");
        return response;
    }

    if (path == "/health") {
        const auto uptime_s = std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::steady_clock::now() - started_at)
                                  .count();
        const std::string_view state = callbacks.write_state ? callbacks.write_state() : "ok";
        return make_response(
            request, state == "ok" ? http::status::ok : http::status::service_unavailable,
            content_type_json,
            fmt::format("{{\"status\":\"{}\",\"uptime_s\":{}}}\n", state, uptime_s));
    }
    if (path == "/config" || !config.metrics_public) {
        if (auto refused = require_admin(request)) {
            return std::move(*refused);
        }
    }
    if (path == "/config") {
        return make_response(request, http::status::ok, content_type_json, config_json);
    }

    const bool metrics = path == "/metrics";
    const auto& callback = metrics ? callbacks.metrics_text : callbacks.stats_json;
    if (!callback) {
        return make_error(request, http::status::service_unavailable, "unavailable",
                          "this server does not provide it");
    }
    try {
        return make_response(request, http::status::ok,
                             metrics ? content_type_metrics : content_type_json, callback());
    } catch (const std::exception& error) {
        spdlog::error("http admin: {} failed: {}", path, error.what());
    } catch (...) {
        // Whatever a callback throws must not escape into io.run() and end the HTTP thread.
        spdlog::error("http admin: {} failed with a non-standard exception", path);
    }
    return make_error(request, http::status::internal_server_error, "internal_error",
                      "the server could not produce it; see its log");
}

}  // namespace

struct HttpAdmin::Impl : AdminCore {
    using AdminCore::AdminCore;
};

HttpAdmin::HttpAdmin(const Config& config, const KeyRing& keys, Callbacks callbacks)
    : impl_(std::make_unique<Impl>(config, keys, std::move(callbacks))) {}

HttpAdmin::~HttpAdmin() { stop(); }

uint16_t HttpAdmin::start() { return impl_->start(); }

void HttpAdmin::stop() { impl_->stop(); }

}  // namespace jifen::server
