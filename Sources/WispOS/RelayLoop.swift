// The forwarding loop of one shard. Runs on host and device (Linux).
//
// Pipeline, in the order of the code below:
//   1. wait: epoll on the UDP socket and the signalfd, sleeping until the next timer
//   2. receive: recvmmsg a batch into the buffers posted in the receive slots — pool
//      buffers, or with UDP GRO one 64 KB buffer per slot, where the kernel may put a
//      run of same-size datagrams from one sender (each segment handled on its own)
//   3. handle: `Forwarder.handle` decodes, looks up and rewrites each datagram in place
//   4. seal: a frame bound for a peer with a DTLS session is written into it as a record
//      (LinkLayer.seal; the record is copied into a pool buffer); DTLS datagrams received
//      in step 2 went to LinkLayer.receive instead, and the frames they carried come back
//      to step 3 through `handleFrame`
//   5. queue: the datagram joins the send batch. Pool mode: the buffer moves to the
//      batch and the slot takes a fresh one (pool empty → drop, count `pool_exhausted`).
//      GRO mode: sent from where it lies, before the slot is reused. A full batch is
//      sent early.
//   6. send: sendmmsg the batch, or runs of equal-size datagrams to one next hop as one
//      UDP GSO send; every sent buffer goes back to the pool
//   7. timers: idle expiry and quota once a second, status lines, the run's end
//
// Every buffer, message header, iovec and address slot is allocated in `init`;
// steps 2–6 allocate nothing.
import CPosix
import WispCore

public final class RelayLoop {
  public enum TimerID: Int { case tick = 1, stats = 2, stop = 3, watchdog = 4, leds = 5, link = 6 }
  public enum Event { case tick, stats, stop, watchdog, leds, signal(Int32), readable(UInt64) }

  public let fd: Int32
  public let pool: PacketPool
  public let forwarder: Forwarder<KernelRandom>
  public let batch: Int
  public var gso: Bool
  /// UDP GRO granted by the kernel: 64 KB receive slots, segments forwarded in place.
  public private(set) var gro = false
  /// Datagrams that arrived coalesced by GRO, and the receives that carried them.
  public private(set) var groSegments: UInt64 = 0
  public private(set) var groReceives: UInt64 = 0
  static let groSlotSize = 65_536
  let sendCapacity: Int
  let groArea: UnsafeMutableRawPointer?
  let rctl: UnsafeMutableRawPointer
  let rctlSpace: Int
  public var timers = TimerQueue()
  public private(set) var running = true
  /// DTLS sessions with peers (nil: DTLS datagrams are dropped as `dtls_unsupported`).
  public var link: LinkLayer? = nil
  /// How often the link layer's timers run.
  public static let linkPollNs: UInt64 = 50_000_000
  /// Called from the loop for timers and signals the owner handles (status, reload).
  public var onEvent: ((RelayLoop, Event) -> Void)?
  /// Where the loop publishes its forwarded-packet count after every receive pass (a
  /// relaxed atomic store, read by the control plane for the activity LED).
  public var published: UnsafeMutablePointer<UInt64>? = nil

  let epfd: Int32
  let sigfd: Int32
  // Receive side: one buffer per slot, always posted.
  let rmsgs: UnsafeMutablePointer<wisp_mmsg>
  let riov: UnsafeMutablePointer<iovec>
  let raddr: UnsafeMutablePointer<sockaddr_in>
  let rbuf: UnsafeMutablePointer<Int32>
  // Send side.
  let smsgs: UnsafeMutablePointer<wisp_mmsg>
  let siov: UnsafeMutablePointer<iovec>
  let saddr: UnsafeMutablePointer<sockaddr_in>
  let sbuf: UnsafeMutablePointer<Int32>
  let sctl: UnsafeMutableRawPointer
  let ctlSpace: Int
  var scount = 0
  /// GSO sends made and datagrams they carried (for status and the benchmark).
  public private(set) var gsoSends: UInt64 = 0
  public private(set) var gsoSegments: UInt64 = 0
  public private(set) var syscalls: UInt64 = 0

