// CMbedTLS — Debian's libmbedtls: 2.28 (bookworm, no pkg-config file; libraries named in
// Package.swift) or 3.6 (trixie), told apart by MBEDTLS_VERSION_NUMBER at build time.
// Only WispTLS imports this module. Every call whose signature or name differs between the
// two, and every structure field one of them makes private, is behind a `wisp_` wrapper
// here: the Swift code above is the same for both. What 3.6 changed, and where it went:
//   sha256_ret -> sha256                       wisp_sha256
//   pk_parse_key gained f_rng/p_rng             wisp_pk_parse_key
//   ecp keypair fields (grp, Q, d) private      wisp_pk_is_p256, wisp_p256_* (accessors)
//   ecdsa_write_signature gained sig_size       wisp_p256_sign
//   x509write_crt_set_serial deprecated         wisp_x509write_crt_set_serial
//   conf_min/max_version deprecated             wisp_ssl_conf_dtls12_only
//   conf_curves/conf_sig_hashes deprecated      wisp_ssl_conf_groups_and_sigs
//   crt->sig, sig_md, sig_pk private            wisp_x509_crt_self_signed (from crt->raw)
//   ssl->in_msg private                         wisp_ssl_received_alert (-1 on 3.x)
//   ssl->badmac_seen private (and, from 3.6.3,  not read at all: WispTLS counts bad records
//     shared with the handshake fragment length) itself with mbedtls_ssl_check_record
//   error codes renamed/merged                  WISP_ERR_SSL_*
//   from 3.6.3 a client without a hostname      wisp_ssl_client_no_hostname
//     fails every handshake (-0x5D80)
#include <mbedtls/version.h>
#include <mbedtls/sha256.h>
#include <mbedtls/error.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/md.h>
#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cookie.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/cipher.h>
#include <mbedtls/platform_util.h>
#include <string.h>

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define WISP_MBEDTLS_3 1
#elif MBEDTLS_VERSION_NUMBER < 0x021C0000
#error "wisp needs mbedTLS 2.28 or 3.6"
#endif

// --- Error codes whose names differ ---
#ifdef WISP_MBEDTLS_3
/// The peer offered no DTLS 1.2.
#define WISP_ERR_SSL_BAD_PROTOCOL_VERSION MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION
/// No suite in common: 3.x reports it (and other parameter mismatches) as a handshake failure.
#define WISP_ERR_SSL_NO_CIPHER_CHOSEN MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE
#else
#define WISP_ERR_SSL_BAD_PROTOCOL_VERSION MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION
#define WISP_ERR_SSL_NO_CIPHER_CHOSEN MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN
#endif

/// The mbedTLS major version wisp was built against (2 or 3), for `wisp --version`.
static inline int wisp_mbedtls_major(void) { return MBEDTLS_VERSION_MAJOR; }

/// SHA-256 of len bytes; 0 or an error.
static inline int wisp_sha256(const unsigned char *in, size_t len, unsigned char out[32]) {
#ifdef WISP_MBEDTLS_3
  return mbedtls_sha256(in, len, out, 0);
#else
  return mbedtls_sha256_ret(in, len, out, 0);
#endif
}

/// Parses a private key (PEM with its NUL counted, or DER). 3.x uses the RNG for blinding
/// when it derives a public key; 2.28 takes none.
static inline int wisp_pk_parse_key(mbedtls_pk_context *pk, const unsigned char *key, size_t keylen,
                                    int (*f_rng)(void *, unsigned char *, size_t), void *p_rng) {
#ifdef WISP_MBEDTLS_3
  return mbedtls_pk_parse_key(pk, key, keylen, NULL, 0, f_rng, p_rng);
#else
  (void)f_rng; (void)p_rng;
  return mbedtls_pk_parse_key(pk, key, keylen, NULL, 0);
#endif
}

/// The group of an EC key pair.
static inline mbedtls_ecp_group_id wisp_ecp_group_id(const mbedtls_ecp_keypair *ec) {
#ifdef WISP_MBEDTLS_3
  return mbedtls_ecp_keypair_get_group_id(ec);
#else
  return ec->grp.id;
#endif
}

/// 1 if pk holds an EC key on P-256, else 0.
static inline int wisp_pk_is_p256(const mbedtls_pk_context *pk) {
  if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY) return 0;
  return wisp_ecp_group_id(mbedtls_pk_ec(*pk)) == MBEDTLS_ECP_DP_SECP256R1;
}

