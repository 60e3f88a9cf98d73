import Foundation
import Testing

/// The image scripts/build-rootfs.sh makes (debootstrap bookworm, ext4 flat file).
let rootfsImage = (ProcessInfo.processInfo.environment["XENOLITH_CACHE"] ?? "/var/cache/xenolith") + "/images/bookworm.ext4"
let rootfsBuilt = FileManager.default.fileExists(atPath: rootfsImage)

/// A real Debian system on a flat-file disk, booted by systemd as a PV guest.
@Suite("Debian bookworm with systemd on a flat-file disk (PV)", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"),
       .enabled(if: rootfsBuilt, "needs the guest kit: the Debian disk image (scripts/build-rootfs.sh)"))
struct DebianSystemTests {
    @Test("systemd reaches multi-user.target; root logs in on the console, writes a file, powers off cleanly; the host reads the file")
    func bootLoginWritePoweroff() throws {
        let disk = NSTemporaryDirectory() + "xeno-bookworm-\(getpid()).ext4"
        let copy = Process()
        copy.executableURL = URL(fileURLWithPath: "/bin/cp")
        copy.arguments = ["--sparse=always", rootfsImage, disk]
        try copy.run(); copy.waitUntilExit()
        try #require(copy.terminationStatus == 0)
        defer { unlink(disk) }
        // (This boot once crashed PID 1 in most runs: the PV kernel, without
        // XSAVE, did not keep user space's AVX registers across context
        // switches. CPUIDPolicy now gives it XSAVE.)
        let r = try Xeno.run(["run", "--disk", disk, "--cmdline", "console=hvc0 root=/dev/xvda"], timeout: 600,
                             script: [("xenolith login: ", "root\n"),
                                      ("root@xenolith:~# ", "systemctl is-active multi-user.target; echo written-inside > /root/proof.txt; poweroff\n")])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.contains("XENOLITH-SYSTEM-READY"), "console: \(r.consoleLines.suffix(15))")
        #expect(r.stdout.contains("Welcome to \u{1b}[1mDebian GNU/Linux 12 (bookworm)") || r.stdout.contains("Debian GNU/Linux 12"))
        #expect(r.consoleLines.contains("active"), "console: \(r.consoleLines.suffix(15))")
        // A clean shutdown, in systemd-shutdown's own words.
        #expect(r.stdout.contains("systemd-shutdown[1]: All filesystems unmounted."))
        #expect(r.stdout.contains("systemd-shutdown[1]: Powering off."))

        let cat = Process()
        let outPath = disk + ".proof"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        defer { unlink(outPath) }
        cat.executableURL = URL(fileURLWithPath: "/sbin/debugfs")
        cat.arguments = ["-R", "cat /root/proof.txt", disk]
        cat.standardOutput = FileHandle(forWritingAtPath: outPath)
        cat.standardError = FileHandle.nullDevice
        try cat.run(); cat.waitUntilExit()
        #expect((try? String(contentsOfFile: outPath, encoding: .utf8)) == "written-inside\n")
        let fsck = Process()
        fsck.executableURL = URL(fileURLWithPath: "/sbin/e2fsck")
        fsck.arguments = ["-fn", disk]
        fsck.standardOutput = FileHandle.nullDevice
        fsck.standardError = FileHandle.nullDevice
        try fsck.run(); fsck.waitUntilExit()
        #expect(fsck.terminationStatus == 0, "e2fsck: the guest did not leave its file system clean")
    }
}
