// At most one log line a second from a place a client can make log (a refused API key): a
// flood of such requests must not flood the log. The lines held back are counted, and the next
// line says how many. One per thread that logs there; not thread-safe.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace jifen::server {

class LogThrottle {
public:
    // True when a line may be logged now; suffix() then tells how many were held back.
    bool allow() noexcept {
        const auto now = std::chrono::steady_clock::now();
        if (logged_once_ && now - logged_at_ < std::chrono::seconds(1)) {
            ++held_back_;
            return false;
        }
        logged_once_ = true;
        logged_at_ = now;
        reported_ = held_back_;
        held_back_ = 0;
        return true;
    }

    // For the line allow() let through: " (N more ... since the last such line)", or empty.
    std::string suffix(const char* what) const {
        return reported_ == 0
                   ? std::string()
                   : fmt::format(" ({} more {} since the last such line)", reported_, what);
    }

private:
    bool logged_once_ = false;
    std::chrono::steady_clock::time_point logged_at_{};
    uint64_t held_back_ = 0;
    uint64_t reported_ = 0;
};

}  // namespace jifen::server
