// Runs the real jifend binary as a child process for integration tests: fresh ephemeral ports,
// a temporary data directory, readiness by bounded connect polling, SIGTERM or SIGKILL to stop.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "client/options.hpp"

namespace jifen::testing {

// A free loopback port: the kernel picks one for a socket bound to port 0, which is then closed.
uint16_t free_port();
// Two different free loopback ports, both picked while both sockets are open: two calls of
// free_port() can return the same port, since the first is closed before the second is picked.
std::pair<uint16_t, uint16_t> two_free_ports();

// A new empty directory under the system temp directory, removed by the destructor.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

class JifendProcess {
public:
    // shard_count: --shards; extra_args are appended to the command line.
    JifendProcess(std::filesystem::path data_dir, uint32_t shard_count = 2,
                  std::vector<std::string> extra_args = {});
    ~JifendProcess();  // SIGKILL if still running.
    JifendProcess(const JifendProcess&) = delete;
    JifendProcess& operator=(const JifendProcess&) = delete;

    // Starts jifend on fresh ports and returns once it accepts connections. Throws
    // std::runtime_error (with the server's log) if it exits or does not listen in time.
    void start();
    // Starts jifend again, after stop(), on the ports of the last start: a restart that clients
    // reconnect to.
    void start_again();
    // Sends `signal` and waits for the process; returns its wait status.
    int stop(int signal);
    // Sends `signal` and returns at once.
    void send_signal(int signal) const;
    bool running() const { return pid_ > 0; }

    uint16_t port() const { return port_; }
    uint16_t http_port() const { return http_port_; }
    client::Options options(const std::string& api_key = client::dev_admin_key) const;
    std::string log() const;  // The server's stdout and stderr so far.

private:
    std::filesystem::path data_dir_;
    uint32_t shard_count_;
    std::vector<std::string> extra_args_;
    std::filesystem::path log_path_;
    int pid_ = -1;
    uint16_t port_ = 0;
    uint16_t http_port_ = 0;
};

// What a run of the jifen CLI (or of jifend) printed, and its exit code.
struct CliResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};
// Runs the jifen CLI with `args` against the given port and captures everything.
CliResult run_cli(uint16_t port, const std::vector<std::string>& args,
                  const std::string& api_key = "");
// Runs jifend itself with `args` until it exits: for command lines that must make it exit (a
// refusal, --hash-key, --help), never one that starts a server.
CliResult run_jifend(const std::vector<std::string>& args);

}  // namespace jifen::testing
