// DatagramIO on a Linux UDP socket: recvmmsg with UDP GRO, sendmmsg with UDP GSO. Runs on
// host and device (Linux).
//
// Every message header, iovec, address and control slot is allocated in `init`; receive
// and send allocate nothing. GRO is asked for when GSO is on and granted by the kernel;
// GSO sends runs of equal-size datagrams to one destination (at most 64 segments, under
// 65,000 bytes) as one message, and is turned off for good when the kernel refuses it.
import CPosix
import WispCore

public final class UDPBatchIO: DatagramIO {
  public let fd: Int32
  public let coalesces: Bool
  public let batch: Int
  public private(set) var gso: Bool
  /// GSO sends made and datagrams they carried; GRO receives and the datagrams in them;
  /// recvmmsg/sendmmsg calls (for status and the benchmark).
  public private(set) var gsoSends: UInt64 = 0
  public private(set) var gsoSegments: UInt64 = 0
  public private(set) var groReceives: UInt64 = 0
  public private(set) var groSegments: UInt64 = 0
  public private(set) var syscalls: UInt64 = 0
  let sendCapacity: Int
  let rmsgs: UnsafeMutablePointer<wisp_mmsg>
  let riov: UnsafeMutablePointer<iovec>
  let raddr: UnsafeMutablePointer<sockaddr_in>
  let rctl: UnsafeMutableRawPointer
  let rctlSpace: Int
  let smsgs: UnsafeMutablePointer<wisp_mmsg>
  let siov: UnsafeMutablePointer<iovec>
  let saddr: UnsafeMutablePointer<sockaddr_in>
  let sctl: UnsafeMutableRawPointer
  let sctlSpace: Int

  /// `fd`: a bound non-blocking UDP socket (closed by deinit). `batch`: datagrams per
  /// receive; `sendCapacity`: entries per send.
  public init(fd: Int32, batch: Int, sendCapacity: Int, gso: Bool) {
    self.fd = fd
    self.batch = batch
    self.gso = gso
    coalesces = gso && wisp_udp_enable_gro(fd) == 0
    self.sendCapacity = sendCapacity
    rmsgs = .allocate(capacity: batch)
    riov = .allocate(capacity: batch)
    raddr = .allocate(capacity: batch)
    rctlSpace = Int(wisp_cmsg_space_int())
    rctl = .allocate(byteCount: rctlSpace * batch, alignment: 16)
    smsgs = .allocate(capacity: sendCapacity)
    siov = .allocate(capacity: sendCapacity)
    saddr = .allocate(capacity: sendCapacity)
    sctlSpace = Int(wisp_cmsg_space_u16())
    sctl = .allocate(byteCount: sctlSpace * sendCapacity, alignment: 16)
    memset(rmsgs, 0, MemoryLayout<wisp_mmsg>.stride * batch)
    memset(raddr, 0, MemoryLayout<sockaddr_in>.stride * batch)
    memset(smsgs, 0, MemoryLayout<wisp_mmsg>.stride * sendCapacity)
    memset(saddr, 0, MemoryLayout<sockaddr_in>.stride * sendCapacity)
    for i in 0..<batch {
      rmsgs[i].hdr.msg_iov = riov + i
      rmsgs[i].hdr.msg_iovlen = 1
      rmsgs[i].hdr.msg_name = UnsafeMutableRawPointer(raddr + i)
      if coalesces { rmsgs[i].hdr.msg_control = rctl + i * rctlSpace }
    }
    for i in 0..<sendCapacity {
      smsgs[i].hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
    }
  }

  deinit {
    rmsgs.deallocate(); riov.deallocate(); raddr.deallocate(); rctl.deallocate()
    smsgs.deallocate(); siov.deallocate(); saddr.deallocate(); sctl.deallocate()
    close(fd)
  }

  public func receive(_ slots: UnsafeMutablePointer<RxSlot>, count: Int) -> Int {
    receive(on: fd, slots, count: count, gro: coalesces)
  }

  public func receiveExit(_ exitFd: Int32, _ slots: UnsafeMutablePointer<RxSlot>, count: Int) -> Int {
    receive(on: exitFd, slots, count: count, gro: coalesces)
  }

