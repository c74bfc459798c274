// The memory budget's decision: refuse at the budget, accept again 5% below it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "server/memory_guard.hpp"

namespace jifen::server {
namespace {

TEST(MemoryGuard, RefusesAtTheBudgetAndAcceptsAgainFivePercentBelowIt) {
    MemoryGuard guard(1'000);
    EXPECT_FALSE(guard.update(999, 0, 0));
    EXPECT_FALSE(guard.full());
    EXPECT_TRUE(guard.update(1'000, 0, 0));  // Changed: full.
    EXPECT_TRUE(guard.full());
    EXPECT_FALSE(guard.update(951, 0, 0));  // Still within 5% of the budget: stays full.
    EXPECT_TRUE(guard.full());
    EXPECT_TRUE(guard.update(949, 0, 0));  // Changed: below 95%.
    EXPECT_FALSE(guard.full());
    EXPECT_FALSE(guard.update(999, 0, 0));  // Below the budget again: accepting.
    EXPECT_FALSE(guard.full());
    EXPECT_EQ(guard.last_bytes(), 999u);
}

// What counts is the memory without checkpoints being made plus room for them: a checkpoint's
// peak switches nothing, and the room is kept before any checkpoint starts.
TEST(MemoryGuard, CountsRoomForCheckpointsInsteadOfTheirPeak) {
    MemoryGuard guard(1'000);
    EXPECT_FALSE(guard.update(600, 0, 300));
    EXPECT_EQ(guard.counted_bytes(), 900u);
    EXPECT_FALSE(guard.update(880, 280, 300));  // A checkpoint of 280 bytes in the making.
    EXPECT_EQ(guard.counted_bytes(), 900u);
    EXPECT_FALSE(guard.update(600, 0, 300));
    EXPECT_TRUE(guard.update(700, 0, 300));     // 1000 counted, though no sample reached it.
    EXPECT_FALSE(guard.update(990, 290, 300));  // Its checkpoint's peak: still full, no flap.
    EXPECT_TRUE(guard.full());
    EXPECT_EQ(guard.counted_bytes(), 1'000u);
    EXPECT_FALSE(guard.update(1'100, 0, 300));  // Still full, the room on top.
    EXPECT_EQ(guard.counted_bytes(), 1'400u);
    EXPECT_TRUE(guard.update(600, 0, 300));
    EXPECT_FALSE(guard.full());
}

TEST(MemoryGuard, CheckpointBytesCountWhatEveryCheckpointHoldsUntilDestroyed) {
    const size_t before = engine::CheckpointBytes::bytes_held_in_process();
    {
        engine::CheckpointBytes bytes;
        bytes.write(0, "x", 1);
        EXPECT_EQ(engine::CheckpointBytes::bytes_held_in_process(),
                  before + engine::CheckpointBytes::piece_bytes_default);
        engine::CheckpointBytes moved = std::move(bytes);
        engine::CheckpointBytes whole(std::vector<std::byte>(100));
        EXPECT_EQ(engine::CheckpointBytes::bytes_held_in_process(),
                  before + engine::CheckpointBytes::piece_bytes_default + 100);
        whole = std::move(moved);  // Its own 100 bytes are gone.
        EXPECT_EQ(engine::CheckpointBytes::bytes_held_in_process(),
                  before + engine::CheckpointBytes::piece_bytes_default);
    }
    EXPECT_EQ(engine::CheckpointBytes::bytes_held_in_process(), before);
}

// The sample is RssAnon plus VmSwap of /proc/self/status, as a reader of that file sees them.
TEST(MemoryGuard, TheSampleIsTheAnonymousMemoryResidentOrSwappedOut) {
    MemoryGuard guard(1);
    const uint64_t sampled = guard.sample_process();
    std::ifstream status("/proc/self/status");
    uint64_t kib = 0;
    int lines_found = 0;
    for (std::string line; std::getline(status, line);) {
        if (line.starts_with("RssAnon:") || line.starts_with("VmSwap:")) {
            kib += std::stoull(line.substr(line.find(':') + 1));
            ++lines_found;
        }
    }
    ASSERT_EQ(lines_found, 2);
    const uint64_t read_bytes = kib * 1024;
    const uint64_t apart = sampled > read_bytes ? sampled - read_bytes : read_bytes - sampled;
    EXPECT_LE(apart, uint64_t{4} << 20) << sampled << " against " << read_bytes;  // Allocations.
}

TEST(MemoryGuard, SamplesThisProcessAndDefaultsBelowTheMachinesMemory) {
    MemoryGuard guard(1);
    const uint64_t sampled = guard.sample_process();
    EXPECT_GT(sampled, 0u);
    EXPECT_TRUE(guard.update(0));
    EXPECT_TRUE(guard.full());
    EXPECT_GE(guard.last_bytes(), sampled / 2);  // Anonymous memory of a running test binary.
    const uint64_t budget = MemoryGuard::default_budget_bytes();
    EXPECT_GT(budget, sampled);
    const uint64_t machine_bytes =
        static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGESIZE);
    EXPECT_LE(budget, machine_bytes / 10 * 9 + 4096);  // At most nine tenths of the machine.
}

// The cgroup limit is found where the process's cgroup is, not only at the mount's root: a
// systemd unit's MemoryMax= (cgroup v2 without a namespace) is in the unit's own directory,
// and a cgroup v1 limit is memory.limit_in_bytes under the memory controller.
TEST(MemoryGuard, FindsTheCgroupLimitOfTheProcesssOwnCgroupAndItsAncestors) {
    const std::filesystem::path root =
        std::filesystem::temp_directory_path() / ("jifen-cgroup-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root);
    const auto write = [&root](const std::string& path, const std::string& text) {
        std::filesystem::create_directories((root / path).parent_path());
        std::ofstream(root / path) << text << "\n";
    };
    // cgroup v2, no namespace: the root has no memory.max, the unit's directory has one.
    write("system.slice/memory.max", "max");
    write("system.slice/jifend.service/memory.max", "1073741824");
    EXPECT_EQ(MemoryGuard::cgroup_limit_bytes("0::/system.slice/jifend.service\n", root.string()),
              1073741824u);
    write("system.slice/memory.max", "536870912");  // A lower limit above it binds.
    EXPECT_EQ(MemoryGuard::cgroup_limit_bytes("0::/system.slice/jifend.service\n", root.string()),
              536870912u);
    // cgroup v2 in a namespace: the process's cgroup is the root.
    EXPECT_EQ(MemoryGuard::cgroup_limit_bytes("0::/\n", root.string()), 0u);
    write("memory.max", "max");
    EXPECT_EQ(MemoryGuard::cgroup_limit_bytes("0::/\n", root.string()), 0u);
    write("memory.max", "2147483648");
    EXPECT_EQ(MemoryGuard::cgroup_limit_bytes("0::/\n", root.string()), 2147483648u);
    // cgroup v1: the memory controller's hierarchy, alone or with others.
    write("memory/memory.limit_in_bytes", "9223372036854771712");
    write("memory/docker/abc/memory.limit_in_bytes", "268435456");
    EXPECT_EQ(MemoryGuard::cgroup_limit_bytes("5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n"
                                              "0::/\n",
                                              root.string()),
              268435456u);
    EXPECT_EQ(MemoryGuard::cgroup_limit_bytes("4:blkio,memory:/docker/abc\n", root.string()),
              268435456u);
    // cgroup v1 in a container without a namespace: its own group is mounted at the root.
    write("memory/memory.limit_in_bytes", "134217728");
    EXPECT_EQ(MemoryGuard::cgroup_limit_bytes("4:memory:/docker/other\n", root.string()),
              134217728u);
    std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace jifen::server