  /// `fd` must be a bound non-blocking UDP socket; `signals` whether this loop owns the signalfd.
  public init(fd: Int32, pool: PacketPool, forwarder: Forwarder<KernelRandom>, batch: Int, gso: Bool,
              signals: Bool) throws(Errno) {
    self.fd = fd
    self.pool = pool
    self.forwarder = forwarder
    self.batch = batch
    self.gso = gso
    let ep = try retryingNegErrno { wisp_epoll_create() }
    let sf = signals ? try retryingNegErrno { wisp_signalfd() } : -1
    _ = try retryingNegErrno { wisp_epoll_add(ep, fd, 0) }
    if sf >= 0 { _ = try retryingNegErrno { wisp_epoll_add(ep, sf, 1) } }
    epfd = ep
    sigfd = sf
    let wantGRO = gso && wisp_udp_enable_gro(fd) == 0
    gro = wantGRO
    sendCapacity = wantGRO ? batch * 64 : batch
    // Reserved whole at start; pages become resident only where datagrams land.
    groArea = wantGRO ? UnsafeMutableRawPointer(zeroedBytes: batch * RelayLoop.groSlotSize) : nil
    rctlSpace = Int(wisp_cmsg_space_int())
    rctl = .allocate(byteCount: rctlSpace * batch, alignment: 16)

    rmsgs = .allocate(capacity: batch)
    riov = .allocate(capacity: batch)
    raddr = .allocate(capacity: batch)
    rbuf = .allocate(capacity: batch)
    smsgs = .allocate(capacity: sendCapacity)
    siov = .allocate(capacity: sendCapacity)
    saddr = .allocate(capacity: sendCapacity)
    sbuf = .allocate(capacity: sendCapacity)
    ctlSpace = Int(wisp_cmsg_space_u16())
    sctl = .allocate(byteCount: ctlSpace * sendCapacity, alignment: 16)
    memset(rmsgs, 0, MemoryLayout<wisp_mmsg>.stride * batch)
    memset(smsgs, 0, MemoryLayout<wisp_mmsg>.stride * sendCapacity)
    memset(raddr, 0, MemoryLayout<sockaddr_in>.stride * batch)
    memset(saddr, 0, MemoryLayout<sockaddr_in>.stride * sendCapacity)
    for i in 0..<batch {
      if let area = groArea {
        rbuf[i] = -1
        let slot = area + i * RelayLoop.groSlotSize
        riov[i] = iovec(iov_base: slot + Defaults.headroom, iov_len: RelayLoop.groSlotSize - Defaults.headroom)
        rmsgs[i].hdr.msg_control = rctl + i * rctlSpace
        rmsgs[i].hdr.msg_controllen = rctlSpace
      } else {
        guard let b = pool.take() else { preconditionFailure("pool smaller than a batch") }
        rbuf[i] = b
        riov[i] = iovec(iov_base: pool.buffer(b) + Defaults.headroom, iov_len: Wire.maxDatagram + 1)
      }
      rmsgs[i].hdr.msg_iov = riov + i
      rmsgs[i].hdr.msg_iovlen = 1
      rmsgs[i].hdr.msg_name = UnsafeMutableRawPointer(raddr + i)
      rmsgs[i].hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
    }
    for i in 0..<sendCapacity {
      smsgs[i].hdr.msg_name = UnsafeMutableRawPointer(saddr + i)
      smsgs[i].hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
      smsgs[i].hdr.msg_iovlen = 1
    }
  }

  deinit {
    rmsgs.deallocate(); riov.deallocate(); raddr.deallocate(); rbuf.deallocate()
    smsgs.deallocate(); siov.deallocate(); saddr.deallocate(); sbuf.deallocate(); sctl.deallocate()
    rctl.deallocate()
    groArea?.deallocate()  // calloc'd; Swift's allocator is malloc/free
    close(epfd)
    if sigfd >= 0 { close(sigfd) }
  }

  public func stop() { running = false }

  /// Adds `fd` to this loop's epoll set; readiness arrives as `.readable(tag)` (tag ≥ 16).
  public func watch(_ fd: Int32, tag: UInt64) throws(Errno) {
    precondition(tag >= 16, "tags below 16 are the loop's own")
    _ = try retryingNegErrno { wisp_epoll_add(epfd, fd, tag) }
  }

