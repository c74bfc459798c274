// wal::Log on LMDB: opening and checking the data directory, the writer thread with group
// commit, history links and heads flushes, map growth, checkpoints, and history reads. Recovery
// is in recover.cpp.
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "engine/assert.hpp"
#include "engine/shard.hpp"
#include "protocol/crc32c.hpp"
#include "wal/limits.hpp"
#include "wal/lmdb_log.hpp"
#include "wal/log_value.hpp"
#include "wal/record_codec.hpp"

namespace jifen::wal {

namespace {

uint64_t now_us() noexcept {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

[[noreturn]] void throw_startup(const std::string& what, int rc) {
    throw StartupError("jifen log: " + what + ": " + mdb_strerror(rc));
}

void check_startup(int rc, const std::string& what) {
    if (rc != 0) {
        throw_startup(what, rc);
    }
}

[[noreturn]] void refuse_truncated(const std::string& env_path, uint64_t size_bytes,
                                   uint64_t needed_bytes) {
    throw StartupError("jifen log: " + env_path + " is truncated or damaged: it has " +
                       std::to_string(size_bytes) + " bytes, its pages need " +
                       std::to_string(needed_bytes) + "; restore from a backup");
}

uint64_t file_size_bytes(const std::string& path) {
    struct stat status;
    if (::stat(path.c_str(), &status) != 0) {
        throw StartupError("jifen log: cannot stat " + path + ": " + std::strerror(errno));
    }
    return static_cast<uint64_t>(status.st_size);
}

uint64_t page_size_bytes() noexcept { return static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)); }

// LMDB takes an empty file for a new environment and writes a new, empty ledger over it. An
// empty log is what a copy or restore that failed (a full disk) leaves behind: refuse it.
void refuse_empty_file(const std::string& env_path) {
    struct stat status;
    if (::stat(env_path.c_str(), &status) == 0 && S_ISREG(status.st_mode) && status.st_size == 0) {
        throw StartupError("jifen log: " + env_path +
                           " is empty (0 bytes), as a copy or restore that did not finish leaves "
                           "it: restore it from a backup, or delete it to start an empty ledger");
    }
}

// Files jifend creates in the data directory: the ledger is its user's only.
constexpr mode_t file_mode = 0600;

// LMDB sizes its lock file with ftruncate and writes it through a shared mapping: with no disk
// space for its blocks, that write kills the process with SIGBUS. Giving the file its blocks
// first turns a full disk into a refusal that names the file. Allocating blocks a file already
// has changes nothing, also while another process has it open.
void reserve_lmdb_lock_file(const std::string& lock_path) {
    // LMDB's lock file: a header of two cache lines and one 64-byte slot per reader.
    const auto lock_bytes = static_cast<off_t>((uint64_t{readers_max} + 2) * 64);
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, file_mode);
    if (fd < 0) {
        throw StartupError("jifen log: cannot open LMDB's lock file " + lock_path + ": " +
                           std::strerror(errno));
    }
    const int rc = ::posix_fallocate(fd, 0, lock_bytes);
    ::close(fd);
    if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {  // Those two: the file system cannot.
        throw StartupError("jifen log: cannot give LMDB's lock file " + lock_path +
                           " its disk space: " + std::strerror(rc));
    }
}

// True when the file starts like an LMDB meta page: its magic follows the 16-byte page header
// (mdb.c: PAGEHDRSZ, MDB_MAGIC). LMDB answers MDB_INVALID both for a foreign file and for its
// own file cut inside the second meta page; this tells the two apart.
bool begins_with_lmdb_meta(const std::string& path) {
    constexpr size_t page_header_bytes = 16;
    constexpr uint32_t lmdb_magic = 0xBEEFC0DE;
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
        return false;
    }
    unsigned char head[page_header_bytes + sizeof(uint32_t)] = {};
    const bool read = std::fread(head, sizeof(head), 1, file) == 1;
    std::fclose(file);
    uint32_t magic = 0;
    std::memcpy(&magic, head + page_header_bytes, sizeof(magic));
    return read && magic == lmdb_magic;
}

MDB_val as_val(const void* data, size_t size) noexcept {
    return MDB_val{size, const_cast<void*>(data)};
}

// Slots of the heads map: the configured members plus what one commit can add (two members per
// record) before the flush that empties it.
uint32_t heads_map_capacity(const Options& options) {
    if (options.heads_map_members < heads_map_members_min ||
        options.heads_map_members > heads_map_members_max) {
        throw StartupError("jifen log: heads_map_members must be " +
                           std::to_string(heads_map_members_min) + ".." +
                           std::to_string(heads_map_members_max));
    }
    return options.heads_map_members + 2 * records_per_commit_max;
}

// The link a record carries for member_id, if it is filed under that member.
bool link_for(const format::LoggedRecord& logged, engine::MemberId member_id, uint32_t shard_count,
              uint64_t* previous) noexcept {
    const format::FiledUnder filed = format::filed_under(logged.record, shard_count);
    if (filed.member_id == member_id) {
        *previous = logged.member_previous_seq;
        return true;
    }
    if (filed.counterparty_id == member_id) {
        *previous = logged.counterparty_previous_seq;
        return true;
    }
    return false;
}

format::RulesEntry rules_entry_of(const engine::Config& config, uint64_t from_log_seq) {
    format::RulesEntry entry;
    entry.from_log_seq = from_log_seq;
    entry.hold_timeout_us_default = config.hold_timeout_us_default;
    entry.hold_timeout_us_max = config.hold_timeout_us_max;
    entry.expiry_months = config.expiry_months;
    entry.reverse_allows_negative = config.reverse_allows_negative ? 1 : 0;
    entry.members_per_shard_max = config.members_per_shard_max;
    entry.holds_per_shard_max = config.holds_per_shard_max;
    entry.lots_per_shard_max = config.lots_per_shard_max;
    entry.points_keep_months = config.points_keep_months ? 1 : 0;
    entry.holds_per_member_max = config.holds_per_member_max;
    entry.pending_lots_per_member_max = config.pending_lots_per_member_max;
    return entry;
}

}  // namespace

std::unique_ptr<Log> Log::open(const Options& options) {
    return std::make_unique<LmdbLog>(options);
}

LmdbLog::LmdbLog(const Options& options) : options_(options), heads_(heads_map_capacity(options)) {
    try {
        open_environment();
    } catch (...) {
        release_resources();
        throw;
    }
}

LmdbLog::~LmdbLog() {
    stop();
    release_resources();
}

void LmdbLog::release_resources() noexcept {
    if (env_ != nullptr) {
        mdb_env_close(env_);
        env_ = nullptr;
    }
    for (int* fd : {&env_file_lock_fd_, &lock_fd_}) {
        if (*fd >= 0) {
            ::close(*fd);
            *fd = -1;
        }
    }
}

