// Power-loss test of MetaSync::deferred: the test binary wraps fdatasync(), copies the LMDB file
// after every sync of it (what power loss would at least leave on the disk), and checks that
// every durable sequence the log reports is in the copy taken before the report. A kill -9 cannot
// show this (the page cache survives a process), so the crash test cannot either.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "engine/shard.hpp"
#include "tests/wal/wal_test_support.hpp"
#include "wal/format.hpp"
#include "wal/log.hpp"

namespace jifen::wal {
namespace {

// Told after each successful fdatasync(), on the thread that called it, before it returns.
class SyncObserver {
public:
    virtual void synced(int fd) = 0;

protected:
    ~SyncObserver() = default;
};

std::atomic<SyncObserver*> sync_observer{nullptr};

}  // namespace
}  // namespace jifen::wal

// Replaces libc's fdatasync for this test binary, liblmdb's calls included (a symbol the
// executable defines comes first in the dynamic lookup). Without an observer it only forwards.
extern "C" int fdatasync(int fd) {
    using Fdatasync = int (*)(int);
    static const auto real = reinterpret_cast<Fdatasync>(::dlsym(RTLD_NEXT, "fdatasync"));
    const int rc = real(fd);
    if (auto* observer = jifen::wal::sync_observer.load(std::memory_order_acquire);
        observer != nullptr && rc == 0) {
        observer->synced(fd);
    }
    return rc;
}

namespace jifen::wal {
namespace {

using testing::TempDir;

constexpr uint32_t shard_count = 2;

Options deferred_options(const std::filesystem::path& dir) {
    Options options = testing::options_for(dir, shard_count);
    options.meta_sync = MetaSync::deferred;
    return options;
}

engine::Record earn_record(engine::MemberId member_id, uint64_t txn_lo) {
    engine::Record record;
    record.command.op = engine::Op::earn;
    record.command.txn_id = engine::TxnId{txn_lo, 11};
    record.command.member_id = member_id;
    record.command.points = 1;
    record.applied_points = 1;
    record.shard_index = engine::Shard::shard_of(member_id, shard_count);
    return record;
}

bool same_file(int fd, const std::filesystem::path& path) {
    struct stat by_fd {};
    struct stat by_path {};
    return ::fstat(fd, &by_fd) == 0 && ::stat(path.c_str(), &by_path) == 0 &&
           by_fd.st_dev == by_path.st_dev && by_fd.st_ino == by_path.st_ino;
}

// Keeps a copy of the log file as it was at its last fdatasync, and checks reported durable
// sequences against that copy. Runs on the writer thread only (syncs and on_durable both).
class DiskImage final : public SyncObserver {
public:
    explicit DiskImage(const std::filesystem::path& data_dir)
        : env_path_(data_dir / format::env_file_name) {}

    void synced(int fd) override {
        if (!same_file(fd, env_path_)) {
            return;
        }
        ++syncs_;
        // The writer is inside this sync: everything written so far is what it made durable.
        std::ifstream in(env_path_, std::ios::binary);
        image_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }

    // on_durable: the last synced image must already hold shard_seq.
    void reported(uint32_t shard, uint64_t shard_seq) {
        ++reports_;
        const uint64_t on_disk = image_position(shard);
        if (on_disk < shard_seq) {
            failures_.push_back("shard " + std::to_string(shard) + " reported durable up to " +
                                std::to_string(shard_seq) + ", the synced file holds " +
                                std::to_string(on_disk));
        }
    }

    uint64_t syncs() const { return syncs_; }
    uint64_t reports() const { return reports_; }
    const std::vector<std::string>& failures() const { return failures_; }

private:
    // Opens the image as LMDB (read-only) and reads the position record's shard sequence.
    uint64_t image_position(uint32_t shard) {
        const std::filesystem::path path = images_.path() / "image.lmdb";
        {
            std::ofstream out(path, std::ios::binary | std::ios::trunc);
            out.write(image_.data(), static_cast<std::streamsize>(image_.size()));
        }
        uint64_t position = 0;
        MDB_env* env = nullptr;
        MDB_txn* txn = nullptr;
        MDB_dbi dbi = 0;
        MDB_val key{sizeof(format::meta_position_key) - 1,
                    const_cast<char*>(format::meta_position_key)};
        MDB_val value{};
        if (mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 4) == 0 &&
            mdb_env_open(env, path.c_str(), MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0644) == 0 &&
            mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0 &&
            mdb_dbi_open(txn, format::meta_table, 0, &dbi) == 0 &&
            mdb_get(txn, dbi, &key, &value) == 0 &&
            value.mv_size == sizeof(format::MetaPosition) + shard_count * sizeof(uint64_t)) {
            std::memcpy(&position,
                        static_cast<const char*>(value.mv_data) + sizeof(format::MetaPosition) +
                            shard * sizeof(uint64_t),
                        sizeof(position));
        }
        if (txn != nullptr) {
            mdb_txn_abort(txn);
        }
        if (env != nullptr) {
            mdb_env_close(env);
        }
        return position;
    }

