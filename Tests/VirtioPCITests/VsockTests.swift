import Foundation
import Testing
import Virtio
@testable import VirtioPCI

/// A decoded packet the device put on the guest's receive queue.
struct VsockPacket {
    var srcCID: UInt64, dstCID: UInt64, srcPort: UInt32, dstPort: UInt32
    var len: UInt32, type: UInt16, op: UInt16, flags: UInt32, bufAlloc: UInt32, fwdCnt: UInt32
    var payload: [UInt8]
}

enum Op {
    static let request: UInt16 = 1, response: UInt16 = 2, rst: UInt16 = 3, shutdown: UInt16 = 4
    static let rw: UInt16 = 5, creditUpdate: UInt16 = 6, creditRequest: UInt16 = 7
}

/// Plays the guest's vsock driver (net/vmw_vsock/virtio_transport.c) over a
/// FakeDriver: receive buffers posted four at a time, packets sent one chain each.
final class VsockGuest {
    let d: FakeDriver
    let device: VirtioVsock
    let cid: UInt64
    private var usedSeen = [0, 0, 0]
    private var posted: [UInt16: UInt64] = [:]
    private var free: [UInt64]
    let receiveSize: UInt32
    static let transmitArea = FakeDriver.data + 0x40000

    init(cid: UInt64 = 3, listener: Int32, path: String, limits: VirtioVsock.Limits = .init(), receiveSize: UInt32 = 4096) {
        self.cid = cid
        device = VirtioVsock(guestCID: cid, listener: listener, socketPath: path, limits: limits)
        d = FakeDriver(device: device)
        self.receiveSize = receiveSize
        free = (0..<4).map { FakeDriver.data + UInt64($0) * 0x10000 }
        d.start(queues: 3)
    }

    /// Used entries queue `q` completed since the last call.
    func newUsed(_ q: Int) -> [(id: UInt16, length: UInt32)] {
        let used = FakeDriver.area(q) + 0x2000
        let index = Int(d.memory.load(used + 2, as: UInt16.self)!)
        defer { usedSeen[q] = index }
        return (usedSeen[q]..<index).map { i in
            let at = used + 4 + 8 * UInt64(i % Int(FakeDriver.queueSize))
            return (UInt16(d.memory.load(at, as: UInt32.self)!), d.memory.load(at + 4)!)
        }
    }

    /// Posts every free receive buffer, lets the device work, returns what arrived.
    @discardableResult
    func pump(postBuffers: Bool = true) -> [VsockPacket] {
        if postBuffers {
            while let a = free.popLast() { posted[d.submit(0, [(a, receiveSize, true)])] = a }
        }
        d.kick(0)
        return collect()
    }

    func collect() -> [VsockPacket] {
        newUsed(0).map { e in
            let a = posted.removeValue(forKey: e.id)!
            free.append(a)
            let m = d.memory
            let len = Int(e.length)
            return VsockPacket(srcCID: m.load(a)!, dstCID: m.load(a + 8)!, srcPort: m.load(a + 16)!, dstPort: m.load(a + 20)!,
                               len: m.load(a + 24)!, type: m.load(a + 28)!, op: m.load(a + 30)!, flags: m.load(a + 32)!,
                               bufAlloc: m.load(a + 36)!, fwdCnt: m.load(a + 40)!,
                               payload: len > 44 ? m.read(a + 44, length: len - 44)! : [])
        }
    }

    /// Sends one packet (header and payload split over two buffers when
    /// `split`); `len`, CIDs and type default to what a correct driver sends.
    func send(op: UInt16, src: UInt32, dst: UInt32, payload: [UInt8] = [], flags: UInt32 = 0,
              bufAlloc: UInt32 = 65536, fwdCnt: UInt32 = 0, len: UInt32? = nil,
              srcCID: UInt64? = nil, dstCID: UInt64 = 2, type: UInt16 = 1, split: Bool = false, chainLength: UInt32? = nil) {
        let a = Self.transmitArea, m = d.memory
        m.store(srcCID ?? cid, at: a); m.store(dstCID, at: a + 8)
        m.store(src, at: a + 16); m.store(dst, at: a + 20)
        m.store(len ?? UInt32(payload.count), at: a + 24)
        m.store(type, at: a + 28); m.store(op, at: a + 30); m.store(flags, at: a + 32)
        m.store(bufAlloc, at: a + 36); m.store(fwdCnt, at: a + 40)
        m.write(payload, at: a + 44)
        if let chainLength {
            d.submit(1, [(a, chainLength, false)])
        } else if split && !payload.isEmpty {
            d.submit(1, [(a, 44, false), (a + 44, UInt32(payload.count), false)])
        } else {
            d.submit(1, [(a, 44 + UInt32(payload.count), false)])
        }
        d.kick(1)
        _ = newUsed(1)
    }
}

