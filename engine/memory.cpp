// Zero-filled table memory from mmap; see engine/memory.hpp.

#include "engine/memory.hpp"

#include <sys/mman.h>

#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace jifen::engine::detail {
namespace {

constexpr size_t page_bytes = size_t{4} << 10;

size_t mapped_bytes(size_t size_bytes, size_t unit = page_bytes) noexcept {
    const size_t bytes = size_bytes == 0 ? 1 : size_bytes;
    return (bytes + unit - 1) / unit * unit;
}

}  // namespace

// 4 KiB pages unless asked (advise_huge_pages, map_huge_zeroed): on this project's machines
// (virtual, transparent huge pages in madvise mode) huge pages on every table, the growing ones
// too, measured slower, and a huge-page fault zeroes 2 MiB at once in the middle of an apply.
// The fixed tables probed at random measured faster on them.
void* map_zeroed(size_t size_bytes) noexcept {
    const size_t bytes = mapped_bytes(size_bytes);
    if (bytes < size_bytes) {
        return nullptr;  // Wrapped around.
    }
    void* mapped = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return mapped == MAP_FAILED ? nullptr : mapped;
}

void* map_huge_zeroed(size_t size_bytes) noexcept {
    const size_t bytes = mapped_bytes(size_bytes, huge_page_bytes);
    if (bytes < size_bytes || bytes + huge_page_bytes < bytes) {
        return nullptr;
    }
    // Map a huge page more than needed, then give back the ends outside an aligned stretch.
    void* mapped = mmap(nullptr, bytes + huge_page_bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) {
        return nullptr;
    }
    const auto first = reinterpret_cast<uintptr_t>(mapped);
    const uintptr_t start = (first + huge_page_bytes - 1) / huge_page_bytes * huge_page_bytes;
    if (start > first) {
        munmap(mapped, start - first);
    }
    if (const uintptr_t end = first + bytes + huge_page_bytes; end > start + bytes) {
        munmap(reinterpret_cast<void*>(start + bytes), end - start - bytes);
    }
    // Advice only: without transparent huge pages the memory is simply 4 KiB pages.
    madvise(reinterpret_cast<void*>(start), bytes, MADV_HUGEPAGE);
    return reinterpret_cast<void*>(start);
}

void advise_huge_pages(void* memory, size_t size_bytes) noexcept {
    if (memory != nullptr && size_bytes >= huge_page_bytes) {
        madvise(memory, mapped_bytes(size_bytes), MADV_HUGEPAGE);  // Advice: may be ignored.
    }
}

void unmap_huge_zeroed(void* memory, size_t size_bytes) noexcept {
    if (memory != nullptr) {
        munmap(memory, mapped_bytes(size_bytes, huge_page_bytes));
    }
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
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer does not follow mremap: when another shard's table later lands on the
    // range this one left, it reports the two threads' writes as a race. Under it, move the
    // table by hand through the calls it does follow (mmap, munmap).
    void* moved = map_zeroed(new_size_bytes);
    if (moved != nullptr) {
        std::memcpy(moved, memory, old_bytes);
        unmap_zeroed(memory, old_size_bytes);
    }
    return moved;
#else
    void* moved = mremap(memory, old_bytes, new_bytes, MREMAP_MAYMOVE);
    return moved == MAP_FAILED ? nullptr : moved;
#endif
}

bool prefault_zeroed(void* memory, size_t size_bytes) noexcept {
    // One call maps every page; a fault per page costs several times more (more still on a
    // virtual machine). Older kernels do not know the advice: then touch each page.
    if (madvise(memory, mapped_bytes(size_bytes), MADV_POPULATE_WRITE) == 0) {
        return true;
    }
    if (errno == ENOMEM || errno == EFAULT) {
        return false;
    }
    auto* bytes = static_cast<volatile unsigned char*>(memory);
    for (size_t offset = 0; offset < size_bytes; offset += page_bytes) {
        bytes[offset] = 0;
    }
    return true;
}

