// Tests of server/tls.cpp and HTTPS on the admin port, with a self-signed certificate made here.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "server/auth.hpp"
#include "server/config.hpp"
#include "server/http_admin.hpp"
#include "server/tls.hpp"
#include "tests/self_signed.hpp"
#include "tests/server/support_http_client.hpp"

namespace jifen::server {
namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct SslCtxFree {
    void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
};

// A key and a one-hour self-signed certificate (tests/self_signed.hpp) in a temporary
// directory removed at the end of the test.
class SelfSigned {
public:
    SelfSigned()
        : dir_(std::filesystem::temp_directory_path() /
               ("jifen-support-tls-" + std::to_string(::getpid()) + "-" +
                std::to_string(counter_++))) {
        std::filesystem::create_directories(dir_);
        key_file_ = dir_ / "key.pem";
        cert_file_ = dir_ / "cert.pem";
        jifen::testing::write_self_signed(dir_);
    }
    ~SelfSigned() { std::filesystem::remove_all(dir_); }

    TlsConfig tls() const { return TlsConfig{cert_file_, key_file_}; }
    const std::filesystem::path& dir() const { return dir_; }

private:
    static inline int counter_ = 0;
    std::filesystem::path dir_;
    std::filesystem::path key_file_;
    std::filesystem::path cert_file_;
};

std::string tls_error(const TlsConfig& tls) {
    try {
        make_server_tls_context(tls);
    } catch (const ConfigError& error) {
        return error.what();
    }
    return "";
}

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

TEST(SupportTls, ContextLoadsAMatchingCertificateAndKey) {
    const SelfSigned files;
    EXPECT_EQ(tls_error(files.tls()), "");
}

TEST(SupportTls, MissingCertificateNamesTheCertFile) {
    const SelfSigned files;
    TlsConfig tls = files.tls();
    tls.cert_file = files.dir() / "missing.pem";
    EXPECT_TRUE(starts_with(tls_error(tls), "tls.cert_file: cannot load")) << tls_error(tls);
}

TEST(SupportTls, GarbageCertificateNamesTheCertFile) {
    const SelfSigned files;
    TlsConfig tls = files.tls();
    tls.cert_file = files.dir() / "garbage.pem";
    std::ofstream(tls.cert_file) << "not a certificate\n";
    EXPECT_TRUE(starts_with(tls_error(tls), "tls.cert_file: cannot load")) << tls_error(tls);
}

// An encrypted key would make OpenSSL prompt for a passphrase, and a server started from a shell
// would wait there: it is refused at once, saying why. No session resumption either way.
TEST(SupportTls, AnEncryptedKeyIsRefusedWithoutAPromptAndSessionsAreNotResumed) {
    const SelfSigned files;
    {
        FILE* in = std::fopen(files.tls().key_file.c_str(), "r");
        const std::unique_ptr<EVP_PKEY, PkeyFree> key(
            PEM_read_PrivateKey(in, nullptr, nullptr, nullptr));
        std::fclose(in);
        ASSERT_TRUE(key);
        FILE* out = std::fopen((files.dir() / "encrypted.pem").c_str(), "w");
        static const char passphrase[] = "secret";
        PEM_write_PrivateKey(out, key.get(), EVP_aes_256_cbc(),
                             reinterpret_cast<const unsigned char*>(passphrase),
                             sizeof(passphrase) - 1, nullptr, nullptr);
        std::fclose(out);
    }
    const std::string error =
        tls_error(TlsConfig{files.tls().cert_file, files.dir() / "encrypted.pem"});
    EXPECT_TRUE(starts_with(error, "tls.key_file: cannot load ")) << error;
    EXPECT_NE(error.find("the key is encrypted"), std::string::npos) << error;

    boost::asio::ssl::context context = make_server_tls_context(files.tls());
    EXPECT_EQ(SSL_CTX_get_num_tickets(context.native_handle()), 0u);
    EXPECT_EQ(SSL_CTX_get_session_cache_mode(context.native_handle()), SSL_SESS_CACHE_OFF);
}

TEST(SupportTls, KeyOfAnotherCertificateIsRefused) {
    const SelfSigned first;
    const SelfSigned second;
    TlsConfig tls = first.tls();
    tls.key_file = second.tls().key_file;
    EXPECT_TRUE(starts_with(tls_error(tls), "tls.key_file: ")) << tls_error(tls);
}

// A client context that trusts exactly `cert_file` and offers only `version`.
std::unique_ptr<SSL_CTX, SslCtxFree> client_context(const std::filesystem::path& cert_file,
                                                    int version) {
    std::unique_ptr<SSL_CTX, SslCtxFree> context(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_load_verify_locations(context.get(), cert_file.c_str(), nullptr);
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_min_proto_version(context.get(), version);
    SSL_CTX_set_max_proto_version(context.get(), version);
    // OpenSSL 3 refuses TLS 1.1 at its default security level; lower it so that the refusal
    // tested below comes from the server, not from this client.
    SSL_CTX_set_security_level(context.get(), 0);
    return context;
}

class TlsAdminPort {
public:
    explicit TlsAdminPort(const SelfSigned& files)
        : config_(make_config(files)),
          keys_(config_.api_keys),
          admin_(config_, keys_,
                 HttpAdmin::Callbacks{[] { return std::string("m 1\n"); }, {}, {}}) {
        port_ = admin_.start();
    }
    uint16_t port() const { return port_; }

private:
    static Config make_config(const SelfSigned& files) {
        Config config = default_config();
        config.http_port = 0;
        config.tls = files.tls();
        return config;
    }
    Config config_;
    KeyRing keys_;
    HttpAdmin admin_;
    uint16_t port_ = 0;
};

TEST(SupportTls, AdminPortServesHttpsWithTheConfiguredCertificate) {
    const SelfSigned files;
    TlsAdminPort port(files);
    const auto client = client_context(files.tls().cert_file, TLS1_3_VERSION);
    const auto reply = test::exchange_tls(port.port(), client.get(),
                                          test::get_request("/metrics", "dev-admin-key"));
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.body, "m 1\n");
}

TEST(SupportTls, AdminPortAcceptsTls12) {
    const SelfSigned files;
    TlsAdminPort port(files);
    const auto client = client_context(files.tls().cert_file, TLS1_2_VERSION);
    EXPECT_EQ(test::exchange_tls(port.port(), client.get(), test::get_request("/health")).status,
              200);
}

TEST(SupportTls, AdminPortRefusesTls11) {
    const SelfSigned files;
    TlsAdminPort port(files);
    const auto client = client_context(files.tls().cert_file, TLS1_1_VERSION);
    EXPECT_EQ(test::exchange_tls(port.port(), client.get(), test::get_request("/health")).status,
              0);
}

TEST(SupportTls, AdminPortWithTlsDoesNotAnswerPlainHttp) {
    const SelfSigned files;
    TlsAdminPort port(files);
    EXPECT_EQ(test::exchange(port.port(), test::get_request("/health")).status, 0);
}

}  // namespace
}  // namespace jifen::server
