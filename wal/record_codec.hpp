// How format 3 packs a logged record: its 18 little-endian 64-bit words with the zero ones left
// out and the others cut to their significant bytes. Most of a record is zero or small (an earn
// leaves the reference id, counterparty, release time and most attributes at zero, and its points
// fit in a byte or two), so an earn takes 46 bytes instead of 144: the log writer copies,
// and the disk syncs, a third as much.
//
// Layout of one packed record:
//   3 bytes        which words are present: bit i set when word i is not zero
//   (k + 1) / 2    for each of the k present words in order, its byte count minus one, four bits
//                  each, the first word in the low half of the first byte
//   the rest       each present word's low bytes, little-endian, in word order
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "wal/format.hpp"

namespace jifen::wal::format {

inline constexpr size_t record_words = sizeof(LoggedRecord) / 8;
static_assert(sizeof(LoggedRecord) % 8 == 0 && record_words <= 24);
inline constexpr size_t packed_mask_bytes = 3;
inline constexpr size_t packed_record_bytes_max =
    packed_mask_bytes + (record_words + 1) / 2 + sizeof(LoggedRecord);
// unpack_record() loads whole words: the bytes this far past a record's end must be readable.
inline constexpr size_t packed_read_slack_bytes = 7;

// Writes record packed at out (room for packed_record_bytes_max) and returns its size.
inline size_t pack_record(const LoggedRecord& record, unsigned char* out) noexcept {
    uint64_t words[record_words];
    std::memcpy(words, &record, sizeof(words));
    uint32_t mask = 0;
    unsigned char* lengths = out + packed_mask_bytes;
    size_t present = 0;
    for (size_t index = 0; index < record_words; ++index) {
        present += words[index] != 0;
    }
    unsigned char* at = lengths + (present + 1) / 2;
    std::memset(lengths, 0, (present + 1) / 2);
    size_t written = 0;
    for (size_t index = 0; index < record_words; ++index) {
        const uint64_t word = words[index];
        if (word == 0) {
            continue;
        }
        mask |= uint32_t{1} << index;
        const auto bytes = static_cast<unsigned>((std::bit_width(word) + 7) / 8);
        lengths[written / 2] |= static_cast<unsigned char>((bytes - 1) << (written % 2 * 4));
        ++written;
        std::memcpy(at, &word, bytes);
        at += bytes;
    }
    out[0] = static_cast<unsigned char>(mask);
    out[1] = static_cast<unsigned char>(mask >> 8);
    out[2] = static_cast<unsigned char>(mask >> 16);
    return static_cast<size_t>(at - out);
}

// Reads the packed record of exactly size bytes at in into *record; the packed_read_slack_bytes
// after it must be readable. False, with *record unspecified, when the bytes are not what
// pack_record writes for a record of that size (a damaged value). A damaged byte inside a word
// can still unpack: only the checksum over the value catches that.
inline bool unpack_record(const unsigned char* in, size_t size, LoggedRecord* record) noexcept {
    if (size < packed_mask_bytes) {
        return false;
    }
    const uint32_t mask = uint32_t{in[0]} | uint32_t{in[1]} << 8 | uint32_t{in[2]} << 16;
    if (mask >> record_words != 0) {
        return false;
    }
    const auto present = static_cast<size_t>(std::popcount(mask));
    const unsigned char* lengths = in + packed_mask_bytes;
    const size_t header_bytes = packed_mask_bytes + (present + 1) / 2;
    if (size < header_bytes) {
        return false;
    }
    size_t body_bytes = 0;
    for (size_t written = 0; written < present; ++written) {
        const unsigned bytes = (lengths[written / 2] >> (written % 2 * 4) & 0x0fu) + 1;
        if (bytes > 8) {
            return false;
        }
        body_bytes += bytes;
    }
    if (header_bytes + body_bytes != size) {
        return false;
    }
    uint64_t words[record_words] = {};
    const unsigned char* at = in + header_bytes;
    size_t written = 0;
    for (uint32_t rest = mask; rest != 0; rest &= rest - 1) {
        const unsigned bytes = (lengths[written / 2] >> (written % 2 * 4) & 0x0fu) + 1;
        ++written;
        uint64_t word;
        std::memcpy(&word, at, 8);  // Up to 7 bytes past the word: the slack.
        word = bytes == 8 ? word : word & ((uint64_t{1} << bytes * 8) - 1);
        if (word >> (bytes - 1) * 8 == 0) {
            return false;  // pack_record never writes a zero word or a zero top byte.
        }
        words[std::countr_zero(rest)] = word;
        at += bytes;
    }
    std::memcpy(record, words, sizeof(words));
    return true;
}

}  // namespace jifen::wal::format