/// Host-side Unix sockets for the tests.
enum HostSocket {
    nonisolated(unsafe) static var counter = 0
    /// A fresh short path (sun_path holds 107 bytes).
    static func path() -> String {
        counter += 1
        return "/tmp/xv-\(getpid())-\(counter)-\(UInt32.random(in: 0...UInt32.max))"
    }

    static func address(_ path: String) -> sockaddr_un {
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &a.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        return a
    }

    static func listen(_ path: String) -> Int32 {
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var a = address(path)
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        precondition(r == 0 && Glibc.listen(fd, 16) == 0, "bind \(path): \(errno)")
        return fd
    }

    static func connect(_ path: String) -> Int32 {
        let fd = tryConnect(path)
        precondition(fd != nil, "connect \(path): \(errno)")
        return fd!
    }

    /// A non-blocking connection; nil when the listener's backlog is full.
    static func tryConnect(_ path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var a = address(path)
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        if r != 0 { close(fd); return nil }
        return fd
    }

    static func write(_ fd: Int32, _ s: String) { writeSome(fd, Array(s.utf8)) }

    /// Writes what the socket takes now; returns how many bytes.
    @discardableResult
    static func writeSome(_ fd: Int32, _ bytes: some Collection<UInt8>) -> Int {
        let a = Array(bytes)
        let n = a.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        return max(n, 0)
    }

    /// Everything readable now; nil at EOF (or a reset) with nothing read.
    static func read(_ fd: Int32) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { out += buffer[..<n]; continue }
            if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) { return out.isEmpty ? nil : out }
            return out
        }
    }

    static func readString(_ fd: Int32) -> String? { read(fd).map { String(decoding: $0, as: UTF8.self) } }
}

@Suite("virtio-vsock")
struct VsockTests {
    /// A device listening at a fresh path, and its guest.
    final class Setup {
        let path: String
        let listener: Int32
        let guest: VsockGuest
        var extra: [Int32] = []
        init(cid: UInt64 = 3, limits: VirtioVsock.Limits = .init(), receiveSize: UInt32 = 4096) {
            path = HostSocket.path()
            listener = HostSocket.listen(path)
            guest = VsockGuest(cid: cid, listener: listener, path: path, limits: limits, receiveSize: receiveSize)
        }
        deinit {
            close(listener)
            unlink(path)
            for fd in extra { close(fd) }
        }

        /// A host-initiated connection to guest `port`, accepted: (client fd, host port).
        func hostConnect(port: UInt32, guestBufAlloc: UInt32 = 65536, extraBytes: String = "") -> (Int32, UInt32) {
            let client = HostSocket.connect(path)
            extra.append(client)
            HostSocket.write(client, "CONNECT \(port)\n" + extraBytes)
            let request = guest.pump().first { $0.op == Op.request && $0.dstPort == port }!
            guest.send(op: Op.response, src: port, dst: request.srcPort, bufAlloc: guestBufAlloc)
            return (client, request.srcPort)
        }
    }

    @Test("configuration: device 0x1053, the 64-bit guest_cid reads back, the STREAM feature is offered")
    func configuration() {
        let s = Setup(cid: 0x1_0000_0007)
        let d = s.guest.d
        #expect(d.config(0x00) == 0x1053_1af4)
        #expect(d.read(FakeDriver.deviceConfig, 8) == 0x1_0000_0007)
        #expect(d.read(FakeDriver.deviceConfig, 4) == 7)
        #expect(d.read(FakeDriver.deviceConfig + 4, 4) == 1)
        #expect(d.deviceFeatures() & 1 != 0)
        #expect(d.status == 0x0f)       // features accepted, driver running
    }

