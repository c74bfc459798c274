// Refuses new transactions before memory runs out, rather than after.
//
// Every transaction id stays in memory for ever, so a busy ledger's memory only grows. Left to
// the kernel, the end is the OOM killer, and a restart needs the same memory to load the same
// ids: the ledger would not come back. So jifend keeps its anonymous memory (the tables, resident
// or swapped out; not the log's file pages, which the kernel can drop) under a budget: at the
// budget, writes are refused with txn_limit while reads keep working, and taken again once the
// memory is 5% below it (a restart with more memory, or a larger budget). One shard samples the
// process once a tick.
//
// A checkpoint needs memory for a while: a copy of its shard's state until the log has written
// it. Measured as it happens, that peak would switch writes off and on at every checkpoint, and
// go past the budget by its size. So what is compared with the budget is the memory without the
// checkpoints being made (engine::CheckpointBytes counts them) plus a reserve for checkpoints of
// every shard at once.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "engine/checkpoint_bytes.hpp"

namespace jifen::server {

class MemoryGuard {
public:
    // budget_bytes: anonymous memory at which writes are refused.
    explicit MemoryGuard(uint64_t budget_bytes) : budget_bytes_(budget_bytes) {}
    ~MemoryGuard() {
        if (status_fd_ >= 0) {
            ::close(status_fd_);
        }
    }
    MemoryGuard(const MemoryGuard&) = delete;
    MemoryGuard& operator=(const MemoryGuard&) = delete;

    // Takes a sample: anonymous_bytes of memory, of which checkpoint_bytes held by checkpoints
    // being made, and reserve_bytes to keep for checkpoints; true when that changed whether
    // writes are refused. One thread at a time.
    bool update(uint64_t anonymous_bytes, uint64_t checkpoint_bytes,
                uint64_t reserve_bytes) noexcept {
        const uint64_t counted =
            std::max(anonymous_bytes,
                     anonymous_bytes - std::min(checkpoint_bytes, anonymous_bytes) + reserve_bytes);
        last_bytes_.store(anonymous_bytes, std::memory_order_relaxed);
        counted_bytes_.store(counted, std::memory_order_relaxed);
        const bool was_full = full();
        const bool now_full =
            was_full ? counted >= budget_bytes_ - budget_bytes_ / 20 : counted >= budget_bytes_;
        full_.store(now_full, std::memory_order_relaxed);
        return now_full != was_full;
    }
    // Samples this process (sample_process() and the checkpoints it holds); as update(). A
    // failed sample changes nothing.
    bool update(uint64_t reserve_bytes) noexcept {
        const uint64_t sampled = sample_process();
        return sampled != 0 &&
               update(sampled, engine::CheckpointBytes::bytes_held_in_process(), reserve_bytes);
    }

    // Any thread.
    bool full() const noexcept { return full_.load(std::memory_order_relaxed); }
    uint64_t budget_bytes() const noexcept { return budget_bytes_; }
    uint64_t last_bytes() const noexcept { return last_bytes_.load(std::memory_order_relaxed); }
    // What the last sample compared with the budget (see the top of this file).
    uint64_t counted_bytes() const noexcept {
        return counted_bytes_.load(std::memory_order_relaxed);
    }

    // This process's anonymous memory, resident (RssAnon) or swapped out (VmSwap): what it
    // keeps of its own, whether or not the machine has swap (/proc/self/status, read through a
    // descriptor kept open, so a sample is one pread). 0 when it cannot be read.
    uint64_t sample_process() noexcept {
        if (status_fd_ < 0) {
            status_fd_ = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        }
        char text[4096];
        const ssize_t length = status_fd_ < 0 ? -1 : ::pread(status_fd_, text, sizeof(text) - 1, 0);
        if (length <= 0) {
            return 0;
        }
        text[length] = '\0';
        const uint64_t resident_kib = status_kib(text, "\nRssAnon:");
        return resident_kib == 0 ? 0 : (resident_kib + status_kib(text, "\nVmSwap:")) * 1024;
    }

    // The budget when none is configured: 90% of the memory this process may have, the
    // machine's (MemTotal) or its cgroup's limit (cgroup_limit_bytes) when lower. 0 when neither
    // can be read.
    static uint64_t default_budget_bytes() noexcept {
        uint64_t limit = machine_bytes();
        const uint64_t cgroup = cgroup_limit_bytes();
        if (cgroup != 0) {
            limit = limit == 0 ? cgroup : std::min(limit, cgroup);
        }
        return limit / 10 * 9;
    }

