// swift-tools-version: 6.0
//
// One package, two builds:
//  - host: `swift build` / `swift test` compile everything as normal Swift on x86_64;
//  - firmware: Toolchain/build.sh turns on Embedded Swift for the whole build
//    (toolset flags, never per target here) and links `wisp` for aarch64, armv7
//    hard-float or x86_64 against only libc, libm, libmbedtls and libgpiod.
import PackageDescription

let package = Package(
  name: "wisp",
  products: [
    .executable(name: "wisp", targets: ["wisp"]),
  ],
  targets: [
    // C libraries, each behind its own small module.
    .target(name: "CPosix", path: "Sources/CPosix"),
    .systemLibrary(name: "CMbedTLS", path: "Sources/CMbedTLS"),
    .systemLibrary(name: "CGpiod", path: "Sources/CGpiod", pkgConfig: "libgpiod"),
    // OpenSSL's libcrypto for settlement's fast P-256 (host build only: imported under
    // `#if !hasFeature(Embedded)`, so the firmware neither needs its headers nor links it).
    .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL"),

    // Platform-free logic: wire protocol, pool, circuits, limits, boards, CLI.
    .target(name: "WispCore", path: "Sources/WispCore",
            exclude: ["WIRE-PROTOCOL.md", "LED-PATTERNS.md", "CONFIG.md"]),
    // Linux reached through CPosix: UDP sockets, epoll, clock, signals.
    .target(name: "WispOS", dependencies: ["WispCore", "CPosix"], path: "Sources/WispOS"),
    // The one module that talks to mbedTLS, and the one that talks to libgpiod.
    .target(name: "WispTLS", dependencies: ["WispCore", "WispOS", "CMbedTLS"], path: "Sources/WispTLS",
            exclude: ["SESSIONS.md"]),
    .target(name: "WispGPIO", dependencies: ["WispCore", "CGpiod"], path: "Sources/WispGPIO"),
    // Fakes for the tests (emulated journal storage with power cuts, recording LED output):
    // test targets only, never a dependency of `wisp`.
    .target(name: "WispTestSupport", dependencies: ["WispCore", "WispOS", "CPosix"], path: "Sources/WispTestSupport"),

    // A relay node assembled: shards, control plane, credit worker, peers, reload, LEDs,
    // status and metrics formats, config loading (used by `wisp run` and `wisp demo`).
    .target(name: "WispNode", dependencies: ["WispCore", "WispOS", "WispTLS", "WispGPIO", "CPosix"],
            path: "Sources/WispNode"),
    // The client side: circuits through relays, path choice by RTT, failover, receipts.
    .target(name: "WispClient", dependencies: ["WispCore", "WispOS", "WispTLS", "CPosix"], path: "Sources/WispClient"),

    // Settlement of many nodes' claims (`wisp credits settle`), payer-list and fixture tools:
    // server-side, host build only (every file is empty in the Embedded build).
    .target(name: "WispSettle", dependencies: ["WispCore", "WispOS", "COpenSSL", "CPosix"], path: "Sources/WispSettle",
            exclude: ["SETTLEMENT.md"]),

    // The executable: parses arguments, runs a command, prints.
    .executableTarget(
      name: "wisp",
      dependencies: ["WispCore", "WispOS", "WispTLS", "WispGPIO", "WispNode", "WispClient", "WispSettle", "CPosix"],
      path: "Sources/wisp",
      linkerSettings: [
        .linkedLibrary("mbedtls"), .linkedLibrary("mbedx509"), .linkedLibrary("mbedcrypto"),
        .linkedLibrary("gpiod"),
      ]
    ),
    .testTarget(
      name: "WispCoreTests",
      dependencies: ["WispCore", "WispOS", "WispTestSupport"],
      path: "Tests/WispCoreTests"
    ),
    .testTarget(
      name: "WispNodeTests",
      dependencies: ["WispNode", "WispClient", "WispTLS", "WispOS", "WispCore", "WispTestSupport", "CPosix"],
      path: "Tests/WispNodeTests",
      linkerSettings: [.linkedLibrary("mbedtls"), .linkedLibrary("mbedx509"), .linkedLibrary("mbedcrypto"),
                       .linkedLibrary("gpiod")]
    ),
    .testTarget(
      name: "WispTLSTests",
      dependencies: ["WispTLS", "WispOS", "WispCore", "WispTestSupport", "WispSettle"],
      path: "Tests/WispTLSTests",
      linkerSettings: [.linkedLibrary("mbedtls"), .linkedLibrary("mbedx509"), .linkedLibrary("mbedcrypto")]
    ),
  ],
  // Swift 6 language mode: process-wide mutable state must be Sendable or marked; the
  // few marked `nonisolated(unsafe)` (the log, the self-test) say what guards them. Threads
  // cross only through mailboxes (Sources/ARCHITECTURE.md), checked by ThreadSanitizer.
  swiftLanguageModes: [.v6]
)
