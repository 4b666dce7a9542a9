// The forwarding loop of one shard. Runs on host and device (Linux).
//
// Pipeline, in the order of the code below:
//   1. wait: epoll on the I/O's descriptor, the mailboxes and other watched descriptors,
//      sleeping until the next timer
//   2. receive: `io.receive` (or `io.receiveExit`, for replies on an exit circuit's own
//      socket) fills the posted receive slots — pool buffers, or with GRO
//      one 64 KB area per slot, where a run of same-size datagrams from one sender may lie
//      (each segment is one datagram) — and every datagram goes to `process` once
//   3. classify: a DTLS datagram goes to the link layer, which brings the frames it
//      carries back to step 4 through `handleFrame`; a plain frame the link layer refuses
//      is dropped (it counts why)
//   4. handle: `Forwarder.handle` decodes, looks up and rewrites the datagram in place
//      (`Forwarder.exitReply` for a reply on an exit socket: it becomes a DATA frame);
//      DATA leaving an exit goes out on its circuit's own socket (`io.sendExit`) at once
//   5. seal: a frame bound for a peer with a DTLS session is written into it as a record
//      (`LinkLayer.seal`; the record comes back through `sendCopy`, a copy in a pool buffer)
//   6. queue: the datagram joins the send batch with its buffer (`Origin` says how: a
//      receive slot's buffer moves to the batch and the slot takes a fresh one; a GRO
//      segment is sent from where it lies, before the slot is reused; a buffer the call
//      owns goes along). A full batch is sent first. No free pool buffer: dropped and
//      counted `pool_exhausted`.
//   7. send: `io.send` the batch (runs of equal-size datagrams to one next hop as one UDP
//      GSO send); every sent buffer goes back to the pool
//   8. timers: idle expiry and quota once a second, the link layer's timers, the owner's
//
// Every datagram takes steps 3–6 through one function, `process`, wherever it came from:
// a receive slot, a GRO run, a copy of a GRO segment, or a DTLS record. Frames the node
// originates (PINGs) and records the link layer writes join the same batch.
//
// Every buffer, receive slot and send entry is allocated in `init`; steps 2–7 allocate
// nothing.
import CPosix
import WispCore

public final class RelayLoop<IO: DatagramIO> {
  public enum TimerID: Int { case tick = 1, link = 6 }
  /// What the owner hears: the 1 s tick, and a watched descriptor (a mailbox) readable.
  public enum Event { case tick, readable(UInt64) }

  /// Where a datagram handed to `process` lies, which says what happens to its buffer.
  enum Origin {
    /// In the pool buffer posted in receive slot `i`: queued by moving the buffer to the
    /// batch (the slot takes a fresh one); anything else leaves it in the slot.
    case slot(Int)
    /// In a GRO area: sent from where it lies (before the slot is reused); nothing to free.
    case inPlace
    /// In pool buffer `b`, owned by the call: queued with it, or given back.
    case owned(Int32)
  }

  public let io: IO
  public let pool: PacketPool
  public let forwarder: Forwarder<KernelRandom>
  public let batch: Int
  public var timers = TimerQueue()
  public private(set) var running = true
  /// DTLS sessions with peers (nil: DTLS datagrams are dropped as `dtls_unsupported`).
  public private(set) var link: LinkLayer? = nil
  /// Cleared by the link layer while `admitsPlain` and `seal` would pass every frame.
  public let linkGate = LinkGate()
  /// How often the link layer's timers run.
  public static var linkPollNs: UInt64 { 50_000_000 }
  /// Called from the loop for the tick and for watched descriptors (the shard's mailbox).
  public var onEvent: ((RelayLoop, Event) -> Void)?
  /// Where the loop publishes its forwarded-packet count after every receive pass (a
  /// relaxed atomic store, read by the control plane for the activity LED).
  public var published: UnsafeMutablePointer<UInt64>? = nil
  static var groSlotSize: Int { 65_536 }

  let events: EventSet
  // Receive side: one slot per datagram of a batch, always posted.
  let slots: UnsafeMutablePointer<RxSlot>
  /// The pool buffer posted in each slot (-1: a GRO area).
  let slotBuffer: UnsafeMutablePointer<Int32>
  let groArea: UnsafeMutableRawPointer?
  // Send side: the batch and the pool buffer of each entry (-1: none to give back).
  let sendCapacity: Int
  let entries: UnsafeMutablePointer<TxEntry>
  let entryBuffer: UnsafeMutablePointer<Int32>
  var queued = 0