    @Test("host CONNECT: the guest sees a REQUEST with the ports, its RESPONSE gives OK; bytes both ways")
    func hostConnect() throws {
        let s = Setup()
        let client = HostSocket.connect(s.path)
        defer { close(client) }
        // Bytes after the line belong to the stream, not to the request.
        HostSocket.write(client, "CONNECT 5000\nearly")
        let packets = s.guest.pump()
        try #require(packets.count == 1)
        let r = packets[0]
        #expect(r.op == Op.request && r.type == 1)
        #expect(r.srcCID == 2 && r.dstCID == 3 && r.dstPort == 5000 && r.srcPort >= 1 << 30)
        #expect(r.bufAlloc == 256 * 1024 && r.len == 0)
        #expect(HostSocket.readString(client) == "")          // no answer before the guest's

        s.guest.send(op: Op.response, src: 5000, dst: r.srcPort)
        #expect(HostSocket.readString(client) == "OK \(r.srcPort)\n")
        let early = s.guest.pump()
        #expect(early.map(\.op) == [Op.rw])
        #expect(early.first.map { String(decoding: $0.payload, as: UTF8.self) } == "early")
        #expect(early.first.map { $0.srcPort == r.srcPort && $0.dstPort == 5000 && $0.len == 5 } == true)

        HostSocket.write(client, "hello")
        #expect(s.guest.pump().map { String(decoding: $0.payload, as: UTF8.self) } == ["hello"])
        s.guest.send(op: Op.rw, src: 5000, dst: r.srcPort, payload: Array("world".utf8), split: true)
        #expect(HostSocket.readString(client) == "world")

        // The host hangs up: SHUTDOWN both ways; the guest's RST ends it.
        close(client)
        let bye = s.guest.pump()
        #expect(bye.map(\.op) == [Op.shutdown])
        #expect(bye.first?.flags == 3)
        s.guest.send(op: Op.rst, src: 5000, dst: r.srcPort)
        #expect(s.guest.pump().isEmpty)
        #expect(s.guest.device.connectionCount == 0)
    }

    @Test("host CONNECT to a port the guest refuses: its RST closes the Unix connection; bad lines are closed")
    func hostConnectRefused() {
        let s = Setup()
        let client = HostSocket.connect(s.path)
        defer { close(client) }
        HostSocket.write(client, "CONNECT 9\n")
        let r = s.guest.pump()[0]
        s.guest.send(op: Op.rst, src: 9, dst: r.srcPort)
        #expect(HostSocket.read(client) == nil)         // EOF, no OK

        for line in ["HELLO 1\n", "CONNECT x\n", "CONNECT 99999999999\n", String(repeating: "A", count: 40)] {
            let bad = HostSocket.connect(s.path)
            defer { close(bad) }
            HostSocket.write(bad, line)
            #expect(s.guest.pump().isEmpty)
            s.guest.pump()
            #expect(HostSocket.read(bad) == nil, "\(line)")
        }
        #expect(s.guest.device.connectionCount == 0)
    }

    @Test("guest connects to host port P: <path>_P if something listens there, RST otherwise")
    func guestConnect() throws {
        let s = Setup()
        let service = HostSocket.listen(s.path + "_7000")
        defer { close(service); unlink(s.path + "_7000") }
        #expect(s.guest.pump().isEmpty)         // receive buffers posted first
        s.guest.send(op: Op.request, src: 1234, dst: 7000)
        // The reply owed on rx goes out in the same service call as the
        // transmit kick (the transport's second pass), with no rx kick.
        let answer = s.guest.collect()
        #expect(answer.map(\.op) == [Op.response])
        #expect(answer.first.map { $0.srcPort == 7000 && $0.dstPort == 1234 && $0.srcCID == 2 && $0.dstCID == 3 } == true)
        let host = accept(service, nil, nil)
        try #require(host >= 0)
        defer { close(host) }
        _ = fcntl(host, F_SETFL, fcntl(host, F_GETFL) | O_NONBLOCK)
        s.guest.send(op: Op.rw, src: 1234, dst: 7000, payload: Array("ping".utf8))
        #expect(HostSocket.readString(host) == "ping")
        HostSocket.write(host, "pong")
        #expect(s.guest.pump().map { String(decoding: $0.payload, as: UTF8.self) } == ["pong"])

        // Nothing listens at _7001.
        s.guest.send(op: Op.request, src: 1235, dst: 7001)
        let refused = s.guest.pump()
        #expect(refused.map(\.op) == [Op.rst])
        #expect(refused.first.map { $0.srcPort == 7001 && $0.dstPort == 1235 } == true)

        // The guest shuts down both ways: RST back, the host end sees EOF.
        s.guest.send(op: Op.shutdown, src: 1234, dst: 7000, flags: 3)
        #expect(s.guest.pump().map(\.op) == [Op.rst])
        #expect(HostSocket.read(host) == nil)
        // A packet for the connection now gone: RST.
        s.guest.send(op: Op.rw, src: 1234, dst: 7000, payload: [1])
        #expect(s.guest.pump().map(\.op) == [Op.rst])
    }

