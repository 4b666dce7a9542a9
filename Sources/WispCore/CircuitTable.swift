// The forwarding table: fixed capacity, O(1) lookup, idle expiry. Runs on host and device.
//
// A circuit is two *halves*, one per direction: (in endpoint, local id) →
// (out endpoint, out id). A local id packs where the half lives:
//
//   bit 31 ........................................ 0
//   | random tag | slot index (slotBits) | shard (shardBits) |
//
// so a lookup is one array read and two compares, and an id for a slot that is
// free, reused, or held by another link fails the compare. The shard bits let
// the kernel's SO_REUSEPORT program steer a frame to the loop that owns its
// circuit. The tag is drawn from a `RandomSource` fed by the kernel's CSPRNG
// each time a slot is handed out, so ids are not guessable from outside.

/// Cryptographically strong random numbers (the OS layer feeds it from getrandom).
public protocol RandomSource {
  mutating func next32() -> UInt32
}

/// One direction of a circuit. All-zero bytes are a valid free half: the table is
/// zero-allocated, so slots never used never become resident memory. Fields are ordered
/// largest first so that the struct has no holes (160 bytes a half).
public struct Half {
  public var localId: UInt32 = 0
  /// The id the next node expects; 0 while pending or when `outIsExit`.
  public var outId: UInt32 = 0
  public var inEndpoint = Endpoint(ip: 0, port: 0)
  public var outEndpoint = Endpoint(ip: 0, port: 0)
  /// Index of the other half of the circuit (meaningful while `inUse`).
  public var peer: Int32 = 0
  /// Monotonic seconds of the last frame.
  public var lastActive: UInt32 = 0
  /// Exit circuits (forward half): the circuit's own UDP socket's descriptor + 1 (0: none).
  public var exitSocket: Int32 = 0
  public var packets: UInt64 = 0
  public var bytes: UInt64 = 0
  /// Per-circuit rate cap level (the rate itself is the node's `circuitRate`).
  public var bucket = BucketLevel()
  /// The binding this node drew for the circuit (forward half; sent in BIND, named by
  /// the receipts that pay for it).
  public var binding = Binding.zero
  /// The relayed count (both halves) the circuit may reach: the unbound allowance until a
  /// receipt binds it, then what the credit worker grants (both halves hold the same value,
  /// so the DATA path compares against its own half).
  public var creditLimit: UInt64 = 0
  /// Bytes the payer's latest valid receipt acknowledges (forward half).
  public var receipted: UInt64 = 0
  /// The highest amount of a receipt handed to the worker (forward half).
  public var receiptPosted: UInt64 = 0
  /// Monotonic second by which an unbound circuit must be bound (forward half; 0: no deadline).
  public var bindDeadline: UInt32 = 0
  public var inUse = false
  /// A valid receipt bound the circuit to its payer (forward half).
  public var bound = false
  /// A receipt of this circuit is on the worker (forward half): another is stale until
  /// the answer comes (the first one may acknowledge 0 bytes).
  public var receiptWaiting = false
  /// Waiting for CREATED from the next hop.
  public var pending = false
  /// Out is a plain UDP destination: strip the header.
  public var outIsExit = false
  /// In is a plain UDP destination: prepend a header.
  public var inIsExit = false
  /// The forward half (client → exit) carries the circuit's credit fields.
  public var isForward = false
  /// Exit circuits (forward half): payloads are sealed end to end.
  public var sealed = false
  /// Counted in its source's share of circuits (forward half) / of pending circuits.
  public var sourceCounted = false
  public var pendingCounted = false
  /// Took one of its source's unbound allowances (forward half): given back when it binds.
  public var unboundCounted = false
  /// A receipt of this circuit reached the worker and did not move it (a bad signature, or
  /// another circuit's serial): the circuit lost its place in the bound-circuit reserve.
  public var receiptFailed = false
  /// Exit circuits (forward half): the exit policy no longer accepts the destination (set
  /// when the policy or lab mode changes); its DATA is dropped (`exit_not_allowed`).
  public var exitRefused = false
  /// Receipts of this circuit on the worker and not yet answered (forward half).
  public var receiptsInFlight: UInt8 = 0
}

public final class CircuitTable {
  /// Halves (2 per circuit).
  public let capacity: Int
  public let slotBits: Int
  public let shardBits: Int
  public let shard: UInt32
  /// `slot(of:)` precomputed: the shard bits' width and the slot index's mask.
  private let slotShift: UInt32
  private let slotMask: UInt32
  private let halves: UnsafeMutablePointer<Half>
  private let freeStack: UnsafeMutablePointer<Int32>
  private var freeCount: Int
  /// Slots at and above this index have never been used (still untouched zero pages).
  private var highWater = 0
  public private(set) var expired: UInt64 = 0

