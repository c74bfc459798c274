// Server-side TLS context from PEM files, with OpenSSL's reason in every error.
#include "server/tls.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/system/error_code.hpp>

namespace jifen::server {
namespace {

namespace ssl = boost::asio::ssl;

std::string describe(const boost::system::error_code& error) {
    // Asio's ssl category message is OpenSSL's reason string ("no start line", ...).
    return error.message();
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
    SSL_CTX_set_options(context.native_handle(), SSL_OP_NO_TICKET);

    context.use_certificate_chain_file(tls.cert_file.string(), error);
    if (error) {
        throw ConfigError(fmt::format("tls.cert_file: cannot load {}: {}", tls.cert_file.string(),
                                      describe(error)));
    }
    context.use_private_key_file(tls.key_file.string(), ssl::context::pem, error);
    if (error) {
        throw ConfigError(fmt::format("tls.key_file: cannot load {}: {}", tls.key_file.string(),
                                      describe(error)));
    }
    if (SSL_CTX_check_private_key(context.native_handle()) != 1) {
        ERR_clear_error();
        throw ConfigError(fmt::format("tls.key_file: {} does not match the certificate in {}",
                                      tls.key_file.string(), tls.cert_file.string()));
    }
    return context;
}

}  // namespace jifen::server