/// Sets a certificate's serial number from big-endian bytes (at most 20).
static inline int wisp_x509write_crt_set_serial(mbedtls_x509write_cert *w, unsigned char *serial, size_t len) {
#ifdef WISP_MBEDTLS_3
  return mbedtls_x509write_crt_set_serial_raw(w, serial, len);
#else
  mbedtls_mpi m; mbedtls_mpi_init(&m);
  int r = mbedtls_mpi_read_binary(&m, serial, len);
  if (r == 0) r = mbedtls_x509write_crt_set_serial(w, &m);
  mbedtls_mpi_free(&m);
  return r;
#endif
}

/// DTLS 1.2 only, both ways.
static inline void wisp_ssl_conf_dtls12_only(mbedtls_ssl_config *conf) {
#ifdef WISP_MBEDTLS_3
  mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
  mbedtls_ssl_conf_max_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
  mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
}

/// Key exchange groups X25519 then P-256, and ECDSA with SHA-256 as the only signature
/// algorithm. The lists are static: mbedTLS keeps pointers to them for the life of conf.
static inline void wisp_ssl_conf_groups_and_sigs(mbedtls_ssl_config *conf) {
#ifdef WISP_MBEDTLS_3
  static const uint16_t groups[] = { MBEDTLS_SSL_IANA_TLS_GROUP_X25519, MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
                                     MBEDTLS_SSL_IANA_TLS_GROUP_NONE };
  static const uint16_t sigs[] = { MBEDTLS_TLS1_3_SIG_ECDSA_SECP256R1_SHA256, MBEDTLS_TLS1_3_SIG_NONE };
  mbedtls_ssl_conf_groups(conf, groups);
  mbedtls_ssl_conf_sig_algs(conf, sigs);
#else
  static const mbedtls_ecp_group_id curves[] = { MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_NONE };
  static const int hashes[] = { MBEDTLS_MD_SHA256, MBEDTLS_MD_NONE };
  mbedtls_ssl_conf_curves(conf, curves);
  mbedtls_ssl_conf_sig_hashes(conf, hashes);
#endif
}

/// A client checks the server by pinned key, not by name. From 3.6.3 mbedTLS refuses a
/// client handshake that verifies certificates without a hostname unless the hostname was
/// explicitly set to NULL; 2.28 accepts the same call. 0 or an error.
static inline int wisp_ssl_client_no_hostname(mbedtls_ssl_context *ssl) {
  return mbedtls_ssl_set_hostname(ssl, NULL);
}

/// The description byte of the fatal alert the peer sent, when the library lets it be read
/// (2.28: the decrypted record in in_msg); -1 otherwise (3.x keeps it private: WispTLS falls
/// back to the alert it saw in plaintext on the wire).
static inline int wisp_ssl_received_alert(const mbedtls_ssl_context *ssl) {
#ifdef WISP_MBEDTLS_3
  (void)ssl;
  return -1;
#else
  return ssl->in_msg != NULL ? ssl->in_msg[1] : -1;
#endif
}

/// Whether the first record of a datagram failed authentication (a bad MAC) for this
/// session: checked on a copy, so the caller's datagram is untouched. 1 bad MAC, 0 anything
/// else (valid, a replay, another epoch, malformed). The record layer's own bad-MAC limit is
/// off (WispTLS counts with this): in 3.6.3+ the counter shares a field with the handshake
/// fragment length, so it cannot be adjusted from outside.
static inline int wisp_ssl_record_bad_mac(const mbedtls_ssl_context *ssl, const unsigned char *d, size_t len) {
  unsigned char copy[2048];
  if (len == 0 || len > sizeof copy) return 0;
  memcpy(copy, d, len);
  int r = mbedtls_ssl_check_record(ssl, copy, len);
  mbedtls_platform_zeroize(copy, len);
  return r == MBEDTLS_ERR_SSL_INVALID_MAC;
}

