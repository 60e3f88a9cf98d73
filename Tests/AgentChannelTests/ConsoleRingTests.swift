import Testing
@testable import XenBackends

/// A console page between two guard areas whose bytes must never change.
final class GuardedPage {
    static let guardBytes = 4096
    let block = UnsafeMutableRawPointer.allocate(byteCount: 3 * 4096, alignment: 4096)
    var page: UnsafeMutableRawPointer { block + Self.guardBytes }

    init() {
        block.initializeMemory(as: UInt8.self, repeating: 0xa5, count: 3 * 4096)
        page.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
    }
    deinit { block.deallocate() }

    var guardsIntact: Bool {
        (0..<Self.guardBytes).allSatisfy { block.load(fromByteOffset: $0, as: UInt8.self) == 0xa5 }
            && (0..<Self.guardBytes).allSatisfy { block.load(fromByteOffset: 2 * 4096 + $0, as: UInt8.self) == 0xa5 }
    }

    // The guest's side of `struct xencons_interface`.
    func u32(_ offset: Int) -> UInt32 { page.load(fromByteOffset: offset, as: UInt32.self) }
    func set(_ offset: Int, _ v: UInt32) { page.storeBytes(of: v, toByteOffset: offset, as: UInt32.self) }
    var inCons: UInt32 { get { u32(3072) } set { set(3072, newValue) } }
    var inProd: UInt32 { get { u32(3076) } set { set(3076, newValue) } }
    var outCons: UInt32 { get { u32(3080) } set { set(3080, newValue) } }
    var outProd: UInt32 { get { u32(3084) } set { set(3084, newValue) } }

    /// Writes `bytes` into `out` as hvc_xen does, from out_prod on.
    func guestWrite(_ bytes: [UInt8]) {
        var prod = outProd
        for b in bytes {
            page.storeBytes(of: b, toByteOffset: 1024 + Int(prod & 2047), as: UInt8.self)
            prod &+= 1
        }
        outProd = prod
    }

    /// Reads all input as hvc_xen does.
    func guestRead() -> [UInt8] {
        var cons = inCons
        var out: [UInt8] = []
        while cons != inProd {
            out.append(page.load(fromByteOffset: Int(cons & 1023), as: UInt8.self))
            cons &+= 1
        }
        inCons = cons
        return out
    }
}