  public init(io: IO, pool: PacketPool, forwarder: Forwarder<KernelRandom>, batch: Int) throws(Errno) {
    self.io = io
    self.pool = pool
    self.forwarder = forwarder
    self.batch = batch
    events = try EventSet(signals: false, capacity: 64)
    try events.add(io.fd, tag: 0)
    sendCapacity = io.coalesces ? batch * 64 : batch
    // Reserved whole at start; pages become resident only where datagrams land.
    groArea = io.coalesces ? UnsafeMutableRawPointer(zeroedBytes: batch * RelayLoop.groSlotSize) : nil
    slots = .allocate(capacity: batch)
    slotBuffer = .allocate(capacity: batch)
    entries = .allocate(capacity: sendCapacity)
    entryBuffer = .allocate(capacity: sendCapacity)
    for i in 0..<batch {
      if let area = groArea {
        slotBuffer[i] = -1
        (slots + i).initialize(to: RxSlot(base: area + i * RelayLoop.groSlotSize + Defaults.headroom,
                                          capacity: RelayLoop.groSlotSize - Defaults.headroom))
      } else {
        guard let b = pool.take() else { preconditionFailure("pool smaller than a batch") }
        slotBuffer[i] = b
        (slots + i).initialize(to: RxSlot(base: pool.buffer(b) + Defaults.headroom, capacity: Wire.maxDatagram + 1))
      }
    }
    let none = pool.buffer(0)
    for i in 0..<sendCapacity {
      (entries + i).initialize(to: TxEntry(bytes: none, length: 0, to: Endpoint(ip: 0, port: 0)))
      entryBuffer[i] = -1
    }
    forwarder.exitSockets = self
  }

  deinit {
    slots.deallocate(); slotBuffer.deallocate(); entries.deallocate(); entryBuffer.deallocate()
    groArea?.deallocate()  // calloc'd; Swift's allocator is malloc/free
  }

  public func stop() { running = false }

  /// Adds `fd` to this loop's epoll set; readiness arrives as `.readable(tag)` (tag ≥ 16).
  public func watch(_ fd: Int32, tag: UInt64) throws(Errno) {
    precondition(tag >= 16, "tags below 16 are the loop's own")
    try events.add(fd, tag: tag)
  }

  /// Installs the link layer and its timer.
  public func attach(link: LinkLayer) {
    self.link = link
    linkGate.judges = true  // until the link layer says otherwise
    timers.schedule(TimerID.link.rawValue, at: wisp_monotonic_ns() + RelayLoop.linkPollNs, every: RelayLoop.linkPollNs)
  }

  /// Runs until `stop()` (from a mailbox message, or the process's stop request at a tick).
  public func run() {
    while running {
      // 1. wait
      events.wait(timeoutMs: timers.timeoutMs(now: wisp_monotonic_ns()),
                  ready: { tag in
                    if tag == 0 { drain() }
                    else if tag & RelayLoop.exitTag != 0 {
                      drainExit(fd: Int32(truncatingIfNeeded: (tag >> 32) & 0x7FFF_FFFF), half: Int32(truncatingIfNeeded: tag & 0xFFFF_FFFF))
                    } else { onEvent?(self, .readable(tag)) }
                  },
                  signal: { _ in })  // the control plane owns the signals
      runTimers()
    }
    link?.shutdown()
    flush()
    forwarder.exitSockets = nil  // the forwarder and the loop no longer hold each other
  }

  /// Steps 2–7 until the I/O has nothing more (at most 64 batches, so timers still run).
  public func drain() {
    defer { if let published { wisp_atomic_store_u64(published, forwarder.traffic.forwardedPackets) } }
    for _ in 0..<64 {
      // 2. receive
      let r = io.receive(slots, count: batch)
      if r <= 0 { return }
      let now = wisp_monotonic_ns()
      for i in 0..<r { receive(slot: i, now: now) }
      flush()
      if r < batch { return }
    }
  }

  /// Epoll tags of exit sockets: this bit, the descriptor in bits 32–62, the circuit's
  /// forward half in bits 0–31.
  static var exitTag: UInt64 { 1 << 63 }