/// Whether a certificate's signature verifies under its own public key (ECDSA, SHA-256/384/
/// 512). The signature algorithm and value are read from the certificate's DER (`raw`, public
/// in both versions): SEQUENCE { tbsCertificate, AlgorithmIdentifier, BIT STRING }.
/// 1 valid, 0 not.
static inline int wisp_x509_crt_self_signed(mbedtls_x509_crt *crt) {
  unsigned char *p = crt->raw.p, *end = crt->raw.p + crt->raw.len;
  size_t len;
  if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) return 0;
  end = p + len;
  if (crt->tbs.p != p || crt->tbs.len > (size_t)(end - p)) return 0;
  p += crt->tbs.len;
  mbedtls_asn1_buf alg, params;
  if (mbedtls_asn1_get_alg(&p, end, &alg, &params) != 0) return 0;
  mbedtls_md_type_t md; mbedtls_pk_type_t pkalg;
  if (mbedtls_oid_get_sig_alg(&alg, &md, &pkalg) != 0 || pkalg != MBEDTLS_PK_ECDSA) return 0;
  if (md != MBEDTLS_MD_SHA256 && md != MBEDTLS_MD_SHA384 && md != MBEDTLS_MD_SHA512) return 0;
  mbedtls_asn1_bitstring sig;
  if (mbedtls_asn1_get_bitstring(&p, end, &sig) != 0 || sig.unused_bits != 0 || p != end) return 0;
  const mbedtls_md_info_t *info = mbedtls_md_info_from_type(md);
  unsigned char hash[64];
  if (info == NULL || mbedtls_md(info, crt->tbs.p, crt->tbs.len, hash) != 0) return 0;
  return mbedtls_pk_verify(&crt->pk, md, hash, mbedtls_md_get_size(info), sig.p, sig.len) == 0;
}

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
/// drbg: a seeded generator (3.x's key parsing may need one).
static inline int wisp_p256_parse(mbedtls_pk_context *pk, const unsigned char *key, size_t keylen,
                                  mbedtls_ctr_drbg_context *drbg) {
  int r = wisp_pk_parse_key(pk, key, keylen, mbedtls_ctr_drbg_random, drbg);
  if (r != 0) return r;
  if (!wisp_pk_is_p256(pk)) return MBEDTLS_ERR_PK_KEY_INVALID_FORMAT;
  return 0;
}

/// The group, private scalar and public point of a P-256 key pair, copied out (3.x keeps the
/// key pair's fields private; 2.28 has no export function).
typedef struct wisp_p256_parts {
  mbedtls_ecp_group grp;
  mbedtls_mpi d;
  mbedtls_ecp_point Q;
} wisp_p256_parts;

static inline void wisp_p256_parts_free(wisp_p256_parts *k) {
  mbedtls_ecp_group_free(&k->grp); mbedtls_mpi_free(&k->d); mbedtls_ecp_point_free(&k->Q);
}

static inline int wisp_p256_parts_of(const mbedtls_pk_context *pk, wisp_p256_parts *k) {
  mbedtls_ecp_group_init(&k->grp); mbedtls_mpi_init(&k->d); mbedtls_ecp_point_init(&k->Q);
  const mbedtls_ecp_keypair *ec = mbedtls_pk_ec(*pk);
#ifdef WISP_MBEDTLS_3
  return mbedtls_ecp_export(ec, &k->grp, &k->d, &k->Q);
#else
  int r = mbedtls_ecp_group_copy(&k->grp, &ec->grp);
  if (r == 0) r = mbedtls_mpi_copy(&k->d, &ec->d);
  if (r == 0) r = mbedtls_ecp_copy(&k->Q, &ec->Q);
  return r;
#endif
}

/// The 65-byte uncompressed public point of a private key; 0 or an error.
static inline int wisp_p256_public(const unsigned char *key, size_t keylen, unsigned char pub[65]) {
  mbedtls_entropy_context ent; mbedtls_ctr_drbg_context drbg; mbedtls_pk_context pk;
  mbedtls_entropy_init(&ent); mbedtls_ctr_drbg_init(&drbg); mbedtls_pk_init(&pk);
  int r = wisp_drbg_seed(&ent, &drbg);
  if (r == 0) r = wisp_p256_parse(&pk, key, keylen, &drbg);
  size_t olen = 0;
  if (r == 0) {
    wisp_p256_parts k;
    r = wisp_p256_parts_of(&pk, &k);
    if (r == 0) r = mbedtls_ecp_point_write_binary(&k.grp, &k.Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, pub, 65);
    if (r == 0 && olen != 65) r = MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
    wisp_p256_parts_free(&k);
  }
  mbedtls_pk_free(&pk); mbedtls_ctr_drbg_free(&drbg); mbedtls_entropy_free(&ent);
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
  int r = wisp_drbg_seed(&ent, &drbg);
  if (r == 0) r = wisp_p256_parse(&pk, key, keylen, &drbg);
#ifdef WISP_MBEDTLS_3
  if (r == 0) r = mbedtls_ecdsa_write_signature(mbedtls_pk_ec(pk), MBEDTLS_MD_SHA256, hash, 32, buf, sizeof buf, &len,
                                                mbedtls_ctr_drbg_random, &drbg);
#else
  if (r == 0) r = mbedtls_ecdsa_write_signature(mbedtls_pk_ec(pk), MBEDTLS_MD_SHA256, hash, 32, buf, &len,
                                                mbedtls_ctr_drbg_random, &drbg);
#endif
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
  mbedtls_ecp_group grp; mbedtls_ecp_point q;
  mbedtls_ecp_group_init(&grp); mbedtls_ecp_point_init(&q);
  int r = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1);
  if (r == 0) r = mbedtls_ecp_point_read_binary(&grp, &q, pub, publen);
  if (r == 0) r = mbedtls_ecp_check_pubkey(&grp, &q);
