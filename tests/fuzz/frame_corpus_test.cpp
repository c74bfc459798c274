// Runs the frame decoder over hand-made frames and over the checked-in fuzz corpus
// (tests/fuzz/corpus: seeds plus every input the fuzzer found interesting), so what the fuzzer
// learned keeps being tested by a plain CTest run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "tests/fuzz/frame_harness.hpp"

namespace jifen::fuzz {
namespace {

std::vector<uint8_t> frame(protocol::Opcode opcode, std::span<const std::byte> body,
                           uint16_t count) {
    protocol::FrameHeader header;
    header.opcode = static_cast<uint16_t>(opcode);
    header.request_id = 1;
    header.count = count;
    protocol::seal(&header, body);
    std::vector<uint8_t> bytes(sizeof(header) + body.size());
    std::memcpy(bytes.data(), &header, sizeof(header));
    if (!body.empty()) {
        std::memcpy(bytes.data() + sizeof(header), body.data(), body.size());
    }
    return bytes;
}

TEST(FrameCorpus, ValidEarnBatchDecodesEveryOperation) {
    std::vector<protocol::Operation> operations(3);
    for (auto& operation : operations) {
        operation.txn_id_lo = 1;
        operation.member_id = 42;
        operation.points = 10;
    }
    const auto bytes = frame(protocol::Opcode::earn, std::as_bytes(std::span(operations)), 3);
    const DecodeCounts counts = decode_stream(bytes.data(), bytes.size());
    EXPECT_EQ(counts.frames, 1u);
    EXPECT_EQ(counts.operations, 3u);
    EXPECT_EQ(counts.framing_errors, 0u);
}

TEST(FrameCorpus, ReservedBytesSetRejectTheOperationOnly) {
    std::vector<protocol::Operation> operations(2);
    operations[1].reserved[7] = 1;
    const auto bytes = frame(protocol::Opcode::redeem, std::as_bytes(std::span(operations)), 2);
    EXPECT_EQ(decode_stream(bytes.data(), bytes.size()).operations, 1u);
}

TEST(FrameCorpus, CorruptBodyStopsDecodingAsAFramingError) {
    std::vector<protocol::Operation> operations(1);
    auto bytes = frame(protocol::Opcode::earn, std::as_bytes(std::span(operations)), 1);
    bytes.back() ^= 0xFF;
    const DecodeCounts counts = decode_stream(bytes.data(), bytes.size());
    EXPECT_EQ(counts.framing_errors, 1u);
    EXPECT_EQ(counts.operations, 0u);
}

TEST(FrameCorpus, WrongCountIsAShapeErrorAndTheNextFrameStillDecodes) {
    std::vector<protocol::Operation> operations(1);
    auto bytes = frame(protocol::Opcode::earn, std::as_bytes(std::span(operations)), 2);
    const auto good = frame(protocol::Opcode::earn, std::as_bytes(std::span(operations)), 1);
    bytes.insert(bytes.end(), good.begin(), good.end());
    const DecodeCounts counts = decode_stream(bytes.data(), bytes.size());
    EXPECT_EQ(counts.shape_errors, 1u);
    EXPECT_EQ(counts.operations, 1u);
}

TEST(FrameCorpus, HelloHistoryAndBalanceBodiesGoThroughTheServersChecks) {
    protocol::HelloRequest hello;
    hello.flags = protocol::hello_flag_shard;
    hello.shard = 0;
    protocol::HistoryRequest history;
    history.member_id = 42;
    history.limit = 10;
    protocol::HistoryRequest too_long = history;
    too_long.limit = protocol::history_entries_max + 1;
    const std::vector<protocol::BalanceRequest> balances = {{42}, {0}, {7}};
    std::vector<uint8_t> bytes =
        frame(protocol::Opcode::hello, std::as_bytes(std::span(&hello, 1)), 1);
    for (const auto& more :
         {frame(protocol::Opcode::history, std::as_bytes(std::span(&history, 1)), 1),
          frame(protocol::Opcode::history, std::as_bytes(std::span(&too_long, 1)), 1),
          frame(protocol::Opcode::balance, std::as_bytes(std::span(balances)), 3)}) {
        bytes.insert(bytes.end(), more.begin(), more.end());
    }
    const DecodeCounts counts = decode_stream(bytes.data(), bytes.size());
    EXPECT_EQ(counts.frames, 4u);
    EXPECT_EQ(counts.queries, 1u + 1u + 2u);  // The long page and member 0 are refused.
}

TEST(FrameCorpus, EveryCheckedInInputDecodesWithoutFault) {
    size_t inputs = 0;
    for (const auto& entry : std::filesystem::directory_iterator(JIFEN_FUZZ_CORPUS_DIR)) {
        std::ifstream file(entry.path(), std::ios::binary);
        const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(file),
                                         std::istreambuf_iterator<char>()};
        if (!bytes.empty() && (bytes[0] & 1u) != 0) {  // Same convention as frame_fuzzer.cpp.
            std::vector<uint8_t> resealed(bytes.begin() + 1, bytes.end());
            reseal_frames(resealed.data(), resealed.size());
            (void)decode_stream(resealed.data(), resealed.size());
        } else {
            (void)decode_stream(bytes.data(), bytes.size());
        }
        ++inputs;
    }
    EXPECT_GT(inputs, 0u) << "the corpus directory is empty: " << JIFEN_FUZZ_CORPUS_DIR;
}

}  // namespace
}  // namespace jifen::fuzz