void LmdbLog::open_environment() {
    const std::string dir = options_.data_dir.string();
    if (options_.shard_count == 0 || options_.shard_count > shard_count_max) {
        throw StartupError("jifen log: shard_count must be 1.." + std::to_string(shard_count_max));
    }
    if (options_.map_bytes_initial < map_bytes_min ||
        options_.map_bytes_max < options_.map_bytes_initial) {
        throw StartupError("jifen log: need " + std::to_string(map_bytes_min) +
                           " <= map_bytes_initial <= map_bytes_max");
    }
    if (options_.map_grow_percent == 0 || options_.map_grow_percent > 100) {
        throw StartupError("jifen log: map_grow_percent must be 1..100");
    }
    std::error_code error;
    if (std::filesystem::create_directories(options_.data_dir, error)) {
        // The ledger is nobody else's business: a directory jifend creates is its user's only
        // (where the file system has modes at all).
        std::error_code ignored;
        std::filesystem::permissions(options_.data_dir, std::filesystem::perms::owner_all, ignored);
    }
    if (error) {
        throw StartupError("jifen log: cannot create " + dir + ": " + error.message());
    }

    // LMDB lets several processes share a file; two servers writing one log would interleave
    // sequences. An exclusive flock() keeps one process per directory (released by the kernel
    // when the process dies, so a crash never leaves a stale lock).
    const std::string lock_path = (options_.data_dir / format::lock_file_name).string();
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, file_mode);
    if (lock_fd_ < 0) {
        throw StartupError("jifen log: cannot open " + lock_path + ": " + std::strerror(errno));
    }
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        throw StartupError("jifen log: " + dir + " is in use by another process");
    }

    const std::string env_path = (options_.data_dir / format::env_file_name).string();
    refuse_empty_file(env_path);
    reserve_lmdb_lock_file(env_path + "-lock");
    check_startup(mdb_env_create(&env_), "mdb_env_create");
    check_startup(mdb_env_set_maxdbs(env_, 4), "mdb_env_set_maxdbs");
    check_startup(mdb_env_set_maxreaders(env_, readers_max), "mdb_env_set_maxreaders");
    check_startup(mdb_env_set_mapsize(env_, options_.map_bytes_initial), "mdb_env_set_mapsize");
    // MDB_NOTLS: history readers run on any server thread; a read slot follows the transaction,
    // not the thread. Commits always fdatasync their data pages (both durability modes);
    // MDB_NOMETASYNC only leaves the meta page to the next sync, which keeps the file intact
    // (docs/wal.md, "Durability" has the reasoning from LMDB's source).
    const unsigned env_flags =
        MDB_NOSUBDIR | MDB_NOTLS | (options_.meta_sync == MetaSync::deferred ? MDB_NOMETASYNC : 0u);
    std::error_code ignored;
    const bool existed = std::filesystem::exists(env_path, ignored);
    const int rc = mdb_env_open(env_, env_path.c_str(), env_flags, file_mode);
    if (rc != 0 && !existed && std::filesystem::file_size(env_path, ignored) == 0) {
        // A new file LMDB could not write (a full disk): leave nothing that refuse_empty_file()
        // would take for a failed restore at the next start.
        std::filesystem::remove(env_path, ignored);
    }
    if (rc == MDB_INVALID && begins_with_lmdb_meta(env_path)) {
        // Its first meta page is LMDB's: cut inside the second one, or that page is damaged.
        const uint64_t size_bytes = file_size_bytes(env_path);
        if (size_bytes < 2 * page_size_bytes()) {
            refuse_truncated(env_path, size_bytes, 2 * page_size_bytes());
        }
        throw StartupError("jifen log: " + env_path +
                           " is damaged: LMDB rejects its meta pages (the first two pages of the "
                           "file); restore from a backup");
    }
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
        throw_startup(env_path + " is not a jifen log (not an LMDB file of this version)", rc);
    }
    check_startup(rc, "cannot open " + env_path);
    // The directory's lock keeps two servers out of one directory, but a symbolic or hard link
    // can put one file in two directories, each with LMDB lock tables of its own: the file is
    // locked too.
    env_file_lock_fd_ = ::open(env_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (env_file_lock_fd_ < 0) {
        throw StartupError("jifen log: cannot open " + env_path + ": " + std::strerror(errno));
    }
    if (::flock(env_file_lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        throw StartupError("jifen log: " + env_path +
                           " is in use by another process, through another path to the same "
                           "file (a link)");
    }
    check_file_covers_used_pages(env_path);

    MDB_stat env_stat;
    check_startup(mdb_env_stat(env_, &env_stat), "mdb_env_stat");
    page_bytes_ = env_stat.ms_psize;

    std::vector<uint64_t> last_shard_seqs(options_.shard_count, 0);
    std::vector<format::CheckpointHeader> checkpoints(options_.shard_count);
    std::vector<bool> checkpoint_found(options_.shard_count, false);
    std::vector<uint32_t> checkpoint_slots(options_.shard_count, 0);

    MDB_txn* txn = nullptr;
    check_startup(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
    try {
        MDB_dbi main_dbi;
        check_startup(mdb_dbi_open(txn, nullptr, 0, &main_dbi), "open main table");
        MDB_stat main_stat;
        check_startup(mdb_stat(txn, main_dbi, &main_stat), "mdb_stat");
        const bool fresh = main_stat.ms_entries == 0;
        const unsigned create = fresh ? MDB_CREATE : 0u;
        auto open_table = [&](const char* name, MDB_dbi* dbi, unsigned flags = 0) {
            const int open_rc = mdb_dbi_open(txn, name, create | flags, dbi);
            if (open_rc == MDB_NOTFOUND || open_rc == MDB_INCOMPATIBLE) {
                throw StartupError("jifen log: " + env_path + " is not a jifen log (table '" +
                                   name + "' missing)");
            }
            check_startup(open_rc, std::string("open table ") + name);
        };
        // The format record first: another version may have other tables.
        open_table(format::meta_table, &meta_dbi_);
        MDB_val format_key = as_val(format::meta_format_key, sizeof(format::meta_format_key) - 1);
        if (fresh) {
            format::MetaFormat meta;
            meta.magic = format::magic;
            meta.version = format::version;
            meta.shard_count = options_.shard_count;
            MDB_val value = as_val(&meta, sizeof(meta));
            check_startup(mdb_put(txn, meta_dbi_, &format_key, &value, 0), "write meta");
        } else {
            MDB_val value;
            const int get_rc = mdb_get(txn, meta_dbi_, &format_key, &value);
            format::MetaFormat meta;
            if (get_rc != 0 || value.mv_size != sizeof(meta)) {
                throw StartupError("jifen log: " + env_path + " is not a jifen log (no format)");
            }
            std::memcpy(&meta, value.mv_data, sizeof(meta));
            if (meta.magic != format::magic) {
                throw StartupError("jifen log: " + env_path + " is not a jifen log (bad magic)");
            }
            if (meta.version != format::version) {
                throw StartupError("jifen log: " + env_path + " has format version " +
                                   std::to_string(meta.version) +
                                   "; this build reads only version " +
                                   std::to_string(format::version) +
                                   " and converts nothing: start it on an empty data directory");
            }
            if (meta.shard_count != options_.shard_count) {
                throw StartupError("jifen log: " + env_path + " was written with " +
                                   std::to_string(meta.shard_count) +
                                   " shards; configured shard_count is " +
                                   std::to_string(options_.shard_count) +
                                   " (members are placed by shard count: it cannot change)");
            }
        }
        open_table(format::log_table, &log_dbi_);
        open_table(format::heads_table, &heads_dbi_, MDB_INTEGERKEY);
        open_table(format::checkpoint_table, &checkpoint_dbi_);

        MDB_val position_key =
            as_val(format::meta_position_key, sizeof(format::meta_position_key) - 1);
        MDB_val position;
        const int position_rc = mdb_get(txn, meta_dbi_, &position_key, &position);
        const size_t position_size_bytes =
            sizeof(format::MetaPosition) + options_.shard_count * sizeof(uint64_t);
        if (position_rc == 0) {
            format::MetaPosition header;
            if (position.mv_size != position_size_bytes) {
                throw StartupError("jifen log: " + env_path + ": position record is damaged");
            }
            std::memcpy(&header, position.mv_data, sizeof(header));
            if (header.next_log_seq == 0 || header.heads_next_log_seq == 0 ||
                header.heads_next_log_seq > header.next_log_seq) {
                throw StartupError("jifen log: " + env_path + ": position record is damaged");
            }
            next_log_seq_ = header.next_log_seq;
            heads_next_log_seq_ = header.heads_next_log_seq;
            std::memcpy(last_shard_seqs.data(),
                        static_cast<const unsigned char*>(position.mv_data) + sizeof(header),
                        options_.shard_count * sizeof(uint64_t));
        } else if (position_rc != MDB_NOTFOUND) {
            check_startup(position_rc, "read position");
        }
        MDB_val idless_key = as_val(format::meta_idless_key, sizeof(format::meta_idless_key) - 1);
        MDB_val idless;
        const int idless_rc = mdb_get(txn, meta_dbi_, &idless_key, &idless);
        if (idless_rc == 0) {
            uint64_t count = 0;
            if (idless.mv_size != sizeof(count)) {
                throw StartupError("jifen log: " + env_path + ": idless record is damaged");
            }
            std::memcpy(&count, idless.mv_data, sizeof(count));
            if (count >= next_log_seq_) {
                throw StartupError("jifen log: " + env_path + ": idless record is damaged");
            }
            idless_records_.store(count, std::memory_order_relaxed);
        } else if (idless_rc != MDB_NOTFOUND) {
            check_startup(idless_rc, "read idless");
        }
        if (options_.engine) {
            plan_rules(txn, env_path);
        }

        for (uint32_t shard = 0; shard < options_.shard_count; ++shard) {
            MDB_val value;
            const int get_rc =
                find_checkpoint(txn, checkpoint_dbi_, shard, &checkpoint_slots[shard], &value);
            if (get_rc == MDB_NOTFOUND) {
                continue;
            }
            check_startup(get_rc, "read checkpoint header");
            if (value.mv_size != sizeof(format::CheckpointHeader)) {
                throw StartupError("jifen log: checkpoint header of shard " +
                                   std::to_string(shard) + " is damaged");
            }
            std::memcpy(&checkpoints[shard], value.mv_data, sizeof(format::CheckpointHeader));
            checkpoint_found[shard] = true;
        }
        // mdb_txn_commit frees the transaction, also when it fails: never abort it after.
        const int commit_rc = mdb_txn_commit(std::exchange(txn, nullptr));
        check_startup(commit_rc, "commit at open");
    } catch (...) {
        if (txn != nullptr) {
            mdb_txn_abort(txn);
        }
        throw;
    }
    cover_last_page();
    // The tables and format record of a fresh file are durable before anything is appended.
    check_startup(mdb_env_sync(env_, 1), "sync at open");

    const uint32_t capacity = std::bit_ceil(
        std::clamp(options_.queue_records_per_shard, append_records_max, queue_records_max));
    lanes_.reserve(options_.shard_count);
    for (uint32_t shard = 0; shard < options_.shard_count; ++shard) {
        auto lane = std::make_unique<Lane>(capacity, last_shard_seqs[shard]);
        lane->durable_seq.store(last_shard_seqs[shard], std::memory_order_relaxed);
        lane->committed_seq = last_shard_seqs[shard];
        lane->batch_from = last_shard_seqs[shard];
        lane->batch_to = last_shard_seqs[shard];
        if (checkpoint_found[shard]) {
            lane->checkpoint_on_disk = true;
            lane->checkpoint_slot = checkpoint_slots[shard];
            lane->checkpoint_shard_seq = checkpoints[shard].shard_seq;
            lane->checkpoint_log_seq = checkpoints[shard].log_seq;
            lane->checkpoint_requested_seq.store(checkpoints[shard].shard_seq);
            lane->checkpoint_written_seq.store(checkpoints[shard].shard_seq);
        }
        // Recovery reads the log from the oldest of these (a lower bound: the checkpoint's own
        // record, or the start of the log for a shard without one).
        if (last_shard_seqs[shard] > lane->checkpoint_shard_seq) {
            lane->uncovered_log_seq = lane->checkpoint_on_disk ? lane->checkpoint_log_seq + 1 : 1;
        }
        lanes_.push_back(std::move(lane));
    }
    last_log_seq_.store(next_log_seq_ - 1);
    commit_budget_ = commit_budget_max();
    heads_missing_.reserve(2 * size_t{records_per_commit_max});
    record_slots_.reserve(2 * size_t{records_per_commit_max});
    value_scratch_.resize(format::records_at(records_per_value_max, records_per_value_max) +
                          records_per_value_max * format::packed_record_bytes_max +
                          format::value_padding_bytes);

    MDB_envinfo info;
    check_startup(mdb_env_info(env_, &info), "mdb_env_info");
    map_bytes_.store(info.me_mapsize);
    check_disk();
    check_map_usage();
    rebuild_heads();
}

// LMDB reads pages through its map, and touching a mapped page past the end of the file raises
// SIGBUS: a truncated file must be refused before anything reads a page. The meta page LMDB
// opened, the newer of the two, names the last page in use; the older one names no later page
// (LMDB never shrinks the file), so checking the newer covers both. A new file has just its two
// meta pages, and they are written by mdb_env_open.
void LmdbLog::check_file_covers_used_pages(const std::string& env_path) const {
    MDB_envinfo info;
    check_startup(mdb_env_info(env_, &info), "mdb_env_info");
    MDB_stat env_stat;
    check_startup(mdb_env_stat(env_, &env_stat), "mdb_env_stat");
    const uint64_t needed_bytes = (uint64_t{info.me_last_pgno} + 1) * env_stat.ms_psize;
    const uint64_t size_bytes = file_size_bytes(env_path);
    if (size_bytes >= needed_bytes) {
        return;
    }
    // A few pages short can also be a crash right after a commit that left freed pages unwritten
    // (cover_last_page): say how to tell, rather than only "restore from a backup".
    constexpr uint64_t crash_shortfall_pages_max = 16;
    if (needed_bytes - size_bytes <= crash_shortfall_pages_max * env_stat.ms_psize) {
        throw StartupError(
            "jifen log: " + env_path + " is truncated or damaged: it has " +
            std::to_string(size_bytes) + " bytes, its pages need " + std::to_string(needed_bytes) +
            ". If the server crashed and nobody copied or cut the file, the missing pages may be "
            "pages LMDB freed without writing them: extend the file with `truncate -s " +
            std::to_string(needed_bytes) + " " + env_path +
            "` and start again (recovery checks every record it replays). Otherwise restore from "
            "a backup");
    }
    refuse_truncated(env_path, size_bytes, needed_bytes);
}

// LMDB never writes a page that it allocated and freed again within one commit, so a commit can
// leave the file ending before the last page its meta page names (a page or so, after deletes:
// 11 of 3000 commits of small values and deletes did). Nothing reads such a page, but open
// refuses a file shorter than its pages (check_file_covers_used_pages), so the file is extended
// over it at once and synced; only a crash between that commit and this can leave it short.
void LmdbLog::cover_last_page() noexcept {
    MDB_envinfo info;
    int fd = -1;
    if (mdb_env_info(env_, &info) != 0 || mdb_env_get_fd(env_, &fd) != 0) {
        return;
    }
    const auto needed_bytes = static_cast<off_t>((uint64_t{info.me_last_pgno} + 1) * page_bytes_);
    struct stat status;
    if (::fstat(fd, &status) != 0 || status.st_size >= needed_bytes) {
        return;
    }
    if (::ftruncate(fd, needed_bytes) != 0 || ::fdatasync(fd) != 0) {
        std::fprintf(stderr, "jifen log: cannot extend the file over its last page: %s\n",
                     std::strerror(errno));
    }
}

void LmdbLog::rebuild_heads() {
    if (heads_next_log_seq_ == next_log_seq_) {
        return;
    }
    // The heads flush position and the log are written by the same transactions: the log must
    // reach from there to the position's end without a gap.
    auto damaged = [](const std::string& what) {
        throw StartupError("jifen log: damaged log, cannot rebuild member heads: " + what);
    };
    MDB_txn* txn = nullptr;
    check_startup(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
    MDB_cursor* cursor = nullptr;
    const int open_rc = mdb_cursor_open(txn, log_dbi_, &cursor);
    if (open_rc != 0) {
        mdb_txn_abort(txn);
        throw_startup("mdb_cursor_open", open_rc);
    }
    try {
        MDB_val key;
        MDB_val value;
        int rc = seek_log_value(cursor, heads_next_log_seq_, &key, &value);
        uint64_t log_seq = heads_next_log_seq_;  // The next record to take into the map.
        LogValue log_value;
        for (; rc == 0 && log_seq < next_log_seq_;
             rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
            if (!log_value.parse(key, value, true) || !log_value.runs_ok(options_.shard_count)) {
                damaged("log value at " +
                        std::to_string(
                            format::load_be64(static_cast<const unsigned char*>(key.mv_data))) +
                        " fails its checks");
            }
            if (!log_value.contains(log_seq)) {
                damaged("log sequence " + std::to_string(log_seq) + " is missing");
            }
            for (; log_seq < log_value.end_log_seq(); ++log_seq) {
                // The tail holds fewer members than the writer's map did, unless that writer had
                // a larger heads_map_members: then the map is written out here, as the writer
                // would have done. (Otherwise the writer's first commit flushes a map past
                // heads_map_members.)
                if (heads_.size() + 2 > heads_.members_max()) {
                    flush_heads_at_open(log_seq);
                }
                format::LoggedRecord logged;
                if (!log_value.record(static_cast<uint32_t>(log_seq - log_value.first_log_seq()),
                                      &logged)) {
                    damaged("log record " + std::to_string(log_seq) + " fails its checks");
                }
                const format::FiledUnder filed =
                    format::filed_under(logged.record, options_.shard_count);
                if (filed.member_id != 0) {
                    heads_.restore(filed.member_id, log_seq);
                }
                if (filed.counterparty_id != 0) {
                    heads_.restore(filed.counterparty_id, log_seq);
                }
            }
        }
        if (rc != 0 && rc != MDB_NOTFOUND) {
            throw_startup("reading the log", rc);
        }
        if (log_seq != next_log_seq_) {
            damaged("log ends at " + std::to_string(log_seq - 1) + " but its position says " +
                    std::to_string(next_log_seq_ - 1));
        }
        // Each commit starts with fewer than heads_map_members members in the map, so that the
        // map has room for one commit's records on top.
        if (heads_.size() >= options_.heads_map_members) {
            flush_heads_at_open(next_log_seq_);
        }
    } catch (...) {
        mdb_cursor_close(cursor);
        mdb_txn_abort(txn);
        throw;
    }
    mdb_cursor_close(cursor);
    mdb_txn_abort(txn);
}

void LmdbLog::flush_heads_at_open(uint64_t heads_next_log_seq) {
    int rc = 0;
    do {
        MDB_txn* txn = nullptr;
        check_startup(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
        rc = write_heads(txn);
        if (rc == 0) {
            rc = write_position(txn, next_log_seq_, heads_next_log_seq);
        }
        if (rc == 0) {
            rc = mdb_txn_commit(txn);
        } else {
            mdb_txn_abort(txn);
        }
    } while (rc == MDB_MAP_FULL && grow_map());
    check_startup(rc, "writing member heads at open");
    cover_last_page();
    heads_.clear();
    heads_next_log_seq_ = heads_next_log_seq;
}

bool LmdbLog::append(uint32_t shard, std::span<const engine::Record> records) {
    JIFEN_ASSERT(shard < lanes_.size());
    Lane& lane = *lanes_[shard];
    JIFEN_ASSERT(records.size() <= append_records_max);
    if (!lane.ring.push(records)) {
        return false;
    }
    // Pairs with the same read-modify-write in sleep_until_work(). RMWs of one atomic are totally
    // ordered, and the later one synchronizes with the earlier: either the writer's check comes
    // after this push and sees the new tail, or this check comes after the writer announced its
    // sleep and sees the flag. The common case costs one locked instruction, no mutex.
    handshake_.fetch_add(1, std::memory_order_acq_rel);
    if (writer_sleeping_.load(std::memory_order_relaxed)) {
        wake_writer();
    }
    return true;
}

uint64_t LmdbLog::appended_seq(uint32_t shard) const {
    JIFEN_ASSERT(shard < lanes_.size());
    return lanes_[shard]->ring.tail();
}

uint64_t LmdbLog::durable_seq(uint32_t shard) const {
    JIFEN_ASSERT(shard < lanes_.size());
    return lanes_[shard]->durable_seq.load(std::memory_order_acquire);
}

bool LmdbLog::undurable_members(uint32_t shard, std::vector<engine::MemberId>* members) const {
    JIFEN_ASSERT(shard < lanes_.size());
    const RecordRing& ring = lanes_[shard]->ring;
    const uint64_t tail = ring.tail();
    const uint64_t durable = std::min(durable_seq(shard), tail);
    if (tail - durable > ring.capacity()) {
        return false;  // The oldest of them were written over: their slots were released.
    }
    for (uint64_t position = durable; position < tail; ++position) {
        add_waiting_members(ring.peek(position).command, members);
    }
    return true;
}

void LmdbLog::checkpoint(uint32_t shard, uint64_t shard_seq, engine::CheckpointBytes state) {
    JIFEN_ASSERT(shard < lanes_.size());
    Lane& lane = *lanes_[shard];
    JIFEN_ASSERT(shard_seq <= lane.ring.tail());
    {
        std::lock_guard lock(lane.checkpoint_mutex);
        if (lane.handed.finished) {
            // A newer whole checkpoint replaces one the writer has not started on (a shard that
            // waits for checkpoint_due() never hands one while another is on its way).
            JIFEN_ASSERT(!lane.taken_open);
            for (const engine::CheckpointBytes& part : lane.handed.parts) {
                lane.checkpoint_bytes_waiting.fetch_sub(part.size(), std::memory_order_relaxed);
            }
            lane.handed = Checkpoint{};
        }
        lane.checkpoint_bytes_waiting.fetch_add(state.size(), std::memory_order_relaxed);
        lane.handed.parts.push_back(std::move(state));
        lane.handed.finished = true;
        lane.handed.shard_seq = shard_seq;
    }
    lane.checkpoint_requested_seq.store(shard_seq, std::memory_order_relaxed);
    lane.checkpoint_stale.store(false, std::memory_order_relaxed);
    checkpoint_handed_.store(true, std::memory_order_release);
    wake_writer();
}

void LmdbLog::checkpoint_part(uint32_t shard, engine::CheckpointBytes part) {
    JIFEN_ASSERT(shard < lanes_.size());
    JIFEN_ASSERT(part.size() % checkpoint_chunk_bytes == 0);
    if (part.size() == 0) {
        return;
    }
    Lane& lane = *lanes_[shard];
    {
        std::lock_guard lock(lane.checkpoint_mutex);
        JIFEN_ASSERT(!lane.handed.finished);  // The previous checkpoint is taken (checkpoint_due).
        lane.checkpoint_bytes_waiting.fetch_add(part.size(), std::memory_order_relaxed);
        lane.handed.parts.push_back(std::move(part));
    }
    checkpoint_handed_.store(true, std::memory_order_release);
    wake_writer();
}

uint64_t LmdbLog::checkpoint_bytes_waiting(uint32_t shard) const {
    JIFEN_ASSERT(shard < lanes_.size());
    return lanes_[shard]->checkpoint_bytes_waiting.load(std::memory_order_relaxed);
}

bool LmdbLog::checkpoint_due(uint32_t shard) const {
    JIFEN_ASSERT(shard < lanes_.size());
    const Lane& lane = *lanes_[shard];
    const uint64_t requested = lane.checkpoint_requested_seq.load(std::memory_order_relaxed);
    if (lane.checkpoint_written_seq.load(std::memory_order_relaxed) < requested) {
        return false;  // The last one is still on its way.
    }
    const uint64_t since = lane.ring.tail() - requested;
    return since >= options_.checkpoint_every_records ||
           (since > 0 && lane.checkpoint_stale.load(std::memory_order_relaxed));
}

bool LmdbLog::storage_full() const {
    return map_full_.load(std::memory_order_relaxed) || disk_full_.load(std::memory_order_relaxed);
}

bool LmdbLog::failed() const { return failed_.load(std::memory_order_relaxed); }

void LmdbLog::start(std::function<void(uint32_t shard, uint64_t shard_seq)> on_durable) {
    write_rules();  // When recover() was not called (nothing to recover).
    JIFEN_ASSERT(!writer_.joinable());
    on_durable_ = std::move(on_durable);
    stop_requested_.store(false);
    writer_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "jifen-log");
        writer_main();
    });
}

void LmdbLog::stop() {
    if (!writer_.joinable()) {
        return;
    }
    stop_requested_.store(true, std::memory_order_release);
    wake_writer();
    writer_.join();
}

void LmdbLog::wake_writer() noexcept {
    {
        std::lock_guard lock(wake_mutex_);
        wake_pending_ = true;
    }
    wake_cv_.notify_one();
}

bool LmdbLog::has_work() const noexcept {
    if (stop_requested_.load(std::memory_order_relaxed) ||
        checkpoint_handed_.load(std::memory_order_relaxed)) {
        return true;
    }
    for (const auto& lane : lanes_) {
        if (lane->ring.tail() != lane->ring.head()) {
            return true;
        }
    }
    return false;
}

void LmdbLog::sleep_until_work(uint64_t timeout_us, bool blocked) {
    writer_sleeping_.store(true, std::memory_order_relaxed);
    handshake_.fetch_add(1, std::memory_order_acq_rel);  // See append().

    if (blocked || !has_work()) {
        std::unique_lock lock(wake_mutex_);
        wake_cv_.wait_for(lock, std::chrono::microseconds(timeout_us),
                          [this] { return wake_pending_; });
    }
    writer_sleeping_.store(false, std::memory_order_relaxed);
    std::lock_guard lock(wake_mutex_);
    wake_pending_ = false;
}

void LmdbLog::take_checkpoints() {
    if (!checkpoint_handed_.exchange(false, std::memory_order_acquire)) {
        return;
    }
    for (auto& lane : lanes_) {
        if (lane->taken.finished) {
            continue;  // A newer checkpoint waits until this one is on disk.
        }
        std::lock_guard lock(lane->checkpoint_mutex);
        for (engine::CheckpointBytes& part : lane->handed.parts) {
            lane->taken.parts.push_back(std::move(part));
        }
        lane->taken.finished = lane->handed.finished;
        lane->taken.shard_seq = lane->handed.shard_seq;
        lane->handed = Checkpoint{};
        // Open from its first part taken until its last is: its parts may all be written (and
        // gone from `taken`) while the rest is still to come.
        lane->taken_open =
            !lane->taken.finished && (!lane->taken.parts.empty() || lane->cursor.next_chunk != 0);
    }
}

uint64_t LmdbLog::gather_batch(uint64_t budget) noexcept {
    // Round-robin start so one busy shard cannot starve the others when the budget binds.
    const auto lane_count = static_cast<uint32_t>(lanes_.size());
    uint64_t total = 0;
    for (uint32_t step = 0; step < lane_count; ++step) {
        Lane& lane = *lanes_[(gather_start_lane_ + step) % lane_count];
        lane.batch_from = lane.ring.head();
        const uint64_t queued = lane.ring.tail() - lane.batch_from;
        uint64_t take = 0;
        if (total < budget) {
            const bool commit_is_empty = total == 0;  // It may then pass its budget by a chain.
            take = whole_chains(lane.ring, lane.batch_from, queued,
                                std::min(queued, budget - total), commit_is_empty);
        }
        lane.batch_to = lane.batch_from + take;
        total += take;
    }
    gather_start_lane_ = (gather_start_lane_ + 1) % lane_count;
    return total;
}

bool LmdbLog::checkpoint_writable(const Lane& lane) noexcept {
    const Checkpoint& taken = lane.taken;
    if (lane.cursor.parts_done < taken.parts.size()) {
        return true;
    }
    return taken.finished && taken.shard_seq <= lane.batch_to;
}

bool LmdbLog::checkpoints_ready() const noexcept {
    for (const auto& lane : lanes_) {
        if (checkpoint_writable(*lane)) {
            return true;
        }
    }
    return false;
}

void LmdbLog::writer_main() {
    for (;;) {
        const bool stopping = stop_requested_.load(std::memory_order_acquire);
        take_checkpoints();
        const uint64_t records = gather_batch(commit_budget_);
        // A failed log stays failed (nothing more is written); storage full is retried slowly
        // because the operator may free disk space.
        const bool idle = records == 0 && !checkpoints_ready();
        if (idle || failed() || (storage_full() && now_us() < storage_retry_us_)) {
            // Nothing to commit now, so no next commit will sync the last one's meta page: sync
            // it here, then look again (more may have arrived during the sync). No write
            // transaction is open here or while sleeping.
            if (sync_committed()) {
                continue;
            }
            if (stopping) {
                return;
            }
            // No commit looks at the disk while nothing is committed: look here (at most once a
            // second), so a disk that fills is refused, and freed space taken, also when idle.
            check_disk();
            // Failed, or storage full until the retry time: the queued records cannot be
            // committed yet, so they must not cut the sleep short (the loop would spin a core).
            sleep_until_work(storage_full_retry_us, !idle);
            continue;
        }
        if (!commit_batch()) {
            storage_retry_us_ = now_us() + storage_full_retry_us;
            if (stopping && (failed() || commit_budget_ <= 1)) {
                sync_committed();
                return;
            }
            continue;
        }
        commit_budget_ = commit_budget_max();
    }
}

bool LmdbLog::commit_batch() {
    // Room for one commit's heads on top of the map: it was flushed when it reached
    // heads_map_members, and a failed attempt's members are removed again.
    const uint32_t heads_size_before = heads_.size();
    JIFEN_ASSERT(heads_size_before < options_.heads_map_members);
    for (;;) {
        check_disk();
        check_map_usage();
        uint64_t next_log_seq = next_log_seq_;
        MDB_txn* txn = nullptr;
        int rc = options_.commit_fault ? options_.commit_fault() : 0;
        if (rc == 0) {
            rc = mdb_txn_begin(env_, nullptr, 0, &txn);
        }
        if (rc == 0) {
            rc = write_batch(txn, &next_log_seq);
            if (rc == 0) {
                // Every commit writes the position record, so LMDB never skips it as empty: it
                // always writes and fdatasyncs its data pages, then writes its meta page.
                rc = mdb_txn_commit(txn);  // Frees txn, also on failure.
                // MDB_MAP_FULL comes from allocating pages, before anything is written.
                if (rc != 0 && rc != MDB_MAP_FULL) {
                    meta_untrusted_ = true;
                }
            } else {
                mdb_txn_abort(txn);
            }
        }
        if (rc == 0) {
            cover_last_page();
            finish_heads(next_log_seq);
            map_full_.store(false, std::memory_order_relaxed);
            if (space_failure_) {
                space_failure_ = false;
                disk_full_.store(disk_low(), std::memory_order_relaxed);
            }
            check_map_usage();
            if (options_.meta_sync == MetaSync::each_commit) {
                record_commit(next_log_seq);
                publish_durable();
            } else {
                // This commit's fdatasync (same file) also wrote the previous commit's meta
                // page: everything committed before this one is durable now, this one once the
                // next sync completes. After a failed commit only this commit's own meta page,
                // synced later, is trusted.
                if (!meta_untrusted_) {
                    publish_durable();
                }
                meta_untrusted_ = false;
                record_commit(next_log_seq);
                meta_unsynced_ = true;
            }
            if (checkpoint_written_) {
                // LMDB allocated the checkpoint's dirty pages (gigabytes for a big shard) with
                // malloc; glibc keeps freed heap memory resident unless asked to give it back.
                checkpoint_written_ = false;
                malloc_trim(0);
            }
            return true;
        }
        heads_.revert(heads_size_before);  // The next attempt links from the committed heads.
        if (rc == MDB_MAP_FULL) {
            if (grow_map()) {
                continue;  // The same batch, in a new transaction: never half-applied.
            }
            map_full_.store(true, std::memory_order_relaxed);
            // Commit as much as still fits: a smaller batch may squeeze into the last pages.
            if (commit_budget_ > 1) {
                commit_budget_ /= 2;
                gather_batch(commit_budget_);
                continue;
            }
            return false;
        }
        // LMDB answers a short write with EIO ("short write, filesystem full?"): a disk that
        // filled up under a commit, retried like ENOSPC. The failed commit's pages lie in free
        // space and its meta page was not written, so the last commit stands.
        if (rc == ENOSPC || (rc == EIO && disk_low())) {
            space_failure_ = true;
            disk_full_.store(true, std::memory_order_relaxed);
            return false;
        }
        std::fprintf(stderr, "jifen log: commit failed, the log stops writing: %s\n",
                     mdb_strerror(rc));
        failed_.store(true, std::memory_order_relaxed);
        return false;
    }
}

int LmdbLog::write_batch(MDB_txn* txn, uint64_t* next_log_seq) {
    int rc = load_heads(txn);
    if (rc == 0) {
        rc = write_log_values(txn, next_log_seq);
    }
    bool checkpointing = false;  // Some checkpoint is finished by this commit.
    for (uint32_t shard = 0; rc == 0 && shard < lanes_.size(); ++shard) {
        Lane& lane = *lanes_[shard];
        lane.piece_finishing = false;
        lane.piece_in_commit = checkpoint_writable(lane);
        if (lane.piece_in_commit) {
            bool finished = false;
            rc = write_checkpoint_piece(txn, lane, shard, &finished);
            checkpointing = checkpointing || finished;
        }
    }
    // A heads flush when the map is full, when open() would otherwise read a long stretch of
    // log to rebuild it, or with a checkpoint (so that recovery's read of the log from the
    // checkpoints on covers the rebuild too).
    heads_flushing_ = heads_.size() >= options_.heads_map_members ||
                      *next_log_seq - heads_next_log_seq_ >= heads_flush_log_records ||
                      (checkpointing && heads_.size() > 0);
    if (rc == 0 && heads_flushing_) {
        rc = write_heads(txn);
    }
    if (rc == 0) {
        rc = write_position(txn, *next_log_seq,
                            heads_flushing_ ? *next_log_seq : heads_next_log_seq_);
    }
    return rc;
}

int LmdbLog::write_log_values(MDB_txn* txn, uint64_t* log_seq) {
    // Lanes in index order, each lane's records consecutive, packed into values of up to
    // records_per_value_max records (one run per lane piece).
    struct Run {
        uint32_t shard;
        uint64_t from;
        uint32_t count;
    };
    Run runs[records_per_value_max];
    uint32_t run_count = 0;
    uint32_t value_records = 0;
    size_t record_index = 0;  // In the batch: the same order load_heads() went through it.

    auto flush = [&]() -> int {
        if (value_records == 0) {
            return 0;
        }
        // Packed into the scratch first: a record's packed size is known only once it is packed.
        unsigned char* out = value_scratch_.data();
        unsigned char* at = out + sizeof(format::GroupHeader);
        for (uint32_t i = 0; i < run_count; ++i) {
            format::RunHeader run_header;
            run_header.shard_index = runs[i].shard;
            run_header.record_count = runs[i].count;
            run_header.first_shard_seq = runs[i].from + 1;
            std::memcpy(at, &run_header, sizeof(run_header));
            at += sizeof(run_header);
        }
        unsigned char* offsets = at;
        unsigned char* const records = out + format::records_at(run_count, value_records);
        at = records;
        // The records, in log order, each with its links.
        uint64_t record_log_seq = *log_seq;
        for (uint32_t i = 0; i < run_count; ++i) {
            const RecordRing& ring = lanes_[runs[i].shard]->ring;
            for (uint64_t position = runs[i].from; position < runs[i].from + runs[i].count;
                 ++position) {
                format::LoggedRecord logged;
                logged.record = ring.at(position);
                JIFEN_ASSERT(logged.record.shard_index == runs[i].shard);
                // The slots load_heads() touched are out of the cache again by now.
                if (2 * (record_index + heads_prefetch_records) < record_slots_.size()) {
                    const uint32_t* ahead =
                        &record_slots_[2 * (record_index + heads_prefetch_records)];
                    heads_.prefetch_slot(ahead[0]);
                    heads_.prefetch_slot(ahead[1]);
                }
                link_record(&logged, record_log_seq++, &record_slots_[2 * record_index++]);
                const auto offset = static_cast<uint16_t>(at - records);
                std::memcpy(offsets, &offset, sizeof(offset));
                offsets += sizeof(offset);
                at += format::pack_record(logged, at);
            }
        }
        std::memset(at, 0, format::value_padding_bytes);
        at += format::value_padding_bytes;
        JIFEN_ASSERT(offsets == records && at <= out + value_scratch_.size());
        format::GroupHeader header;
        header.run_count = run_count;
        header.record_count = value_records;
        std::memcpy(out, &header, sizeof(header));
        // The checksum covers the counts too, so it is computed once they are in place.
        header.crc32c = protocol::crc32c(out + 8, static_cast<size_t>(at - out) - 8);
        std::memcpy(out + 4, &header.crc32c, sizeof(header.crc32c));

        unsigned char key_bytes[8];
        format::store_be64(key_bytes, *log_seq);
        MDB_val key = as_val(key_bytes, sizeof(key_bytes));
        MDB_val value{static_cast<size_t>(at - out), out};
        if (const int rc = mdb_put(txn, log_dbi_, &key, &value, MDB_APPEND); rc != 0) {
            return rc;
        }
        *log_seq += value_records;
        run_count = 0;
        value_records = 0;
        return 0;
    };

    uint64_t lane_log_seq = *log_seq;
    for (uint32_t shard = 0; shard < lanes_.size(); ++shard) {
        Lane& lane = *lanes_[shard];
        lane.batch_first_log_seq = lane_log_seq;
        uint64_t from = lane.batch_from;
        while (from < lane.batch_to) {
            const auto count = static_cast<uint32_t>(
                std::min<uint64_t>(lane.batch_to - from, records_per_value_max - value_records));
            runs[run_count++] = Run{shard, from, count};
            value_records += count;
            from += count;
            lane_log_seq += count;
            if (value_records == records_per_value_max) {
                if (const int rc = flush(); rc != 0) {
                    return rc;
                }
            }
        }
    }
    const int rc = flush();
    JIFEN_ASSERT(rc != 0 || *log_seq == lane_log_seq);
    return rc;
}

int LmdbLog::load_heads(MDB_txn* txn) {
    // Every member the batch files records under gets a slot in the map now, its slot noted per
    // record for link_record(). The members the map did not hold are then looked up in the heads
    // table in member order: one cursor sweeping the table's leaves instead of a descent from
    // the root (a cache miss per level) for each record, which at 1M random members was most of
    // the writer's time.
    heads_missing_.clear();
    record_slots_.clear();
    idless_in_batch_ = 0;
    for (const auto& lane : lanes_) {
        for (uint64_t position = lane->batch_from; position < lane->batch_to; ++position) {
            // The map is far larger than the cache: start loading a later record's slot now.
            if (position + heads_prefetch_records < lane->batch_to) {
                heads_.prefetch(lane->ring.at(position + heads_prefetch_records).command.member_id);
            }
            const engine::Op op = lane->ring.at(position).command.op;
            idless_in_batch_ += op == engine::Op::tick || engine::is_derived(op) ? 1 : 0;
            const format::FiledUnder filed =
                format::filed_under(lane->ring.at(position), options_.shard_count);
            for (const engine::MemberId member_id : {filed.member_id, filed.counterparty_id}) {
                uint32_t slot = HeadsMap::none;
                if (member_id != 0) {
                    slot = heads_.find(member_id);
                    if (slot == HeadsMap::none) {
                        slot = heads_.insert(member_id, 0);
                        heads_missing_.push_back({member_id, slot});
                    }
                }
                record_slots_.push_back(slot);
            }
        }
    }
    if (heads_missing_.empty()) {
        return 0;
    }
    std::sort(heads_missing_.begin(), heads_missing_.end(),
              [](const MissingHead& a, const MissingHead& b) { return a.member_id < b.member_id; });
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn, heads_dbi_, &cursor);
    for (size_t i = 0; rc == 0 && i < heads_missing_.size(); ++i) {
        MDB_val key = as_val(&heads_missing_[i].member_id, sizeof(engine::MemberId));
        MDB_val value;
        // MDB_SET on a positioned cursor searches the current leaf first: sorted keys mostly
        // land there or on the next one.
        rc = mdb_cursor_get(cursor, &key, &value, MDB_SET);
        if (rc == MDB_NOTFOUND) {
            rc = 0;  // No history before this batch: the head stays 0.
        } else if (rc == 0) {
            uint64_t stored = 0;
            if (value.mv_size != sizeof(stored)) {
                rc = MDB_CORRUPTED;
                break;
            }
            std::memcpy(&stored, value.mv_data, sizeof(stored));
            heads_.set_stored_head(heads_missing_[i].slot, stored);
        }
    }
    if (cursor != nullptr) {
        mdb_cursor_close(cursor);
    }
    return rc;
}

