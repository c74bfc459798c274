// A self-signed certificate and its key, as PEM files, for the tests of TLS (server, client,
// jifen-bench).
#pragma once

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <memory>

namespace jifen::testing {

// Writes key.pem and cert.pem (P-256, self-signed, valid one hour) into `dir`: CN=localhost, and
// a subjectAltName naming only IP 127.0.0.1, so "localhost" is named by the CN alone.
inline void write_self_signed(const std::filesystem::path& dir) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
    std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
    ASSERT_TRUE(key && cert);
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
    std::unique_ptr<X509_EXTENSION, decltype(&X509_EXTENSION_free)> san(
        X509V3_EXT_conf_nid(nullptr, &context, NID_subject_alt_name, "IP:127.0.0.1"),
        &X509_EXTENSION_free);
    ASSERT_TRUE(san && X509_add_ext(cert.get(), san.get(), -1) == 1);
    ASSERT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
    FILE* key_file = std::fopen((dir / "key.pem").c_str(), "w");
    FILE* cert_file = std::fopen((dir / "cert.pem").c_str(), "w");
    ASSERT_TRUE(key_file != nullptr && cert_file != nullptr);
    PEM_write_PrivateKey(key_file, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    PEM_write_X509(cert_file, cert.get());
    std::fclose(key_file);
    std::fclose(cert_file);
}

}  // namespace jifen::testing