  /// Runs until `stop()` (from a timer or signal handler).
  public func run() {
    var tags = [UInt64](repeating: 0, count: 4)
    let tagp = tags.withUnsafeMutableBufferPointer { $0.baseAddress! }  // lives as long as `tags`
    while running {
      // 1. wait
      let now = wisp_monotonic_ns()
      let n = wisp_epoll_wait(epfd, tagp, 4, timers.timeoutMs(now: now))
      if n < 0 && -n != EINTR { fatalError("epoll_wait failed") }  // only on a bad epoll fd
      if n > 0 {
        for i in 0..<Int(n) {
          if tagp[i] == 0 { drain() } else if tagp[i] == 1 { readSignals() } else { onEvent?(self, .readable(tagp[i])) }
        }
      }
      // 7. timers
      let later = wisp_monotonic_ns()
      while let id = timers.popDue(now: later) {
        switch TimerID(rawValue: id) {
        case .tick:
          forwarder.tick(nowNs: later, nowEpoch: wisp_realtime_s())
          if wisp_stop_requested() != 0 { running = false }  // another shard asked all to stop
          onEvent?(self, .tick)
        case .stats: onEvent?(self, .stats)
        case .stop: onEvent?(self, .stop)
        case .watchdog: onEvent?(self, .watchdog)
        case .leds: onEvent?(self, .leds)
        case .link:
          link?.poll(nowNs: later)
          flush()
        case .none: break
        }
      }
    }
    link?.shutdown()
    flush()
    _ = tags.count
  }

  /// Installs the link layer and its timer.
  public func attach(link: LinkLayer) {
    self.link = link
    timers.schedule(TimerID.link.rawValue, at: wisp_monotonic_ns() + RelayLoop.linkPollNs, every: RelayLoop.linkPollNs)
  }

  /// Steps 3–5 for a frame that arrived inside a session: copied into a pool buffer (with
  /// headroom for in-place rewriting), handled, then sealed or queued.
  public func handleFrame(_ frame: UnsafeRawBufferPointer, from: Endpoint, nowNs: UInt64) {
    if frame.count > Wire.maxDatagram || frame.count == 0 { forwarder.drops.count(.oversized); return }
    guard let b = pool.take() else { forwarder.drops.count(.poolExhausted); return }
    let p = pool.buffer(b) + Defaults.headroom
    p.copyMemory(from: frame.baseAddress!, byteCount: frame.count)
    if case .send(let to, let offset, let n) = forwarder.handle(p, length: frame.count, from: from, nowNs: nowNs),
       !sealed(p + offset, n, to) {
      queue(buffer: b, p + offset, n, to)
    } else {
      pool.give(b)
    }
  }

  /// Queues a copy of `datagram` for `to` (a record a session wrote). False when no pool
  /// buffer was free (dropped, counted `pool_exhausted`).
  @discardableResult
  public func sendCopy(_ datagram: UnsafeRawBufferPointer, to: Endpoint) -> Bool {
    if datagram.count > Wire.maxDatagram + Defaults.headroom { forwarder.drops.count(.oversized); return false }
    guard let b = pool.take() else { forwarder.drops.count(.poolExhausted); return false }
    let p = pool.buffer(b)
    p.copyMemory(from: datagram.baseAddress!, byteCount: datagram.count)
    queue(buffer: b, p, datagram.count, to)
    return true
  }

  /// Sends a frame this node originates (PING): sealed when a session with `to` exists.
  public func sendFrame(_ frame: UnsafeRawBufferPointer, to: Endpoint) {
    if let link, link.seal(frame, to: to) { flush(); return }
    _ = wisp_sendto(fd, frame.baseAddress!, frame.count, to.ip, to.port)
  }

  /// The link layer's answer for a datagram at `p`: true when it was taken (DTLS, or a plain
  /// frame the link refuses).
  @inline(__always)
  func linkTakes(_ p: UnsafeMutableRawPointer, length: Int, from: Endpoint, now: UInt64) -> Bool {
    guard let link, length > 0 else { return false }
    let b = p.load(as: UInt8.self)
    if b >= Wire.dtlsLow && b <= Wire.dtlsHigh {
      link.receive(UnsafeRawBufferPointer(start: p, count: length), from: from, nowNs: now)
      return true
    }
    return !link.admitsPlain(from: from, type: length > 1 ? p.load(fromByteOffset: 1, as: UInt8.self) : 0)
  }

