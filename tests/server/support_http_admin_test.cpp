// Tests of server/http_admin.cpp over real sockets on an ephemeral loopback port.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include "protocol/wire.hpp"
#include "server/auth.hpp"
#include "server/config.hpp"
#include "server/http_admin.hpp"
#include "tests/server/log_capture.hpp"
#include "tests/server/support_http_client.hpp"

namespace jifen::server {
namespace {

using test::exchange;
using test::get_request;
using test::LogCapture;

constexpr std::string_view admin_secret = "dev-admin-key";
constexpr std::string_view read_secret = "dev-read-key";
constexpr std::string_view metrics_text = "# TYPE jifen_up gauge\njifen_up 1\n";

Config test_config() {
    Config config = default_config();
    config.http_port = 0;
    return config;
}

HttpAdmin::Callbacks test_callbacks() {
    return HttpAdmin::Callbacks{
        .metrics_text = [] { return std::string(metrics_text); },
        .stats_json = [] { return std::string(R"({"shards":2})"); },
        .write_state = [] { return std::string_view("ok"); },
    };
}

// An admin port on an ephemeral port, stopped when the test ends.
class AdminPort {
public:
    explicit AdminPort(const Config& config = test_config(),
                       HttpAdmin::Callbacks callbacks = test_callbacks())
        : keys_(config.api_keys), admin_(config, keys_, std::move(callbacks)) {
        port_ = admin_.start();
    }
    uint16_t port() const { return port_; }
    HttpAdmin& admin() { return admin_; }

private:
    KeyRing keys_;
    HttpAdmin admin_;
    uint16_t port_ = 0;
};

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

TEST(SupportHttpAdmin, StartReturnsTheEphemeralPortItBound) {
    AdminPort port;
    EXPECT_NE(port.port(), 0);
}

TEST(SupportHttpAdmin, HealthAnswersOkWithoutAKey) {
    AdminPort port;
    const auto reply = exchange(port.port(), get_request("/health"));
    EXPECT_EQ(reply.status, 200);
    EXPECT_TRUE(contains(reply.body, R"("status":"ok")")) << reply.body;
    EXPECT_TRUE(contains(reply.head, "Content-Type: application/json")) << reply.head;
}

// A load balancer or an alert sees when writes are refused: 503 with the reason.
TEST(SupportHttpAdmin, HealthIs503WhileWritesAreRefused) {
    for (const std::string_view state : {"storage_full", "log_failed"}) {
        HttpAdmin::Callbacks callbacks = test_callbacks();
        callbacks.write_state = [state] { return state; };
        AdminPort port(test_config(), std::move(callbacks));
        const auto reply = exchange(port.port(), get_request("/health"));
        EXPECT_EQ(reply.status, 503) << state;
        EXPECT_TRUE(contains(reply.body, "\"status\":\"" + std::string(state) + "\""))
            << reply.body;
    }
}

TEST(SupportHttpAdmin, QueryStringDoesNotChangeTheRoute) {
    AdminPort port;
    EXPECT_EQ(exchange(port.port(), get_request("/health?verbose=1")).status, 200);
}

TEST(SupportHttpAdmin, MetricsWithoutAKeyIsUnauthorized) {
    AdminPort port;
    const auto reply = exchange(port.port(), get_request("/metrics"));
    EXPECT_EQ(reply.status, 401);
    EXPECT_TRUE(contains(reply.head, "WWW-Authenticate: Bearer")) << reply.head;
    EXPECT_FALSE(contains(reply.body, "jifen_up"));
}

TEST(SupportHttpAdmin, MetricsWithAnUnknownKeyIsUnauthorized) {
    AdminPort port;
    EXPECT_EQ(exchange(port.port(), get_request("/metrics", "not-a-key")).status, 401);
}

TEST(SupportHttpAdmin, UnknownKeysAreLoggedWithThePeerButNeverTheKeyAndNotEveryOne) {
    LogCapture log_lines;
    {
        AdminPort port;
        for (int attempt = 0; attempt < 3; ++attempt) {
            EXPECT_EQ(exchange(port.port(), get_request("/stats", "guessed-secret-1234")).status,
                      401);
        }
        // A missing key is an ordinary refusal (a probe without credentials), not logged.
        EXPECT_EQ(exchange(port.port(), get_request("/stats")).status, 401);
    }
    // Three guesses within a second: one line (the rest are counted into the next one).
    EXPECT_EQ(log_lines.count("unknown API key from 127.0.0.1 for \"/stats\""), 1u);
    EXPECT_EQ(log_lines.count("unknown API key"), 1u);
    EXPECT_EQ(log_lines.count("guessed-secret-1234"), 0u);
}

TEST(SupportHttpAdmin, MetricsWithAnotherAuthorizationSchemeIsUnauthorized) {
    AdminPort port;
    const std::string request =
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Authorization: Basic ZGV2LWFkbWluLWtleTo=\r\n\r\n";
    EXPECT_EQ(exchange(port.port(), request).status, 401);
}

TEST(SupportHttpAdmin, MetricsWithAKeyLackingAdminScopeIsForbidden) {
    AdminPort port;
    EXPECT_EQ(exchange(port.port(), get_request("/metrics", read_secret)).status, 403);
    EXPECT_EQ(exchange(port.port(), get_request("/metrics", "dev-pos-key")).status, 403);
}

TEST(SupportHttpAdmin, MetricsWithTheAdminKeyServeTheCallbackAsPrometheusText) {
    AdminPort port;
    const auto reply = exchange(port.port(), get_request("/metrics", admin_secret));
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.body, metrics_text);
    EXPECT_TRUE(contains(reply.head, "Content-Type: text/plain; version=0.0.4")) << reply.head;
}

TEST(SupportHttpAdmin, BearerSchemeIsCaseInsensitive) {
    AdminPort port;
    const std::string request =
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Authorization: bearer dev-admin-key\r\n\r\n";
    EXPECT_EQ(exchange(port.port(), request).status, 200);
}

TEST(SupportHttpAdmin, StatsServeTheCallbackJsonToAdminsOnly) {
    AdminPort port;
    EXPECT_EQ(exchange(port.port(), get_request("/stats")).status, 401);
    const auto reply = exchange(port.port(), get_request("/stats", admin_secret));
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.body, R"({"shards":2})");
}

