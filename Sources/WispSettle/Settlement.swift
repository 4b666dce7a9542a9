// `wisp credits settle`: many nodes' claims against one payer list (SETTLEMENT.md).
// Host build only (server-side software, not firmware).
//
// Pipeline, one claim file at a time (memory: one claim plus the totals, never all claims):
//  1. read the file and parse it (Claim.parse): a bad file is a problem of its own, its
//     node flagged when its node-key line is readable;
//  2. verify the node signature and every receipt signature, the receipts split over all
//     threads (one FastP256Verifier each, OpenSSL), the main thread taking one share;
//  3. judge each receipt with the same rules as `credits verify` (Claim.rejection): a
//     rejected receipt counts against its node, by reason;
//  4. merge the paid ones into one map keyed by (node, payer, binding), keeping the highest
//     amount (ties: the later epoch): amounts are cumulative, so a receipt exported twice,
//     or in two overlapping claims, is paid once.
// `finish()` then totals per payer, per node and per (payer, node), and sums each payer's
// receipts per budget window to flag overspending.
#if !hasFeature(Embedded)
import CPosix
import WispCore
import WispOS

/// A fingerprint as a dictionary key.
struct FingerprintKey: Hashable {
  let w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64
  init(_ f: Fingerprint) { w0 = f.w0; w1 = f.w1; w2 = f.w2; w3 = f.w3 }
}

/// One (node, payer, binding): 24 bytes, node and payer interned.
struct SettlementKey: Hashable {
  let node: UInt32, payer: UInt32
  let hi: UInt64, lo: UInt64
}

/// The receipt that counts for a key: highest bytes, then latest epoch.
struct Best {
  var bytes: UInt64
  var epoch: UInt64
}

/// What one node's claims came to.
public struct NodeSettlement {
  public var node: Fingerprint
  public var claims = 0
  public var invalidClaims = 0
  public var receiptLines = 0
  /// Rejected receipts by reason (ClaimRejection.rawValue).
  public var rejected = [UInt64](repeating: 0, count: ClaimRejection.count)
  /// Paid: distinct (payer, binding) keys and their bytes (after dedup across claims).
  public var keys = 0
  public var bytes: UInt64 = 0
  public var rejectedTotal: UInt64 { rejected.reduce(0, &+) }
  /// Anything rejected, or a claim that is not valid.
  public var flagged: Bool { invalidClaims > 0 || rejectedTotal > 0 }
}

/// What one payer is charged.
public struct PayerSettlement {
  public var payer: Fingerprint
  public var entry: PayerEntry
  public var keys = 0
  public var bytes: UInt64 = 0
  public var nodes = 0
  /// Budget windows whose sum exceeds the budget: (window start epoch, bytes in it).
  public var overBudget: [(start: UInt64, bytes: UInt64)] = []
  public var flagged: Bool { !overBudget.isEmpty }
}

public struct PayerNodeSettlement {
  public var payer: Fingerprint
  public var node: Fingerprint
  public var keys: Int
  public var bytes: UInt64
}

/// A (payer, node) total as the report keeps it: 24 bytes, fingerprints by index.
struct PayerNodeRow {
  var payer: UInt32   // index into SettlementReport.payers (sorted by fingerprint)
  var node: UInt32    // index into SettlementReport.nodes (sorted by fingerprint)
  var keys: UInt32
  var bytes: UInt64
}

/// A claim file that could not be read or is not valid.
public struct ClaimProblem {
  public var file: String
  public var node: Fingerprint?
  public var error: String
}

/// One rejected receipt.
public struct RejectedReceipt {
  public var file: String
  public var line: Int
  public var node: Fingerprint
  public var signer: Fingerprint
  public var reason: ClaimRejection
}

public struct SettlementReport {
  public var payersVersion: UInt64
  public var listedPayers: Int
  public var claims: Int
  public var receiptLines: UInt64
  public var signaturesVerified: UInt64
  public var payers: [PayerSettlement]
  public var nodes: [NodeSettlement]
  /// One row per (payer, node) with paid receipts, sorted by payer then node fingerprint.
  var payerNodeRows: [PayerNodeRow]
  public var payerNodes: [PayerNodeSettlement] {
    payerNodeRows.map {
      PayerNodeSettlement(payer: payers[Int($0.payer)].payer, node: nodes[Int($0.node)].node, keys: Int($0.keys),
                          bytes: $0.bytes)
    }
  }
  public var problems: [ClaimProblem]
  public var rejections: [RejectedReceipt]
  /// More rejections happened than `rejections` holds (their counts are in `nodes`).
  public var rejectionsTruncated: Bool
  public var totalBytes: UInt64
  public var flagged: Bool {
    !problems.isEmpty || nodes.contains { $0.flagged } || payers.contains { $0.flagged }
  }
}

public final class Settlement {
  public let payers: PayerList
  public let threads: Int
  /// Rejected receipts kept with their file and line (all are counted per node).
  public static let maxRejectionDetails = 10_000

