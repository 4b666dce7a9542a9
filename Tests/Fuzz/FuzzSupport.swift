// What every fuzz target shares: the libFuzzer entry points, a reader over the input, and
// a deterministic stand-in for ECDSA (so that inputs can pass the signature checks and
// reach the logic behind them). Host only, built by Tests/Fuzz/build.sh with
// `-sanitize=fuzzer,address`; each target defines `fuzzOne` and `fuzzSeeds`.
import WispCore

#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer calls this for every input; the input is valid only during the call.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  fuzzOne(UnsafeRawBufferPointer(start: data.map(UnsafeRawPointer.init), count: data == nil ? 0 : size))
  return 0
}

/// Called once before fuzzing. With WISP_FUZZ_SEEDS=DIR set the target writes its seed
/// inputs to DIR (seed-NN, one file each) and exits: the seeds are built with the real
/// encoders, so they follow the formats as the code has them now.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
  guard let dir = getenv("WISP_FUZZ_SEEDS") else { return 0 }
  let path = String(cString: dir)
  for (i, seed) in fuzzSeeds().enumerated() {
    let name = path + "/seed-" + (i < 10 ? "0" : "") + String(i)
    guard let f = fopen(name, "wb") else { print("cannot write \(name)"); exit(1) }
    _ = seed.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
  }
  _exit(0)  // not exit: the leak checker would count what is still alive at this point
}

/// Reads an input front to back; past the end every read gives zero / empty.
struct FuzzReader {
  let bytes: UnsafeRawBufferPointer
  var offset = 0
  init(_ b: UnsafeRawBufferPointer) { bytes = b }
  var atEnd: Bool { offset >= bytes.count }
  mutating func u8() -> UInt8 {
    guard offset < bytes.count else { return 0 }
    offset += 1
    return bytes[offset - 1]
  }
  mutating func u16() -> UInt16 { UInt16(u8()) << 8 | UInt16(u8()) }
  /// Up to `n` bytes (fewer at the end).
  mutating func take(_ n: Int) -> UnsafeRawBufferPointer {
    let k = min(n, bytes.count - offset)
    defer { offset += k }
    return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + k])
  }
}

/// Fails the run with a message (libFuzzer reports it as a deadly signal and saves the input).
func invariant(_ ok: Bool, _ what: @autoclosure () -> String) {
  if !ok { fatalError("fuzz invariant broken: " + what()) }
}

// The deterministic signature scheme (fnv, FakeVerifier, FakeSigner) is the unit tests'
// own, Tests/WispCoreTests/ReceiptTestSupport.swift, compiled into every target (build.sh).

/// The node every receipt, claim and journal seed is for.
let fuzzNodeSigner = FakeSigner(200)
let fuzzNode = FakeVerifier().fingerprint(ofKey: FakeSigner(200).publicKey)

/// A v2 receipt of payer `client` on the binding numbered `serial`.
func fuzzReceipt(_ client: UInt8, serial: UInt64, bytes: UInt64, epoch: UInt64 = 1_700_000_000) -> Receipt {
  var s = FakeSigner(client)
  return Receipt.make(signer: &s, verifier: FakeVerifier(), node: fuzzNode, binding: Binding(hi: 0, lo: serial), bytes: bytes,
                      epoch: epoch)!
}

/// A v1 receipt (journals written before issue 15).
func fuzzReceiptV1(_ client: UInt8, serial: UInt64, bytes: UInt64, epoch: UInt64 = 1_700_000_000) -> ReceiptV1 {
  var s = FakeSigner(client)
  return ReceiptV1.make(signer: &s, verifier: FakeVerifier(), node: fuzzNode, serial: serial, bytes: bytes, epoch: epoch)!
}

/// A deterministic RandomSource (the node uses the kernel's).
struct FuzzRandom: RandomSource {
  var state: UInt32 = 0x9E37_79B9
  mutating func next32() -> UInt32 {
    state ^= state << 13; state ^= state >> 17; state ^= state << 5
    return state
  }
}
