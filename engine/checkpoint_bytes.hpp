// A shard checkpoint's bytes, held in pieces so a checkpoint of gigabytes is built in steps
// without ever being moved: growing one contiguous buffer would copy all of it, with the shard
// waiting, each time it outgrew its reservation. The log writes it piece by piece, and takes the
// whole pieces of a checkpoint still being built ahead of the rest (take_whole_pieces), so a
// checkpoint never holds a second copy of every transaction in memory.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <span>
#include <utility>
#include <vector>

#include "engine/assert.hpp"

namespace jifen::engine {

class CheckpointBytes {
public:
    // The size of a built checkpoint's pieces (the last may hold less). The log stores a
    // checkpoint in chunks of this size, so each piece is written where it lies.
    static constexpr size_t piece_bytes_default = size_t{1} << 20;

    CheckpointBytes() = default;
    // The bytes of one buffer, as a single piece (Shard::save() output, tests).
    CheckpointBytes(std::vector<std::byte> whole)  // NOLINT: implicit, a vector is one piece.
        : piece_bytes_(std::max<size_t>(1, whole.size())), size_(whole.size()) {
        if (!whole.empty()) {
            pieces_.push_back(std::move(whole));
            hold(piece_bytes_);
        }
    }
    CheckpointBytes(CheckpointBytes&& other) noexcept
        : piece_bytes_(other.piece_bytes_),
          size_(std::exchange(other.size_, 0)),
          held_(std::exchange(other.held_, 0)),
          pieces_(std::move(other.pieces_)) {
        other.pieces_.clear();
    }
    CheckpointBytes& operator=(CheckpointBytes&& other) noexcept {
        if (this != &other) {
            hold_total_.fetch_sub(held_, std::memory_order_relaxed);
            piece_bytes_ = other.piece_bytes_;
            size_ = std::exchange(other.size_, 0);
            held_ = std::exchange(other.held_, 0);
            pieces_ = std::move(other.pieces_);
            other.pieces_.clear();
        }
        return *this;
    }
    CheckpointBytes(const CheckpointBytes&) = delete;
    CheckpointBytes& operator=(const CheckpointBytes&) = delete;
    ~CheckpointBytes() { hold_total_.fetch_sub(held_, std::memory_order_relaxed); }

    // The bytes every CheckpointBytes of the process holds now: what checkpoints in the making
    // or waiting to be written add to its memory (the server's memory budget leaves them out).
    static size_t bytes_held_in_process() noexcept {
        return hold_total_.load(std::memory_order_relaxed);
    }

    size_t size() const noexcept { return size_; }

    // Writes size bytes at offset, adding pieces as needed; bytes skipped over read as zero.
    void write(size_t offset, const void* data, size_t size) {
        make_room(offset + size);
        const auto* from = static_cast<const std::byte*>(data);
        while (size > 0) {
            std::vector<std::byte>& piece = pieces_[offset / piece_bytes_];
            const size_t at = offset % piece_bytes_;
            const size_t take = std::min(size, piece_bytes_ - at);
            std::memcpy(piece.data() + at, from, take);
            from += take;
            offset += take;
            size -= take;
        }
        size_ = std::max(size_, offset);
    }

    // Allocates (and so touches, as pieces are zero-filled) the pieces that bytes [0, end)
    // fall in, without changing size(): a later write there takes no page faults.
    void make_room(size_t end) {
        while (pieces_.size() * piece_bytes_ < end) {
            pieces_.emplace_back(piece_bytes_);
            hold(piece_bytes_);
        }
    }

    // The bytes [offset, offset + size): where they lie when in one piece, else copied into
    // scratch. offset + size <= size().
    std::span<const std::byte> view(size_t offset, size_t size,
                                    std::vector<std::byte>* scratch) const {
        JIFEN_ASSERT(offset + size <= size_);
        const size_t at = offset % piece_bytes_;
        if (size == 0 || at + size <= piece_bytes_) {
            return size == 0 ? std::span<const std::byte>()
                             : std::span(pieces_[offset / piece_bytes_]).subspan(at, size);
        }
        scratch->resize(size);
        for (size_t copied = 0; copied < size;) {
            const size_t from = offset + copied;
            const size_t take = std::min(size - copied, piece_bytes_ - from % piece_bytes_);
            std::memcpy(scratch->data() + copied,
                        pieces_[from / piece_bytes_].data() + from % piece_bytes_, take);
            copied += take;
        }
        return *scratch;
    }

    // Moves the pieces written to their end out, in order, into a CheckpointBytes of their own;
    // this one then starts at the next byte (the piece being written, and the room made ahead).
    CheckpointBytes take_whole_pieces() {
        CheckpointBytes front;
        front.piece_bytes_ = piece_bytes_;
        const size_t whole = size_ / piece_bytes_;
        const auto end = pieces_.begin() + static_cast<std::ptrdiff_t>(whole);
        front.pieces_.assign(std::make_move_iterator(pieces_.begin()),
                             std::make_move_iterator(end));
        pieces_.erase(pieces_.begin(), end);
        front.size_ = whole * piece_bytes_;
        size_ -= front.size_;
        // The process holds the same bytes as before, now in two objects.
        front.held_ = front.size_;
        held_ -= front.held_;
        return front;
    }

    // The bytes in order, one span per piece (what Shard::load takes).
    std::vector<std::span<const std::byte>> pieces() const {
        std::vector<std::span<const std::byte>> spans;
        for (size_t offset = 0; offset < size_; offset += piece_bytes_) {
            spans.push_back(std::span(pieces_[offset / piece_bytes_])
                                .first(std::min(piece_bytes_, size_ - offset)));
        }
        return spans;
    }

private:
    void hold(size_t bytes) noexcept {
        held_ += bytes;
        hold_total_.fetch_add(bytes, std::memory_order_relaxed);
    }

    static inline std::atomic<size_t> hold_total_{0};

    size_t piece_bytes_ = piece_bytes_default;
    size_t size_ = 0;
    size_t held_ = 0;  // Bytes of pieces_, counted in hold_total_.
    std::vector<std::vector<std::byte>> pieces_;
};

}  // namespace jifen::engine