void LmdbLog::link_record(format::LoggedRecord* logged, uint64_t log_seq,
                          const uint32_t* slots) noexcept {
    const format::FiledUnder filed = format::filed_under(logged->record, options_.shard_count);
    if (filed.member_id != 0) {
        logged->member_previous_seq = heads_.advance(slots[0], log_seq);
    }
    if (filed.counterparty_id != 0) {
        logged->counterparty_previous_seq = heads_.advance(slots[1], log_seq);
    }
}

int LmdbLog::read_stored_head(MDB_txn* txn, engine::MemberId member_id, uint64_t* head) const {
    MDB_val key = as_val(&member_id, sizeof(member_id));
    MDB_val value;
    const int rc = mdb_get(txn, heads_dbi_, &key, &value);
    if (rc == MDB_NOTFOUND) {
        *head = 0;
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    if (value.mv_size != sizeof(uint64_t)) {
        return MDB_CORRUPTED;
    }
    std::memcpy(head, value.mv_data, sizeof(uint64_t));
    return 0;
}

int LmdbLog::write_heads(MDB_txn* txn) {
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn, heads_dbi_, &cursor);
    if (rc != 0) {
        return rc;
    }
    // Member order: the puts sweep the table's leaves once instead of landing at random.
    rc = heads_.for_each_sorted([&](engine::MemberId member_id, uint64_t head) {
        MDB_val key = as_val(&member_id, sizeof(member_id));
        MDB_val value = as_val(&head, sizeof(head));
        return mdb_cursor_put(cursor, &key, &value, 0);
    });
    mdb_cursor_close(cursor);
    return rc;
}

