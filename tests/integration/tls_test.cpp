// The client over TLS against jifend started with a fresh self-signed certificate: verified with
// the certificate as CA file, refused without it, and the CLI's --tls flags.
#include <gtest/gtest.h>

#include <string>

#include "client/client.hpp"
#include "tests/integration/jifend_process.hpp"
#include "tests/self_signed.hpp"

namespace jifen::testing {
namespace {

class Tls : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir();
        write_self_signed(dir_->path());
        server_ = new JifendProcess(dir_->path() / "data", 2,
                                    {"--tls-cert", (dir_->path() / "cert.pem").string(),
                                     "--tls-key", (dir_->path() / "key.pem").string()});
        server_->start();
    }
    static void TearDownTestSuite() {
        delete server_;
        delete dir_;
    }

    static client::Options tls_options() {
        client::Options options = server_->options();
        options.host = "127.0.0.1";
        options.tls = true;
        options.tls_ca_file = (dir_->path() / "cert.pem").string();
        return options;
    }

    // The message of the connect failure `options` must give; empty (and a failed test) when
    // the connection was made or failed otherwise.
    static std::string connect_refusal(const client::Options& options) {
        client::Client client(options);
        try {
            client.connect();
        } catch (const client::Error& error) {
            EXPECT_EQ(error.failure(), client::Failure::connect) << error.what();
            return error.what();
        }
        ADD_FAILURE() << "connected to " << options.host;
        return "";
    }

    static inline TempDir* dir_ = nullptr;
    static inline JifendProcess* server_ = nullptr;
};

TEST_F(Tls, AClientTrustingTheCertificateConnectsAndOperates) {
    client::Client client(tls_options());
    client.connect();
    EXPECT_EQ(client.enroll(client::make_enroll(3)).result, 0u);
    EXPECT_EQ(client.earn(client::make_earn(3, 12)).available, 12);
    EXPECT_EQ(client.balance(3).available, 12);
}

TEST_F(Tls, AnUntrustedCertificateFailsTheConnection) {
    client::Options options = tls_options();
    options.tls_ca_file = (dir_->path() / "key.pem").string();  // Holds no certificate.
    EXPECT_FALSE(connect_refusal(options).empty());
}

// The host must be in the subjectAltName: "localhost" is only the subject's CN here, which is
// not trusted, and the refusal says why.
TEST_F(Tls, AHostNamedOnlyByTheCertificatesCnIsRefused) {
    client::Options options = tls_options();
    options.host = "localhost";
    const std::string refusal = connect_refusal(options);
    EXPECT_NE(refusal.find("hostname mismatch"), std::string::npos) << refusal;
}

// A host OpenSSL cannot take as a name to check (here one with a NUL in it, which the resolver
// reads up to the NUL) refuses the connection: the chain alone is never taken as enough.
TEST_F(Tls, AHostTheCertificateCannotBeCheckedAgainstIsRefused) {
    client::Options options = tls_options();
    options.host = std::string("localhost\0evil", 14);
    const std::string refusal = connect_refusal(options);
    EXPECT_NE(refusal.find("cannot check the server's certificate"), std::string::npos) << refusal;
}

TEST_F(Tls, SkippingVerificationConnectsForTests) {
    client::Options options = tls_options();
    options.host = "127.0.0.1";
    options.tls_ca_file.clear();
    options.tls_insecure_skip_verify = true;
    client::Client client(options);
    client.connect();
    EXPECT_GT(client.ping().server_time_us, 0u);
}

TEST_F(Tls, ThePlainProtocolIsNotSpokenOnATlsPort) {
    client::Options options = server_->options();
    options.connect_timeout = std::chrono::seconds(5);
    client::Client client(options);
    EXPECT_THROW(client.connect(), client::Error);
}

TEST_F(Tls, TheCliConnectsWithTlsAndACaFile) {
    const CliResult result =
        run_cli(server_->port(), {"--host", "127.0.0.1", "--tls", "--ca-file",
                                  (dir_->path() / "cert.pem").string(), "ping"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_NE(result.out.find("server_time_us"), std::string::npos) << result.out;
}

// A --ca-file that holds no certificate (here the key) is a usage error, found before connecting.
TEST_F(Tls, TheCliRefusesACaFileWithoutCertificates) {
    const CliResult result = run_cli(
        server_->port(),
        {"--host", "127.0.0.1", "--tls", "--ca-file", (dir_->path() / "key.pem").string(), "ping"});
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_NE(result.err.find("holds no PEM certificate"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace jifen::testing
