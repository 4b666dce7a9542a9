// CMbedTLS — Debian's libmbedtls 2.28 (no pkg-config file; libraries named in Package.swift).
// Only WispTLS imports this module.
#include <mbedtls/version.h>
#include <mbedtls/sha256.h>
#include <mbedtls/error.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/md.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cookie.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/cipher.h>

// --- P-256 ECDSA for credit receipts and claim files (WispTLS/ReceiptCrypto.swift) ---
#include <mbedtls/pk.h>
#include <mbedtls/ecp.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ctr_drbg.h>
#include <string.h>
#include <stdlib.h>

/// Seeds a CTR-DRBG from the platform entropy source; 0 or an mbedTLS error.
static inline int wisp_drbg_seed(mbedtls_entropy_context *ent, mbedtls_ctr_drbg_context *drbg) {
  static const unsigned char pers[] = "wisp-receipt";
  return mbedtls_ctr_drbg_seed(drbg, mbedtls_entropy_func, ent, pers, sizeof pers - 1);
}

/// Generates a P-256 key and writes it as PEM ("EC PRIVATE KEY") into out.
/// Returns the PEM length including its NUL, or a negative mbedTLS error.
static inline int wisp_p256_generate_pem(unsigned char *out, size_t cap) {
  mbedtls_entropy_context ent; mbedtls_ctr_drbg_context drbg; mbedtls_pk_context pk;
  mbedtls_entropy_init(&ent); mbedtls_ctr_drbg_init(&drbg); mbedtls_pk_init(&pk);
  int r = wisp_drbg_seed(&ent, &drbg);
  if (r == 0) r = mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
  if (r == 0) r = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), mbedtls_ctr_drbg_random, &drbg);
  if (r == 0) r = mbedtls_pk_write_key_pem(&pk, out, cap);
  if (r == 0) r = (int)strlen((const char *)out) + 1;
  mbedtls_pk_free(&pk); mbedtls_ctr_drbg_free(&drbg); mbedtls_entropy_free(&ent);
  return r;
}

/// Parses a PEM (NUL included in keylen) or DER P-256 private key into pk; 0 or an error.
static inline int wisp_p256_parse(mbedtls_pk_context *pk, const unsigned char *key, size_t keylen) {
  int r = mbedtls_pk_parse_key(pk, key, keylen, NULL, 0);
  if (r != 0) return r;
  if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY || mbedtls_pk_ec(*pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1)
    return MBEDTLS_ERR_PK_KEY_INVALID_FORMAT;
  return 0;
}

/// The 65-byte uncompressed public point of a private key; 0 or an error.
static inline int wisp_p256_public(const unsigned char *key, size_t keylen, unsigned char pub[65]) {
  mbedtls_pk_context pk; mbedtls_pk_init(&pk);
  int r = wisp_p256_parse(&pk, key, keylen);
  size_t olen = 0;
  if (r == 0) {
    mbedtls_ecp_keypair *ec = mbedtls_pk_ec(pk);
    r = mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, pub, 65);
    if (r == 0 && olen != 65) r = MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
  }
  mbedtls_pk_free(&pk);
  return r;
}

/// Signs a SHA-256 hash with a private key: DER ECDSA into sig (cap ≥ 72).
/// Returns the signature length or a negative error.
static inline int wisp_p256_sign(const unsigned char *key, size_t keylen, const unsigned char hash[32],
                                 unsigned char *sig, size_t cap) {
  mbedtls_entropy_context ent; mbedtls_ctr_drbg_context drbg; mbedtls_pk_context pk;
  mbedtls_entropy_init(&ent); mbedtls_ctr_drbg_init(&drbg); mbedtls_pk_init(&pk);
  unsigned char buf[MBEDTLS_ECDSA_MAX_LEN];
  size_t len = 0;
  int r = wisp_p256_parse(&pk, key, keylen);
  if (r == 0) r = wisp_drbg_seed(&ent, &drbg);
  if (r == 0) r = mbedtls_ecdsa_write_signature(mbedtls_pk_ec(pk), MBEDTLS_MD_SHA256, hash, 32, buf, &len,
                                                mbedtls_ctr_drbg_random, &drbg);
  if (r == 0 && len > cap) r = MBEDTLS_ERR_ECP_BUFFER_TOO_SMALL;
  if (r == 0) { memcpy(sig, buf, len); r = (int)len; }
  mbedtls_pk_free(&pk); mbedtls_ctr_drbg_free(&drbg); mbedtls_entropy_free(&ent);
  return r;
}

/// Verifies a DER ECDSA signature of a SHA-256 hash under a raw public point
/// (65-byte uncompressed). 0 if valid, else an error.
static inline int wisp_p256_verify(const unsigned char *pub, size_t publen, const unsigned char hash[32],
                                   const unsigned char *sig, size_t siglen) {
  mbedtls_ecdsa_context ctx; mbedtls_ecdsa_init(&ctx);
  int r = mbedtls_ecp_group_load(&ctx.grp, MBEDTLS_ECP_DP_SECP256R1);
  if (r == 0) r = mbedtls_ecp_point_read_binary(&ctx.grp, &ctx.Q, pub, publen);
  if (r == 0) r = mbedtls_ecp_check_pubkey(&ctx.grp, &ctx.Q);
  if (r == 0) r = mbedtls_ecdsa_read_signature(&ctx, hash, 32, sig, siglen);
  mbedtls_ecdsa_free(&ctx);
  return r;
}

