// CRC32C (Castagnoli), the frame checksum. Uses the SSE4.2 instruction when the CPU has it
// (40x to 60x faster than the table from 1 KiB up, where it runs three interleaved chains of it)
// and a table otherwise; both give identical results.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace jifen::protocol {

namespace detail {

inline constexpr uint32_t crc32c_polynomial_reflected = 0x82F63B78u;

constexpr std::array<uint32_t, 256> make_crc32c_table() {
    std::array<uint32_t, 256> table{};
    for (uint32_t byte = 0; byte < 256; ++byte) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; ++bit) {
            crc = (crc >> 1) ^ ((crc & 1u) ? crc32c_polynomial_reflected : 0u);
        }
        table[byte] = crc;
    }
    return table;
}

inline constexpr std::array<uint32_t, 256> crc32c_table = make_crc32c_table();

inline uint32_t crc32c_table_update(uint32_t crc, const unsigned char* data, size_t size) noexcept {
    for (size_t i = 0; i < size; ++i) {
        crc = (crc >> 8) ^ crc32c_table[(crc ^ data[i]) & 0xFFu];
    }
    return crc;
}

// Feeding zero bytes changes the CRC state (without the pre- and post-inversion) linearly over
// GF(2): a 32x32 bit matrix, kept as the images of the 32 one-bit states. It joins CRCs of
// adjacent pieces: update(s, A || B) = zeros(|B|)(update(s, A)) ^ update(0, B).
using Crc32cMatrix = std::array<uint32_t, 32>;

constexpr uint32_t crc32c_matrix_apply(const Crc32cMatrix& matrix, uint32_t state) {
    uint32_t image = 0;
    for (size_t bit = 0; state != 0; ++bit, state >>= 1) {
        if ((state & 1u) != 0) {
            image ^= matrix[bit];
        }
    }
    return image;
}

constexpr Crc32cMatrix crc32c_matrix_multiply(const Crc32cMatrix& outer,
                                              const Crc32cMatrix& inner) {
    Crc32cMatrix product{};
    for (size_t bit = 0; bit < 32; ++bit) {
        product[bit] = crc32c_matrix_apply(outer, inner[bit]);
    }
    return product;
}

// The matrix of feeding zero_bytes zero bytes, by repeated squaring of the one-byte step: about
// 2 log2(zero_bytes) products, cheap enough to evaluate at compile time in every includer.
constexpr Crc32cMatrix crc32c_zeros_matrix(size_t zero_bytes) {
    Crc32cMatrix step{};
    Crc32cMatrix result{};
    for (size_t bit = 0; bit < 32; ++bit) {
        const uint32_t state = 1u << bit;
        step[bit] = (state >> 8) ^ crc32c_table[state & 0xFFu];
        result[bit] = state;
    }
    for (; zero_bytes != 0; zero_bytes >>= 1) {
        if ((zero_bytes & 1u) != 0) {
            result = crc32c_matrix_multiply(step, result);
        }
        step = crc32c_matrix_multiply(step, step);
    }
    return result;
}

// The same matrix as four tables, one per byte of the state, so applying it is four lookups.
using Crc32cShiftTable = std::array<std::array<uint32_t, 256>, 4>;

constexpr Crc32cShiftTable make_crc32c_shift_table(size_t zero_bytes) {
    const Crc32cMatrix matrix = crc32c_zeros_matrix(zero_bytes);
    Crc32cShiftTable table{};
    for (size_t byte_index = 0; byte_index < 4; ++byte_index) {
        auto& images = table[byte_index];
        // Linearity: the image of byte is that of byte without its lowest set bit, plus that bit's.
        for (uint32_t byte = 1; byte < 256; ++byte) {
            const auto lowest_bit = static_cast<size_t>(std::countr_zero(byte));
            images[byte] = images[byte & (byte - 1)] ^ matrix[8 * byte_index + lowest_bit];
        }
    }
    return table;
}

inline uint32_t crc32c_shift(const Crc32cShiftTable& table, uint32_t crc) noexcept {
    return table[0][crc & 0xFFu] ^ table[1][(crc >> 8) & 0xFFu] ^ table[2][(crc >> 16) & 0xFFu] ^
           table[3][crc >> 24];
}

// One chain of crc32 instructions waits 3 cycles for each 8 bytes, but the CPU starts one per
// cycle: three chains over three adjacent blocks run about 3x faster, then are joined. Each
// block length costs a 4 KiB shift table.
template <size_t block_bytes>
struct Crc32cInterleave {
    static_assert(block_bytes % 8 == 0);
    static constexpr size_t stride_bytes = 3 * block_bytes;
    static constexpr Crc32cShiftTable shift_table = make_crc32c_shift_table(block_bytes);
};