void LmdbLog::finish_heads(uint64_t next_log_seq) {
    if (!heads_flushing_) {
        heads_.publish();
        return;
    }
    // The heads table holds every head now. Readers look a member up in the map and then in the
    // heads table of their snapshot, so the map is emptied only while none is looking.
    std::unique_lock lock(map_mutex_);
    heads_.clear();
    heads_next_log_seq_ = next_log_seq;
}

int find_checkpoint(MDB_txn* txn, MDB_dbi dbi, uint32_t shard, uint32_t* slot, MDB_val* header) {
    int rc = MDB_NOTFOUND;
    for (uint32_t candidate = 0; candidate < 2 && rc == MDB_NOTFOUND; ++candidate) {
        format::CheckpointKey key_bytes(shard, format::checkpoint_chunk(candidate, 0));
        MDB_val key = as_val(key_bytes.bytes, sizeof(key_bytes.bytes));
        rc = mdb_get(txn, dbi, &key, header);
        *slot = candidate;
    }
    return rc;
}

int LmdbLog::delete_checkpoint_slot(MDB_txn* txn, uint32_t shard, uint32_t slot) {
    // Each chunk is found afresh: after deleting the table's last entry LMDB leaves the cursor
    // unset (MDB_GET_CURRENT would then answer EINVAL).
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn, checkpoint_dbi_, &cursor);
    if (rc != 0) {
        return rc;
    }
    format::CheckpointKey first(shard, format::checkpoint_chunk(slot, 0));
    for (;;) {
        MDB_val key = as_val(first.bytes, sizeof(first.bytes));
        MDB_val value;
        rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
        if (rc != 0 || key.mv_size != 8) {
            break;
        }
        const auto* found = static_cast<const unsigned char*>(key.mv_data);
        if (format::load_be32(found) != shard ||
            format::load_be32(found + 4) / format::checkpoint_slot_chunks != slot) {
            break;
        }
        rc = mdb_cursor_del(cursor, 0);
        if (rc != 0) {
            break;
        }
    }
    mdb_cursor_close(cursor);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int LmdbLog::write_checkpoint_piece(MDB_txn* txn, Lane& lane, uint32_t shard, bool* finished) {
    const Checkpoint& taken = lane.taken;
    const uint32_t slot = 1 - lane.checkpoint_slot;
    CheckpointCursor cursor = lane.cursor;
    int rc = 0;
    if (cursor.next_chunk == 0) {
        // Whatever an interrupted earlier attempt left in this slot (it has no header, or it
        // would be the current slot).
        rc = delete_checkpoint_slot(txn, shard, slot);
        cursor.next_chunk = 1;
    }
    if (!cursor.log_seq_known && taken.finished && taken.shard_seq <= lane.batch_to) {
        // The log sequence of the record the state follows, when this writer knows it;
        // otherwise the previous checkpoint's, a lower bound (recovery reads the log from
        // there).
        if (taken.shard_seq > lane.batch_from) {
            cursor.log_seq = lane.batch_first_log_seq + (taken.shard_seq - 1 - lane.batch_from);
        } else if (taken.shard_seq == lane.batch_from) {
            cursor.log_seq = lane.last_log_seq;
        } else {
            cursor.log_seq = lane.checkpoint_log_seq;
        }
        cursor.log_seq_known = true;
    }
    // The shard builds the checkpoint only as fast as it is written (a few pieces ahead), and
    // must catch up with the transactions it applies meanwhile: write at least twice the bytes
    // this commit's records may add to it.
    const uint64_t catch_up_bytes =
        2 * (lane.batch_to - lane.batch_from) * engine::Shard::checkpoint_bytes_per_transaction;
    for (uint64_t budget = std::max<uint64_t>(
             {1, options_.checkpoint_chunks_per_commit,
              (catch_up_bytes + checkpoint_chunk_bytes - 1) / checkpoint_chunk_bytes});
         rc == 0 && budget > 0 && cursor.parts_done < taken.parts.size(); --budget) {
        const engine::CheckpointBytes& part = taken.parts[cursor.parts_done];
        const uint64_t size = std::min(checkpoint_chunk_bytes, part.size() - cursor.part_offset);
        // Only the last part may end in a short chunk: recovery counts the chunks by the size.
        JIFEN_ASSERT(size == checkpoint_chunk_bytes ||
                     (taken.finished && cursor.parts_done + 1 == taken.parts.size()));
        format::CheckpointKey chunk_key(shard, format::checkpoint_chunk(slot, cursor.next_chunk));
        MDB_val key = as_val(chunk_key.bytes, sizeof(chunk_key.bytes));
        const std::span<const std::byte> chunk =
            part.view(cursor.part_offset, size, &chunk_scratch_);
        MDB_val value = as_val(chunk.data(), chunk.size());
        rc = mdb_put(txn, checkpoint_dbi_, &key, &value, 0);
        cursor.crc32c = protocol::crc32c(chunk.data(), chunk.size(), cursor.crc32c);
        cursor.size_bytes += size;
        ++cursor.next_chunk;
        cursor.part_offset += size;
        if (cursor.part_offset == part.size()) {
            ++cursor.parts_done;
            cursor.part_offset = 0;
        }
    }
    *finished = rc == 0 && taken.finished && cursor.parts_done == taken.parts.size() &&
                cursor.log_seq_known;
    if (*finished) {
        // The header makes this slot the shard's checkpoint; the old one goes in the same
        // commit.
        format::CheckpointHeader header;
        header.shard_seq = taken.shard_seq;
        header.log_seq = cursor.log_seq;
        header.size_bytes = cursor.size_bytes;
        header.chunk_count = cursor.next_chunk - 1;
        header.crc32c = cursor.crc32c;
        format::CheckpointKey header_key(shard, format::checkpoint_chunk(slot, 0));
        MDB_val key = as_val(header_key.bytes, sizeof(header_key.bytes));
        MDB_val value = as_val(&header, sizeof(header));
        rc = mdb_put(txn, checkpoint_dbi_, &key, &value, 0);
        if (rc == 0) {
            rc = delete_checkpoint_slot(txn, shard, lane.checkpoint_slot);
        }
    }
    lane.cursor_pending = cursor;
    lane.piece_finishing = *finished;
    return rc;
}