  /// Step 4: true when the link layer took the frame at `p` for `to` (sealed into a session,
  /// or refused); false to send it as it is.
  @inline(__always)
  func sealed(_ p: UnsafeMutableRawPointer, _ length: Int, _ to: Endpoint) -> Bool {
    guard let link else { return false }
    return link.seal(UnsafeRawBufferPointer(start: p, count: length), to: to)
  }

  func readSignals() {
    while true {
      let s = wisp_signalfd_read(sigfd)
      if s == 0 { return }
      onEvent?(self, .signal(s))
    }
  }

  /// Steps 2–6 until the socket is empty (at most 64 batches, so timers still run).
  func drain() {
    defer { if let published { wisp_atomic_store_u64(published, forwarder.traffic.forwardedPackets) } }
    for _ in 0..<64 {
      // 2. receive
      let r = wisp_recvmmsg(fd, rmsgs, UInt32(batch), Int32(MSG_DONTWAIT))
      syscalls &+= 1
      if r <= 0 { return }
      let now = wisp_monotonic_ns()
      for i in 0..<Int(r) {
        handleSlot(i, now: now)
      }
      flush()
      if Int(r) < batch { return }
    }
  }

  @inline(__always)
  func handleSlot(_ i: Int, now: UInt64) {
    let m = rmsgs + i
    let len = Int(m.pointee.len)
    let flags = m.pointee.hdr.msg_flags
    let segment = gro ? Int(wisp_gro_segment_size(&m.pointee.hdr)) : 0
    m.pointee.hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
    m.pointee.hdr.msg_flags = 0
    if gro { m.pointee.hdr.msg_controllen = rctlSpace }
    if flags & Int32(MSG_TRUNC) != 0 {
      forwarder.drops.count(.oversized)
      return
    }
    let a = raddr[i]
    let from = Endpoint(ip: UInt32(bigEndian: a.sin_addr.s_addr), port: UInt16(bigEndian: a.sin_port))
    if let area = groArea {
      let p = area + i * RelayLoop.groSlotSize + Defaults.headroom
      if segment > 0 && len > segment {
        // A GRO run: each segment is one datagram. Exit replies get a header prepended,
        // which would overwrite the previous segment: those are copied to pool buffers.
        groReceives &+= 1
        let copy = forwarder.isExitSource(from)
        var off = 0
        while off < len {
          let n = min(segment, len - off)
          groSegments &+= 1
          if copy { handleCopy(p + off, length: n, from: from, now: now) } else { handleInPlace(p + off, length: n, from: from, now: now) }
          off += n
        }
      } else {
        handleInPlace(p, length: len, from: from, now: now)
      }
      return
    }
    if len > Wire.maxDatagram {
      forwarder.drops.count(.oversized)
      return
    }
    let p = pool.buffer(rbuf[i]) + Defaults.headroom
    if linkTakes(p, length: len, from: from, now: now) { return }
    // 3. handle
    switch forwarder.handle(p, length: len, from: from, nowNs: now) {
    case .drop, .consumed: return
    case .send(let to, let offset, let length):
      // 4. seal: the record is a copy; the received buffer stays in its slot.
      if sealed(p + offset, length, to) { return }
      // 5. queue: the buffer goes with the datagram, the slot takes a fresh one.
      guard let fresh = pool.take() else { forwarder.drops.count(.poolExhausted); return }
      queue(buffer: rbuf[i], p + offset, length, to)
      rbuf[i] = fresh
      riov[i].iov_base = pool.buffer(fresh) + Defaults.headroom
    }
  }

  /// Steps 3–5 for a datagram sent from where it lies (GRO slots; headroom before it).
  @inline(__always)
  func handleInPlace(_ p: UnsafeMutableRawPointer, length: Int, from: Endpoint, now: UInt64) {
    if length > Wire.maxDatagram { forwarder.drops.count(.oversized); return }
    if linkTakes(p, length: length, from: from, now: now) { return }
    if case .send(let to, let offset, let n) = forwarder.handle(p, length: length, from: from, nowNs: now) {
      if sealed(p + offset, n, to) { return }
      queue(buffer: -1, p + offset, n, to)
    }
  }

