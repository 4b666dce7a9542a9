import Testing
@testable import WispTLS
import WispCore

/// The bad-MAC limit, counted by DTLSSession (mbedTLS 3 keeps its own counter private and,
/// from 3.6.3, shares it with handshake state): forged records count, replays and other
/// epochs do not, forgiven records are taken back, the 16th unforgiven one ends the session.
@Suite struct BadRecordTests {
  /// An established pair and one genuine application record from the client (not yet delivered).
  func pairAndRecord() throws -> (Pair, [UInt8]) {
    let p = try Pair(serverOptions: options(.server, pin: clientIdentity),
                     clientOptions: options(.client, pin: serverIdentity))
    p.pump()
    #expect(p.server.state == .established && p.client.state == .established)
    try Array("genuine".utf8).withUnsafeBytes { try p.client.write($0) }
    #expect(p.wire.toServer.count == 1)
    let record = p.wire.toServer.removeFirst()
    return (p, record)
  }

  @Test func replaysDoNotCountForgeriesDo() throws {
    let (p, record) = try pairAndRecord()
    record.withUnsafeBytes { p.server.input($0) }
    #expect(p.wire.serverReceived == [Array("genuine".utf8)])
    for _ in 0..<40 { record.withUnsafeBytes { p.server.input($0) } }  // anti-replay drops them
    #expect(p.wire.serverReceived.count == 1)
    #expect(p.server.badRecords == 0, "a replayed record is not a bad MAC")
    #expect(p.server.state == .established)

    try Array("next".utf8).withUnsafeBytes { try p.client.write($0) }
    var forged = p.wire.toServer.removeFirst()
    forged[forged.count - 1] ^= 0x01  // the tag no longer matches
    forged.withUnsafeBytes { p.server.input($0) }
    #expect(p.server.badRecords == 1)
    p.server.forgiveBadRecords(1)
    #expect(p.server.badRecords == 0)
    #expect(p.server.state == .established)
  }

  @Test func theSixteenthBadRecordEndsTheSession() throws {
    let (p, _) = try pairAndRecord()
    for i in 0..<Int(DTLSSession.badRecordLimit) {
      try Array("n\(i)".utf8).withUnsafeBytes { try p.client.write($0) }
      var forged = p.wire.toServer.removeFirst()
      forged[forged.count - 3] ^= 0x80
      #expect(p.server.state == .established, "failed after \(i) bad records")
      forged.withUnsafeBytes { p.server.input($0) }
    }
    #expect(p.server.state == .failed)
    #expect(p.server.failure?.description.contains("-0x7180") == true, "\(p.server.failure?.description ?? "")")
    #expect(p.wire.serverReceived.isEmpty)
  }
}