  /// Steps 2–7 for replies waiting on an exit circuit's socket. The socket may have been
  /// closed (or its number reused) since epoll reported it: `exitReply` checks that the
  /// half still owns that descriptor.
  func drainExit(fd: Int32, half: Int32) {
    for _ in 0..<64 {
      let r = io.receiveExit(fd, slots, count: batch)
      if r <= 0 { return }
      let now = wisp_monotonic_ns()
      for i in 0..<r {
        let s = slots[i]
        if s.truncated || (groArea == nil && s.length > Wire.maxDatagram) { forwarder.drops.count(.oversized); continue }
        if s.segment == 0 {
          process(s.base, length: s.length, from: s.from, origin: groArea == nil ? .slot(i) : .inPlace, now: now,
                  exitFd: fd, exitHalf: half)
          continue
        }
        // A GRO run of replies: each gets a header prepended, which would overwrite the
        // previous segment, so each is copied to a pool buffer first.
        var off = 0
        while off < s.length {
          let n = min(s.segment, s.length - off)
          processCopy(UnsafeRawPointer(s.base + off), length: n, from: s.from, now: now, fromLink: false,
                      exitFd: fd, exitHalf: half)
          off += n
        }
      }
      flush()
      if r < batch { return }
    }
  }

  /// 8. timers that are due.
  public func runTimers() {
    let now = wisp_monotonic_ns()
    while let id = timers.popDue(now: now) {
      switch TimerID(rawValue: id) {
      case .tick:
        forwarder.tick(nowNs: now, nowEpoch: wisp_realtime_s())
        if wisp_stop_requested() != 0 { running = false }  // the process is stopping
        onEvent?(self, .tick)
      case .link:
        link?.poll(nowNs: now)
        flush()
      case .none: break
      }
    }
  }

  /// Step 2 for one receive slot: each datagram in it (each segment of a GRO run) to `process`.
  @inline(__always)
  func receive(slot i: Int, now: UInt64) {
    let s = slots[i]
    if s.truncated || (groArea == nil && s.length > Wire.maxDatagram) {
      forwarder.drops.count(.oversized)
      return
    }
    if groArea == nil {
      process(s.base, length: s.length, from: s.from, origin: .slot(i), now: now)
    } else if s.segment == 0 {
      process(s.base, length: s.length, from: s.from, origin: .inPlace, now: now)
    } else {
      // A GRO run: each segment is one datagram (frames only: exit replies arrive on
      // their circuits' own sockets, never coalesced).
      var off = 0
      while off < s.length {
        let n = min(s.segment, s.length - off)
        process(s.base + off, length: n, from: s.from, origin: .inPlace, now: now)
        off += n
      }
    }
  }

  /// Steps 3–6 for one datagram at `p` (with `Defaults.headroom` bytes before it and room
  /// for `Wire.maxDatagram` after it). `fromLink`: it came out of a DTLS record (step 3 done).
  /// `exitHalf` ≥ 0: a reply read from exit socket `exitFd` of that circuit.
  @inline(__always)
  func process(_ p: UnsafeMutableRawPointer, length: Int, from: Endpoint, origin: Origin, now: UInt64,
               fromLink: Bool = false, exitFd: Int32 = -1, exitHalf: Int32 = -1) {
    if length > Wire.maxDatagram { forwarder.drops.count(.oversized); release(origin); return }
    // 3. classify
    if exitHalf < 0, !fromLink, length > 0, link != nil {
      let b = p.load(as: UInt8.self)
      if b >= Wire.dtlsLow && b <= Wire.dtlsHigh, let link {
        link.receive(UnsafeRawBufferPointer(start: p, count: length), from: from, nowNs: now)
        release(origin)
        return
      }
      if linkGate.judges, let link,
         !link.admitsPlain(from: from, type: length > 1 ? p.load(fromByteOffset: 1, as: UInt8.self) : 0) {
        release(origin)
        return
      }
    }
    // 4. handle
    let verdict = exitHalf >= 0 ? forwarder.exitReply(p, length: length, half: exitHalf, fd: exitFd, nowNs: now)
                                : forwarder.handle(p, length: length, from: from, nowNs: now)
    let to: Endpoint, offset: Int, n: Int
    switch verdict {
    case .send(let t, let o, let l): to = t; offset = o; n = l
    case .sendExit(let fd, let o, let l):
      if !io.sendExit(fd, p + o, l) { forwarder.drops.count(.sendFailed) }
      release(origin)
      return
    case .drop, .consumed:
      release(origin)
      return
    }
    // 5. seal: the record is a copy (queued through `sendCopy`); the buffer stays where it is.
    if linkGate.judges, let link, link.seal(UnsafeRawBufferPointer(start: p + offset, count: n), to: to) {
      release(origin)
      return
    }
    // 6. queue, with the buffer.
    switch origin {
    case .slot(let i):
      guard let fresh = pool.take() else { forwarder.drops.count(.poolExhausted); return }
      queue(buffer: slotBuffer[i], p + offset, n, to)
      slotBuffer[i] = fresh
      slots[i].base = pool.buffer(fresh) + Defaults.headroom
    case .inPlace:
      queue(buffer: -1, p + offset, n, to)
    case .owned(let b):
      queue(buffer: b, p + offset, n, to)
    }
  }

