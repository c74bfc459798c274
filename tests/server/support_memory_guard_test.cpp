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
    EXPECT_FALSE(guard.update(999));
    EXPECT_FALSE(guard.full());
    EXPECT_TRUE(guard.update(1'000));  // Changed: full.
    EXPECT_TRUE(guard.full());
    EXPECT_FALSE(guard.update(951));  // Still within 5% of the budget: stays full.
    EXPECT_TRUE(guard.full());
    EXPECT_TRUE(guard.update(949));  // Changed: below 95%.
    EXPECT_FALSE(guard.full());
    EXPECT_FALSE(guard.update(999));  // Below the budget again: accepting.
    EXPECT_FALSE(guard.full());
    EXPECT_EQ(guard.last_bytes(), 999u);
}

TEST(MemoryGuard, SamplesThisProcessAndDefaultsBelowTheMachinesMemory) {
    MemoryGuard guard(1);
    const uint64_t sampled = guard.sample_process();
    EXPECT_GT(sampled, 0u);
    EXPECT_TRUE(guard.update());
    EXPECT_TRUE(guard.full());
    EXPECT_GE(guard.last_bytes(), sampled / 2);  // Anonymous memory of a running test binary.
    const uint64_t budget = MemoryGuard::default_budget_bytes();
    EXPECT_GT(budget, sampled);
    const uint64_t machine_bytes =
        static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGESIZE);
    EXPECT_LE(budget, machine_bytes / 5 * 4 + 4096);  // At most four fifths of the machine.
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
    EXPECT_EQ(MemoryGuard::cgroup_limit_bytes("4:blkio,memory:/docker/abc\n",
                                              root.string()),
              268435456u);
    // cgroup v1 in a container without a namespace: its own group is mounted at the root.
    write("memory/memory.limit_in_bytes", "134217728");
    EXPECT_EQ(MemoryGuard::cgroup_limit_bytes("4:memory:/docker/other\n", root.string()),
              134217728u);
    std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace jifen::server
