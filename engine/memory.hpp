// Memory for the engine's big tables (members, transactions, indexes, the TxnIndex): zero-filled
// mappings straight from the kernel, so a table costs nothing until its pages are touched, and a
// growing table moves its pages instead of copying its bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace jifen::engine::detail {

// Zero-filled memory of at least size_bytes, aligned to a page, or nullptr when the kernel
// refuses. Release it with unmap_zeroed(memory, size_bytes).
void* map_zeroed(size_t size_bytes) noexcept;

// Makes memory from map_zeroed(old_size_bytes) hold new_size_bytes, keeping its contents; the
// bytes past old_size_bytes read as zero. The pages move rather than being copied (mremap), so
// growing a table costs time for its page tables, not its data. Returns the (possibly moved)
// memory, or nullptr with the old mapping untouched when memory cannot be had.
void* remap_zeroed(void* memory, size_t old_size_bytes, size_t new_size_bytes) noexcept;

void unmap_zeroed(void* memory, size_t size_bytes) noexcept;

// The size of a transparent huge page on x86-64.
inline constexpr size_t huge_page_bytes = size_t{2} << 20;

// Zero-filled memory of at least size_bytes on transparent huge pages where the kernel has them
// (2 MiB aligned, MADV_HUGEPAGE), or nullptr. For a fixed table probed at random that is all
// touched anyway: one TLB entry covers 2 MiB of it instead of 4 KiB. Release it with
// unmap_huge_zeroed(memory, size_bytes).
void* map_huge_zeroed(size_t size_bytes) noexcept;
void unmap_huge_zeroed(void* memory, size_t size_bytes) noexcept;

// Asks for transparent huge pages on memory from map_zeroed(size_bytes) (the kernel uses them
// for its 2 MiB-aligned stretches). For a fixed table probed at random, before it is touched.
void advise_huge_pages(void* memory, size_t size_bytes) noexcept;

// Makes memory from map_zeroed(size_bytes) read as zeros again and gives its pages back, so a
// cleared table costs nothing until used again (a memset would make every page resident).
void clear_zeroed(void* memory, size_t size_bytes) noexcept;

// Makes every page of zeroed memory resident now (writing zeros it already holds), so later
// accesses take no page faults. False when the kernel has no memory for them. Only while nobody
// else uses the memory.
bool prefault_zeroed(void* memory, size_t size_bytes) noexcept;

// Asks the kernel to make the pages under [memory, memory + size_bytes) resident now, in one
// call, never writing to them: safe on memory in use. memory lies in a mapping from map_zeroed.
// Advice only: where the kernel cannot (older kernels, no memory), pages fault in when touched.
void populate(void* memory, size_t size_bytes) noexcept;

// Power-of-two blocks of block_bytes_min up to half a huge page, carved out of 2 MiB transparent
// huge pages, one block size per huge page. For a table probed at random that comes in pieces
// smaller than a huge page (the TxnIndex's grown segments): on 4 KiB pages of their own, every
// probe missed the TLB as well as the cache. A huge page goes back to the kernel once all its
// blocks are released, so a block size the table has grown past costs nothing for long. One
// thread at a time.
class HugePageBlocks {
public:
    static constexpr size_t block_bytes_min = size_t{64} << 10;

    // huge_pages_max: how many it holds at once; past that, blocks are plain mappings. Throws
    // std::bad_alloc only here.
    explicit HugePageBlocks(size_t huge_pages_max) { huge_pages_.reserve(huge_pages_max); }
    ~HugePageBlocks();
    HugePageBlocks(const HugePageBlocks&) = delete;
    HugePageBlocks& operator=(const HugePageBlocks&) = delete;

    static constexpr bool fits(size_t bytes) noexcept {
        return bytes >= block_bytes_min && bytes < huge_page_bytes && (bytes & (bytes - 1)) == 0;
    }
    // A zeroed, resident block of `bytes` (fits(bytes)), or nullptr when the kernel refuses.
    void* allocate(size_t bytes) noexcept;
    // Gives back a block allocate(bytes) returned.
    void release(void* block, size_t bytes) noexcept;
    size_t huge_pages() const noexcept { return huge_pages_.size(); }

private:
    struct HugePage {
        std::byte* base;
        uint32_t block_bytes;
        uint32_t free_mask;  // Bit i: block i is free.
        uint32_t used_mask;  // Bit i: block i was handed out before, so it is no longer zero.
    };
    void release_page(size_t at) noexcept;

    std::vector<HugePage> huge_pages_;
};

}  // namespace jifen::engine::detail