int LmdbLog::write_position(MDB_txn* txn, uint64_t next_log_seq, uint64_t heads_next_log_seq) {
    static_assert(sizeof(format::MetaPosition) == 2 * sizeof(uint64_t));
    position_scratch_.resize(2 + lanes_.size());
    position_scratch_[0] = next_log_seq;
    position_scratch_[1] = heads_next_log_seq;
    for (uint32_t shard = 0; shard < lanes_.size(); ++shard) {
        position_scratch_[2 + shard] = lanes_[shard]->batch_to;
    }
    MDB_val key = as_val(format::meta_position_key, sizeof(format::meta_position_key) - 1);
    MDB_val value = as_val(position_scratch_.data(), position_scratch_.size() * sizeof(uint64_t));
    int rc = mdb_put(txn, meta_dbi_, &key, &value, 0);
    if (rc == 0 && idless_in_batch_ > 0) {
        uint64_t idless = idless_records_.load(std::memory_order_relaxed) + idless_in_batch_;
        MDB_val idless_key = as_val(format::meta_idless_key, sizeof(format::meta_idless_key) - 1);
        MDB_val idless_value = as_val(&idless, sizeof(idless));
        rc = mdb_put(txn, meta_dbi_, &idless_key, &idless_value, 0);
    }
    return rc;
}