  /// An exit circuit's socket: bound to any port of the node's address family, connected to
  /// `to`, so the kernel delivers only that destination's datagrams to it.
  public func openExit(to: Endpoint) -> Int32 {
    let s = wisp_udp_open(0, 0, 0, 0)
    if s < 0 { return s }
    let r = wisp_udp_connect(s, to.ip, to.port)
    if r < 0 { close(s); return r }
    // With 64 KB receive slots, a destination's bulk replies may arrive as GRO runs too.
    if coalesces { _ = wisp_udp_enable_gro(s) }
    return s
  }

  public func closeExit(_ exitFd: Int32) { close(exitFd) }

  public func sendExit(_ exitFd: Int32, _ p: UnsafeRawPointer, _ length: Int) -> Bool {
    syscalls &+= 1
    return wisp_send(exitFd, p, length) == length
  }

  func receive(on fd: Int32, _ slots: UnsafeMutablePointer<RxSlot>, count: Int, gro: Bool) -> Int {
    let n = min(count, batch)
    for i in 0..<n {
      riov[i] = iovec(iov_base: slots[i].base, iov_len: slots[i].capacity)
      rmsgs[i].hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
      rmsgs[i].hdr.msg_flags = 0
      if coalesces { rmsgs[i].hdr.msg_controllen = gro ? rctlSpace : 0 }
    }
    let r = wisp_recvmmsg(fd, rmsgs, UInt32(n), Int32(MSG_DONTWAIT))
    syscalls &+= 1
    if r <= 0 { return 0 }
    for i in 0..<Int(r) {
      let m = rmsgs + i
      let a = raddr[i]
      slots[i].length = Int(m.pointee.len)
      slots[i].truncated = m.pointee.hdr.msg_flags & Int32(MSG_TRUNC) != 0
      slots[i].from = Endpoint(ip: UInt32(bigEndian: a.sin_addr.s_addr), port: UInt16(bigEndian: a.sin_port))
      let segment = gro ? Int(wisp_gro_segment_size(&m.pointee.hdr)) : 0
      if segment > 0 && slots[i].length > segment {
        slots[i].segment = segment
        groReceives &+= 1
        groSegments &+= UInt64((slots[i].length + segment - 1) / segment)
      } else {
        slots[i].segment = 0
      }
    }
    return Int(r)
  }

  public func send(_ entries: UnsafePointer<TxEntry>, count: Int, drops: inout DropCounters) {
    if count == 0 { return }
    var out = 0  // messages built
    var i = 0
    while i < count {
      let m = smsgs + out
      siov[i] = iovec(iov_base: entries[i].bytes, iov_len: entries[i].length)
      saddr[i].sin_family = sa_family_t(AF_INET)
      saddr[i].sin_port = entries[i].to.port.bigEndian
      saddr[i].sin_addr.s_addr = entries[i].to.ip.bigEndian
      m.pointee.hdr.msg_name = UnsafeMutableRawPointer(saddr + i)
      m.pointee.hdr.msg_iov = siov + i
      m.pointee.hdr.msg_iovlen = 1
      m.pointee.hdr.msg_control = nil
      m.pointee.hdr.msg_controllen = 0
      var run = 1
      if gso {
        // A run of equal-size datagrams to the same destination becomes one GSO send.
        let size = entries[i].length
        while i + run < count && run < 64 && entries[i + run].length == size && entries[i + run].to == entries[i].to
          && (run + 1) * size <= 65_000 {
          siov[i + run] = iovec(iov_base: entries[i + run].bytes, iov_len: size)
          run += 1
        }
        if run > 1 {
          m.pointee.hdr.msg_iovlen = run
          let ctl = sctl + out * sctlSpace
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
      if e == EINTR || e == EAGAIN { continue }
      if e == EIO || e == EINVAL, gso {
        // The kernel refused GSO (no UDP_SEGMENT support): turn it off and count.
        gso = false
      }
      drops.count(.sendFailed, UInt64(smsgs[sent].hdr.msg_iovlen))
      sent += 1
    }
    if sent < out {
      var lost: UInt64 = 0
      for k in sent..<out { lost += UInt64(smsgs[k].hdr.msg_iovlen) }
      drops.count(.sendQueueFull, lost)
    }
  }
}
