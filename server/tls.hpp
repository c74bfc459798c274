// Server-side TLS: one boost::asio::ssl::context built from the configured PEM files, shared by
// the binary-protocol listeners and the HTTP admin port. docs/operations.md says how to make a
// self-signed certificate for testing.
#pragma once

#include <boost/asio/ssl/context.hpp>

#include "server/config.hpp"

namespace jifen::server {

// A server context accepting TLS 1.2 and 1.3 only, with the certificate chain and private key
// from `tls` (both PEM) and a check that the key matches the certificate. Throws ConfigError
// naming the file and OpenSSL's reason when a file is missing, unreadable or malformed.
// Precondition: tls.enabled().
boost::asio::ssl::context make_server_tls_context(const TlsConfig& tls);

}  // namespace jifen::server