    @Test("1 MiB each way, byte-exact, across many packets and credit updates")
    func oneMiBEachWay() throws {
        let s = Setup(limits: .init(bufferSize: 64 * 1024))
        let data = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
        let guestBuffer: UInt32 = 64 * 1024
        let (client, hostPort) = s.hostConnect(port: 80, guestBufAlloc: guestBuffer)
        #expect(HostSocket.readString(client) == "OK \(hostPort)\n")

        // Host → guest: the guest reads and returns credit after each round.
        var written = 0, received: [UInt8] = [], creditUpdates = 0, rounds = 0
        while received.count < data.count && rounds < 10_000 {
            rounds += 1
            if written < data.count { written += HostSocket.writeSome(client, data[written..<min(written + 100_000, data.count)]) }
            for p in s.guest.pump() {
                #expect(p.op == Op.rw || p.op == Op.creditRequest)
                received += p.payload
            }
            // Never more in flight than the guest allowed (it has consumed `received` only now).
            #expect(received.count - creditUpdates <= Int(guestBuffer))
            s.guest.send(op: Op.creditUpdate, src: 80, dst: hostPort, bufAlloc: guestBuffer, fwdCnt: UInt32(received.count))
            creditUpdates = received.count
        }
        #expect(received == data, "received \(received.count) bytes in \(rounds) rounds")

        // Guest → host: the guest sends within the device's credit; the host
        // reads only every 100th round, so its socket fills, the device has
        // to hold bytes and the guest has to wait for credit updates.
        var sent = 0, deviceBuf: UInt32 = 64 * 1024, deviceFwd: UInt32 = 0, hostGot: [UInt8] = []
        var waits = 0, mostHeld = 0
        rounds = 0
        while hostGot.count < data.count && rounds < 20_000 {
            rounds += 1
            let credit = Int(deviceBuf) - (sent - Int(deviceFwd))
            if credit > 0 && sent < data.count {
                let n = min(credit, 3000 + rounds % 1500, data.count - sent)
                s.guest.send(op: Op.rw, src: 80, dst: hostPort, payload: Array(data[sent..<(sent + n)]), split: rounds % 2 == 0)
                sent += n
            } else if sent < data.count {
                waits += 1
            }
            mostHeld = max(mostHeld, s.guest.device.connections.compactMap { $0?.heldCount }.max() ?? 0)
            if rounds % 100 == 0, let got = HostSocket.read(client) { hostGot += got }
            for p in s.guest.pump() {
                #expect(p.op != Op.rst)
                deviceBuf = p.bufAlloc
                deviceFwd = p.fwdCnt
            }
        }
        #expect(hostGot.count == data.count && hostGot == data, "host got \(hostGot.count) bytes in \(rounds) rounds")
        #expect(waits > 0)           // credit ran out at least once
        #expect(mostHeld > 0 && mostHeld <= 64 * 1024)
        #expect(s.guest.device.refusedPackets.load(ordering: .relaxed) == 0)
    }