void populate(void* memory, size_t size_bytes) noexcept {
    // madvise wants a page-aligned start; the mapping is page-aligned, so this stays inside it.
    const auto first = reinterpret_cast<uintptr_t>(memory) / page_bytes * page_bytes;
    const uintptr_t end = reinterpret_cast<uintptr_t>(memory) + size_bytes;
    madvise(reinterpret_cast<void*>(first), mapped_bytes(end - first), MADV_POPULATE_WRITE);
}

void clear_zeroed(void* memory, size_t size_bytes) noexcept {
    if (memory == nullptr) {
        return;
    }
    // On a private anonymous mapping, dropped pages read as zeros at the next touch.
    if (madvise(memory, mapped_bytes(size_bytes), MADV_DONTNEED) != 0) {
        std::memset(memory, 0, size_bytes);
    }
}

void unmap_zeroed(void* memory, size_t size_bytes) noexcept {
    if (memory != nullptr) {
        munmap(memory, mapped_bytes(size_bytes));
    }
}

namespace {

// The free mask of a huge page of `bytes` blocks, all free.
uint32_t all_blocks(size_t bytes) noexcept {
    return static_cast<uint32_t>((uint64_t{1} << (huge_page_bytes / bytes)) - 1);
}

}  // namespace

HugePageBlocks::~HugePageBlocks() {
    for (const HugePage& page : huge_pages_) {
        unmap_huge_zeroed(page.base, huge_page_bytes);
    }
}

void* HugePageBlocks::allocate(size_t bytes) noexcept {
    size_t at = 0;
    while (at < huge_pages_.size() &&
           (huge_pages_[at].block_bytes != bytes || huge_pages_[at].free_mask == 0)) {
        ++at;
    }
    if (at == huge_pages_.size()) {
        if (huge_pages_.size() == huge_pages_.capacity()) {
            void* block = map_zeroed(bytes);
            if (block != nullptr && !prefault_zeroed(block, bytes)) {
                unmap_zeroed(block, bytes);
                return nullptr;
            }
            return block;
        }
        auto* base = static_cast<std::byte*>(map_huge_zeroed(huge_page_bytes));
        if (base == nullptr) {
            return nullptr;
        }
        huge_pages_.push_back({base, static_cast<uint32_t>(bytes), all_blocks(bytes), 0});
    }
    HugePage& page = huge_pages_[at];
    const int index = std::countr_zero(page.free_mask);
    const uint32_t bit = uint32_t{1} << index;
    std::byte* block = page.base + size_t(index) * bytes;
    if ((page.used_mask & bit) != 0) {
        std::memset(block, 0, bytes);
    } else if (!prefault_zeroed(block, bytes)) {
        if (page.free_mask == all_blocks(bytes)) {
            release_page(at);
        }
        return nullptr;
    }
    page.free_mask &= ~bit;
    page.used_mask |= bit;
    return block;
}

void HugePageBlocks::release(void* block, size_t bytes) noexcept {
    const auto address = reinterpret_cast<uintptr_t>(block);
    const uintptr_t base = address / huge_page_bytes * huge_page_bytes;
    for (size_t at = 0; at < huge_pages_.size(); ++at) {
        HugePage& page = huge_pages_[at];
        if (reinterpret_cast<uintptr_t>(page.base) == base) {
            page.free_mask |= uint32_t{1} << ((address - base) / bytes);
            if (page.free_mask == all_blocks(bytes)) {
                release_page(at);
            }
            return;
        }
    }
    unmap_zeroed(block, bytes);  // A plain mapping: no huge page was free for it.
}

void HugePageBlocks::release_page(size_t at) noexcept {
    unmap_huge_zeroed(huge_pages_[at].base, huge_page_bytes);
    huge_pages_[at] = huge_pages_.back();
    huge_pages_.pop_back();
}

}  // namespace jifen::engine::detail
