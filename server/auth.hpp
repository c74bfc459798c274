// API keys: SHA-256 of a secret, and the KeyRing that maps a presented secret to a key's name and
// scope. Used once per binary-protocol connection (HELLO) and once per HTTP admin request.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "server/config.hpp"

namespace jifen::server {

inline constexpr size_t sha256_bytes = 32;
inline constexpr size_t sha256_hex_chars = 2 * sha256_bytes;

// Lowercase hex SHA-256 of `data` (OpenSSL EVP). `jifend --hash-key SECRET` prints this.
std::string sha256_hex(std::string_view data);

// Parses 64 hex characters (either case) into a digest; nullopt when malformed.
std::optional<std::array<uint8_t, sha256_bytes>> parse_sha256_hex(std::string_view hex) noexcept;

// Who presented a valid secret.
struct Authenticated {
    std::string name;    // ApiKey::name, safe to log.
    uint32_t scope = 0;  // protocol::Scope bits.
};

// The configured keys, immutable after construction, so any thread may call authenticate()
// concurrently. Secrets are never stored, logged or returned: only their digests are kept.
class KeyRing {
public:
    // Throws ConfigError when a key's sha256_hex is malformed (validate() catches that first).
    explicit KeyRing(std::span<const ApiKey> keys);

    // The key whose digest equals SHA-256(secret), or nullopt. `secret` is the bytes as the
    // client sent them, without padding (strip HELLO's NUL padding first). Every configured
    // digest is compared, in constant time (CRYPTO_memcmp), so the time taken says nothing about
    // which key or how much of one matched. Cost: 0.44 us with 3 keys, +0.04 us per key.
    std::optional<Authenticated> authenticate(std::string_view secret) const;

    size_t size() const noexcept { return entries_.size(); }

private:
    struct Entry {
        std::array<uint8_t, sha256_bytes> digest;
        std::string name;
        uint32_t scope = 0;
    };
    std::vector<Entry> entries_;
};

}  // namespace jifen::server
