// The example frames printed in docs/protocol.md, built from the real wire structs and CRC32C.
// protocol_doc_test checks the document against these; protocol_examples prints them.
#pragma once

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/wire.hpp"

namespace jifen::testing {

struct ExampleFrame {
    std::string name;
    std::vector<std::byte> bytes;
};

inline std::vector<std::byte> example_frame(protocol::Opcode opcode, uint64_t request_id,
                                            uint16_t count, uint16_t flags,
                                            std::span<const std::byte> body) {
    protocol::FrameHeader header;
    header.opcode = static_cast<uint16_t>(opcode);
    header.request_id = request_id;
    header.count = count;
    header.flags = flags;
    protocol::seal(&header, body);
    std::vector<std::byte> bytes(sizeof(header) + body.size());
    std::memcpy(bytes.data(), &header, sizeof(header));
    if (!body.empty()) {
        std::memcpy(bytes.data() + sizeof(header), body.data(), body.size());
    }
    return bytes;
}

template <typename T>
std::span<const std::byte> bytes_of(const T& value) {
    return std::as_bytes(std::span(&value, 1));
}

inline std::vector<ExampleFrame> protocol_examples() {
    std::vector<ExampleFrame> examples;

    protocol::HelloRequest hello;
    std::memcpy(hello.client_name, "example", 7);
    std::memcpy(hello.api_key, "dev-admin-key", 13);
    hello.flags = protocol::hello_flag_shard;
    hello.shard = 1;
    examples.push_back(
        {"hello-request", example_frame(protocol::Opcode::hello, 1, 1, 0, bytes_of(hello))});

    protocol::HelloReply hello_reply;
    hello_reply.result = static_cast<uint32_t>(Result::ok);
    hello_reply.scope = protocol::scope_read | protocol::scope_pos | protocol::scope_admin;
    hello_reply.shard_count = 2;
    hello_reply.shard = 1;
    hello_reply.server_time_us = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z
    std::memcpy(hello_reply.server_name, "jifend", 6);
    examples.push_back(
        {"hello-reply", example_frame(protocol::Opcode::hello, 1, 1, protocol::flag_response,
                                      bytes_of(hello_reply))});

    protocol::Operation earn;
    earn.txn_id_hi = 0x0123456789abcdefull;
    earn.txn_id_lo = 0xfedcba9876543210ull;
    earn.member_id = 42;
    earn.points = 100;
    earn.store_id = 7;
    examples.push_back(
        {"earn-request", example_frame(protocol::Opcode::earn, 2, 1, 0, bytes_of(earn))});

    protocol::OperationReply earn_reply;
    earn_reply.result = static_cast<uint32_t>(Result::ok);
    earn_reply.points = 100;
    earn_reply.available = 100;
    examples.push_back(
        {"earn-reply", example_frame(protocol::Opcode::earn, 2, 1, protocol::flag_response,
                                     bytes_of(earn_reply))});

    constexpr std::string_view message = "reverse needs admin scope";
    std::vector<std::byte> error_body(sizeof(protocol::ErrorReply) + message.size());
    protocol::ErrorReply error;
    error.result = static_cast<uint32_t>(Result::forbidden);
    error.message_bytes = static_cast<uint32_t>(message.size());
    std::memcpy(error_body.data(), &error, sizeof(error));
    std::memcpy(error_body.data() + sizeof(error), message.data(), message.size());
    examples.push_back({"error-reply", example_frame(protocol::Opcode::error, 3, 1,
                                                     protocol::flag_response, error_body)});
    return examples;
}

// Offset-prefixed hex, 16 bytes a line: "0000  4a 49 46 4e ...".
inline std::string hex_dump(std::span<const std::byte> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string text;
    for (size_t offset = 0; offset < bytes.size(); offset += 16) {
        for (int shift = 12; shift >= 0; shift -= 4) {
            text += digits[(offset >> shift) & 0xF];
        }
        text += ' ';
        for (size_t index = offset; index < std::min(offset + 16, bytes.size()); ++index) {
            const auto value = static_cast<unsigned>(bytes[index]);
            text += ' ';
            text += digits[value >> 4];
            text += digits[value & 0xF];
        }
        text += '\n';
    }
    return text;
}

}  // namespace jifen::testing
