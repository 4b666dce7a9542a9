// CMbedTLS — Debian's libmbedtls 2.28 (no pkg-config file; libraries named in Package.swift).
#include <mbedtls/version.h>
#include <mbedtls/sha256.h>