TEST(SupportHttpAdmin, PublicMetricsNeedNoKeyButConfigStillDoes) {
    Config config = test_config();
    config.metrics_public = true;
    AdminPort port(config);
    EXPECT_EQ(exchange(port.port(), get_request("/metrics")).status, 200);
    EXPECT_EQ(exchange(port.port(), get_request("/stats")).status, 200);
    EXPECT_EQ(exchange(port.port(), get_request("/config")).status, 401);
}

TEST(SupportHttpAdmin, ConfigShowsTheEffectiveConfigurationToAdminsWithoutSecrets) {
    const Config config = test_config();
    AdminPort port(config);
    EXPECT_EQ(exchange(port.port(), get_request("/config", read_secret)).status, 403);
    const auto reply = exchange(port.port(), get_request("/config", admin_secret));
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.body, to_json(config));
    EXPECT_FALSE(contains(reply.body, admin_secret));
    Config read_back = default_config();
    apply_json(&read_back, reply.body);
    EXPECT_EQ(to_json(read_back), to_json(config));
}

TEST(SupportHttpAdmin, UnknownPathIsNotFoundWithAJsonError) {
    AdminPort port;
    const auto reply = exchange(port.port(), get_request("/nope", admin_secret));
    EXPECT_EQ(reply.status, 404);
    EXPECT_TRUE(contains(reply.body, R"("error":"not_found")")) << reply.body;
}

TEST(SupportHttpAdmin, MethodOtherThanGetOrHeadIsNotAllowed) {
    AdminPort port;
    const auto reply = exchange(port.port(), get_request("/health", "", "POST"));
    EXPECT_EQ(reply.status, 405);
    EXPECT_TRUE(contains(reply.head, "Allow: GET, HEAD")) << reply.head;
    EXPECT_EQ(exchange(port.port(), get_request("/metrics", admin_secret, "DELETE")).status, 405);
}

TEST(SupportHttpAdmin, HeadAnswersHeadersWithoutABody) {
    AdminPort port;
    const auto reply = exchange(port.port(), get_request("/metrics", admin_secret, "HEAD"));
    EXPECT_EQ(reply.status, 200);
    EXPECT_TRUE(contains(reply.head, "Content-Length: " + std::to_string(metrics_text.size())))
        << reply.head;
    EXPECT_EQ(reply.body, "");
}