  private var verifiers: [FastP256Verifier]
  private var nodeIndex: [FingerprintKey: UInt32] = [:]
  private var nodes: [NodeSettlement] = []
  private var payerIndex: [FingerprintKey: UInt32] = [:]
  private var payerFingerprints: [Fingerprint] = []
  private var best: [SettlementKey: Best] = [:]
  private var problems: [ClaimProblem] = []
  private var rejections: [RejectedReceipt] = []
  private var rejectionsTruncated = false
  private var claims = 0
  private var receiptLines: UInt64 = 0
  public private(set) var signaturesVerified: UInt64 = 0

  public init(payers: PayerList, threads: Int) {
    self.payers = payers
    self.threads = max(1, threads)
    verifiers = (0..<max(1, threads)).map { _ in FastP256Verifier() }
  }

  /// Distinct (node, payer, binding) keys held so far.
  public var keys: Int { best.count }

  // MARK: claims in

  /// Reads and settles one claim file.
  public func add(path: String) {
    claims += 1
    let file: [UInt8]
    do throws(Errno) { file = try Files.read(path, limit: Claim.maxFileSize + 1) } catch {
      problems.append(ClaimProblem(file: path, node: nil, error: "cannot read: \(error.description)"))
      return
    }
    settle(file, name: path)
  }

  /// Settles one claim's bytes (`name` labels it in the report).
  public func add(file: [UInt8], name: String) {
    claims += 1
    settle(file, name: name)
  }

  private func node(_ fp: Fingerprint) -> Int {
    let k = FingerprintKey(fp)
    if let i = nodeIndex[k] { return Int(i) }
    nodes.append(NodeSettlement(node: fp))
    nodeIndex[k] = UInt32(nodes.count - 1)
    return nodes.count - 1
  }

  private func payer(_ fp: Fingerprint) -> UInt32 {
    let k = FingerprintKey(fp)
    if let i = payerIndex[k] { return i }
    payerFingerprints.append(fp)
    let i = UInt32(payerFingerprints.count - 1)
    payerIndex[k] = i
    return i
  }

  /// The node of a file that does not parse, if its second line names one.
  private func nodeOfBadFile(_ file: [UInt8]) -> Fingerprint? {
    Claim.nodeKey(ofBadFile: file).map { verifiers[0].fingerprint(ofKey: $0) }
  }

  private func settle(_ file: [UInt8], name: String) {
    let c: ParsedClaim
    do throws(ClaimError) { c = try Claim.parse(file) } catch {
      let n = nodeOfBadFile(file)
      if let n { nodes[node(n)].invalidClaims += 1; nodes[node(n)].claims += 1 }
      problems.append(ClaimProblem(file: name, node: n, error: error.text))
      return
    }
    let nodeFP = verifiers[0].fingerprint(ofKey: c.nodeKey)
    let ni = node(nodeFP)
    nodes[ni].claims += 1
    nodes[ni].receiptLines += c.receipts.count
    receiptLines += UInt64(c.receipts.count)

    // 2. Signatures on every thread.
    let n = c.receipts.count
    // Each thread writes its own index range of these two buffers; joined before reading.
    let sp = UnsafeMutableBufferPointer<Fingerprint>.allocate(capacity: max(n, 1))
    sp.initialize(repeating: .zero)
    let vp = UnsafeMutableBufferPointer<Bool>.allocate(capacity: max(n, 1))
    vp.initialize(repeating: false)
    defer { sp.deallocate(); vp.deallocate() }
    var nodeValid = false
    c.receipts.withUnsafeBufferPointer { rp in
      let t = n >= 2 * threads ? threads : 1
      var handles: [UInt] = []
      for k in 1..<t {
        let lo = n * k / t, hi = n * (k + 1) / t
        let v = verifiers[k]
        switch Threads.spawn({ Settlement.verify(rp, lo, hi, nodeFP, v, sp, vp) }) {
        case .success(let h): handles.append(h)
        case .failure: Settlement.verify(rp, lo, hi, nodeFP, v, sp, vp)  // no thread: do it here
        }
      }
      nodeValid = Claim.nodeSignatureValid(file, c, verifier: verifiers[0])
      Settlement.verify(rp, 0, n / t, nodeFP, verifiers[0], sp, vp)
      for h in handles { Threads.join(h) }
    }
    let signers = Array(sp.prefix(n))
    let valid = Array(vp.prefix(n))
    signaturesVerified += UInt64(n + 1)
    if !nodeValid {
      nodes[ni].invalidClaims += 1
      problems.append(ClaimProblem(file: name, node: nodeFP, error: ClaimError.badSignature.text))
      return
    }

    // 3 and 4. Judge, then keep the highest amount per key.
    let dup = Claim.duplicates(c.receipts, signers: signers)
    for i in 0..<n {
      let r = c.receipts[i]
      if let why = Claim.rejection(r, signer: signers[i], signatureValid: valid[i], duplicate: dup[i],
                                   from: c.rangeFrom, to: c.rangeTo, payers: payers) {
        nodes[ni].rejected[why.rawValue] += 1
        if rejections.count < Settlement.maxRejectionDetails {
          rejections.append(RejectedReceipt(file: name, line: r.line, node: nodeFP, signer: signers[i], reason: why))
        } else {
          rejectionsTruncated = true
        }
        continue
      }
      let key = SettlementKey(node: UInt32(ni), payer: payer(signers[i]), hi: r.binding.hi, lo: r.binding.lo)
      if let b = best[key] {
        if r.bytes > b.bytes || (r.bytes == b.bytes && r.epoch > b.epoch) { best[key] = Best(bytes: r.bytes, epoch: r.epoch) }
      } else {
        best[key] = Best(bytes: r.bytes, epoch: r.epoch)
      }
    }
  }

