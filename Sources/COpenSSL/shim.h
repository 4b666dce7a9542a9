// COpenSSL: Debian's OpenSSL libcrypto (3.x, libssl-dev) for `wisp credits settle`, host
// build only: P-256 ECDSA verification many times faster than mbedTLS here (figures in
// Tests/Bench/README.md). Imported only under `#if !hasFeature(Embedded)` (WispSettle), so
// the device build neither reads these headers nor links libcrypto (the `link` in
// module.modulemap applies only where the module is imported).
//
// The low-level EC_KEY/ECDSA calls are deprecated in OpenSSL 3 but kept and faster than
// building an EVP_PKEY per key (no provider round trip); one EC_KEY per thread is reused,
// its public point replaced when the key changes.
#ifndef WISP_COPENSSL_SHIM_H
#define WISP_COPENSSL_SHIM_H
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/obj_mac.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

/// The library's version text ("OpenSSL 3.0.x ...").
static inline const char *wisp_ossl_version(void) { return OpenSSL_version(OPENSSL_VERSION); }

/// SHA-256 of `n` bytes into `out` (32 bytes).
static inline void wisp_ossl_sha256(const void *data, size_t n, uint8_t *out) {
  SHA256((const unsigned char *)data, n, out);
}

/// A P-256 key with no point yet (free with wisp_ossl_key_free); NULL when out of memory.
static inline void *wisp_ossl_key_new(void) { return EC_KEY_new_by_curve_name(NID_X9_62_prime256v1); }
static inline void wisp_ossl_key_free(void *k) { EC_KEY_free((EC_KEY *)k); }

/// Sets the public point (65-byte uncompressed, checked on the curve): 1 ok, 0 not a point.
static inline int wisp_ossl_key_set_public(void *k, const uint8_t *point, size_t n) {
  return EC_KEY_oct2key((EC_KEY *)k, point, n, NULL) == 1;
}

/// 1 when `sig` (DER) is a valid signature of SHA-256(msg) under the key's point, else 0.
static inline int wisp_ossl_verify(void *k, const uint8_t *msg, size_t n, const uint8_t *sig, size_t siglen) {
  uint8_t h[32];
  SHA256(msg, n, h);
  return ECDSA_verify(0, h, 32, sig, (int)siglen, (EC_KEY *)k) == 1;
}

/// A new random P-256 private key, or NULL.
static inline void *wisp_ossl_key_generate(void) {
  EC_KEY *k = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
  if (k && EC_KEY_generate_key(k) != 1) { EC_KEY_free(k); k = NULL; }
  return k;
}

/// A private key from PEM (SEC1 "EC PRIVATE KEY" or PKCS#8), or NULL.
static inline void *wisp_ossl_key_from_pem(const uint8_t *pem, size_t n) {
  BIO *b = BIO_new_mem_buf(pem, (int)n);
  if (!b) return NULL;
  EVP_PKEY *p = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
  BIO_free(b);
  if (!p) return NULL;
  EC_KEY *k = EVP_PKEY_get1_EC_KEY(p);
  EVP_PKEY_free(p);
  if (k && (EC_KEY_get0_group(k) == NULL
            || EC_GROUP_get_curve_name(EC_KEY_get0_group(k)) != NID_X9_62_prime256v1)) {
    EC_KEY_free(k);
    return NULL;
  }
  return k;
}

/// Writes the key as SEC1 PEM ("EC PRIVATE KEY", as `wisp keygen` writes) into out; its length or -1.
static inline int wisp_ossl_key_pem(void *k, uint8_t *out, size_t cap) {
  BIO *b = BIO_new(BIO_s_mem());
  if (!b) return -1;
  int r = -1;
  if (PEM_write_bio_ECPrivateKey(b, (EC_KEY *)k, NULL, NULL, 0, NULL, NULL) == 1) {
    char *p = NULL;
    long len = BIO_get_mem_data(b, &p);
    if (len > 0 && (size_t)len <= cap) { memcpy(out, p, (size_t)len); r = (int)len; }
  }
  BIO_free(b);
  return r;
}

/// The public point, 65 bytes uncompressed: 1 ok.
static inline int wisp_ossl_key_public(void *k, uint8_t *out65) {
  const EC_POINT *p = EC_KEY_get0_public_key((EC_KEY *)k);
  return p != NULL && EC_POINT_point2oct(EC_KEY_get0_group((EC_KEY *)k), p, POINT_CONVERSION_UNCOMPRESSED,
                                         out65, 65, NULL) == 65;
}

/// A DER signature of SHA-256(msg) into out (72 bytes room); its length or -1.
static inline int wisp_ossl_sign(void *k, const uint8_t *msg, size_t n, uint8_t *out, size_t cap) {
  uint8_t h[32];
  unsigned int len = 0;
  if (cap < 72) return -1;
  SHA256(msg, n, h);
  if (ECDSA_sign(0, h, 32, out, &len, (EC_KEY *)k) != 1) return -1;
  return (int)len;
}

#endif
