// CRC32C: known vectors, and the hardware and table paths agree, including where the hardware
// path splits long inputs into three interleaved blocks and joins their CRCs.
#include "protocol/crc32c.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace jifen::protocol {
namespace {

// JIFEN_SEED when set, else a fixed seed; the failing tests print it.
uint64_t test_seed() {
    const char* text = std::getenv("JIFEN_SEED");
    return text != nullptr ? std::strtoull(text, nullptr, 10) : 20261123;
}

std::string seed_note(uint64_t seed) { return "JIFEN_SEED=" + std::to_string(seed); }

std::vector<unsigned char> random_bytes(size_t size, uint64_t seed) {
    std::mt19937_64 random(seed);
    std::vector<unsigned char> bytes(size);
    for (auto& byte : bytes) {
        byte = static_cast<unsigned char>(random());
    }
    return bytes;
}

bool hardware_path_available() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    return detail::cpu_has_sse42();
#else
    return false;
#endif
}

constexpr size_t stride_bytes_long =
    detail::Crc32cInterleave<detail::crc32c_block_bytes_long>::stride_bytes;
constexpr size_t stride_bytes_short =
    detail::Crc32cInterleave<detail::crc32c_block_bytes_short>::stride_bytes;

TEST(Crc32c, MatchesTheStandardCheckValue) {
    constexpr std::string_view check = "123456789";
    EXPECT_EQ(crc32c(check.data(), check.size()), 0xE3069283u);
    EXPECT_EQ(crc32c_portable(check.data(), check.size()), 0xE3069283u);
}

TEST(Crc32c, OfNothingIsZero) { EXPECT_EQ(crc32c(nullptr, 0), 0u); }

TEST(Crc32c, ContinuesAcrossPiecesWithASeed) {
    constexpr std::string_view text = "loyalty points ledger";
    const uint32_t whole = crc32c(text.data(), text.size());
    const uint32_t first = crc32c(text.data(), 7);
    EXPECT_EQ(crc32c(text.data() + 7, text.size() - 7, first), whole);
}

TEST(Crc32c, HardwareAndTablePathsAgreeOnEveryLengthAndAlignment) {
    std::mt19937_64 random(42);
    std::vector<unsigned char> bytes(300);
    for (auto& byte : bytes) {
        byte = static_cast<unsigned char>(random());
    }
    for (size_t offset = 0; offset < 8; ++offset) {
        for (size_t size = 0; size + offset <= bytes.size(); size += 7) {
            ASSERT_EQ(crc32c(bytes.data() + offset, size),
                      crc32c_portable(bytes.data() + offset, size))
                << "offset " << offset << " size " << size;
        }
    }
}

TEST(Crc32c, ShiftTableEqualsFeedingZeroBytes) {
    const uint64_t seed = test_seed();
    std::mt19937_64 random(seed);
    for (const size_t zero_bytes :
         {size_t{0}, size_t{1}, size_t{8}, size_t{256}, size_t{4096}, size_t{4097}}) {
        const detail::Crc32cShiftTable table = detail::make_crc32c_shift_table(zero_bytes);
        const std::vector<unsigned char> zeros(zero_bytes, 0);
        for (int trial = 0; trial < 100; ++trial) {
            const auto state = static_cast<uint32_t>(random());
            ASSERT_EQ(detail::crc32c_shift(table, state),
                      detail::crc32c_table_update(state, zeros.data(), zeros.size()))
                << zero_bytes << " zero bytes, state " << state << ", " << seed_note(seed);
        }
    }
}

// Every length up to four long strides and then some, so each way of splitting into long
// strides, short strides and a tail is covered, at every misalignment of an 8-byte word.
TEST(Crc32c, HardwarePathEqualsTableOnEveryLengthUpToFourLongStridesAtEveryOffset) {
    if (!hardware_path_available()) {
        GTEST_SKIP() << "no SSE4.2: crc32c() is the table path";
    }
    const uint64_t seed = test_seed();
    constexpr size_t size_max = 4 * stride_bytes_long + 2 * stride_bytes_short + 17;
    const auto bytes = random_bytes(size_max + 8, seed);
    for (size_t offset = 0; offset < 8; ++offset) {
        const unsigned char* data = bytes.data() + offset;
        // The table path over each prefix, one byte further each time.
        uint32_t expected = 0;
        for (size_t size = 0; size <= size_max; ++size) {
            ASSERT_EQ(crc32c(data, size), expected)
                << "offset " << offset << " size " << size << ", " << seed_note(seed);
            expected = crc32c_portable(data + size, 1, expected);
        }
    }
}

TEST(Crc32c, HardwarePathEqualsTableOnLargeInputs) {
    if (!hardware_path_available()) {
        GTEST_SKIP() << "no SSE4.2: crc32c() is the table path";
    }
    const uint64_t seed = test_seed();
    const auto bytes = random_bytes((size_t{1} << 20) + 64, seed);
    for (const size_t size :
         {size_t{1} << 20, (size_t{1} << 20) + 13,
          85 * stride_bytes_long + 5 * stride_bytes_short - 1, size_t{300'001}}) {
        for (const size_t offset : {size_t{0}, size_t{3}}) {
            EXPECT_EQ(crc32c(bytes.data() + offset, size),
                      crc32c_portable(bytes.data() + offset, size))
                << "offset " << offset << " size " << size << ", " << seed_note(seed);
        }
    }
}

TEST(Crc32c, ContinuingOverRandomPiecesGivesTheSameAsOneCall) {
    const uint64_t seed = test_seed();
    const auto bytes = random_bytes((size_t{1} << 20) + 13, seed);
    const uint32_t whole = crc32c(bytes.data(), bytes.size());
    EXPECT_EQ(whole, crc32c_portable(bytes.data(), bytes.size())) << seed_note(seed);
    std::mt19937_64 random(seed);
    // Pieces from empty to over two long strides, so they take every path and end mid-stride.
    std::uniform_int_distribution<size_t> piece_bytes(0, 2 * stride_bytes_long + 100);
    for (int round = 0; round < 4; ++round) {
        uint32_t crc = 0;
        size_t done_bytes = 0;
        while (done_bytes < bytes.size()) {
            const size_t size = std::min(piece_bytes(random), bytes.size() - done_bytes);
            crc = crc32c(bytes.data() + done_bytes, size, crc);
            done_bytes += size;
        }
        EXPECT_EQ(crc, whole) << "round " << round << ", " << seed_note(seed);
    }
}

}  // namespace
}  // namespace jifen::protocol
