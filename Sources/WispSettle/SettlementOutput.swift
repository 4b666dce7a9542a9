// The three forms of a settlement report (SETTLEMENT.md, "Output"): a table for people,
// JSON and CSV for scripts. Host build only.
#if !hasFeature(Embedded)
import WispCore
import WispOS

/// Where a report goes: a file descriptor, written in 64 KiB pieces (a report of 10^6
/// (payer, node) rows is never one string in memory), or a string (tests).
public final class ReportSink {
  let fd: Int32?
  var buffer = ""
  public private(set) var text = ""
  public init(fd: Int32) { self.fd = fd }
  public init() { fd = nil }
  public func put(_ s: String) {
    buffer += s
    if buffer.utf8.count >= 1 << 16 { flush() }
  }
  public func flush() {
    if let fd { Console.write(fd, buffer) } else { text += buffer }
    buffer = ""
  }
  static func += (o: ReportSink, s: String) { o.put(s) }
}

extension SettlementReport {
  /// The report in one of its forms into `sink` (flushed at the end).
  public func write(_ form: Form, to sink: ReportSink) {
    switch form {
    case .table: writeTable(sink)
    case .json: writeJSON(sink)
    case .csv: writeCSV(sink)
    }
    sink.flush()
  }
  public enum Form { case table, json, csv }

  public var table: String { let s = ReportSink(); write(.table, to: s); return s.text }
  public var json: String { let s = ReportSink(); write(.json, to: s); return s.text }
  public var csv: String { let s = ReportSink(); write(.csv, to: s); return s.text }

  private static func rejectedText(_ counts: [UInt64]) -> String {
    var s = ""
    for r in ClaimRejection.allCases where counts[r.rawValue] > 0 {
      if !s.isEmpty { s += " " }
      s += "\(r.name)=\(counts[r.rawValue])"
    }
    return s.isEmpty ? "none" : s
  }

  private static func pad(_ s: String, _ w: Int) -> String {
    var s = s
    while s.utf8.count < w { s += " " }
    return s
  }

  private static func lpad(_ s: String, _ w: Int) -> String {
    var s = s
    while s.utf8.count < w { s = " " + s }
    return s
  }

  // MARK: table

  func writeTable(_ o: ReportSink) {
    let payerHex = payers.map { $0.payer.hex }, nodeHex = nodes.map { $0.node.hex }
    let invalid = nodes.reduce(0) { $0 + $1.invalidClaims } + problems.filter { $0.node == nil }.count
    let rejectedCount = nodes.reduce(UInt64(0)) { $0 + $1.rejectedTotal }
    o += "settlement: \(claims) claims (\(invalid) not valid) from \(nodes.count) nodes; \(receiptLines) receipt lines,"
      + " \(rejectedCount) rejected; payer list version \(payersVersion) (\(listedPayers) payers)\n"
    o += "total paid \(totalBytes) bytes to \(nodes.filter { $0.keys > 0 }.count) nodes by \(payers.count) payers\n"
    o += "\npayers\n"
    o += "  " + Self.pad("payer", 66) + Self.lpad("bytes", 21) + Self.lpad("receipts", 10) + Self.lpad("nodes", 7)
      + Self.lpad("budget", 21) + Self.lpad("period", 9) + "  flag\n"
    for p in payers {
      var flag = ""
      if let w = p.overBudget.first {
        flag = "OVER BUDGET: \(w.bytes) bytes in the window from \(w.start)"
        if p.overBudget.count > 1 { flag += " (+\(p.overBudget.count - 1) more windows)" }
      }
      o += "  " + Self.pad(p.payer.hex, 66) + Self.lpad("\(p.bytes)", 21) + Self.lpad("\(p.keys)", 10)
        + Self.lpad("\(p.nodes)", 7) + Self.lpad("\(p.entry.budget)", 21) + Self.lpad("\(p.entry.period)", 9)
        + "  " + (flag.isEmpty ? "ok" : flag) + "\n"
    }
    o += "\nnodes\n"
    o += "  " + Self.pad("node", 66) + Self.lpad("bytes", 21) + Self.lpad("receipts", 10) + Self.lpad("claims", 8)
      + "  rejected\n"
    for n in nodes {
      var rej = Self.rejectedText(n.rejected)
      if n.invalidClaims > 0 { rej += ", \(n.invalidClaims) invalid claim\(n.invalidClaims == 1 ? "" : "s")" }
      o += "  " + Self.pad(n.node.hex, 66) + Self.lpad("\(n.bytes)", 21) + Self.lpad("\(n.keys)", 10)
        + Self.lpad("\(n.claims)", 8) + "  " + rej + (n.flagged ? "  FLAGGED" : "") + "\n"
    }
    o += "\npayer per node\n"
    for pn in payerNodeRows {
      o += "  " + payerHex[Int(pn.payer)] + "  " + nodeHex[Int(pn.node)] + Self.lpad("\(pn.bytes)", 21)
        + Self.lpad("\(pn.keys)", 10) + "\n"
    }
    if !problems.isEmpty {
      o += "\nclaims not valid\n"
      for p in problems { o += "  \(p.file): \(p.error)" + (p.node.map { " (node \($0.hex))" } ?? "") + "\n" }
    }
    if !rejections.isEmpty {
      o += "\nrejected receipts\n"
      for r in rejections {
        o += "  \(r.file) line \(r.line): \(r.reason.name) (payer \(r.signer.hex))\n"
      }
      if rejectionsTruncated { o += "  ... (first \(rejections.count) shown; every one is counted per node)\n" }
    }
  }

