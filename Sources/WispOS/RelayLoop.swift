// The forwarding loop of one shard. Runs on host and device (Linux).
//
// Pipeline, in the order of the code below:
//   1. wait: epoll on the UDP socket and the signalfd, sleeping until the next timer
//   2. receive: recvmmsg a batch into pool buffers posted in the receive slots
//   3. handle: `Forwarder.handle` decodes, looks up and rewrites each datagram in place
//   4. [seal: link encryption goes here when sessions land]
//   5. queue: the buffer moves to the send batch; the receive slot takes a fresh one
//      from the pool (pool empty → drop, count `pool_exhausted`; batch full → drop,
//      count `send_queue_full`)
//   6. send: sendmmsg the batch, or runs of equal-size datagrams to one next hop as one
//      UDP GSO send; every sent buffer goes back to the pool
//   7. timers: idle expiry and quota once a second, status lines, the run's end
//
// Every buffer, message header, iovec and address slot is allocated in `init`;
// steps 2–6 allocate nothing.
import CPosix
import WispCore

public final class RelayLoop {
  public enum TimerID: Int { case tick = 1, stats = 2, stop = 3, watchdog = 4, leds = 5 }
  public enum Event { case tick, stats, stop, watchdog, leds, signal(Int32), readable(UInt64) }

  public let fd: Int32
  public let pool: PacketPool
  public let forwarder: Forwarder<KernelRandom>
  public let batch: Int
  public var gso: Bool
  public var timers = TimerQueue()
  public private(set) var running = true
  /// Called from the loop for timers and signals the owner handles (status, reload).
  public var onEvent: ((RelayLoop, Event) -> Void)?

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

    rmsgs = .allocate(capacity: batch)
    riov = .allocate(capacity: batch)
    raddr = .allocate(capacity: batch)
    rbuf = .allocate(capacity: batch)
    smsgs = .allocate(capacity: batch)
    siov = .allocate(capacity: batch)
    saddr = .allocate(capacity: batch)
    sbuf = .allocate(capacity: batch)
    ctlSpace = Int(wisp_cmsg_space_u16())
    sctl = .allocate(byteCount: ctlSpace * batch, alignment: 16)
    memset(rmsgs, 0, MemoryLayout<wisp_mmsg>.stride * batch)
    memset(smsgs, 0, MemoryLayout<wisp_mmsg>.stride * batch)
    memset(raddr, 0, MemoryLayout<sockaddr_in>.stride * batch)
    memset(saddr, 0, MemoryLayout<sockaddr_in>.stride * batch)
    for i in 0..<batch {
      guard let b = pool.take() else { preconditionFailure("pool smaller than a batch") }
      rbuf[i] = b
      riov[i] = iovec(iov_base: pool.buffer(b) + Defaults.headroom, iov_len: Wire.maxDatagram + 1)
      rmsgs[i].hdr.msg_iov = riov + i
      rmsgs[i].hdr.msg_iovlen = 1
      rmsgs[i].hdr.msg_name = UnsafeMutableRawPointer(raddr + i)
      rmsgs[i].hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
      smsgs[i].hdr.msg_name = UnsafeMutableRawPointer(saddr + i)
      smsgs[i].hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
      smsgs[i].hdr.msg_iovlen = 1
    }
  }

  deinit {
    rmsgs.deallocate(); riov.deallocate(); raddr.deallocate(); rbuf.deallocate()
    smsgs.deallocate(); siov.deallocate(); saddr.deallocate(); sbuf.deallocate(); sctl.deallocate()
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
        case .none: break
        }
      }
    }
    _ = tags.count
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
    m.pointee.hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
    m.pointee.hdr.msg_flags = 0
    if flags & Int32(MSG_TRUNC) != 0 || len > Wire.maxDatagram {
      forwarder.drops.count(.oversized)
      return
    }
    let a = raddr[i]
    let from = Endpoint(ip: UInt32(bigEndian: a.sin_addr.s_addr), port: UInt16(bigEndian: a.sin_port))
    let p = pool.buffer(rbuf[i]) + Defaults.headroom
    // 3. handle
    switch forwarder.handle(p, length: len, from: from, nowNs: now) {
    case .drop, .consumed: return
    case .send(let to, let offset, let length):
      // 4. [seal]
      // 5. queue
      if scount == batch { forwarder.drops.count(.sendQueueFull); return }
      guard let fresh = pool.take() else { forwarder.drops.count(.poolExhausted); return }
      let s = scount
      scount += 1
      sbuf[s] = rbuf[i]
      siov[s] = iovec(iov_base: p + offset, iov_len: length)
      saddr[s].sin_family = sa_family_t(AF_INET)
      saddr[s].sin_port = to.port.bigEndian
      saddr[s].sin_addr.s_addr = to.ip.bigEndian
      rbuf[i] = fresh
      riov[i].iov_base = pool.buffer(fresh) + Defaults.headroom
    }
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
    for k in 0..<scount { pool.give(sbuf[k]) }
    scount = 0
  }
}
