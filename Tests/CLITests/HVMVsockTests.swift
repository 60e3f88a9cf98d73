import Foundation
import Testing

/// virtio-vsock seen from an HVM guest's kernel. Its driver is a module the
/// initramfs loads, so this needs guest user space: hardware-assisted KVM.
/// The kit has no vsock program (busybox's nc speaks TCP/UDP only, no
/// AF_VSOCK), so nothing in the guest listens or connects: the test checks
/// what the guest's kernel does alone: the driver binds the device, and a
/// host CONNECT to a port nobody listens on is refused by the guest
/// kernel's own RST (sent to the CID given), which closes the Unix
/// connection without an OK. Data both ways through a guest program waits
/// for the agent work that brings one; the unit tests (VirtioPCITests'
/// VsockTests) cover the device's side of it.
@Suite("HVM guests' virtio-vsock", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"),
       .disabled(if: kvmIsSoftwareNested, "needs hardware-assisted KVM: this KVM (kvm_pvm) cannot run HVM guest user space"))
struct HVMVsockTests {
    @Test("the guest's driver binds virtio-vsock; a host CONNECT to a port without a listener gets the guest's RST")
    func connectToGuest() throws {
        let path = "/tmp/xeno-vsock-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let answer = Locked<String?>(nil)
        let r = try Xeno.run(["run", "--hvm", "--vsock", path, "--vsock-cid", "42", "--",
                              "ls /sys/bus/virtio/drivers/vmw_vsock_virtio_transport | grep -c virtio;",
                              "test -c /dev/vsock && echo vsock-device;",
                              "sleep 5"],
                             timeout: 300,
                             hostSteps: [(after: "XENOLITH-READY", run: { _ in
                                 answer.set(Self.connect(path: path, port: 1234))
                             })])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.commandOutput == ["1", "vsock-device"], "console: \(r.consoleLines.suffix(12))")
        // Closed with nothing said: the guest answered the REQUEST with RST.
        #expect(answer.get() == "", "the Unix connection answered \(String(describing: answer.get()))")
        #expect(!FileManager.default.fileExists(atPath: path))     // removed at exit
    }

    /// Connects to the device's socket, asks for guest `port` and returns
    /// what came back before the connection closed (nil: no close in 20 s).
    static func connect(path: String, port: UInt32) -> String? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &a.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let ok = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard ok == 0 else { return "connect failed: \(errno)" }
        var tv = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let line = Array("CONNECT \(port)\n".utf8)
        _ = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var got: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { got += buffer[..<n]; continue }
            return n == 0 ? String(decoding: got, as: UTF8.self) : nil
        }
    }
}
