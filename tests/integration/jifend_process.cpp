// Child-process control for the integration tests (see jifend_process.hpp).
#include "tests/integration/jifend_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>

namespace jifen::testing {

namespace {

using tcp = boost::asio::ip::tcp;

// Readiness: up to this many connect attempts, one every poll interval (60 s in all, for a slow
// machine shared by several builds); the test continues as soon as one succeeds.
constexpr int ready_attempts_max = 1'200;
constexpr auto ready_poll_interval = std::chrono::milliseconds(50);

std::string read_file(const std::filesystem::path& path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

bool accepts_connections(uint16_t port) {
    boost::asio::io_context io;
    tcp::socket socket(io);
    boost::system::error_code error;
    socket.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port), error);
    return !error;
}

// True when process `pid` holds a listening TCP socket on `port` (Linux /proc). A port that
// accepts may belong to another test's server, which took it between two_free_ports() and this
// server's bind; talking to that one instead fails in confusing ways.
bool listens_on(pid_t pid, uint16_t port) {
    std::set<std::string> inodes;
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream file(table);
        std::string line;
        std::getline(file, line);  // The header.
        while (std::getline(file, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
            fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
                timeout >> inode;
            const size_t colon = local.rfind(':');
            if (state == "0A" && colon != std::string::npos &&
                std::stoul(local.substr(colon + 1), nullptr, 16) == port) {
                inodes.insert(inode);
            }
        }
    }
    std::error_code error;
    std::filesystem::directory_iterator fd("/proc/" + std::to_string(pid) + "/fd", error);
    for (; !error && fd != std::filesystem::directory_iterator(); fd.increment(error)) {
        const std::string target = std::filesystem::read_symlink(fd->path(), error).string();
        if (!error && target.starts_with("socket:[") &&
            inodes.contains(target.substr(8, target.size() - 9))) {
            return true;
        }
    }
    return false;
}

}  // namespace

uint16_t free_port() {
    boost::asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    return acceptor.local_endpoint().port();
}

std::pair<uint16_t, uint16_t> two_free_ports() {
    boost::asio::io_context io;
    const tcp::endpoint any_loopback_port(boost::asio::ip::make_address("127.0.0.1"), 0);
    tcp::acceptor first(io, any_loopback_port);
    tcp::acceptor second(io, any_loopback_port);
    return {first.local_endpoint().port(), second.local_endpoint().port()};
}

TempDir::TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "jifen-it-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

JifendProcess::JifendProcess(std::filesystem::path data_dir, uint32_t shard_count,
                             std::vector<std::string> extra_args)
    : data_dir_(std::move(data_dir)),
      shard_count_(shard_count),
      extra_args_(std::move(extra_args)),
      log_path_(data_dir_.string() + ".log") {}

JifendProcess::~JifendProcess() {
    if (pid_ > 0) {
        stop(SIGKILL);
    }
}

void JifendProcess::start() {
    // Free ports can be taken by another test before jifend binds them: then try other ones.
    for (int attempt = 1;; ++attempt) {
        std::tie(port_, http_port_) = two_free_ports();
        try {
            start_again();
            return;
        } catch (const std::runtime_error&) {
            if (attempt == 3 || log().find("already in use") == std::string::npos) {
                throw;
            }
        }
    }
}

void JifendProcess::start_again() {
    std::vector<std::string> args = {JIFEND_PATH,
                                     "--data-dir",
                                     data_dir_.string(),
                                     "--port",
                                     std::to_string(port_),
                                     "--http-port",
                                     std::to_string(http_port_),
                                     "--shards",
                                     std::to_string(shard_count_),
                                     "--log-level",
                                     "warn"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    for (std::string& arg : args) {
        argv.push_back(arg.data());
    }
    argv.push_back(nullptr);

    const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log_fd < 0) {
        throw std::runtime_error("cannot open " + log_path_.string());
    }
    const pid_t pid = fork();
    if (pid == 0) {
        // If the test process dies (a crash, a timeout kill), take the server with it instead of
        // leaving it running on its ports.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        execv(argv[0], argv.data());
        _exit(127);
    }
    ::close(log_fd);
    if (pid < 0) {
        throw std::runtime_error("fork failed");
    }
    pid_ = pid;
    for (int attempt = 0; attempt < ready_attempts_max; ++attempt) {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("jifend exited during startup:\n" + log());
        }
        if (accepts_connections(port_) && listens_on(pid_, port_)) {
            return;
        }
        std::this_thread::sleep_for(ready_poll_interval);
    }
    stop(SIGKILL);
    throw std::runtime_error("jifend did not listen in time:\n" + log());
}

int JifendProcess::stop(int signal) {
    if (pid_ <= 0) {
        return -1;
    }
    ::kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
}

void JifendProcess::send_signal(int signal) const {
    if (pid_ > 0) {
        ::kill(pid_, signal);
    }
}

client::Options JifendProcess::options(const std::string& api_key) const {
    client::Options options;
    options.port = port_;
    options.api_key = api_key;
    options.client_name = "integration-test";
    options.reconnect_attempts = 0;
    return options;
}

std::string JifendProcess::log() const { return read_file(log_path_); }

namespace {

// Runs `command` through the shell with stdout and stderr captured in temporary files.
CliResult run_captured(const std::string& command) {
    static int sequence = 0;
    const std::filesystem::path base =
        std::filesystem::temp_directory_path() /
        ("jifen-cli-" + std::to_string(getpid()) + "-" + std::to_string(++sequence));
    const std::string out_path = base.string() + ".out";
    const std::string err_path = base.string() + ".err";
    const int status = std::system((command + " > " + out_path + " 2> " + err_path).c_str());
    CliResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.out = read_file(out_path);
    result.err = read_file(err_path);
    std::filesystem::remove(out_path);
    std::filesystem::remove(err_path);
    return result;
}

std::string quoted(const std::vector<std::string>& args) {
    std::string words;
    for (const std::string& arg : args) {
        words += " '" + arg + "'";
    }
    return words;
}

}  // namespace

CliResult run_cli(uint16_t port, const std::vector<std::string>& args, const std::string& api_key) {
    std::string command;
    // The caller's environment must not choose the key: unset unless the test sets one.
    command += api_key.empty() ? "env -u JIFEN_KEY " : "env JIFEN_KEY='" + api_key + "' ";
    command += std::string(JIFEN_CLI_PATH) + " --port " + std::to_string(port);
    return run_captured(command + quoted(args));
}

CliResult run_jifend(const std::vector<std::string>& args) {
    return run_captured(std::string(JIFEND_PATH) + quoted(args));
}

}  // namespace jifen::testing