void LmdbLog::record_commit(uint64_t next_log_seq) {
    next_log_seq_ = next_log_seq;
    idless_records_.fetch_add(idless_in_batch_, std::memory_order_relaxed);
    idless_in_batch_ = 0;
    commits_.fetch_add(1, std::memory_order_relaxed);
    for (auto& lane_pointer : lanes_) {
        Lane& lane = *lane_pointer;
        if (lane.piece_in_commit) {
            checkpoint_bytes_written_.fetch_add(
                lane.cursor_pending.size_bytes - lane.cursor.size_bytes, std::memory_order_relaxed);
            lane.cursor = lane.cursor_pending;
            // Parts wholly written go: a checkpoint holds only what the log has not stored.
            for (; lane.cursor.parts_done > 0; --lane.cursor.parts_done) {
                lane.checkpoint_bytes_waiting.fetch_sub(lane.taken.parts.front().size(),
                                                        std::memory_order_relaxed);
                lane.taken.parts.pop_front();
            }
        }
        if (lane.piece_in_commit && lane.piece_finishing) {
            checkpoint_written_ = true;
            checkpoints_written_.fetch_add(1, std::memory_order_relaxed);
            // A newer checkpoint handed over meanwhile waited for this one (take_checkpoints):
            // have the next loop take it.
            checkpoint_handed_.store(true, std::memory_order_release);
            lane.checkpoint_slot = 1 - lane.checkpoint_slot;
            lane.piece_finishing = false;
            lane.checkpoint_on_disk = true;
            lane.checkpoint_shard_seq = lane.taken.shard_seq;
            lane.checkpoint_log_seq = lane.cursor.log_seq;
            lane.checkpoint_written_seq.store(lane.taken.shard_seq, std::memory_order_relaxed);
            lane.taken = Checkpoint{};
            lane.cursor = CheckpointCursor{};
            lane.uncovered_log_seq =
                lane.checkpoint_shard_seq == lane.batch_to ? 0 : lane.checkpoint_log_seq + 1;
            // A commit between the hand-over and now may have found the old records stale:
            // this checkpoint answers that, so the shard is not asked for another one at once.
            lane.checkpoint_stale.store(false, std::memory_order_relaxed);
        } else if (lane.uncovered_log_seq == 0 && lane.batch_to != lane.batch_from) {
            lane.uncovered_log_seq = lane.batch_first_log_seq;
        }
        // A quiet shard would make recovery read the log from its old records on: once they
        // lie more than a checkpoint interval back, ask it for a checkpoint however few records
        // it has appended (checkpoint_due() reads the flag). Not while one is on its way (handed
        // over, or being written in pieces): that one covers them.
        const bool checkpoint_on_its_way =
            lane.checkpoint_requested_seq.load(std::memory_order_relaxed) >
            lane.checkpoint_shard_seq;
        if (!checkpoint_on_its_way && lane.uncovered_log_seq != 0 &&
            next_log_seq - lane.uncovered_log_seq > options_.checkpoint_every_records) {
            lane.checkpoint_stale.store(true, std::memory_order_relaxed);
        }
        if (lane.batch_to == lane.batch_from) {
            continue;
        }
        lane.last_log_seq = lane.batch_first_log_seq + (lane.batch_to - lane.batch_from) - 1;
        // The records are in LMDB now (recovery reads them from there), so their slots can take
        // new records before the commit is durable.
        lane.ring.release(lane.batch_to);
        lane.committed_seq = lane.batch_to;
    }
}