    @Test("a guest that advertises a small buf_alloc never receives more than it allowed")
    func smallGuestBuffer() {
        let s = Setup()
        let (client, hostPort) = s.hostConnect(port: 22, guestBufAlloc: 1000)
        _ = HostSocket.read(client)
        HostSocket.writeSome(client, [UInt8](repeating: 0x5a, count: 10_000))
        var got = 0, ops: [UInt16] = []
        for _ in 0..<5 {
            for p in s.guest.pump() { got += p.payload.count; ops.append(p.op) }
        }
        #expect(got == 1000)
        #expect(ops.contains(Op.creditRequest))      // the device asks for more
        // The guest consumed 1000: 1000 more, and no more.
        s.guest.send(op: Op.creditUpdate, src: 22, dst: hostPort, bufAlloc: 1000, fwdCnt: 1000)
        for _ in 0..<5 { got += s.guest.pump().reduce(0) { $0 + $1.payload.count } }
        #expect(got == 2000)
        // Nonsense counts (a forward count ahead of what was sent) give no credit.
        s.guest.send(op: Op.creditUpdate, src: 22, dst: hostPort, bufAlloc: 1000, fwdCnt: 900_000)
        for _ in 0..<5 { got += s.guest.pump().reduce(0) { $0 + $1.payload.count } }
        #expect(got == 2000)
    }

    @Test("hostile packets are refused (RST where they name a connection) and the device keeps working")
    func hostilePackets() throws {
        let s = Setup(limits: .init(bufferSize: 8192))
        let g = s.guest
        let refused = { g.device.refusedPackets.load(ordering: .relaxed) }

        // A chain shorter than the header; then a header claiming more than the chain.
        g.send(op: Op.request, src: 1, dst: 2, chainLength: 20)
        #expect(g.pump().isEmpty)
        #expect(refused() == 1)
        g.send(op: Op.rw, src: 1, dst: 2, payload: [1, 2, 3], len: 100)
        #expect(g.pump().map(\.op) == [Op.rst])
        // More than 64 KiB claimed, and present.
        g.send(op: Op.rw, src: 1, dst: 2, payload: [UInt8](repeating: 0, count: 70_000))
        #expect(g.pump().map(\.op) == [Op.rst])
        // Wrong source CID, wrong destination CID: dropped, unanswered.
        g.send(op: Op.request, src: 1, dst: 2, srcCID: 4)
        g.send(op: Op.request, src: 1, dst: 2, dstCID: 1)
        #expect(g.pump().isEmpty)
        // Unknown op, unknown type, a RESPONSE nobody asked for: RST; an RST: silence.
        g.send(op: 99, src: 1, dst: 2)
        g.send(op: Op.request, src: 1, dst: 2, type: 2)
        g.send(op: Op.response, src: 1, dst: 2)
        #expect(g.pump().map(\.op) == [Op.rst, Op.rst, Op.rst])
        g.send(op: Op.rst, src: 1, dst: 2)
        #expect(g.pump().isEmpty)
        #expect(refused() == 6)

        // On a live connection: an unknown op resets it, and the host sees EOF.
        let (c1, p1) = s.hostConnect(port: 10)
        #expect(HostSocket.readString(c1) == "OK \(p1)\n")
        g.send(op: 42, src: 10, dst: p1)
        #expect(g.pump().map(\.op) == [Op.rst])
        #expect(HostSocket.read(c1) == nil)
        // Data beyond the credit given (8 KiB) while the host does not read: reset.
        let (c2, p2) = s.hostConnect(port: 11)
        _ = HostSocket.read(c2)
        var sent = 0
        var resetSeen = false
        for _ in 0..<200 where !resetSeen {
            g.send(op: Op.rw, src: 11, dst: p2, payload: [UInt8](repeating: 7, count: 4096))
            sent += 4096
            resetSeen = g.pump().contains { $0.op == Op.rst && $0.dstPort == 11 }
        }
        #expect(resetSeen)
        #expect(sent > 8192)
        // Receive buffers too small for a header go back empty.
        let tiny = Setup(receiveSize: 16)
        tiny.guest.send(op: Op.request, src: 1, dst: 2)
        #expect(tiny.guest.pump().map(\.payload.count) == [0, 0, 0, 0])
        #expect(tiny.guest.device.refusedPackets.load(ordering: .relaxed) == 4)

        // Still working: a fresh connection carries bytes.
        let (c3, p3) = s.hostConnect(port: 12)
        #expect(HostSocket.readString(c3) == "OK \(p3)\n")
        HostSocket.write(c3, "still here")
        #expect(g.pump().map { String(decoding: $0.payload, as: UTF8.self) } == ["still here"])
        #expect(g.d.status & 0x40 == 0)
    }

