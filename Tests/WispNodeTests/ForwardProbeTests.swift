// `wisp forward`'s relay health on a made-up clock: a relay is judged on the probes sent
// to it (dead once one of them has waited `deadAfter` unanswered), whether or not it is on
// a path in use, and answers that waited while the loop was blocked count before anyone is
// judged. The relays here are stand-ins that answer PINGs with PONGs when told to.
import Testing
import WispCore
import WispOS
@testable import WispClient
import WispTestSupport

@Suite struct ForwardProbeTests {
  /// Answers every PING waiting on `relay` with a PONG (what a live node does).
  func answer(_ relay: MemoryIO, _ buf: UnsafeMutableRawPointer) {
    while let (n, from) = relay.receive(into: buf, capacity: 2048) {
      guard case .success(let h) = Frame.decode(buf, length: n), h.type == .ping else { continue }
      let m = Frame.encodeHeader(buf, type: .pong, bodyLength: h.bodyLength, circuit: 0)
      _ = relay.send(buf, m, to: from)
    }
  }

  /// Drops whatever waits on `relay` (a relay that was killed).
  func ignore(_ relay: MemoryIO, _ buf: UnsafeMutableRawPointer) {
    while relay.receive(into: buf, capacity: 2048) != nil {}
  }

  @Test func aRelayIsJudgedOnTheProbesSentToIt() throws {
    let network = MemoryNetwork()
    let ends = (0..<3).map { Endpoint(ip: 0x7F00_0001, port: UInt16(7700 + $0)) }
    let relays = try ends.map { try network.endpoint($0) }
    let peers = (0..<3).map { MeshPeer(name: "r\($0)", endpoint: ends[$0], key: nil) }
    let t0 = UInt64(1_000) * 1_000_000_000
    let settings = ForwardSettings(destination: Endpoint(ip: 0x7F00_0001, port: 9300))
    let f = UDPForward<MemoryIO>(settings: settings, listen: try network.endpoint(Endpoint(ip: 0x7F00_0001, port: 5300)),
                                 probeSocket: try network.endpoint(Endpoint(ip: 0x7F00_0001, port: 5301)),
                                 chooser: PathChooser(peers: peers, hops: 2, exitVia: nil), signer: nil,
                                 makeSocket: { nil }, nowNs: t0)
    f.log = { _ in }
    let buf = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
    defer { buf.deallocate() }
    let ms: UInt64 = 1_000_000

    // Every relay answers the first round.
    f.sendProbes(nowNs: t0)
    for r in relays { answer(r, buf) }
    f.probeReadable(nowNs: t0 + 1 * ms)
    #expect(f.deadPeers(t0 + 1 * ms).isEmpty)
    // Seconds without a probe (a relay not in use is probed every 8th round): an old answer
    // is not silence, so none of them is dead.
    #expect(f.deadPeers(t0 + 4_000 * ms).isEmpty)

    // r1 is killed: it leaves the next probe unanswered. Dead after deadAfter, although no
    // path uses it, so that no new path is built through it.
    let t1 = t0 + 4_000 * ms
    f.sendProbes(nowNs: t1)
    answer(relays[0], buf); ignore(relays[1], buf); answer(relays[2], buf)
    f.probeReadable(nowNs: t1 + 1 * ms)
    #expect(f.deadPeers(t1 + 1_000 * ms).isEmpty)
    #expect(f.deadPeers(t1 + settings.deadAfterNs + 1 * ms) == [1])
    #expect(!f.chooser.candidates(exclude: f.deadPeers(t1 + settings.deadAfterNs + 1 * ms)).contains { $0.path.contains(1) })

    // r1 answers again: alive at once.
    let t2 = t1 + 3_000 * ms
    f.sendProbes(nowNs: t2)
    for r in relays { answer(r, buf) }
    f.probeReadable(nowNs: t2 + 1 * ms)
    #expect(f.deadPeers(t2 + 1 * ms).isEmpty)

    // The loop was blocked for 2 s (a build waiting on a handshake) while the answers to a
    // round sat on the socket: the tick reads them before judging anyone.
    let t3 = t2 + 1_000 * ms
    f.sendProbes(nowNs: t3)
    for r in relays { answer(r, buf) }
    f.tick(nowNs: t3 + 2_000 * ms)
    #expect(f.deadPeers(t3 + 2_000 * ms).isEmpty)
  }
}