void LmdbLog::publish_durable() {
    const uint64_t last_log_seq = next_log_seq_ - 1;
    const uint64_t durable_before = last_log_seq_.load(std::memory_order_relaxed);
    if (last_log_seq == durable_before) {
        return;  // Nothing committed since the last publication (ticks included: all logged).
    }
    JIFEN_ASSERT(last_log_seq > durable_before);
    records_written_.fetch_add(last_log_seq - durable_before, std::memory_order_relaxed);
    last_log_seq_.store(last_log_seq, std::memory_order_release);
    for (uint32_t shard = 0; shard < lanes_.size(); ++shard) {
        Lane& lane = *lanes_[shard];
        if (lane.committed_seq == lane.durable_seq.load(std::memory_order_relaxed)) {
            continue;
        }
        lane.durable_seq.store(lane.committed_seq, std::memory_order_release);
        if (on_durable_) {
            on_durable_(shard, lane.committed_seq);
        }
    }
}

bool LmdbLog::sync_committed() {
    if (!meta_unsynced_ || meta_untrusted_) {
        return false;
    }
    meta_unsynced_ = false;
    // fdatasync of the file: the meta page was written through the same descriptor.
    const int rc = mdb_env_sync(env_, 1);
    if (rc != 0) {
        std::fprintf(stderr, "jifen log: sync failed, the log stops writing: %s\n",
                     mdb_strerror(rc));
        failed_.store(true, std::memory_order_relaxed);
        return false;
    }
    publish_durable();
    return true;
}

void LmdbLog::check_disk() noexcept {
    const uint64_t now = now_us();
    if (now - disk_checked_us_ < disk_check_interval_us && disk_checked_us_ != 0) {
        return;
    }
    disk_checked_us_ = now;
    disk_full_.store(space_failure_ || disk_low(), std::memory_order_relaxed);
}

bool LmdbLog::disk_low() const noexcept {
    struct statvfs disk;
    if (::statvfs(options_.data_dir.c_str(), &disk) != 0) {
        return false;  // Unknown: let LMDB report ENOSPC if it comes to that.
    }
    return uint64_t{disk.f_bavail} * uint64_t{disk.f_frsize} < disk_bytes_free_min;
}

void LmdbLog::check_map_usage() {
    MDB_envinfo info;
    if (mdb_env_info(env_, &info) != 0) {
        return;
    }
    const uint64_t threshold_bytes = uint64_t{info.me_mapsize} / 100 * options_.map_grow_percent;
    const uint64_t pages = uint64_t{info.me_last_pgno} + 1;
    if (pages * page_bytes_ < threshold_bytes || grow_map()) {
        return;
    }
    // At the limit, pages freed by heads flushes and replaced checkpoints are reused before the
    // file grows: count them before declaring the map full (this scan only runs in this rare
    // state).
    if ((pages - std::min(pages, free_pages())) * page_bytes_ < threshold_bytes) {
        return;
    }
    // Refuse new writes while there is still room for what shards already applied and queued:
    // better than discovering MDB_MAP_FULL with replies waiting.
    map_full_.store(true, std::memory_order_relaxed);
}

uint64_t LmdbLog::free_pages() const noexcept {
    MDB_txn* txn = nullptr;
    if (mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn) != 0) {
        return 0;
    }
    uint64_t pages = 0;
    MDB_cursor* cursor = nullptr;
    constexpr MDB_dbi free_dbi = 0;  // LMDB's own table of freed page numbers.
    if (mdb_cursor_open(txn, free_dbi, &cursor) == 0) {
        MDB_val key;
        MDB_val value;
        // Each value is a page-number list whose first slot holds the count.
        while (mdb_cursor_get(cursor, &key, &value, MDB_NEXT) == 0) {
            pages += value.mv_size / sizeof(size_t) - 1;
        }
        mdb_cursor_close(cursor);
    }
    mdb_txn_abort(txn);
    return pages;
}

bool LmdbLog::grow_map() {
    const uint64_t map_bytes = map_bytes_.load(std::memory_order_relaxed);
    if (map_bytes >= options_.map_bytes_max || disk_low()) {
        return false;
    }
    const uint64_t grown_bytes = std::min(options_.map_bytes_max, map_bytes * 2);
    // No transaction may be open in this process while the map changes: the writer has none
    // here, and history readers are held off by the exclusive lock.
    std::unique_lock lock(map_mutex_);
    const int rc = mdb_env_set_mapsize(env_, grown_bytes);
    if (rc != 0) {
        std::fprintf(stderr, "jifen log: growing the map to %llu bytes failed: %s\n",
                     static_cast<unsigned long long>(grown_bytes), mdb_strerror(rc));
        return false;
    }
    map_bytes_.store(grown_bytes, std::memory_order_relaxed);
    return true;
}

