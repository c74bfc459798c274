// Drives arbitrary bytes through the server's frame decoding path, in the order a connection
// applies it (server/connection.cpp: header checks, body checksum, request shape, then per
// operation checks and conversion, or the checks of a HELLO, history request or balance query).
// Shared by the libFuzzer target and the corpus test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "engine/command.hpp"
#include "protocol/wire.hpp"
#include "server/dispatch.hpp"

namespace jifen::fuzz {

struct DecodeCounts {
    size_t frames = 0;          // Frames whose header and body checks passed.
    size_t framing_errors = 0;  // Errors that close a connection.
    size_t shape_errors = 0;    // Errors answered with an error frame.
    size_t operations = 0;      // Operations that passed every check and became commands.
    size_t queries = 0;         // HELLOs, history requests and balance queries that passed.
};

// The server's checks of the bodies that are not operations (server/dispatch.hpp, and the shard
// routing of a balance query), as the connection and the shard thread apply them. Returns how
// many passed. Shard counts from 1 to 1024 are all valid servers, so one is picked per frame.
inline size_t decode_queries(protocol::Opcode opcode, const protocol::FrameHeader& header,
                             std::span<const std::byte> body) {
    const uint32_t shard_count = 1 + static_cast<uint32_t>(header.request_id % 1'024);
    size_t passed = 0;
    if (opcode == protocol::Opcode::hello) {
        protocol::HelloRequest hello;
        if (body.size() != sizeof(hello)) {
            __builtin_trap();  // check_request_shape must have refused it.
        }
        std::memcpy(&hello, body.data(), sizeof(hello));
        const Result result = server::check_hello(hello, shard_count);
        const bool asks_shard = (hello.flags & protocol::hello_flag_shard) != 0;
        if (result == Result::ok && asks_shard && hello.shard >= shard_count) {
            __builtin_trap();  // A shard the server does not have must be refused.
        }
        passed += result == Result::ok;
    } else if (opcode == protocol::Opcode::history) {
        protocol::HistoryRequest request;
        if (body.size() != sizeof(request)) {
            __builtin_trap();
        }
        std::memcpy(&request, body.data(), sizeof(request));
        const Result result = server::check_history(request);
        if (result == Result::ok &&
            (request.limit == 0 || request.limit > protocol::history_entries_max)) {
            __builtin_trap();  // The reader would be asked for a page it must not serve.
        }
        passed += result == Result::ok;
    } else if (opcode == protocol::Opcode::balance) {
        if (body.size() != size_t{header.count} * sizeof(protocol::BalanceRequest)) {
            __builtin_trap();
        }
        for (uint16_t index = 0; index < header.count; ++index) {
            protocol::BalanceRequest query;
            std::memcpy(&query, body.data() + index * sizeof(query), sizeof(query));
            if (query.member_id == 0) {
                continue;  // member_id_zero.
            }
            if (protocol::shard_of(query.member_id, shard_count) >= shard_count) {
                __builtin_trap();  // Routed to a shard that does not exist.
            }
            ++passed;
        }
    }
    return passed;
}

// Returns what the bytes decoded to. Any crash, sanitizer report or failed check here is a bug.
inline DecodeCounts decode_stream(const uint8_t* data, size_t size) {
    DecodeCounts counts;
    size_t at = 0;
    while (size - at >= protocol::frame_header_bytes) {
        protocol::FrameHeader header;
        std::memcpy(&header, data + at, sizeof(header));
        if (protocol::check_header(header) != Result::ok) {
            ++counts.framing_errors;  // The connection would close here.
            return counts;
        }
        if (header.body_bytes > protocol::body_bytes_max) {
            __builtin_trap();  // check_header must have refused it.
        }
        const size_t frame_bytes = protocol::frame_header_bytes + header.body_bytes;
        if (size - at < frame_bytes) {
            return counts;  // Incomplete: the connection would wait for more bytes.
        }
        const std::span<const std::byte> body(
            reinterpret_cast<const std::byte*>(data + at + protocol::frame_header_bytes),
            header.body_bytes);
        at += frame_bytes;
        if (protocol::check_body(header, body) != Result::ok) {
            ++counts.framing_errors;
            return counts;
        }
        ++counts.frames;
        if (protocol::check_request_shape(header) != Result::ok) {
            ++counts.shape_errors;
            continue;
        }
        const auto opcode = static_cast<protocol::Opcode>(header.opcode);
        const auto op = server::op_of(opcode);
        if (!op) {
            counts.queries += decode_queries(opcode, header, body);
            continue;
        }
        for (uint16_t index = 0; index < header.count; ++index) {
            protocol::Operation operation;
            std::memcpy(&operation, body.data() + index * sizeof(operation), sizeof(operation));
            if (server::check_operation(opcode, operation) != Result::ok) {
                continue;
            }
            engine::Command command = server::to_command(*op, operation);
            if (command.member_id != operation.member_id || command.points != operation.points) {
                __builtin_trap();  // Conversion must keep every field.
            }
            (void)server::stamp(&command, 1'700'000'000'000'000, operation.duration_us);
            ++counts.operations;
        }
    }
    return counts;
}

// Rewrites the checksums of every whole frame in place, so the fuzzer can explore what lies
// behind them (a random mutation almost never keeps a CRC32C valid).
inline void reseal_frames(uint8_t* data, size_t size) {
    size_t at = 0;
    while (size - at >= protocol::frame_header_bytes) {
        protocol::FrameHeader header;
        std::memcpy(&header, data + at, sizeof(header));
        const size_t body_bytes = header.body_bytes;
        if (body_bytes > size - at - protocol::frame_header_bytes) {
            return;
        }
        const std::span<const std::byte> body(
            reinterpret_cast<const std::byte*>(data + at + protocol::frame_header_bytes),
            body_bytes);
        protocol::seal(&header, body);
        std::memcpy(data + at, &header, sizeof(header));
        at += protocol::frame_header_bytes + body_bytes;
    }
}

}  // namespace jifen::fuzz