    // Public for tests. The lowest memory limit of this process's cgroup and its ancestors, 0
    // when none: proc_self_cgroup is /proc/self/cgroup's text, root where cgroupfs is mounted.
    // cgroup v2 ("0::/path"): memory.max of root/path and of each directory above it up to root
    // ("max": none). A systemd unit's MemoryMax= is in its own directory, not at the root, which
    // only a cgroup namespace (a container) makes the process's own. cgroup v1 ("N:memory:/path"):
    // memory.limit_in_bytes under root/memory the same way (without a namespace, a container
    // sees its own group at root/memory, which the walk reads last).
    static uint64_t cgroup_limit_bytes(std::string_view proc_self_cgroup, const std::string& root) {
        uint64_t lowest = 0;
        const auto take = [&lowest](const std::string& path) {
            std::FILE* file = std::fopen(path.c_str(), "r");
            if (file == nullptr) {
                return;
            }
            unsigned long long bytes = 0;
            if (std::fscanf(file, "%llu", &bytes) == 1 && bytes > 0) {
                lowest = lowest == 0 ? bytes : std::min<uint64_t>(lowest, bytes);
            }
            std::fclose(file);
        };
        const auto walk = [&take](std::string base, std::string_view path, const char* name) {
            if (path.find("..") != std::string_view::npos) {
                path = "/";  // Outside this namespace's view: only its root can be read.
            }
            std::string directory = base;
            take(directory + "/" + name);
            size_t at = 0;
            while (at < path.size()) {
                const size_t next = path.find('/', at + 1);
                const std::string_view part =
                    path.substr(at, next == std::string_view::npos ? path.size() - at : next - at);
                if (part.size() > 1) {
                    directory += part;
                    take(directory + "/" + name);
                }
                at = next == std::string_view::npos ? path.size() : next;
            }
        };
        std::string_view rest = proc_self_cgroup;
        while (!rest.empty()) {
            const size_t end = rest.find('\n');
            const std::string_view line = rest.substr(0, end);
            rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
            const size_t first = line.find(':');
            const size_t second =
                first == std::string_view::npos ? first : line.find(':', first + 1);
            if (second == std::string_view::npos) {
                continue;
            }
            const std::string_view controllers = line.substr(first + 1, second - first - 1);
            const std::string_view path = line.substr(second + 1);
            if (line.substr(0, first) == "0" && controllers.empty()) {
                walk(root, path, "memory.max");
                continue;
            }
            for (size_t at = 0; at <= controllers.size();) {
                const size_t comma = std::min(controllers.find(',', at), controllers.size());
                if (controllers.substr(at, comma - at) == "memory") {
                    walk(root + "/memory", path, "memory.limit_in_bytes");
                }
                at = comma + 1;
            }
        }
        return lowest;
    }

private:
    // The kB figure of a /proc/self/status line ("\nName:   123 kB"), 0 when absent.
    static uint64_t status_kib(const char* text, const char* name) noexcept {
        const char* line = std::strstr(text, name);
        return line == nullptr ? 0 : std::strtoull(line + std::strlen(name), nullptr, 10);
    }

    static uint64_t machine_bytes() noexcept {
        std::FILE* meminfo = std::fopen("/proc/meminfo", "r");
        if (meminfo == nullptr) {
            return 0;
        }
        unsigned long long kib = 0;
        const bool read = std::fscanf(meminfo, "MemTotal: %llu kB", &kib) == 1;
        std::fclose(meminfo);
        return read ? kib * 1024 : 0;
    }
    static uint64_t cgroup_limit_bytes() noexcept {
        std::FILE* file = std::fopen("/proc/self/cgroup", "r");
        if (file == nullptr) {
            return 0;
        }
        char text[4096];
        const size_t length = std::fread(text, 1, sizeof(text) - 1, file);
        std::fclose(file);
        text[length] = '\0';
        try {
            return cgroup_limit_bytes(text, "/sys/fs/cgroup");
        } catch (...) {
            return 0;
        }
    }

    const uint64_t budget_bytes_;
    std::atomic<bool> full_{false};
    std::atomic<uint64_t> last_bytes_{0};
    std::atomic<uint64_t> counted_bytes_{0};
    int status_fd_ = -1;
};

}  // namespace jifen::server
