import Glibc
import GuestImage
import Synchronization
import Testing
import XenPV

/// Collects a domain's console output.
final class ConsoleCapture: Sendable {
    let bytes = Mutex<[UInt8]>([])
    var text: String { String(decoding: bytes.withLock { $0 }, as: UTF8.self) }
    var sink: @Sendable (UnsafeRawBufferPointer) -> Void {
        { [self] b in bytes.withLock { $0.append(contentsOf: b) } }
    }
}

let kvmAvailable = access("/dev/kvm", R_OK | W_OK) == 0

func boot(_ code: [UInt8], memory: UInt64 = 64 << 20) throws -> (DomainExit, String) {
    let capture = ConsoleCapture()
    let domain = try PVDomain(
        config: PVDomainConfig(memoryBytes: memory, vcpus: 1, cmdline: "", kernel: try TestGuest.kernel(code), initrd: nil),
        consoleOutput: capture.sink)
    let exit = domain.run()
    return (exit, capture.text)
}

/// The message of a crashed domain, nil if it ended any other way.
func crashMessage(_ exit: DomainExit) -> String? {
    if case .crash(let message) = exit { return message }
    return nil
}

@Suite("PV hypercall layer and trampoline (small guests at CPL3)", .enabled(if: kvmAvailable, "needs /dev/kvm (read-write)"))
struct HypercallLayerTests {
    @Test("10000 hypercalls in a row each return the same result and preserve the guest's registers")
    func hypercallLoop() throws {
        var start = timespec(), end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        let (exit, _) = try boot(TestGuest.loop)
        clock_gettime(CLOCK_MONOTONIC, &end)
        #expect(exit == .poweroff, "\(crashMessage(exit) ?? "")")
        let us = (Int(end.tv_sec - start.tv_sec) * 1_000_000 + Int(end.tv_nsec - start.tv_nsec) / 1000) / 10_000
        print("hypercall round trip: \(us) us (whole run / 10000)")
    }

    @Test("a guest prints through console_io, gets -ENOSYS for an unknown hypercall, and powers off")
    func helloPowersOff() throws {
        let (exit, text) = try boot(TestGuest.hello)
        #expect(text == "hello from a PV guest\n")
        #expect(exit == .poweroff)
    }

    @Test("a page-table update mapping a frame the guest does not own is refused and stops the guest")
    func foreignFrameRefused() throws {
        let (exit, _) = try boot(TestGuest.evil)
        let message = try #require(crashMessage(exit))
        #expect(message.contains("mmu_update refused"))
        #expect(message.contains("does not own"))
    }

    @Test("a fatal fault with no handler stops the guest with its registers")
    func fatalFault() throws {
        let (exit, _) = try boot(TestGuest.fault)
        let message = try #require(crashMessage(exit))
        #expect(message.contains("exception 14"))
        #expect(message.contains("rip="))
    }

    @Test("one guest's fatal error leaves another guest running on to its own end")
    func isolationBetweenGuests() throws {
        let spinner = Mutex<(DomainExit, String)?>(nil)
        let thread = Thread { spinner.withLock { $0 = try? boot(TestGuest.spin) } }
        let (evilExit, _) = try boot(TestGuest.evil)
        thread.join()
        #expect(crashMessage(evilExit) != nil, "the evil guest was not stopped: \(evilExit)")
        let result = spinner.withLock { $0 }
        #expect(result?.0 == .poweroff)
        #expect(result?.1 == "spinning\ndone spinning\n")
    }

    @Test("a kernel without Xen notes is refused with a clear error")
    func noXenNotes() throws {
        let kernel = try GuestKernel(fileBytes: TestGuest.image(TestGuest.hello, xenNotes: false))
        #expect(throws: PVDomain.BuildError.self) {
            _ = try PVDomain(config: PVDomainConfig(memoryBytes: 64 << 20, vcpus: 1, cmdline: "", kernel: kernel, initrd: nil),
                             consoleOutput: { _ in })
        }
    }
}

/// A joinable pthread for tests.
final class Thread: @unchecked Sendable {
    private var handle = pthread_t()
    private let body: () -> Void
    init(_ body: @escaping () -> Void) {
        self.body = body
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&handle, nil, { arg in
            let me = Unmanaged<Thread>.fromOpaque(arg!).takeRetainedValue()
            me.body()
            return nil
        }, box)
    }
    func join() { pthread_join(handle, nil) }
}