  /// Steps 3–5 for a segment copied into a pool buffer first.
  func handleCopy(_ src: UnsafeMutableRawPointer, length: Int, from: Endpoint, now: UInt64) {
    if length > Wire.maxDatagram { forwarder.drops.count(.oversized); return }
    guard let b = pool.take() else { forwarder.drops.count(.poolExhausted); return }
    let p = pool.buffer(b) + Defaults.headroom
    p.copyMemory(from: src, byteCount: length)
    if linkTakes(p, length: length, from: from, now: now) { pool.give(b); return }
    if case .send(let to, let offset, let n) = forwarder.handle(p, length: length, from: from, nowNs: now) {
      if sealed(p + offset, n, to) { pool.give(b); return }
      queue(buffer: b, p + offset, n, to)
    } else {
      pool.give(b)
    }
  }

  /// Adds a datagram to the send batch (`buffer` -1: not a pool buffer); a full batch is sent first.
  @inline(__always)
  func queue(buffer: Int32, _ p: UnsafeMutableRawPointer, _ length: Int, _ to: Endpoint) {
    if scount == sendCapacity { flush() }
    let s = scount
    scount += 1
    sbuf[s] = buffer
    siov[s] = iovec(iov_base: p, iov_len: length)
    saddr[s].sin_family = sa_family_t(AF_INET)
    saddr[s].sin_port = to.port.bigEndian
    saddr[s].sin_addr.s_addr = to.ip.bigEndian
  }

  /// 6. send the queued batch and give the buffers back.
  func flush() {
    if scount == 0 { return }
    var out = 0  // messages built
    var i = 0
    while i < scount {
      let m = smsgs + out
      m.pointee.hdr.msg_name = UnsafeMutableRawPointer(saddr + i)
      m.pointee.hdr.msg_iov = siov + i
      m.pointee.hdr.msg_iovlen = 1
      m.pointee.hdr.msg_control = nil
      m.pointee.hdr.msg_controllen = 0
      var run = 1
      if gso {
        // A run of equal-size datagrams to the same destination becomes one GSO send.
        let size = siov[i].iov_len
        while i + run < scount && run < 64 && siov[i + run].iov_len == size
          && saddr[i + run].sin_addr.s_addr == saddr[i].sin_addr.s_addr
          && saddr[i + run].sin_port == saddr[i].sin_port && (run + 1) * size <= 65_000 {
          run += 1
        }
        if run > 1 {
          m.pointee.hdr.msg_iovlen = run
          let ctl = sctl + out * ctlSpace
          m.pointee.hdr.msg_control = ctl
          m.pointee.hdr.msg_controllen = wisp_put_gso_cmsg(ctl, UInt16(size))
          gsoSends &+= 1
          gsoSegments &+= UInt64(run)
        }
      }
      out += 1
      i += run
    }
    var sent = 0
    var attempts = 0
    while sent < out && attempts < 4 {
      let r = wisp_sendmmsg(fd, smsgs + sent, UInt32(out - sent), Int32(MSG_DONTWAIT))
      syscalls &+= 1
      attempts += 1
      if r > 0 { sent += Int(r); continue }
      let e = wisp_errno()
      if e == EINTR { continue }
      if e == EAGAIN { continue }
      if e == EIO || e == EINVAL, gso {
        // The kernel refused GSO (no UDP_SEGMENT support): turn it off and count.
        gso = false
      }
      forwarder.drops.count(.sendFailed, UInt64(smsgs[sent].hdr.msg_iovlen))
      sent += 1
    }
    if sent < out {
      var lost: UInt64 = 0
      for k in sent..<out { lost += UInt64(smsgs[k].hdr.msg_iovlen) }
      forwarder.drops.count(.sendQueueFull, lost)
    }
    for k in 0..<scount where sbuf[k] >= 0 { pool.give(sbuf[k]) }
    scount = 0
  }
}
