// The client over TLS against jifend started with a fresh self-signed certificate: verified with
// the certificate as CA file, refused without it, and the CLI's --tls flags.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>

#include "client/client.hpp"
#include "tests/integration/jifend_process.hpp"

namespace jifen::testing {
namespace {

// Writes key.pem and cert.pem (P-256, self-signed, valid one hour) into `dir`: CN=localhost, and
// a subjectAltName naming only IP 127.0.0.1, so "localhost" is named by the CN alone.
void write_self_signed(const std::filesystem::path& dir) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
    std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
    ASSERT_TRUE(key && cert);
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
    std::unique_ptr<X509_EXTENSION, decltype(&X509_EXTENSION_free)> san(
        X509V3_EXT_conf_nid(nullptr, &context, NID_subject_alt_name, "IP:127.0.0.1"),
        &X509_EXTENSION_free);
    ASSERT_TRUE(san && X509_add_ext(cert.get(), san.get(), -1) == 1);
    ASSERT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
    FILE* key_file = std::fopen((dir / "key.pem").c_str(), "w");
    FILE* cert_file = std::fopen((dir / "cert.pem").c_str(), "w");
    ASSERT_TRUE(key_file != nullptr && cert_file != nullptr);
    PEM_write_PrivateKey(key_file, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    PEM_write_X509(cert_file, cert.get());
    std::fclose(key_file);
    std::fclose(cert_file);
}

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
    client::Client client(options);
    try {
        client.connect();
        FAIL() << "connected without trusting the certificate";
    } catch (const client::Error& error) {
        EXPECT_EQ(error.failure(), client::Failure::connect) << error.what();
    }
}

// The host must be in the subjectAltName: "localhost" is only the subject's CN here, which is
// not trusted, and the refusal says why.
TEST_F(Tls, AHostNamedOnlyByTheCertificatesCnIsRefused) {
    client::Options options = tls_options();
    options.host = "localhost";
    client::Client client(options);
    try {
        client.connect();
        FAIL() << "connected to a host the certificate names only in its CN";
    } catch (const client::Error& error) {
        EXPECT_EQ(error.failure(), client::Failure::connect) << error.what();
        EXPECT_NE(std::string(error.what()).find("hostname mismatch"), std::string::npos)
            << error.what();
    }
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

}  // namespace
}  // namespace jifen::testing