  /// A datagram that is not queued: an owned buffer goes back to the pool.
  @inline(__always)
  func release(_ origin: Origin) {
    if case .owned(let b) = origin { pool.give(b) }
  }

  /// Steps 3–6 for a copy of `length` bytes at `src` in a fresh pool buffer.
  func processCopy(_ src: UnsafeRawPointer, length: Int, from: Endpoint, now: UInt64, fromLink: Bool,
                   exitFd: Int32 = -1, exitHalf: Int32 = -1) {
    if length > Wire.maxDatagram || length == 0 { forwarder.drops.count(.oversized); return }
    guard let b = pool.take() else { forwarder.drops.count(.poolExhausted); return }
    let p = pool.buffer(b) + Defaults.headroom
    p.copyMemory(from: src, byteCount: length)
    process(p, length: length, from: from, origin: .owned(b), now: now, fromLink: fromLink, exitFd: exitFd, exitHalf: exitHalf)
  }

  /// A frame that arrived inside a session (from the link layer, valid only during the
  /// call): steps 4–6 on a copy.
  public func handleFrame(_ frame: UnsafeRawBufferPointer, from: Endpoint, nowNs: UInt64) {
    guard let base = frame.baseAddress, frame.count > 0 else { forwarder.drops.count(.oversized); return }
    processCopy(base, length: frame.count, from: from, now: nowNs, fromLink: true)
  }

  /// Queues a copy of `datagram` for `to` (a record the link layer wrote). False when no
  /// pool buffer was free (dropped, counted `pool_exhausted`).
  @discardableResult
  public func sendCopy(_ datagram: UnsafeRawBufferPointer, to: Endpoint) -> Bool {
    guard let base = datagram.baseAddress else { return false }
    if datagram.count > Wire.maxDatagram + Defaults.headroom { forwarder.drops.count(.oversized); return false }
    guard let b = pool.take() else { forwarder.drops.count(.poolExhausted); return false }
    let p = pool.buffer(b)
    p.copyMemory(from: base, byteCount: datagram.count)
    queue(buffer: b, p, datagram.count, to)
    return true
  }

  /// Sends a frame this node writes outside the receive path (a sealed exit's CREATED when
  /// its keys arrive, a REFUSED): steps 5–7 on a copy, the batch goes out at once.
  public func sendVerdict(_ p: UnsafeMutableRawPointer, _ verdict: Verdict) {
    guard case .send(let to, let offset, let n) = verdict else { return }
    sendFrame(UnsafeRawBufferPointer(start: p + offset, count: n), to: to)
  }

  /// Sends a frame this node originates (PING): sealed when a session with `to` exists,
  /// else queued as it is; the batch goes out at once.
  public func sendFrame(_ frame: UnsafeRawBufferPointer, to: Endpoint) {
    if let link, link.seal(frame, to: to) { flush(); return }
    if sendCopy(frame, to: to) { flush() }
  }

  /// Adds a datagram to the send batch (`buffer` -1: not a pool buffer); a full batch is sent first.
  @inline(__always)
  func queue(buffer: Int32, _ p: UnsafeMutableRawPointer, _ length: Int, _ to: Endpoint) {
    if queued == sendCapacity { flush() }
    entries[queued] = TxEntry(bytes: p, length: length, to: to)
    entryBuffer[queued] = buffer
    queued += 1
  }

  /// 7. send the batch and give the buffers back.
  public func flush() {
    if queued == 0 { return }
    io.send(entries, count: queued, drops: &forwarder.drops)
    for k in 0..<queued where entryBuffer[k] >= 0 { pool.give(entryBuffer[k]) }
    queued = 0
  }
}

extension RelayLoop: ExitSockets {
  /// An exit circuit's socket, watched by this loop's epoll (tag: `exitTag`, fd, half).
  public func openExit(to: Endpoint, half: Int32) -> Int32 {
    let fd = io.openExit(to: to)
    if fd < 0 { return -1 }
    do throws(Errno) {
      try events.add(fd, tag: RelayLoop.exitTag | UInt64(UInt32(fd)) << 32 | UInt64(UInt32(bitPattern: half)))
    } catch {
      io.closeExit(fd)
      return -1
    }
    return fd
  }

  public func closeExit(_ fd: Int32) { io.closeExit(fd) }
}
