// CRC32C: known vectors, and the hardware and table paths agree.
#include "protocol/crc32c.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string_view>
#include <vector>

namespace jifen::protocol {
namespace {

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

}  // namespace
}  // namespace jifen::protocol