    @Test("a guest that never posts receive buffers cannot make the device queue unbounded replies")
    func repliesStayBounded() {
        let s = Setup(limits: .init(maxConnections: 4))
        let service = HostSocket.listen(s.path + "_7000")
        defer { close(service); unlink(s.path + "_7000") }
        _ = fcntl(service, F_SETFL, fcntl(service, F_GETFL) | O_NONBLOCK)
        let g = s.guest
        for i in 0..<300 {
            g.send(op: Op.rw, src: UInt32(i), dst: 9, payload: [1])                    // unknown connection: RST owed
            g.send(op: Op.request, src: UInt32(10_000 + i), dst: 7000)                 // a connection...
            g.send(op: 99, src: UInt32(10_000 + i), dst: 7000)                         // ...broken at once: RST owed
            let accepted = accept(service, nil, nil)       // keeps the backlog from filling
            if accepted >= 0 { close(accepted) }
        }
        #expect(g.device.resets.count <= g.device.maxResets)
        #expect(g.device.connectionCount == 0)
        // Buffers at last: the RSTs owed arrive, a bounded number.
        var rsts = 0
        for _ in 0..<100 { rsts += g.pump().filter { $0.op == Op.rst }.count }
        #expect(rsts == g.device.maxResets)
        #expect(g.device.resets.isEmpty)
    }

    @Test("on its service thread the device wakes for host input, and sleeps while it cannot move bytes")
    func serviceThread() throws {
        let s = Setup()
        let g = s.guest
        g.d.transport.start()
        defer { g.d.transport.stop() }
        /// Waits up to 2 s for the device to complete receive buffers.
        func arrivals() -> [VsockPacket] {
            for _ in 0..<200 {
                let p = g.collect()
                if !p.isEmpty { return p }
                usleep(10_000)
            }
            return []
        }
        g.pump(postBuffers: true)
        let client = HostSocket.connect(s.path)
        defer { close(client) }
        HostSocket.write(client, "CONNECT 44\n")
        let request = try #require(arrivals().first)         // no kick: epoll woke the thread
        #expect(request.op == Op.request && request.dstPort == 44)
        g.send(op: Op.response, src: 44, dst: request.srcPort, bufAlloc: 100)
        usleep(100_000)
        #expect(HostSocket.readString(client) == "OK \(request.srcPort)\n")

        // 100 bytes of credit: they arrive (with a CREDIT_REQUEST), then the
        // thread sleeps though the host has more waiting.
        HostSocket.writeSome(client, [UInt8](repeating: 1, count: 5000))
        var got = 0
        for _ in 0..<20 { got += g.collect().reduce(0) { $0 + $1.payload.count }; usleep(10_000) }
        #expect(got == 100)
        let passes = g.device.receivePasses.load(ordering: .relaxed)
        usleep(300_000)
        #expect(g.device.receivePasses.load(ordering: .relaxed) - passes <= 2)

        // Credit back: the one receive buffer left fills; with none left
        // the thread sleeps again.
        g.send(op: Op.creditUpdate, src: 44, dst: request.srcPort, bufAlloc: 100_000, fwdCnt: 100)
        let one = arrivals()
        #expect(one.count == 1 && one.first?.payload.count == 4096 - 44)
        got += one.reduce(0) { $0 + $1.payload.count }
        let before = g.device.receivePasses.load(ordering: .relaxed)
        usleep(300_000)
        #expect(g.device.receivePasses.load(ordering: .relaxed) - before <= 2)
        // Buffers posted: the rest flows.
        for _ in 0..<100 where got < 5000 {
            got += g.pump().reduce(0) { $0 + $1.payload.count }
            usleep(10_000)
            got += g.collect().reduce(0) { $0 + $1.payload.count }
        }
        #expect(got == 5000)
    }