    std::filesystem::path env_path_;
    TempDir images_;
    std::vector<char> image_;
    uint64_t syncs_ = 0;
    uint64_t reports_ = 0;
    std::vector<std::string> failures_;
};

// Installs an observer for one scope.
class ObserveSyncs {
public:
    explicit ObserveSyncs(SyncObserver* observer) {
        sync_observer.store(observer, std::memory_order_release);
    }
    ~ObserveSyncs() { sync_observer.store(nullptr, std::memory_order_release); }
    ObserveSyncs(const ObserveSyncs&) = delete;
    ObserveSyncs& operator=(const ObserveSyncs&) = delete;
};

TEST(PowerLoss, DeferredMetaSyncReportsOnlyWhatASyncAlreadyPutOnTheDisk) {
    const uint64_t seed = testing::test_seed();
    SCOPED_TRACE("JIFEN_SEED=" + std::to_string(seed));
    std::mt19937_64 random(seed);
    TempDir dir;
    auto log = Log::open(deferred_options(dir.path()));
    DiskImage image(dir.path());
    testing::DurableWaiter waiter;
    auto notify = waiter.callback();
    ObserveSyncs observing(&image);
    log->start([&](uint32_t shard, uint64_t shard_seq) {
        image.reported(shard, shard_seq);
        notify(shard, shard_seq);
    });
    uint64_t txn_lo = 0;
    // One batch at a time, each waited for: every commit is followed by the writer's idle sync.
    for (int batch = 0; batch < 20; ++batch) {
        const uint64_t count = 1 + random() % 50;
        engine::Record record;
        for (uint64_t i = 0; i < count; ++i) {
            record = earn_record(1 + random() % 100, ++txn_lo);
            testing::append_one(*log, record.shard_index, record);
        }
        waiter.wait_for(record.shard_index, log->appended_seq(record.shard_index));
    }
    // Pipelined: commits follow each other, each one's sync making the previous one durable.
    for (int i = 0; i < 5'000; ++i) {
        const engine::Record record = earn_record(1 + random() % 100, ++txn_lo);
        testing::append_one(*log, record.shard_index, record);
    }
    log->stop();
    for (uint32_t shard = 0; shard < shard_count; ++shard) {
        EXPECT_EQ(log->durable_seq(shard), log->appended_seq(shard));
    }
    EXPECT_GT(image.reports(), 20u);
    EXPECT_LE(image.syncs(), 2 * log->stats().commits);  // One per commit, plus idle syncs.
    for (const std::string& failure : image.failures()) {
        ADD_FAILURE() << failure;
    }
}

// Blocks the writer inside the n-th sync (after it completed) until released.
class SyncGate final : public SyncObserver {
public:
    SyncGate(const std::filesystem::path& data_dir, uint64_t block_at)
        : env_path_(data_dir / format::env_file_name), block_at_(block_at) {}

    void synced(int fd) override {
        if (!same_file(fd, env_path_)) {
            return;
        }
        std::unique_lock lock(mutex_);
        if (++syncs_ == block_at_) {
            changed_.notify_all();
            changed_.wait(lock, [&] { return released_; });
        }
    }
    void wait_until_blocked() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return syncs_ >= block_at_; });
    }
    void release() {
        {
            std::lock_guard lock(mutex_);
            released_ = true;
        }
        changed_.notify_all();
    }

private:
    std::filesystem::path env_path_;
    uint64_t block_at_;
    std::mutex mutex_;
    std::condition_variable changed_;
    uint64_t syncs_ = 0;
    bool released_ = false;
};

TEST(PowerLoss, HistoryHidesACommitUntilItIsDurable) {
    TempDir dir;
    auto log = Log::open(deferred_options(dir.path()));
    // Sync 1 is the commit's own (data pages), sync 2 the idle sync that makes its meta page
    // durable. The writer waits inside sync 2: committed, visible to LMDB readers, not durable.
    SyncGate gate(dir.path(), 2);
    ObserveSyncs observing(&gate);
    testing::DurableWaiter waiter;
    log->start(waiter.callback());
    const engine::Record record = earn_record(7, 1);
    testing::append_one(*log, record.shard_index, record);
    gate.wait_until_blocked();
    EXPECT_EQ(log->durable_seq(record.shard_index), 0u);
    EXPECT_EQ(log->stats().last_seq, 0u);
    EXPECT_TRUE(log->history(7, 0, 10).entries.empty());
    gate.release();
    waiter.wait_for(record.shard_index, 1);
    EXPECT_EQ(log->stats().last_seq, 1u);
    EXPECT_EQ(log->history(7, 0, 10).entries.size(), 1u);
    log->stop();
}

}  // namespace
}  // namespace jifen::wal