HistoryPage LmdbLog::history(engine::MemberId member_id, uint64_t before_seq,
                             uint32_t limit) const {
    HistoryPage page;
    if (limit == 0 || member_id == 0) {
        return page;  // Nothing is filed under member 0 (ticks).
    }
    page.entries.reserve(std::min<uint32_t>(limit, 1024));
    std::shared_lock lock(map_mutex_);
    // In this order: the end of what may be shown, the member's head, then the snapshot. The
    // snapshot then holds the record the head names (the writer publishes a head only after its
    // commit), and records at or past the end are stepped over. The end is the durable end: a
    // reader sees a commit as soon as it returns, with MetaSync::deferred one sync before it is
    // durable, and a page never shows a record that power loss could still take back (nor one
    // whose reply is still held back).
    const uint64_t end_log_seq = last_log_seq_.load(std::memory_order_acquire) + 1;
    uint64_t log_seq = heads_.head_of(member_id);
    MDB_txn* txn = nullptr;
    if (mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn) != 0) {
        page.result = Result::storage_error;
        return page;
    }
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn, log_dbi_, &cursor);
    if (rc == 0 && log_seq == 0) {
        rc = read_stored_head(txn, member_id, &log_seq);
    }
    LogRecordReader reader(cursor);
    format::LoggedRecord logged;
    uint64_t previous = 0;
    // Paging on: before_seq names a record of this member (a next_before_seq does), so the page
    // continues from its link.
    if (rc == 0 && before_seq != 0 && before_seq < end_log_seq && before_seq <= log_seq) {
        rc = reader.read(before_seq, &logged);
        if (rc == 0 && link_for(logged, member_id, options_.shard_count, &previous)) {
            log_seq = previous;
        }
        rc = rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;  // The log has every record below its end.
    }
    const uint64_t below_seq = before_seq == 0 ? end_log_seq : std::min(before_seq, end_log_seq);
    uint32_t skipped = 0;
    while (rc == 0 && log_seq != 0) {
        if (log_seq < below_seq && page.entries.size() == limit) {
            page.next_before_seq = page.entries.back().first;
            break;
        }
        rc = reader.read(log_seq, &logged);
        if (rc != 0) {
            rc = rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
            break;
        }
        if (!link_for(logged, member_id, options_.shard_count, &previous) || previous >= log_seq) {
            rc = MDB_CORRUPTED;  // A chain leads only to older records of the same member.
            break;
        }
        if (log_seq < below_seq) {
            page.entries.emplace_back(log_seq, logged.record);
        } else if (log_seq < end_log_seq && ++skipped > history_skip_records_max) {
            // before_seq named no record of this member, and walking down to it from the
            // member's newest record would take too long.
            page.entries.clear();
            page.result = Result::field_out_of_range;
            break;
        }
        log_seq = previous;
    }
    if (rc != 0) {
        page.result = Result::storage_error;
    }
    mdb_cursor_close(cursor);
    mdb_txn_abort(txn);
    return page;
}

LogStats LmdbLog::stats() const {
    LogStats stats;
    stats.records = records_written_.load(std::memory_order_relaxed);
    stats.commits = commits_.load(std::memory_order_relaxed);
    stats.checkpoints = checkpoints_written_.load(std::memory_order_relaxed);
    stats.checkpoint_bytes = checkpoint_bytes_written_.load(std::memory_order_relaxed);
    stats.last_seq = last_log_seq_.load(std::memory_order_relaxed);
    stats.records_without_ids = idless_records_.load(std::memory_order_relaxed);
    std::shared_lock lock(map_mutex_);
    MDB_envinfo info;
    if (mdb_env_info(env_, &info) == 0) {
        stats.map_bytes = info.me_mapsize;
        stats.used_bytes = (uint64_t{info.me_last_pgno} + 1) * page_bytes_;
    }
    return stats;
}

namespace {

// Reads meta[key] as entries of entry_bytes (a prefix of RulesEntry; the rest stays 0) into
// rules; false when it is absent.
bool read_rules(MDB_txn* txn, MDB_dbi meta_dbi, std::string_view key_text, size_t entry_bytes,
                const std::string& env_path, std::vector<format::RulesEntry>* rules) {
    MDB_val key = as_val(key_text.data(), key_text.size());
    MDB_val value;
    const int get_rc = mdb_get(txn, meta_dbi, &key, &value);
    if (get_rc == MDB_NOTFOUND) {
        return false;
    }
    check_startup(get_rc, "read rules");
    if (value.mv_size == 0 || value.mv_size % entry_bytes != 0) {
        throw StartupError("jifen log: " + env_path + ": rules record is damaged");
    }
    rules->assign(value.mv_size / entry_bytes, format::RulesEntry{});
    for (size_t i = 0; i < rules->size(); ++i) {
        std::memcpy(&(*rules)[i], static_cast<const std::byte*>(value.mv_data) + i * entry_bytes,
                    entry_bytes);
    }
    return true;
}

}  // namespace

void LmdbLog::plan_rules(MDB_txn* txn, const std::string& env_path) {
    if (!read_rules(txn, meta_dbi_, format::meta_rules_key, sizeof(format::RulesEntry), env_path,
                    &rules_) &&
        (read_rules(txn, meta_dbi_, format::meta_rules_v2_key, format::rules_v2_entry_bytes,
                    env_path, &rules_) ||
         read_rules(txn, meta_dbi_, format::meta_rules_v1_key, format::rules_v1_entry_bytes,
                    env_path, &rules_))) {
        rules_unwritten_ = true;  // Into meta["rules3"] from now on.
    }
    // Entries under which nothing was logged constrain nothing: this run's replace them.
    while (!rules_.empty() && rules_.back().recorded_at_log_seq >= next_log_seq_) {
        rules_.pop_back();
        rules_unwritten_ = true;
    }
    format::RulesEntry wanted = rules_entry_of(*options_.engine, next_log_seq_);
    wanted.recorded_at_log_seq = next_log_seq_;
    if (rules_.empty()) {
        // Fresh, or written by a build that kept no rules: its records were applied under what
        // was configured then, taken to be what is configured now (recovery checks it), but for
        // points_keep_months, which such a build did not have. The configured rules then follow
        // from the next record on (below).
        format::RulesEntry first = wanted;
        first.from_log_seq = 1;
        first.assumed = next_log_seq_ > 1 ? 1 : 0;
        if (first.assumed != 0) {
            first.points_keep_months = 0;
            first.holds_per_member_max = 0;
            first.pending_lots_per_member_max = 0;
            std::fprintf(stderr,
                         "jifen log: %s: the %llu records here were written by a build that kept "
                         "no engine rules; taking the configured ones for them (expiry_months "
                         "%u, reverse_allows_negative %s)\n",
                         env_path.c_str(), static_cast<unsigned long long>(next_log_seq_ - 1),
                         first.expiry_months, first.reverse_allows_negative != 0 ? "on" : "off");
        }
        rules_.push_back(first);
        rules_unwritten_ = true;
    }
    const format::RulesEntry& last = rules_.back();
    if (wanted.expiry_months != last.expiry_months) {
        throw StartupError(
            "jifen log: engine.expiry_months is " + std::to_string(wanted.expiry_months) +
            " but the records in " + env_path + " up to log sequence " +
            std::to_string(next_log_seq_ - 1) + " were applied with " +
            std::to_string(last.expiry_months) +
            (rules_.front().assumed != 0
                 ? " (taken for the records of an older build when this build "
                   "first opened the directory, and kept by the records since)"
                 : "") +
            "; it cannot change once anything is logged (the points' lots carry their month "
            "only while expiry is on): configure " +
            std::to_string(last.expiry_months) + ", or start on an empty data directory");
    }
    // Tables never shrink below what logged records ran with: a replay may need that room.
    wanted.members_per_shard_max =
        std::max(wanted.members_per_shard_max, last.members_per_shard_max);
    wanted.holds_per_shard_max = std::max(wanted.holds_per_shard_max, last.holds_per_shard_max);
    wanted.lots_per_shard_max = std::max(wanted.lots_per_shard_max, last.lots_per_shard_max);
    wanted.recorded_at_log_seq = last.recorded_at_log_seq;
    wanted.assumed = last.assumed;
    wanted.from_log_seq = last.from_log_seq;
    if (std::memcmp(&wanted, &last, sizeof(wanted)) == 0) {
        return;  // The same settings: the last entry goes on.
    }
    wanted.from_log_seq = next_log_seq_;
    wanted.recorded_at_log_seq = next_log_seq_;
    wanted.assumed = 0;
    rules_.push_back(wanted);
    rules_unwritten_ = true;
}

void LmdbLog::write_rules() {
    if (!rules_unwritten_) {
        return;
    }
    MDB_txn* txn = nullptr;
    check_startup(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
    MDB_val key = as_val(format::meta_rules_key, sizeof(format::meta_rules_key) - 1);
    MDB_val value = as_val(rules_.data(), rules_.size() * sizeof(format::RulesEntry));
    const int put_rc = mdb_put(txn, meta_dbi_, &key, &value, 0);
    if (put_rc != 0) {
        mdb_txn_abort(txn);
        check_startup(put_rc, "write rules");
    }
    check_startup(mdb_txn_commit(txn), "commit rules");
    rules_unwritten_ = false;
}

engine::Config LmdbLog::engine_config() const {
    engine::Config config = options_.engine.value_or(engine::Config{});
    if (!rules_.empty()) {
        const format::RulesEntry& last = rules_.back();
        config.members_per_shard_max = last.members_per_shard_max;
        config.holds_per_shard_max = last.holds_per_shard_max;
        config.lots_per_shard_max = last.lots_per_shard_max;
    }
    return config;
}

}  // namespace jifen::wal