#ifdef WISP_MBEDTLS_3
  if (r == 0) r = mbedtls_ecp_set_public_key(MBEDTLS_ECP_DP_SECP256R1, &ctx, &q);
#else
  if (r == 0) r = mbedtls_ecp_group_copy(&ctx.grp, &grp);
  if (r == 0) r = mbedtls_ecp_copy(&ctx.Q, &q);
#endif
  if (r == 0) r = mbedtls_ecdsa_read_signature(&ctx, hash, 32, sig, siglen);
  mbedtls_ecp_point_free(&q); mbedtls_ecp_group_free(&grp);
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
  wisp_p256_parts k;
  int r = wisp_drbg_seed(&ent, &drbg);
  if (r == 0) r = wisp_p256_parse(&pk, key, keylen, &drbg);
  int parts = r == 0;
  if (parts) r = wisp_p256_parts_of(&pk, &k);
  if (r == 0) r = mbedtls_ecp_point_read_binary(&k.grp, &q, peer, 65);
  if (r == 0) r = mbedtls_ecp_check_pubkey(&k.grp, &q);
  if (r == 0) r = mbedtls_ecdh_compute_shared(&k.grp, &z, &q, &k.d, mbedtls_ctr_drbg_random, &drbg);
  if (r == 0) r = mbedtls_mpi_write_binary(&z, out, 32);
  if (parts) wisp_p256_parts_free(&k);
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
  wisp_p256_parts parts;  // copied out of pk once
  int hasParts;
} wisp_ecdh_key;

static inline void wisp_ecdh_key_free(wisp_ecdh_key *k) {
  if (!k) return;
  if (k->hasParts) wisp_p256_parts_free(&k->parts);
  mbedtls_pk_free(&k->pk); mbedtls_ctr_drbg_free(&k->drbg); mbedtls_entropy_free(&k->ent);
  free(k);
}

/// Parses `key` (PEM with its NUL, or DER) and seeds the DRBG; NULL on any error.
static inline wisp_ecdh_key *wisp_ecdh_key_new(const unsigned char *key, size_t keylen) {
  wisp_ecdh_key *k = (wisp_ecdh_key *)calloc(1, sizeof *k);
  if (!k) return NULL;
  mbedtls_entropy_init(&k->ent); mbedtls_ctr_drbg_init(&k->drbg); mbedtls_pk_init(&k->pk);
  if (wisp_drbg_seed(&k->ent, &k->drbg) != 0 || wisp_p256_parse(&k->pk, key, keylen, &k->drbg) != 0) {
    wisp_ecdh_key_free(k);
    return NULL;
  }
  k->hasParts = 1;
  if (wisp_p256_parts_of(&k->pk, &k->parts) != 0) {
    wisp_ecdh_key_free(k);
    return NULL;
  }
  return k;
}

/// ECDH of the parsed key with a peer's uncompressed point (checked on the curve); 0 or an error.
static inline int wisp_ecdh_key_compute(wisp_ecdh_key *k, const unsigned char peer[65], unsigned char out[32]) {
  mbedtls_ecp_point q; mbedtls_mpi z;
  mbedtls_ecp_point_init(&q); mbedtls_mpi_init(&z);
  int r = mbedtls_ecp_point_read_binary(&k->parts.grp, &q, peer, 65);
  if (r == 0) r = mbedtls_ecp_check_pubkey(&k->parts.grp, &q);
  if (r == 0) r = mbedtls_ecdh_compute_shared(&k->parts.grp, &z, &q, &k->parts.d, mbedtls_ctr_drbg_random, &k->drbg);
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
