// The binary protocol over TLS: with tls.cert_file/key_file set, jifend speaks TLS only.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "tests/server/core_test_server.hpp"

namespace jifen::server::testing {
namespace {

using protocol::Opcode;

// Writes a fresh P-256 key and a self-signed certificate for CN=localhost into `dir`.
TlsConfig make_self_signed(const std::filesystem::path& dir) {
    const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"),
                                                                  &EVP_PKEY_free);
    const std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
    if (!key || !cert) {
        throw std::runtime_error("cannot create a test key or certificate");
    }
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509_sign(cert.get(), key.get(), EVP_sha256());
    TlsConfig tls{dir / "cert.pem", dir / "key.pem"};
    FILE* key_out = std::fopen(tls.key_file.c_str(), "w");
    PEM_write_PrivateKey(key_out, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(key_out);
    FILE* cert_out = std::fopen(tls.cert_file.c_str(), "w");
    PEM_write_X509(cert_out, cert.get());
    std::fclose(cert_out);
    return tls;
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
