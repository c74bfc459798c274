// Built against an installed jifen (tests/install/): includes the public headers by their
// documented paths, constructs both clients (neither connects until asked) and formats a TxnId.
#include <boost/asio/io_context.hpp>
#include <iostream>
#include <string>

#include "client/async_client.hpp"
#include "client/client.hpp"

int main() {
    using namespace jifen;

    client::Options options;
    options.host = "127.0.0.1";
    client::Client ledger(options);

    boost::asio::io_context io;
    client::AsyncClient pipelined(io, client::AsyncOptions{});

    const client::TxnId txn_id{.lo = 0x0123456789abcdef, .hi = 0xfedcba9876543210};
    protocol::Operation earn = client::make_earn(42, 100);
    client::set_txn_id(&earn, txn_id);
    const std::string text = client::to_hex(client::txn_id_of(earn));
    std::cout << text << "\n";

    const bool ok = text == "fedcba98765432100123456789abcdef" &&
                    client::parse_txn_id(text) == txn_id && !ledger.is_connected() &&
                    !pipelined.is_connected() && to_string(Result::ok) == "ok";
    return ok ? 0 : 1;
}
