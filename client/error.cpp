// Text for client failures.
#include "client/error.hpp"

namespace jifen::client {

std::string_view to_string(Failure failure) noexcept {
    switch (failure) {
        case Failure::none:
            return "ok";
        case Failure::connect:
            return "connect_failed";
        case Failure::timeout:
            return "timeout";
        case Failure::closed:
            return "connection_closed";
        case Failure::refused:
            return "refused";
        case Failure::protocol:
            return "protocol_error";
        case Failure::overloaded:
            return "overloaded";
    }
    return "unknown_failure";
}

std::string Status::to_string() const {
    std::string text(client::to_string(failure));
    if (failure == Failure::refused) {
        text += ": ";
        text += jifen::to_string(result);
    }
    if (!message.empty()) {
        text += " (";
        text += message;
        text += ")";
    }
    return text;
}

}  // namespace jifen::client