// --- End-to-end sealing between a client and an exit (WispTLS/ExitSealer.swift) ---
#include <mbedtls/ecdh.h>
#include <mbedtls/hkdf.h>

/// ECDH on P-256: the private key (PEM with NUL, or DER) with a peer's 65-byte point;
/// writes the 32-byte shared secret. 0 or an mbedTLS error.
static inline int wisp_p256_ecdh(const unsigned char *key, size_t keylen, const unsigned char peer[65],
                                 unsigned char out[32]) {
  mbedtls_entropy_context ent; mbedtls_ctr_drbg_context drbg; mbedtls_pk_context pk;
  mbedtls_ecp_point q; mbedtls_mpi z;
  mbedtls_entropy_init(&ent); mbedtls_ctr_drbg_init(&drbg); mbedtls_pk_init(&pk);
  mbedtls_ecp_point_init(&q); mbedtls_mpi_init(&z);
  int r = wisp_p256_parse(&pk, key, keylen);
  if (r == 0) r = wisp_drbg_seed(&ent, &drbg);
  mbedtls_ecp_keypair *ec = r == 0 ? mbedtls_pk_ec(pk) : NULL;
  if (r == 0) r = mbedtls_ecp_point_read_binary(&ec->grp, &q, peer, 65);
  if (r == 0) r = mbedtls_ecp_check_pubkey(&ec->grp, &q);
  if (r == 0) r = mbedtls_ecdh_compute_shared(&ec->grp, &z, &q, &ec->d, mbedtls_ctr_drbg_random, &drbg);
  if (r == 0) r = mbedtls_mpi_write_binary(&z, out, 32);
  mbedtls_mpi_free(&z); mbedtls_ecp_point_free(&q);
  mbedtls_pk_free(&pk); mbedtls_ctr_drbg_free(&drbg); mbedtls_entropy_free(&ent);
  return r;
}

/// A P-256 private key parsed once, with its own seeded DRBG, for many ECDH computations
/// (a sealed exit's key agreements, on the worker thread that owns it).
typedef struct wisp_ecdh_key {
  mbedtls_entropy_context ent;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_pk_context pk;
} wisp_ecdh_key;

static inline void wisp_ecdh_key_free(wisp_ecdh_key *k) {
  if (!k) return;
  mbedtls_pk_free(&k->pk); mbedtls_ctr_drbg_free(&k->drbg); mbedtls_entropy_free(&k->ent);
  free(k);
}

/// Parses `key` (PEM with its NUL, or DER) and seeds the DRBG; NULL on any error.
static inline wisp_ecdh_key *wisp_ecdh_key_new(const unsigned char *key, size_t keylen) {
  wisp_ecdh_key *k = (wisp_ecdh_key *)calloc(1, sizeof *k);
  if (!k) return NULL;
  mbedtls_entropy_init(&k->ent); mbedtls_ctr_drbg_init(&k->drbg); mbedtls_pk_init(&k->pk);
  if (wisp_p256_parse(&k->pk, key, keylen) != 0 || wisp_drbg_seed(&k->ent, &k->drbg) != 0) {
    wisp_ecdh_key_free(k);
    return NULL;
  }
  return k;
}

/// ECDH of the parsed key with a peer's uncompressed point (checked on the curve); 0 or an error.
static inline int wisp_ecdh_key_compute(wisp_ecdh_key *k, const unsigned char peer[65], unsigned char out[32]) {
  mbedtls_ecp_keypair *ec = mbedtls_pk_ec(k->pk);
  mbedtls_ecp_point q; mbedtls_mpi z;
  mbedtls_ecp_point_init(&q); mbedtls_mpi_init(&z);
  int r = mbedtls_ecp_point_read_binary(&ec->grp, &q, peer, 65);
  if (r == 0) r = mbedtls_ecp_check_pubkey(&ec->grp, &q);
  if (r == 0) r = mbedtls_ecdh_compute_shared(&ec->grp, &z, &q, &ec->d, mbedtls_ctr_drbg_random, &k->drbg);
  if (r == 0) r = mbedtls_mpi_write_binary(&z, out, 32);
  mbedtls_mpi_free(&z); mbedtls_ecp_point_free(&q);
  return r;
}

/// Random bytes from the key's DRBG; 0 or an error.
static inline int wisp_ecdh_key_random(wisp_ecdh_key *k, unsigned char *out, size_t len) {
  return mbedtls_ctr_drbg_random(&k->drbg, out, len);
}

/// HKDF-SHA256 (RFC 5869) without salt.
static inline int wisp_hkdf_sha256(const unsigned char *ikm, size_t ikmlen, const unsigned char *info, size_t infolen,
                                   unsigned char *out, size_t outlen) {
  return mbedtls_hkdf(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), NULL, 0, ikm, ikmlen, info, infolen, out, outlen);
}
