// Tests of server/auth.cpp: SHA-256 and the KeyRing.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/wire.hpp"
#include "server/auth.hpp"
#include "server/config.hpp"

namespace jifen::server {
namespace {

TEST(SupportAuth, Sha256MatchesTheFips180KnownVectors) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(SupportAuth, Sha256HandlesEmbeddedNulBytes) {
    const std::string with_nul("a\0b", 3);
    EXPECT_NE(sha256_hex(with_nul), sha256_hex("a"));
    EXPECT_EQ(sha256_hex(with_nul).size(), sha256_hex_chars);
}

TEST(SupportAuth, ParseSha256HexAcceptsBothCasesAndRejectsTheRest) {
    const auto lower = parse_sha256_hex(sha256_hex("abc"));
    ASSERT_TRUE(lower);
    EXPECT_EQ((*lower)[0], 0xba);
    EXPECT_EQ((*lower)[31], 0xad);
    EXPECT_EQ(parse_sha256_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"),
              lower);
    EXPECT_FALSE(parse_sha256_hex(""));
    EXPECT_FALSE(parse_sha256_hex(std::string(63, 'a')));
    EXPECT_FALSE(parse_sha256_hex(std::string(65, 'a')));
    EXPECT_FALSE(parse_sha256_hex(std::string(63, 'a') + "g"));
}

std::vector<ApiKey> test_keys() {
    return {
        ApiKey{"admin", sha256_hex("admin secret"), protocol::scope_admin},
        ApiKey{"pos", sha256_hex("pos secret"), protocol::scope_pos | protocol::scope_read},
        ApiKey{"reader", sha256_hex("read secret"), protocol::scope_read},
    };
}

TEST(SupportAuth, KeyRingAcceptsEachRightSecretWithItsNameAndScope) {
    const KeyRing keys(test_keys());
    EXPECT_EQ(keys.size(), 3u);
    const auto admin = keys.authenticate("admin secret");
    ASSERT_TRUE(admin);
    EXPECT_EQ(admin->name, "admin");
    EXPECT_EQ(admin->scope, protocol::scope_admin);
    const auto pos = keys.authenticate("pos secret");
    ASSERT_TRUE(pos);
    EXPECT_EQ(pos->name, "pos");
    EXPECT_EQ(pos->scope, protocol::scope_pos | protocol::scope_read);
    const auto reader = keys.authenticate("read secret");
    ASSERT_TRUE(reader);
    EXPECT_EQ(reader->name, "reader");
    EXPECT_EQ(reader->scope, protocol::scope_read);
}

TEST(SupportAuth, KeyRingRejectsWrongSecrets) {
    const KeyRing keys(test_keys());
    EXPECT_FALSE(keys.authenticate(""));
    EXPECT_FALSE(keys.authenticate("admin secre"));
    EXPECT_FALSE(keys.authenticate("admin secret "));
    EXPECT_FALSE(keys.authenticate("Admin secret"));
    // The digest is not the secret.
    EXPECT_FALSE(keys.authenticate(sha256_hex("admin secret")));
}

TEST(SupportAuth, EmptyKeyRingRejectsEverything) {
    const KeyRing keys(std::vector<ApiKey>{});
    EXPECT_FALSE(keys.authenticate("admin secret"));
    EXPECT_FALSE(keys.authenticate(""));
}

TEST(SupportAuth, DefaultConfigKeysAuthenticateTheDocumentedDevelopmentSecrets) {
    const KeyRing keys(default_config().api_keys);
    const auto admin = keys.authenticate("dev-admin-key");
    ASSERT_TRUE(admin);
    EXPECT_EQ(admin->name, "dev-admin");
    EXPECT_NE(admin->scope & protocol::scope_admin, 0u);
    const auto pos = keys.authenticate("dev-pos-key");
    ASSERT_TRUE(pos);
    EXPECT_EQ(pos->scope & protocol::scope_admin, 0u);
    const auto reader = keys.authenticate("dev-read-key");
    ASSERT_TRUE(reader);
    EXPECT_EQ(reader->scope, protocol::scope_read);
}

TEST(SupportAuth, KeyRingRefusesAMalformedDigest) {
    const std::vector<ApiKey> keys = {ApiKey{"bad", "not hex", protocol::scope_read}};
    EXPECT_THROW(KeyRing{keys}, ConfigError);
}

}  // namespace
}  // namespace jifen::server