@Suite("console ring: bounds against a hostile frontend")
struct ConsoleRingTests {
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 64)

    func drain(_ ring: inout ConsoleRing, take: Int = .max) -> (Result<Int, ConsoleRing.Failure>, [UInt8]) {
        var seen: [UInt8] = []
        let r = ring.drainOutput(into: scratch) { bytes in
            let n = min(take, bytes.count)
            seen += bytes[0..<n]
            return n
        }
        return (r, seen)
    }

    @Test("output and input move both ways, across the ring's end and the index wrap")
    func wrapping() {
        let g = GuardedPage()
        // Indexes start near 2^32, where the free-running counters wrap.
        g.outCons = 0xffff_fff0; g.outProd = 0xffff_fff0
        g.inCons = 0xffff_fe00; g.inProd = 0xffff_fe00
        var ring = ConsoleRing(page: g.page)
        let message = (0..<2048).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        g.guestWrite(message)
        let (r, seen) = drain(&ring)
        #expect(r == .success(2048) && seen == message)
        #expect(g.outCons == 0xffff_fff0 &+ 2048)
        // The client takes only part: the rest stays for next time.
        g.guestWrite(Array("hello world".utf8))
        #expect(drain(&ring, take: 5).1 == Array("hello".utf8))
        #expect(drain(&ring).1 == Array(" world".utf8))
        #expect(drain(&ring).0 == .success(0))

        let input = (0..<1500).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let wrote = input.withUnsafeBytes { ring.fillInput($0) }
        #expect(wrote == .success(1024))                // no more than the ring holds
        #expect(input.withUnsafeBytes { ring.fillInput($0) } == .success(0))
        #expect(g.guestRead() == Array(input[0..<1024]))
        #expect(input[1024...].withUnsafeBytes { ring.fillInput($0) } == .success(476))
        #expect(g.guestRead() == Array(input[1024...]))
        #expect(g.guardsIntact)
    }

    @Test("out_prod more than a ring ahead, or behind out_cons, is refused and nothing is read")
    func hostileOutputProducer() {
        for (cons, prod) in [(UInt32(0), UInt32(2049)), (100, 99), (0, 0x8000_0000), (0xffff_ff00, 0x0000_0800)] {
            let g = GuardedPage()
            g.outCons = cons
            var ring = ConsoleRing(page: g.page)
            g.outProd = prod
            var called = false
            let r = ring.drainOutput(into: scratch) { _ in called = true; return 0 }
            #expect(r == .failure(.outputIndex(produced: prod, consumed: cons)), "cons \(cons) prod \(prod)")
            #expect(!called && g.outCons == cons && g.guardsIntact)
        }
        // Exactly a ring's worth is fine.
        let g = GuardedPage()
        var ring = ConsoleRing(page: g.page)
        g.outProd = 2048
        #expect(drain(&ring).0 == .success(2048))
    }

    @Test("the guest rewriting our indexes changes nothing; in_cons ahead of in_prod is refused")
    func hostileIndexes() {
        let g = GuardedPage()
        var ring = ConsoleRing(page: g.page)
        g.guestWrite(Array("abc".utf8))
        _ = drain(&ring)
        // The guest moves out_cons back to replay old bytes: we keep our own.
        g.outCons = 0
        #expect(drain(&ring).0 == .success(0))
        #expect(ring.outConsumed == 3)

        _ = Array("xyz".utf8).withUnsafeBytes { ring.fillInput($0) }
        // The guest moves in_prod: ignored, our next byte goes after "xyz".
        g.inProd = 500
        _ = Array("!".utf8).withUnsafeBytes { ring.fillInput($0) }
        #expect(ring.inProduced == 4 && g.inProd == 4)
        // It claims to have consumed what we never produced.
        g.inCons = 5
        #expect(ring.inputRoom() == .failure(.inputIndex(produced: 4, consumed: 5)))
        #expect(Array("more".utf8).withUnsafeBytes { ring.fillInput($0) } == .failure(.inputIndex(produced: 4, consumed: 5)))
        // Or to be more than a ring behind.
        g.inCons = 4 &- 1025
        #expect(ring.inputRoom() == .failure(.inputIndex(produced: 4, consumed: 4 &- 1025)))
        #expect(g.guardsIntact)
    }

    @Test("a client that claims more than it was offered takes only what was offered")
    func clampedConsume() {
        let g = GuardedPage()
        var ring = ConsoleRing(page: g.page)
        g.guestWrite([1, 2, 3])
        #expect(ring.drainOutput(into: scratch) { _ in 1000 } == .success(3))
        #expect(g.outCons == 3)
        g.guestWrite([4])
        #expect(ring.drainOutput(into: scratch) { _ in -5 } == .success(0))
        #expect(g.outCons == 3)
    }

    @Test("the console handshake: connect once ring-ref and port are there, close with the frontend")
    func handshake() {
        typealias S = XenBusState
        #expect(XenBusStep.nextForConsole(frontend: S.initialising, backend: .initWait, connected: false, ringPublished: false) == .nothing)
        #expect(XenBusStep.nextForConsole(frontend: S.initialising, backend: .initWait, connected: false, ringPublished: true) == .connect)
        #expect(XenBusStep.nextForConsole(frontend: S.initialised, backend: .initWait, connected: false, ringPublished: true) == .connect)
        // Connected: the frontend still Initialising (older hvc_xen) must not drop it.
        #expect(XenBusStep.nextForConsole(frontend: S.initialising, backend: .connected, connected: true, ringPublished: true) == .nothing)
        #expect(XenBusStep.nextForConsole(frontend: S.connected, backend: .connected, connected: true, ringPublished: true) == .nothing)
        #expect(XenBusStep.nextForConsole(frontend: S.closing, backend: .connected, connected: true, ringPublished: true) == .disconnect(then: .closing))
        #expect(XenBusStep.nextForConsole(frontend: S.closed, backend: .closing, connected: false, ringPublished: true) == .disconnect(then: .closed))
        #expect(XenBusStep.nextForConsole(frontend: S.initialising, backend: .closed, connected: false, ringPublished: false) == .disconnect(then: .initWait))
        // Refused (backend Closing after a bad ring-ref): no reconnect until the frontend starts over.
        #expect(XenBusStep.nextForConsole(frontend: S.initialised, backend: .closing, connected: false, ringPublished: true) == .nothing)
    }
}