    @Test("20,000 random packets (ops, ports, lengths, CIDs, chain sizes) around live connections: no crash, bounded state, still working")
    func randomPackets() throws {
        let s = Setup(limits: .init(maxConnections: 8, bufferSize: 16 * 1024))
        let service = HostSocket.listen(s.path + "_7000")
        defer { close(service); unlink(s.path + "_7000") }
        _ = fcntl(service, F_SETFL, fcntl(service, F_GETFL) | O_NONBLOCK)
        let g = s.guest
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15      // xorshift64*: the same packets every run
        func next() -> UInt64 {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27
            return state &* 0x2545_f491_4f6c_dd1d
        }
        var hosts: [Int32] = []
        defer { hosts.forEach { close($0) } }
        for i in 0..<20_000 {
            if i % 500 == 0, let c = HostSocket.tryConnect(s.path) {
                hosts.append(c)
                HostSocket.write(c, "CONNECT \(next() % 4)\n")
            }
            let r = next()
            let payload = [UInt8](repeating: UInt8(truncatingIfNeeded: r), count: Int(r >> 8 % 5000))
            g.send(op: UInt16(r % 9), src: UInt32(r >> 16 % 4), dst: [7000, 7001, 1 << 30, (1 << 30) + 1][Int(r >> 20 % 4)],
                   payload: payload, flags: UInt32(r >> 24 % 4), bufAlloc: UInt32(truncatingIfNeeded: next()) % 100_000,
                   fwdCnt: UInt32(truncatingIfNeeded: next()) % 100_000,
                   len: r >> 30 % 8 == 0 ? UInt32(truncatingIfNeeded: next()) : nil,
                   srcCID: r >> 33 % 16 == 0 ? next() : nil, dstCID: r >> 37 % 16 == 0 ? 1 : 2,
                   type: r >> 41 % 16 == 0 ? 2 : 1, split: r >> 45 % 2 == 0,
                   chainLength: r >> 46 % 32 == 0 ? UInt32(next() % 60) : nil)
            if i % 7 == 0 { g.pump() }
            if i % 50 == 0 {
                let a = accept(service, nil, nil)
                if a >= 0 { hosts.append(a); _ = fcntl(a, F_SETFL, O_NONBLOCK) }
                for h in hosts { _ = HostSocket.read(h) }
            }
            #expect(g.device.connectionCount <= 8 && g.device.resets.count <= g.device.maxResets)
        }
        #expect(g.d.status & 0x40 == 0)
        print("random packets: \(g.device.packetsFromGuest.load(ordering: .relaxed)) from the guest, \(g.device.refusedPackets.load(ordering: .relaxed)) refused, \(g.device.packetsToGuest.load(ordering: .relaxed)) to it, connections made \(g.device.nextConnectionID - 1)")
        // Still working. The table may be full and the listener's backlog
        // too (owed RSTs took every receive buffer, so the device did not
        // get to its host events): the guest resets what it has, reads
        // until nothing more comes and refuses the REQUESTs of the host
        // clients still waiting; then a fresh connection works.
        for slot in g.device.connections.indices {
            if let c = g.device.connections[slot] { g.send(op: Op.rst, src: c.guestPort, dst: c.hostPort) }
        }
        for _ in 0..<500 {
            let packets = g.pump()
            if packets.isEmpty { break }
            for p in packets where p.op == Op.request { g.send(op: Op.rst, src: p.dstPort, dst: p.srcPort) }
        }
        #expect(g.device.connectionCount == 0 && g.device.resets.isEmpty)
        let (c, p) = s.hostConnect(port: 4242)
        #expect(HostSocket.readString(c) == "OK \(p)\n")
        HostSocket.write(c, "alive")
        #expect(g.pump().filter { $0.dstPort == 4242 }.map { String(decoding: $0.payload, as: UTF8.self) } == ["alive"])
    }

    @Test("a driver reset closes every connection's host end")
    func resetClosesConnections() {
        let s = Setup()
        let (client, port) = s.hostConnect(port: 3)
        #expect(HostSocket.readString(client) == "OK \(port)\n")
        s.guest.d.setStatus(0)
        #expect(HostSocket.read(client) == nil)
        #expect(s.guest.device.connectionCount == 0)
    }
}
