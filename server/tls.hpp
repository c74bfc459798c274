// Server-side TLS: one boost::asio::ssl::context built from the configured PEM files, shared by
// the binary-protocol listeners and the HTTP admin port. docs/operations.md says how to make a
// self-signed certificate for testing.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <string>
#include <vector>

#include "server/config.hpp"

namespace jifen::server {

// A server context accepting TLS 1.2 and 1.3 only, with the certificate chain and private key
// from `tls` (both PEM) and a check that the key matches the certificate. Throws ConfigError
// naming the file and OpenSSL's reason when a file is missing, unreadable or malformed.
// Precondition: tls.enabled().
boost::asio::ssl::context make_server_tls_context(const TlsConfig& tls);

// What an operator should hear about at startup, none of it a reason to refuse: a bind address
// other than loopback without TLS (keys and balances in clear), a private key others may read, a
// certificate that has expired or is not valid yet.
std::vector<std::string> deployment_warnings(const Config& config);

}  // namespace jifen::server
