// How the client reports failures. Business refusals are NOT failures: a refused redeem comes
// back as an OperationReply whose `result` names the reason. A Status/Error is for the cases where
// there is no per-operation answer: the connection failed, timed out, or the server refused the
// whole frame (an error frame) or the session (HELLO refused).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "protocol/result.hpp"

namespace jifen::client {

enum class Failure : uint8_t {
    none = 0,
    connect = 1,     // Could not resolve, connect, complete TLS, or the HELLO exchange broke.
    timeout = 2,     // No reply within Options::request_timeout (the connection is closed).
    closed = 3,      // The connection closed or broke with requests in flight.
    refused = 4,     // The server answered with a Result instead of a reply: an error frame, or
                     // HELLO refused (auth_failed, bad_version). Status::result says which.
    protocol = 5,    // The server sent bytes this client cannot parse (a bug on one side).
    overloaded = 6,  // Client-side queue full (AsyncClient): nothing was sent.
};

std::string_view to_string(Failure failure) noexcept;

// Outcome of a request as a whole. When ok(), the reply is valid (its own result field may still
// be a business refusal). Otherwise, for timeout/closed the operations may or may not have been
// applied: resend them with the SAME transaction ids, and the server answers the ones it already
// applied with their original outcome (reply_flag_replayed), so nothing applies twice.
struct Status {
    Failure failure = Failure::none;
    Result result = Result::ok;  // Failure::refused: the server's code. Otherwise ok.
    std::string message;         // Human-readable detail (the error frame's text, an OS error).

    bool ok() const noexcept { return failure == Failure::none; }
    // E.g. "refused: forbidden (key scope does not allow reverse)".
    std::string to_string() const;
};

// Thrown by the synchronous Client for a non-ok Status.
class Error : public std::runtime_error {
public:
    explicit Error(Status status)
        : std::runtime_error(status.to_string()), status_(std::move(status)) {}

    const Status& status() const noexcept { return status_; }
    Failure failure() const noexcept { return status_.failure; }
    Result result() const noexcept { return status_.result; }

private:
    Status status_;
};

}  // namespace jifen::client
