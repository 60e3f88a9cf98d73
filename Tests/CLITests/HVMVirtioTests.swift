import Foundation
import Testing

/// virtio-pci devices in an HVM guest: disks (virtio-blk), a NIC
/// (virtio-net) and virtio-rng, seen from inside the guest. The drivers are
/// modules the initramfs loads, so these need guest user space: hardware KVM.
@Suite("HVM guests' virtio devices", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"),
       .disabled(if: kvmIsSoftwareNested, "needs hardware-assisted KVM: this KVM (kvm_pvm) cannot run HVM guest user space"))
struct HVMVirtioTests {
    /// A sparse disk file of `mib` MiB with `marker` at byte 0.
    func makeDisk(mib: Int, marker: String) throws -> String {
        let path = NSTemporaryDirectory() + "xeno-vdisk-\(getpid())-\(UUID().uuidString).img"
        FileManager.default.createFile(atPath: path, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.truncate(atOffset: UInt64(mib) << 20)
        try h.seek(toOffset: 0)
        h.write(marker.data(using: .utf8)!)
        try h.close()
        return path
    }

    func bytes(of path: String, at offset: UInt64, count: Int) throws -> String {
        let h = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? h.close() }
        try h.seek(toOffset: offset)
        return String(decoding: h.readData(ofLength: count), as: UTF8.self)
    }

    @Test("virtio-blk: the guest sees the disks' sizes, reads the host's bytes, writes bytes the host reads back")
    func disks() throws {
        let a = try makeDisk(mib: 64, marker: "first-virtio-marker")
        let b = try makeDisk(mib: 16, marker: "second-virtio-marker")
        defer { unlink(a); unlink(b) }
        let r = try Xeno.run(["run", "--hvm", "--disk", a, "--disk", b + ",ro", "--",
                              "cat /sys/block/vda/size /sys/block/vdb/size /sys/block/vdb/ro;",
                              "head -c 19 /dev/vda; echo;",
                              "echo from-the-hvm-guest | dd of=/dev/vda bs=4096 seek=100 conv=sync,fsync 2>/dev/null && echo wrote;",
                              "echo no | dd of=/dev/vdb conv=fsync 2>/dev/null && echo wrote || echo refused"], timeout: 300)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.commandOutput == ["131072", "32768", "1", "first-virtio-marker", "wrote", "refused"],
                "console: \(r.consoleLines.suffix(15))")
        #expect(try bytes(of: a, at: 100 * 4096, count: 18) == "from-the-hvm-guest")
        #expect(try bytes(of: b, at: 0, count: 20) == "second-virtio-marker")
    }

    @Test("virtio-rng is always there and is the guest's hardware RNG")
    func entropy() throws {
        let r = try Xeno.run(["run", "--hvm", "--", "cat /sys/class/misc/hw_random/rng_current;",
                              "head -c 64 /dev/hwrng | wc -c"], timeout: 300)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.commandOutput.first?.hasPrefix("virtio_rng") == true, "console: \(r.consoleLines.suffix(12))")
        #expect(r.commandOutput.last == "64")
    }

    @Test("virtio-net: the guest's NIC has the given MAC and fetches a page from a host server over the TAP",
          .enabled(if: isRoot, "needs root (creates TAP devices)"))
    func network() throws {
        let tap = try NetworkTests.HostTap()
        defer { tap.remove() }
        let server = try NetworkTests.OneShotServer(address: tap.hostIP)
        server.serve(body: "served-to-the-hvm-guest")
        let r = try Xeno.run(["run", "--hvm", "--net", "tap=\(tap.name),mac=00:16:3e:aa:bb:cd", "--",
                              "ip link set eth0 up && ip addr add \(tap.guestIP)/24 dev eth0 && cat /sys/class/net/eth0/address;",
                              "wget -q -O - http://\(tap.hostIP):\(server.port)/; echo"], timeout: 300)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.commandOutput == ["00:16:3e:aa:bb:cd", "served-to-the-hvm-guest"], "console: \(r.consoleLines.suffix(12))")
    }
}
