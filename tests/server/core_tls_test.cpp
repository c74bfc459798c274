// The binary protocol over TLS: with tls.cert_file/key_file set, jifend speaks TLS only.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <cstring>

#include "tests/self_signed.hpp"
#include "tests/server/core_test_server.hpp"

namespace jifen::server::testing {
namespace {

using protocol::Opcode;

// A fresh key and self-signed certificate in `dir` (tests/self_signed.hpp), as a TlsConfig.
TlsConfig make_self_signed(const std::filesystem::path& dir) {
    jifen::testing::write_self_signed(dir);
    return TlsConfig{dir / "cert.pem", dir / "key.pem"};
}

TEST(CoreTls, HelloAndAnEarnWorkOverTls) {
    TempDir dir;
    TempDir cert_dir;
    Config config = test_config(dir.path(), 2);
    config.tls = make_self_signed(cert_dir.path());
    RunningServer server(config);

    boost::asio::io_context io;
    boost::asio::ssl::context context(boost::asio::ssl::context::tls_client);
    context.set_verify_mode(boost::asio::ssl::verify_none);  // Self-signed, test only.
    boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream(io, context);
    stream.next_layer().connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
    stream.handshake(boost::asio::ssl::stream_base::client);

    const auto exchange = [&](Opcode opcode, uint64_t request_id, std::span<const std::byte> body) {
        boost::asio::write(stream,
                           boost::asio::buffer(RawClient::encode(opcode, request_id, 1, body)));
        Frame frame;
        boost::asio::read(stream, boost::asio::buffer(&frame.header, sizeof(frame.header)));
        frame.body.resize(frame.header.body_bytes);
        boost::asio::read(stream, boost::asio::buffer(frame.body));
        EXPECT_EQ(frame.header.request_id, request_id);
        return frame;
    };

    protocol::HelloRequest hello;
    std::memcpy(hello.api_key, admin_key.data(), admin_key.size());
    auto frame = exchange(Opcode::hello, 1,
                          std::as_bytes(std::span<const protocol::HelloRequest>(&hello, 1)));
    EXPECT_EQ(static_cast<Result>(frame.item<protocol::HelloReply>().result), Result::ok);

    const protocol::Operation enroll = make_operation(1, 8, 0);
    frame = exchange(Opcode::enroll, 2,
                     std::as_bytes(std::span<const protocol::Operation>(&enroll, 1)));
    EXPECT_EQ(result_of(frame.item<protocol::OperationReply>()), Result::ok);
    const protocol::Operation earn = make_operation(2, 8, 40);
    frame =
        exchange(Opcode::earn, 3, std::as_bytes(std::span<const protocol::Operation>(&earn, 1)));
    EXPECT_EQ(result_of(frame.item<protocol::OperationReply>()), Result::ok);
    EXPECT_EQ(frame.item<protocol::OperationReply>().available, 40);
}

}  // namespace
}  // namespace jifen::server::testing