  // MARK: JSON

  static func jsonString(_ s: String) -> String {
    var o = "\""
    for b in s.utf8 {
      switch b {
      case 34: o += "\\\""
      case 92: o += "\\\\"
      case 10: o += "\\n"
      case 0..<32:
        let hex: StaticString = "0123456789abcdef"
        o += "\\u00" + String(UnicodeScalar(hex.utf8Start[Int(b >> 4)])) + String(UnicodeScalar(hex.utf8Start[Int(b & 15)]))
      default: o.unicodeScalars.append(UnicodeScalar(b))
      }
    }
    return o + "\""
  }

  func writeJSON(_ o: ReportSink) {
    let payerHex = payers.map { $0.payer.hex }, nodeHex = nodes.map { $0.node.hex }
    o += "{\"payers_version\":\(payersVersion),\"listed_payers\":\(listedPayers),\"claims\":\(claims),"
    o += "\"receipt_lines\":\(receiptLines),\"signatures_verified\":\(signaturesVerified),\"total_bytes\":\(totalBytes),"
    o += "\"flagged\":\(flagged),\n\"payers\":["
    for (i, p) in payers.enumerated() {
      if i > 0 { o += ",\n" }
      o += "{\"payer\":\"\(p.payer.hex)\",\"bytes\":\(p.bytes),\"receipts\":\(p.keys),\"nodes\":\(p.nodes),"
      o += "\"budget\":\(p.entry.budget),\"period\":\(p.entry.period),\"over_budget\":["
      o += p.overBudget.map { "{\"window_start\":\($0.start),\"bytes\":\($0.bytes)}" }.joined(separator: ",")
      o += "],\"flagged\":\(p.flagged)}"
    }
    o += "],\n\"nodes\":["
    for (i, n) in nodes.enumerated() {
      if i > 0 { o += ",\n" }
      o += "{\"node\":\"\(n.node.hex)\",\"bytes\":\(n.bytes),\"receipts\":\(n.keys),\"claims\":\(n.claims),"
      o += "\"invalid_claims\":\(n.invalidClaims),\"receipt_lines\":\(n.receiptLines),\"rejected\":{"
      o += ClaimRejection.allCases.map { "\"\($0.name)\":\(n.rejected[$0.rawValue])" }.joined(separator: ",")
      o += "},\"flagged\":\(n.flagged)}"
    }
    o += "],\n\"payer_nodes\":["
    for (i, pn) in payerNodeRows.enumerated() {
      if i > 0 { o += ",\n" }
      o += "{\"payer\":\"" + payerHex[Int(pn.payer)] + "\",\"node\":\"" + nodeHex[Int(pn.node)]
        + "\",\"bytes\":\(pn.bytes),\"receipts\":\(pn.keys)}"
    }
    o += "],\n\"problems\":["
    for (i, p) in problems.enumerated() {
      if i > 0 { o += ",\n" }
      o += "{\"file\":" + Self.jsonString(p.file) + ",\"node\":" + (p.node.map { "\"\($0.hex)\"" } ?? "null")
        + ",\"error\":" + Self.jsonString(p.error) + "}"
    }
    o += "],\n\"rejections\":["
    for (i, r) in rejections.enumerated() {
      if i > 0 { o += ",\n" }
      o += "{\"file\":" + Self.jsonString(r.file) + ",\"line\":\(r.line),\"node\":\"\(r.node.hex)\","
        + "\"payer\":\"\(r.signer.hex)\",\"reason\":\"\(r.reason.name)\"}"
    }
    o += "],\"rejections_truncated\":\(rejectionsTruncated)}\n"
  }

  // MARK: CSV

  static func csvField(_ s: String) -> String {
    var needs = false
    for b in s.utf8 where b == 44 || b == 34 || b == 10 || b == 13 { needs = true }
    guard needs else { return s }
    var o = "\""
    for c in s.unicodeScalars { if c == "\"" { o += "\"\"" } else { o.unicodeScalars.append(c) } }
    return o + "\""
  }

  /// One table, a `kind` column telling the rows apart (SETTLEMENT.md, "CSV").
  func writeCSV(_ o: ReportSink) {
    let payerHex = payers.map { $0.payer.hex }, nodeHex = nodes.map { $0.node.hex }
    o += "kind,payer,node,bytes,receipts,claims,flagged,detail\n"
    for p in payers {
      let detail = p.overBudget.map { "over_budget@\($0.start)=\($0.bytes)" }.joined(separator: " ")
      o += "payer,\(p.payer.hex),,\(p.bytes),\(p.keys),,\(p.flagged ? 1 : 0),\(detail)\n"
    }
    for n in nodes {
      var detail = Self.rejectedText(n.rejected)
      if n.invalidClaims > 0 { detail += " invalid_claims=\(n.invalidClaims)" }
      o += "node,,\(n.node.hex),\(n.bytes),\(n.keys),\(n.claims),\(n.flagged ? 1 : 0),\(detail)\n"
    }
    for pn in payerNodeRows {
      o += "payer_node," + payerHex[Int(pn.payer)] + "," + nodeHex[Int(pn.node)] + ",\(pn.bytes),\(pn.keys),,0,\n"
    }
    for p in problems {
      o += "problem,,\(p.node?.hex ?? ""),,,,1," + Self.csvField(p.file + ": " + p.error) + "\n"
    }
    for r in rejections {
      o += "rejected,\(r.signer.hex),\(r.node.hex),,,,1," + Self.csvField("\(r.file):\(r.line): \(r.reason.name)") + "\n"
    }
  }
}
#endif