TEST(SupportHttpAdmin, MissingCallbackIsServiceUnavailable) {
    AdminPort port(test_config(), HttpAdmin::Callbacks{});
    EXPECT_EQ(exchange(port.port(), get_request("/metrics", admin_secret)).status, 503);
    EXPECT_EQ(exchange(port.port(), get_request("/stats", admin_secret)).status, 503);
    EXPECT_EQ(exchange(port.port(), get_request("/health")).status, 200);
}

TEST(SupportHttpAdmin, ThrowingCallbackIsAnInternalErrorAndTheServerCarriesOn) {
    HttpAdmin::Callbacks callbacks = test_callbacks();
    callbacks.stats_json = []() -> std::string { throw std::runtime_error("shard 3 is gone"); };
    AdminPort port(test_config(), callbacks);
    const auto reply = exchange(port.port(), get_request("/stats", admin_secret));
    EXPECT_EQ(reply.status, 500);
    EXPECT_FALSE(contains(reply.body, "shard 3")) << "internal details stay in the log";
    EXPECT_EQ(exchange(port.port(), get_request("/metrics", admin_secret)).status, 200);
}

TEST(SupportHttpAdmin, CallbackThrowingANonStandardExceptionIsAnInternalError) {
    HttpAdmin::Callbacks callbacks = test_callbacks();
    callbacks.metrics_text = []() -> std::string { throw 42; };
    AdminPort port(test_config(), callbacks);
    EXPECT_EQ(exchange(port.port(), get_request("/metrics", admin_secret)).status, 500);
    EXPECT_EQ(exchange(port.port(), get_request("/health")).status, 200);
}

TEST(SupportHttpAdmin, OversizedHeadersAreRefusedAndTheConnectionClosed) {
    AdminPort port;
    const std::string request =
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(http_header_bytes_max, 'a') +
        "\r\n\r\n";
    EXPECT_EQ(exchange(port.port(), request).status, 413);
}

TEST(SupportHttpAdmin, OversizedBodyIsRefused) {
    AdminPort port;
    const std::string request = "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                std::to_string(http_body_bytes_max + 1) + "\r\n\r\n" +
                                std::string(http_body_bytes_max + 1, 'b');
    EXPECT_EQ(exchange(port.port(), request).status, 413);
}

TEST(SupportHttpAdmin, GarbageRequestIsABadRequest) {
    AdminPort port;
    EXPECT_EQ(exchange(port.port(), "NOT HTTP AT ALL\r\n\r\n").status, 400);
}

TEST(SupportHttpAdmin, KeepAliveServesSeveralRequestsOnOneConnection) {
    AdminPort port;
    test::Socket socket(port.port());
    // Pipelined: the second request asks the server to close after answering.
    socket.send_all("GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + get_request("/nope"));
    const std::string raw = socket.read_to_end();
    EXPECT_EQ(raw.rfind("HTTP/1.1 200", 0), 0u) << raw;
    EXPECT_TRUE(contains(raw, "HTTP/1.1 404")) << raw;
}

TEST(SupportHttpAdmin, BindingAPortInUseThrowsSystemError) {
    AdminPort first;
    Config config = test_config();
    config.http_port = first.port();
    const KeyRing keys(config.api_keys);
    HttpAdmin second(config, keys, test_callbacks());
    EXPECT_THROW(second.start(), std::system_error);
}

TEST(SupportHttpAdmin, StopClosesOpenConnectionsAndIsIdempotent) {
    AdminPort port;
    test::Socket idle(port.port());
    // A connection that sent half a request: stop() must not wait for it.
    idle.send_all("GET /health HTTP/1.1\r\n");
    port.admin().stop();
    EXPECT_EQ(idle.read_to_end(), "");
    port.admin().stop();
}

TEST(SupportHttpAdmin, StopWithoutStartDoesNothing) {
    const Config config = test_config();
    const KeyRing keys(config.api_keys);
    HttpAdmin admin(config, keys, test_callbacks());
    admin.stop();
}

}  // namespace
}  // namespace jifen::server
