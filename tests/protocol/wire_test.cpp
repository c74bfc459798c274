// Frame header checks: every framing error is named, and a sealed frame passes.
#include "protocol/wire.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace jifen::protocol {
namespace {

FrameHeader sealed_earn_header(std::span<const std::byte> body, uint16_t count) {
    FrameHeader header;
    header.opcode = static_cast<uint16_t>(Opcode::earn);
    header.request_id = 7;
    header.count = count;
    seal(&header, body);
    return header;
}

TEST(Wire, ASealedHeaderAndBodyPassEveryCheck) {
    std::array<Operation, 2> operations{};
    operations[0].member_id = 1;
    const auto body = std::as_bytes(std::span(operations));
    const FrameHeader header = sealed_earn_header(body, 2);
    EXPECT_EQ(check_header(header), Result::ok);
    EXPECT_EQ(check_request_shape(header), Result::ok);
    EXPECT_EQ(check_body(header, body), Result::ok);
}

TEST(Wire, HeaderMagicIsTheAsciiBytesJIFN) {
    FrameHeader header;
    std::array<char, 4> magic{};
    std::memcpy(magic.data(), &header.magic, 4);
    EXPECT_EQ(std::string_view(magic.data(), 4), "JIFN");
}

TEST(Wire, WrongMagicIsBadMagic) {
    FrameHeader header = sealed_earn_header({}, 1);
    header.magic = 0x12345678;
    EXPECT_EQ(check_header(header), Result::bad_magic);
}

TEST(Wire, AnyFlippedHeaderBitIsCaughtByTheChecksum) {
    const FrameHeader good = sealed_earn_header({}, 1);
    for (size_t byte = 4; byte < offsetof(FrameHeader, header_crc32c); ++byte) {
        FrameHeader bad = good;
        reinterpret_cast<unsigned char*>(&bad)[byte] ^= 0x10;
        EXPECT_EQ(check_header(bad), Result::bad_header_checksum) << "byte " << byte;
    }
}

TEST(Wire, UnknownVersionIsBadVersion) {
    FrameHeader header = sealed_earn_header({}, 1);
    header.version = 99;
    header.header_crc32c = header_checksum(header);
    EXPECT_EQ(check_header(header), Result::bad_version);
}

TEST(Wire, BodyAboveTheLimitIsFrameTooLarge) {
    FrameHeader header = sealed_earn_header({}, 1);
    header.body_bytes = body_bytes_max + 1;
    header.header_crc32c = header_checksum(header);
    EXPECT_EQ(check_header(header), Result::frame_too_large);
}

TEST(Wire, CorruptBodyIsBadBodyChecksum) {
    std::array<Operation, 1> operations{};
    std::vector<std::byte> body(sizeof(Operation));
    std::memcpy(body.data(), operations.data(), body.size());
    const FrameHeader header = sealed_earn_header(body, 1);
    body[5] ^= std::byte{1};
    EXPECT_EQ(check_body(header, body), Result::bad_body_checksum);
}

TEST(Wire, RequestShapeNamesEachProblem) {
    FrameHeader header;
    header.opcode = 999;
    EXPECT_EQ(check_request_shape(header), Result::unknown_opcode);

    header.opcode = static_cast<uint16_t>(Opcode::earn);
    header.count = 2;
    header.body_bytes = sizeof(Operation);
    EXPECT_EQ(check_request_shape(header), Result::bad_body_length);

    header.count = 0;
    header.body_bytes = 0;
    EXPECT_EQ(check_request_shape(header), Result::bad_body_length);

    header.opcode = static_cast<uint16_t>(Opcode::history);
    header.count = 2;
    header.body_bytes = 2 * sizeof(HistoryRequest);
    EXPECT_EQ(check_request_shape(header), Result::bad_body_length);

    header.opcode = static_cast<uint16_t>(Opcode::balance);
    header.count = static_cast<uint16_t>(batch_ops_max + 1);
    header.body_bytes = header.count * sizeof(BalanceRequest);
    EXPECT_EQ(check_request_shape(header), Result::batch_too_large);

    header.count = 1;
    header.body_bytes = sizeof(BalanceRequest);
    header.flags = 0x8000;
    EXPECT_EQ(check_request_shape(header), Result::reserved_not_zero);
}

TEST(Wire, EveryResultHasAName) {
    for (uint32_t value = 0; value < 400; ++value) {
        const std::string_view name = to_string(static_cast<Result>(value));
        EXPECT_FALSE(name.empty());
    }
    EXPECT_EQ(to_string(Result::insufficient_points), "insufficient_points");
}

TEST(Wire, PosScopeMayEarnButNotReverse) {
    EXPECT_NE(scope_required(Opcode::earn) & scope_pos, 0u);
    EXPECT_EQ(scope_required(Opcode::reverse) & scope_pos, 0u);
    EXPECT_NE(scope_required(Opcode::reverse) & scope_admin, 0u);
    EXPECT_EQ(scope_required(Opcode::earn) & scope_read, 0u);
}

// The check values docs/protocol.md gives for shard_of, so a client written from the document
// routes exactly as the server does.
TEST(Wire, ShardOfMatchesTheDocumentedCheckValues) {
    struct Check {
        uint64_t member;
        uint32_t of_2, of_4, of_8;
    };
    for (const Check check :
         {Check{1, 0, 1, 2}, Check{2, 1, 3, 6}, Check{42, 1, 2, 5}, Check{1'000'000, 0, 1, 3}}) {
        EXPECT_EQ(shard_of(check.member, 2), check.of_2) << check.member;
        EXPECT_EQ(shard_of(check.member, 4), check.of_4) << check.member;
        EXPECT_EQ(shard_of(check.member, 8), check.of_8) << check.member;
    }
}

TEST(Wire, ShardOfSpreadsMembersEvenlyAndStaysBelowTheCount) {
    constexpr uint32_t shards = 8;
    constexpr uint64_t members = 80'000;
    uint64_t per_shard[shards] = {};
    for (uint64_t member = 1; member <= members; ++member) {
        const uint32_t shard = shard_of(member, shards);
        ASSERT_LT(shard, shards);
        ++per_shard[shard];
    }
    for (const uint64_t count : per_shard) {
        EXPECT_NEAR(static_cast<double>(count), members / shards, members / shards * 0.05);
    }
    EXPECT_EQ(shard_of(UINT64_MAX, 1), 0u);
}

}  // namespace
}  // namespace jifen::protocol