// Block lengths picked by measurement (docs/performance.md, CRC32C): long blocks of 2 to 16 KiB
// were within 5% of each other on 64 KiB to 1 MiB, and 256 bytes was the fastest short block of
// 64 to 1,024 on inputs of 1 to 3 KiB, which interleave only with short blocks.
inline constexpr size_t crc32c_block_bytes_long = 4096;
inline constexpr size_t crc32c_block_bytes_short = 256;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// The state after the 3 * block_bytes bytes at data, from the state crc before them.
template <size_t block_bytes>
__attribute__((target("sse4.2"))) inline uint32_t crc32c_hw_update_stride(
    uint32_t crc, const unsigned char* data) noexcept {
    uint64_t crc_first = crc;
    uint64_t crc_second = 0;
    uint64_t crc_third = 0;
    for (size_t offset = 0; offset < block_bytes; offset += 8) {
        uint64_t word_first;
        uint64_t word_second;
        uint64_t word_third;
        std::memcpy(&word_first, data + offset, 8);
        std::memcpy(&word_second, data + block_bytes + offset, 8);
        std::memcpy(&word_third, data + 2 * block_bytes + offset, 8);
        crc_first = __builtin_ia32_crc32di(crc_first, word_first);
        crc_second = __builtin_ia32_crc32di(crc_second, word_second);
        crc_third = __builtin_ia32_crc32di(crc_third, word_third);
    }
    const auto& table = Crc32cInterleave<block_bytes>::shift_table;
    crc = crc32c_shift(table, static_cast<uint32_t>(crc_first)) ^ static_cast<uint32_t>(crc_second);
    return crc32c_shift(table, crc) ^ static_cast<uint32_t>(crc_third);
}

// One chain: for short inputs and for what is left after the interleaved strides.
__attribute__((target("sse4.2"))) inline uint32_t crc32c_hw_update_serial(uint32_t crc,
                                                                          const unsigned char* data,
                                                                          size_t size) noexcept {
    uint64_t crc64 = crc;
    while (size >= 8) {
        uint64_t word;
        std::memcpy(&word, data, 8);
        crc64 = __builtin_ia32_crc32di(crc64, word);
        data += 8;
        size -= 8;
    }
    auto crc32 = static_cast<uint32_t>(crc64);
    while (size > 0) {
        crc32 = __builtin_ia32_crc32qi(crc32, *data);
        ++data;
        --size;
    }
    return crc32;
}

__attribute__((target("sse4.2"))) inline uint32_t crc32c_hw_update(uint32_t crc,
                                                                   const unsigned char* data,
                                                                   size_t size) noexcept {
    using Long = Crc32cInterleave<crc32c_block_bytes_long>;
    using Short = Crc32cInterleave<crc32c_block_bytes_short>;
    // Most inputs are short (frame headers, bodies of a few operations): [[unlikely]] lets them
    // fall straight through to one chain, as fast as before the interleaving (crc_bench, 64 B).
    if (size >= Short::stride_bytes) [[unlikely]] {
        for (; size >= Long::stride_bytes; data += Long::stride_bytes, size -= Long::stride_bytes) {
            crc = crc32c_hw_update_stride<crc32c_block_bytes_long>(crc, data);
        }
        for (; size >= Short::stride_bytes;
             data += Short::stride_bytes, size -= Short::stride_bytes) {
            crc = crc32c_hw_update_stride<crc32c_block_bytes_short>(crc, data);
        }
    }
    return crc32c_hw_update_serial(crc, data, size);
}

inline bool cpu_has_sse42() noexcept {
    static const bool has = __builtin_cpu_supports("sse4.2");
    return has;
}
#endif

}  // namespace detail

// CRC32C of size bytes; pass a previous result as seed to continue over several pieces.
inline uint32_t crc32c(const void* data, size_t size, uint32_t seed = 0) noexcept {
    const auto* bytes = static_cast<const unsigned char*>(data);
    uint32_t crc = ~seed;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (detail::cpu_has_sse42()) {
        return ~detail::crc32c_hw_update(crc, bytes, size);
    }
#endif
    return ~detail::crc32c_table_update(crc, bytes, size);
}

// Software path only, so tests can check both paths agree.
inline uint32_t crc32c_portable(const void* data, size_t size, uint32_t seed = 0) noexcept {
    return ~detail::crc32c_table_update(~seed, static_cast<const unsigned char*>(data), size);
}

}  // namespace jifen::protocol
