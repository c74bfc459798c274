// Zero-filled table memory from mmap; see engine/memory.hpp.

#include "engine/memory.hpp"

#include <sys/mman.h>

#include <cstdint>

namespace jifen::engine::detail {
namespace {

constexpr size_t page_bytes = size_t{4} << 10;
constexpr size_t huge_page_bytes = size_t{2} << 20;

// The length actually mapped for a request: whole pages, and whole huge pages once a table is
// that large, so a huge-page-aligned table ends on a huge-page boundary too.
size_t mapped_bytes(size_t size_bytes) noexcept {
    const size_t unit = size_bytes >= huge_page_bytes ? huge_page_bytes : page_bytes;
    const size_t bytes = size_bytes == 0 ? 1 : size_bytes;
    return (bytes + unit - 1) / unit * unit;
}

}  // namespace

void* map_zeroed(size_t size_bytes) noexcept {
    const size_t bytes = mapped_bytes(size_bytes);
    if (bytes < size_bytes) {
        return nullptr;  // Wrapped around.
    }
    const size_t slack = bytes >= huge_page_bytes ? huge_page_bytes : 0;
    void* mapped =
        mmap(nullptr, bytes + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) {
        return nullptr;
    }
    // Trim the slack so the table starts on a huge-page boundary: only aligned 2 MiB ranges can
    // be backed by huge pages.
    const auto start = reinterpret_cast<uintptr_t>(mapped);
    const uintptr_t aligned = slack == 0 ? start : (start + slack - 1) / slack * slack;
    if (aligned > start) {
        munmap(mapped, aligned - start);
    }
    if (const uintptr_t end = start + bytes + slack; end > aligned + bytes) {
        munmap(reinterpret_cast<void*>(aligned + bytes), end - (aligned + bytes));
    }
    return reinterpret_cast<void*>(aligned);
}

void* remap_zeroed(void* memory, size_t old_size_bytes, size_t new_size_bytes) noexcept {
    const size_t old_bytes = mapped_bytes(old_size_bytes);
    const size_t new_bytes = mapped_bytes(new_size_bytes);
    if (new_bytes < new_size_bytes) {
        return nullptr;
    }
    if (new_bytes == old_bytes) {
        return memory;
    }
    void* moved = mremap(memory, old_bytes, new_bytes, MREMAP_MAYMOVE);
    return moved == MAP_FAILED ? nullptr : moved;
}

void unmap_zeroed(void* memory, size_t size_bytes) noexcept {
    if (memory != nullptr) {
        munmap(memory, mapped_bytes(size_bytes));
    }
}

}  // namespace jifen::engine::detail
