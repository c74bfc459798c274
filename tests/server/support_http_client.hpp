// A deliberately small HTTP/1.1 client for the admin-port tests: a raw socket (optionally TLS via
// OpenSSL), one request written as given, everything read until the server closes.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace jifen::server::test {

struct HttpReply {
    int status = 0;    // 0: no status line came back.
    std::string head;  // Status line and headers.
    std::string body;
    std::string raw;  // Everything the server sent.
};

inline HttpReply parse_reply(std::string raw) {
    HttpReply reply;
    reply.raw = raw;
    const size_t head_end = raw.find("\r\n\r\n");
    if (raw.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos) {
        return reply;
    }
    reply.head = raw.substr(0, head_end);
    reply.body = raw.substr(head_end + 4);
    reply.status = std::stoi(raw.substr(9, 3));
    return reply;
}

// A request for `path` that asks the server to close afterwards.
inline std::string get_request(std::string_view path, std::string_view secret = "",
                               std::string_view method = "GET") {
    std::string request = std::string(method) + " " + std::string(path) +
                          " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
    if (!secret.empty()) {
        request += "Authorization: Bearer " + std::string(secret) + "\r\n";
    }
    return request + "\r\n";
}

class Socket {
public:
    explicit Socket(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
        if (fd_ < 0) {
            throw std::runtime_error("socket() failed");
        }
        // Only a guard against a hung test; no assertion depends on timing.
        timeval timeout{30, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
            ::close(fd_);
            throw std::runtime_error("connect() failed");
        }
    }
    ~Socket() { ::close(fd_); }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    int fd() const { return fd_; }

    void send_all(std::string_view data) const {
        while (!data.empty()) {
            const ssize_t sent = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (sent <= 0) {
                return;  // The server may close early (e.g. a refused oversized request).
            }
            data.remove_prefix(static_cast<size_t>(sent));
        }
    }

    std::string read_to_end() const {
        std::string data;
        char chunk[4096];
        for (;;) {
            const ssize_t got = ::recv(fd_, chunk, sizeof(chunk), 0);
            if (got <= 0) {
                return data;
            }
            data.append(chunk, static_cast<size_t>(got));
        }
    }

private:
    int fd_;
};

// Plain HTTP: sends `request` and returns what came back before the server closed.
inline HttpReply exchange(uint16_t port, std::string_view request) {
    Socket socket(port);
    socket.send_all(request);
    return parse_reply(socket.read_to_end());
}

// HTTPS with `client` (an SSL_CTX the test configured). Status 0 when the handshake fails.
inline HttpReply exchange_tls(uint16_t port, SSL_CTX* client, std::string_view request) {
    Socket socket(port);
    SSL* ssl = SSL_new(client);
    SSL_set_fd(ssl, socket.fd());
    std::string data;
    if (SSL_connect(ssl) == 1) {
        SSL_write(ssl, request.data(), static_cast<int>(request.size()));
        char chunk[4096];
        for (;;) {
            const int got = SSL_read(ssl, chunk, sizeof(chunk));
            if (got <= 0) {
                break;
            }
            data.append(chunk, static_cast<size_t>(got));
        }
    }
    SSL_free(ssl);
    return parse_reply(std::move(data));
}

}  // namespace jifen::server::test
