import Foundation
import Testing

/// Each bad input gives one clear line and a non-zero exit, and starts nothing.
@Suite("xeno run refuses bad input")
struct BadInputTests {
    func refuses(_ args: [String], saying text: String) throws {
        let r = try Xeno.run(["run"] + args, timeout: 30)
        #expect(r.status != 0)
        #expect(r.stderr.contains(text), "stderr was: \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "expected one line, got: \(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test func missingKernel() throws { try refuses(["--kernel", "/nonexistent/vmlinuz"], saying: "no such file") }
    @Test func notABzImage() throws { try refuses(["--kernel", "/etc/hostname"], saying: "not a kernel image") }
    @Test func memoryDoesNotParse() throws { try refuses(["--memory", "lots"], saying: "does not parse") }
    @Test func memoryBeyondHost() throws { try refuses(["--memory", "4096G"], saying: "exceeds the host") }
    @Test func zeroVCPUs() throws { try refuses(["--vcpus", "0"], saying: "1 to 32") }
    @Test func tooManyVCPUs() throws { try refuses(["--vcpus", "33"], saying: "1 to 32") }
    @Test func unknownOption() throws { try refuses(["--frobnicate"], saying: "unknown option") }

    @Test("a kernel without Xen PV support is refused")
    func noXenSupport() throws {
        // A minimal ELF64 executable with no Xen notes.
        var elf: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
        elf += [2, 0, 62, 0, 1, 0, 0, 0] + [0, 0, 0x20, 0, 0, 0, 0, 0] + [64, 0, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 8)
        elf += [0, 0, 0, 0, 64, 0, 56, 0, 1, 0, 64, 0, 0, 0, 0, 0]
        elf += [1, 0, 0, 0, 5, 0, 0, 0] + [0, 0x10, 0, 0, 0, 0, 0, 0] + [0, 0, 0x20, 0, 0, 0, 0, 0] + [0, 0, 0x20, 0, 0, 0, 0, 0]
        elf += [16, 0, 0, 0, 0, 0, 0, 0] + [16, 0, 0, 0, 0, 0, 0, 0] + [0, 0x10, 0, 0, 0, 0, 0, 0]
        elf += [UInt8](repeating: 0, count: 0x1000 - elf.count) + [UInt8](repeating: 0xf4, count: 16)
        let path = NSTemporaryDirectory() + "xeno-no-xen-\(getpid()).elf"
        FileManager.default.createFile(atPath: path, contents: Data(elf))
        defer { try? FileManager.default.removeItem(atPath: path) }
        try refuses(["--kernel", path], saying: "no Xen PV support")
    }

    @Test("--vsock is refused for PV guests, and a socket path that cannot be bound is refused")
    func vsock() throws {
        try refuses(["--vsock", "/tmp/xeno-vsock-pv-\(getpid())"], saying: "PV guests get the PV channel")
        try refuses(["--hvm", "--vsock", "/nonexistent-dir/v.sock"], saying: "--vsock socket /nonexistent-dir/v.sock: No such file or directory")
        try refuses(["--hvm", "--vsock", "/etc/hostname"], saying: "exists and is not a socket")
        try refuses(["--hvm", "--vsock", "/tmp/xeno-vsock-cid-\(getpid())", "--vsock-cid", "2"], saying: "3 to 4294967294")
        #expect(FileManager.default.fileExists(atPath: "/etc/hostname"))
    }

    @Test("an initrd that cannot fit in the guest is refused")
    func initrdTooLarge() throws {
        let path = NSTemporaryDirectory() + "xeno-big-initrd-\(getpid())"
        FileManager.default.createFile(atPath: path, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.truncate(atOffset: 200 << 20)
        try h.close()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try refuses(["--memory", "128M", "--initrd", path] + (kitBuilt ? [] : ["--kernel", "/etc/hostname"]),
                    saying: kitBuilt ? "initrd" : "kernel")
    }
}