  /// Fingerprints and signature checks of receipts [lo, hi) (one thread's share).
  private static func verify(_ rp: UnsafeBufferPointer<ClaimReceipt>, _ lo: Int, _ hi: Int, _ node: Fingerprint,
                             _ v: FastP256Verifier, _ sp: UnsafeMutableBufferPointer<Fingerprint>,
                             _ vp: UnsafeMutableBufferPointer<Bool>) {
    var i = lo
    while i < hi {
      let r = rp[i]
      let signer = v.fingerprint(ofKey: r.key)
      sp[i] = signer
      vp[i] = v.verify(key: r.key, message: r.signedMessage(node: node, signer: signer), signature: r.signature)
      i += 1
    }
  }

  // MARK: totals out

  /// Sums saturate: amounts are signed by payers and may be anything up to 2^64 − 1.
  private func sat(_ a: UInt64, _ b: UInt64) -> UInt64 {
    let (s, o) = a.addingReportingOverflow(b)
    return o ? UInt64.max : s
  }

  /// Totals, flags and the report. The merged map is turned into one flat array (24 bytes
  /// a key) and released; sorted by payer and node, one pass gives the (payer, node) rows
  /// and each payer's budget windows. Call once.
  public func finish() -> SettlementReport {
    struct Flat { var payer: UInt32, node: UInt32, bytes: UInt64, epoch: UInt64 }
    var flat: [Flat] = []
    flat.reserveCapacity(best.count)
    for (k, b) in best { flat.append(Flat(payer: k.payer, node: k.node, bytes: b.bytes, epoch: b.epoch)) }
    best = [:]
    // Ranks in fingerprint order, so that the report is sorted without comparing fingerprints again.
    let payerOrder = payerFingerprints.indices.sorted { payerFingerprints[$0].precedes(payerFingerprints[$1]) }
    var payerRank = [UInt32](repeating: 0, count: payerFingerprints.count)
    for (r, i) in payerOrder.enumerated() { payerRank[i] = UInt32(r) }
    let nodeOrder = nodes.indices.sorted { nodes[$0].node.precedes(nodes[$1].node) }
    var nodeRank = [UInt32](repeating: 0, count: nodes.count)
    for (r, i) in nodeOrder.enumerated() { nodeRank[i] = UInt32(r) }
    var sortedNodes = nodeOrder.map { nodes[$0] }
    var payerTotals = payerOrder.map { PayerSettlement(payer: payerFingerprints[$0], entry: payers.entry(payerFingerprints[$0])!) }
    for i in flat.indices {
      flat[i].payer = payerRank[Int(flat[i].payer)]
      flat[i].node = nodeRank[Int(flat[i].node)]
    }
    flat.sort { $0.payer != $1.payer ? $0.payer < $1.payer : $0.node < $1.node }
    var rows: [PayerNodeRow] = []
    var windows: [UInt64: UInt64] = [:]
    var i = 0
    while i < flat.count {
      let p = Int(flat[i].payer)
      let e = payerTotals[p].entry
      windows.removeAll(keepingCapacity: true)
      while i < flat.count && Int(flat[i].payer) == p {
        let n = flat[i].node
        var row = PayerNodeRow(payer: UInt32(p), node: n, keys: 0, bytes: 0)
        while i < flat.count && Int(flat[i].payer) == p && flat[i].node == n {
          let b = flat[i].bytes
          row.keys += 1
          row.bytes = sat(row.bytes, b)
          let w = e.window(of: flat[i].epoch)
          windows[w] = sat(windows[w] ?? 0, b)
          i += 1
        }
        rows.append(row)
        payerTotals[p].keys += Int(row.keys)
        payerTotals[p].bytes = sat(payerTotals[p].bytes, row.bytes)
        payerTotals[p].nodes += 1
        sortedNodes[Int(n)].keys += Int(row.keys)
        sortedNodes[Int(n)].bytes = sat(sortedNodes[Int(n)].bytes, row.bytes)
      }
      for (w, sum) in windows where sum > e.budget {
        payerTotals[p].overBudget.append((start: w &* e.period, bytes: sum))
      }
      payerTotals[p].overBudget.sort { $0.start < $1.start }
    }
    flat = []
    var total: UInt64 = 0
    for p in payerTotals { total = sat(total, p.bytes) }
    return SettlementReport(payersVersion: payers.version, listedPayers: payers.count, claims: claims,
                            receiptLines: receiptLines, signaturesVerified: signaturesVerified,
                            payers: payerTotals, nodes: sortedNodes, payerNodeRows: rows, problems: problems,
                            rejections: rejections, rejectionsTruncated: rejectionsTruncated, totalBytes: total)
  }
}
#endif