  /// A table for `circuits` circuits, for shard `shard` of `2^shardBits`.
  public init(circuits: Int, shard: Int = 0, shardBits: Int = 0) {
    precondition(circuits >= 1 && shardBits >= 0 && shardBits <= 4 && shard < (1 << shardBits), "bad circuit table geometry")
    capacity = circuits * 2
    var bits = 1
    while (1 << bits) < capacity { bits += 1 }
    precondition(bits + shardBits <= 24, "circuit table too large for 32-bit ids")
    slotBits = bits
    self.shardBits = shardBits
    self.shard = UInt32(shard)
    slotShift = UInt32(shardBits)
    slotMask = UInt32(1 << bits) - 1
    // calloc: the kernel hands out zero pages lazily, and zero bytes are a free Half.
    halves = zeroedAllocation(capacity)
    freeStack = zeroedAllocation(capacity)
    freeCount = 0
  }

  deinit {
    freeZeroed(halves)
    freeZeroed(freeStack)
  }

  public var circuitsInUse: Int { (highWater - freeCount) / 2 }
  public var circuitsFree: Int { (capacity - highWater + freeCount) / 2 }

  /// A free slot: a recycled one, else the next never-used one.
  private func takeSlot() -> Int {
    if freeCount > 0 {
      freeCount -= 1
      return Int(freeStack[freeCount])
    }
    highWater += 1
    return highWater - 1
  }

  @inline(__always)
  public func slot(of id: UInt32) -> Int { Int((id &>> slotShift) & slotMask) }

  /// The half with `id` that `from` may use, or nil. O(1).
  @inline(__always)
  public func lookup(_ id: UInt32, from: Endpoint) -> Int? {
    let s = slot(of: id)
    if s >= capacity { return nil }
    let h = halves + s
    if !h.pointee.inUse || h.pointee.localId != id || h.pointee.inEndpoint != from { return nil }
    return s
  }

  /// Direct access to a half (index from `lookup` or `allocate`).
  @inline(__always)
  public func half(_ index: Int) -> UnsafeMutablePointer<Half> { halves + index }

  /// Allocates both halves of a circuit: forward (in `prev` → out `next`) and backward.
  /// Returns (forward, backward) indices, or nil when the table is full.
  public func allocate<R: RandomSource>(prev: Endpoint, next: Endpoint, prevId: UInt32, nowSec: UInt32,
                                        random: inout R) -> (Int, Int)? {
    if freeCount + (capacity - highWater) < 2 { return nil }
    let f = takeSlot()
    let b = takeSlot()
    halves[f] = Half()
    halves[b] = Half()
    halves[f].localId = makeId(f, &random)
    halves[b].localId = makeId(b, &random)
    halves[f].inEndpoint = prev
    halves[f].outEndpoint = next
    halves[f].peer = Int32(b)
    halves[f].inUse = true
    halves[f].isForward = true
    halves[f].lastActive = nowSec
    halves[b].inEndpoint = next
    halves[b].outEndpoint = prev
    halves[b].outId = prevId
    halves[b].peer = Int32(f)
    halves[b].inUse = true
    halves[b].lastActive = nowSec
    return (f, b)
  }

  private func makeId<R: RandomSource>(_ slot: Int, _ random: inout R) -> UInt32 {
    let low = UInt32(slot) << UInt32(shardBits) | shard
    let tagShift = UInt32(slotBits + shardBits)
    while true {
      let id = (random.next32() << tagShift) | low
      if id != 0 { return id }
    }
  }

  /// Frees both halves of the circuit that `index` belongs to.
  public func free(_ index: Int) {
    let p = Int(halves[index].peer)
    let paired = halves[index].inUse
    release(index)
    if paired { release(p) }
  }

  /// Told of every circuit that ends after a receipt bound it (or while one is on the
  /// worker): its forward half's index, local id and the bytes relayed on it (both halves).
  public var onClose: ((Int32, UInt32, UInt64) -> Void)?

  private func release(_ i: Int) {
    if !halves[i].inUse { return }
    if halves[i].isForward && (halves[i].bound || halves[i].receiptWaiting) {
      onClose?(Int32(i), halves[i].localId, halves[i].bytes &+ halves[Int(halves[i].peer)].bytes)
    }
    halves[i].inUse = false
    halves[i].localId = 0
    freeStack[freeCount] = Int32(i)
    freeCount += 1
  }

  /// Frees circuits whose both halves have been idle for `idleSec`, telling `freeing` of
  /// each (one of its halves' index) first. Returns how many.
  @discardableResult
  public func expire(nowSec: UInt32, idleSec: UInt32, freeing: (Int) -> Void = { _ in }) -> Int {
    var n = 0
    for i in 0..<highWater where halves[i].inUse {
      let p = Int(halves[i].peer)
      let last = max(halves[i].lastActive, halves[p].lastActive)
      if nowSec &- last >= idleSec {
        freeing(i)
        free(i)
        n += 1
      }
    }
    expired &+= UInt64(n)
    return n
  }

  /// Calls `body` with every half in use (for status).
  public func forEachInUse(_ body: (Int, Half) -> Void) {
    for i in 0..<highWater where halves[i].inUse { body(i, halves[i]) }
  }
}
