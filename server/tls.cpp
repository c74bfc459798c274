// Server-side TLS context from PEM files, with OpenSSL's reason in every error.
#include "server/tls.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <boost/system/error_code.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace jifen::server {
namespace {

namespace ssl = boost::asio::ssl;

std::string describe(const boost::system::error_code& error) {
    // Asio's ssl category message is OpenSSL's reason string ("no start line", ...).
    return error.message();
}

// True when the PEM file holds an encrypted private key (PKCS#8 or the older Proc-Type form).
bool is_encrypted_pem(const std::filesystem::path& path) {
    std::ifstream file(path);
    std::string line;
    while (std::getline(file, line)) {
        if (line.find("BEGIN ENCRYPTED PRIVATE KEY") != std::string::npos ||
            line.find("Proc-Type: 4,ENCRYPTED") != std::string::npos) {
            return true;
        }
    }
    return false;
}

}  // namespace

ssl::context make_server_tls_context(const TlsConfig& tls) {
    ssl::context context(ssl::context::tls_server);
    boost::system::error_code error;
    // SSLv2/3, TLS 1.0 and 1.1 are off; so are compression (CRIME) and session tickets, since
    // clients hold long-lived connections and tickets would need key rotation.
    context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                            ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                            ssl::context::no_tlsv1_1 | ssl::context::no_compression |
                            ssl::context::single_dh_use,
                        error);
    if (error) {
        throw ConfigError(fmt::format("tls: cannot set options: {}", describe(error)));
    }
    if (SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION) != 1) {
        throw ConfigError("tls: cannot require TLS 1.2 or later");
    }
    // No resumption either way: no TLS 1.2 tickets, no TLS 1.3 tickets (OpenSSL sends two after
    // every handshake otherwise), no server-side session cache.
    SSL_CTX_set_options(context.native_handle(), SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(context.native_handle(), 0);
    SSL_CTX_set_session_cache_mode(context.native_handle(), SSL_SESS_CACHE_OFF);
    // An encrypted key would make OpenSSL ask for its passphrase on the terminal, and a server
    // started from a shell would wait there: answer with no passphrase, so loading fails.
    context.set_password_callback(
        [](std::size_t, ssl::context::password_purpose) { return std::string(); });

    context.use_certificate_chain_file(tls.cert_file.string(), error);
    if (error) {
        throw ConfigError(fmt::format("tls.cert_file: cannot load {}: {}", tls.cert_file.string(),
                                      describe(error)));
    }
    context.use_private_key_file(tls.key_file.string(), ssl::context::pem, error);
    if (error) {
        throw ConfigError(fmt::format(
            "tls.key_file: cannot load {}: {}{}", tls.key_file.string(), describe(error),
            is_encrypted_pem(tls.key_file)
                ? " (the key is encrypted: jifend needs it without a passphrase, e.g. "
                  "`openssl pkey -in KEY -out PLAIN_KEY`)"
                : ""));
    }
    if (SSL_CTX_check_private_key(context.native_handle()) != 1) {
        ERR_clear_error();
        throw ConfigError(fmt::format(
            "tls.key_file: {} does not match the certificate in {} (the first certificate there "
            "must be the server's own, then its chain)",
            tls.key_file.string(), tls.cert_file.string()));
    }
    return context;
}

std::vector<std::string> deployment_warnings(const Config& config) {
    std::vector<std::string> warnings;
    if (!config.tls.enabled()) {
        if (!is_loopback_address(config.bind_address)) {
            warnings.push_back(fmt::format(
                "listening on {} without TLS: API keys, balances and history cross the network "
                "in clear; set --tls-cert/--tls-key (docs/operations.md, TLS)",
                config.bind_address));
        }
        return warnings;
    }
    struct stat status;
    if (::stat(config.tls.key_file.c_str(), &status) == 0 && (status.st_mode & 0077) != 0) {
        warnings.push_back(
            fmt::format("tls.key_file {} can be read by other users (mode {:o}): "
                        "chmod 600 it",
                        config.tls.key_file.string(), status.st_mode & 0777));
    }
    if (FILE* file = std::fopen(config.tls.cert_file.c_str(), "r")) {
        X509* leaf = PEM_read_X509(file, nullptr, nullptr, nullptr);
        std::fclose(file);
        if (leaf != nullptr) {
            if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
                warnings.push_back(fmt::format(
                    "tls.cert_file {}: the certificate has expired: clients will refuse it",
                    config.tls.cert_file.string()));
            } else if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
                warnings.push_back(fmt::format(
                    "tls.cert_file {}: the certificate is not valid yet: clients will refuse it",
                    config.tls.cert_file.string()));
            }
            X509_free(leaf);
        }
        ERR_clear_error();
    }
    return warnings;
}

}  // namespace jifen::server
