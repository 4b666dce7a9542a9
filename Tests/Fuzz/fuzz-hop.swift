// Fuzz target: Frame.decodeHop on a CREATE body (the input is the body, in a buffer of
// exactly its size, so AddressSanitizer sees any read past it). Checked: a decoded hop
// accounts for every byte, has a port, and the rest of an extend hop (unless empty)
// decodes as a hop again.
import WispCore

func fuzzOne(_ input: UnsafeRawBufferPointer) {
  guard let p = input.baseAddress else { return }
  guard let hop = Frame.decodeHop(p, length: input.count) else { return }
  invariant(hop.restLength == input.count - Wire.hopSize, "rest \(hop.restLength) of \(input.count)")
  invariant(hop.endpoint.port != 0, "port 0")
  switch hop.kind {
  case .exit: invariant(hop.restLength == 0, "exit with a rest")
  case .sealedExit: invariant(hop.restLength == Wire.pointSize, "sealed exit without a point")
  case .extend:
    // What the node forwards after stripping this hop (empty: the next node is the end)
    // must decode on the next node.
    if hop.restLength > 0 {
      invariant(Frame.decodeHop(p + Wire.hopSize, length: hop.restLength) != nil, "inner hop does not decode")
    }
  }
}

func hop(_ kind: HopKind, _ e: Endpoint) -> [UInt8] {
  var b = [UInt8](repeating: 0, count: Wire.hopSize)
  b.withUnsafeMutableBytes { _ = Frame.encodeHop($0.baseAddress!, kind: kind, to: e) }
  return b
}

func fuzzSeeds() -> [[UInt8]] {
  let e = Endpoint(ip: 0x0A00_0003, port: 7400), x = Endpoint(ip: 0x0A00_0009, port: 9000)
  let point = [4] + [UInt8](repeating: 1, count: Wire.pointSize - 1)
  return [
    hop(.exit, x),
    hop(.extend, e) + hop(.exit, x),
    hop(.extend, e) + hop(.extend, e) + hop(.extend, e) + hop(.exit, x),
    hop(.sealedExit, x) + point,
    hop(.extend, e) + hop(.sealedExit, x) + point,
  ]
}
