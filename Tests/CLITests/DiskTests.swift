import Foundation
import Testing

/// Flat-file disks for PV guests (blkfront ↔ the VMM's blkback), checked
/// from both sides: what the guest reads and writes, and the file on the host.
@Suite("PV disks on flat files", .serialized,
       .enabled(if: kvmUsable, "needs /dev/kvm (read-write)"),
       .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"))
struct DiskTests {
    /// A sparse disk file of `mib` MiB with `marker` at byte 0.
    func makeDisk(mib: Int, marker: String) throws -> String {
        let path = NSTemporaryDirectory() + "xeno-disk-\(getpid())-\(UUID().uuidString).img"
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

    @Test("the guest sees two disks of the right sizes, reads the host's bytes and writes bytes the host reads back")
    func readWriteTwoDisks() throws {
        let a = try makeDisk(mib: 64, marker: "first-disk-marker")
        let b = try makeDisk(mib: 16, marker: "second-disk-marker")
        defer { unlink(a); unlink(b) }
        let r = try Xeno.run(["run", "--disk", a, "--disk", b, "--",
                              "cat /sys/block/xvda/size /sys/block/xvdb/size;",
                              "head -c 17 /dev/xvda; echo; head -c 18 /dev/xvdb; echo;",
                              "echo from-the-guest | dd of=/dev/xvdb bs=4096 seek=100 conv=sync,fsync 2>/dev/null && echo wrote"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.commandOutput == ["131072", "32768", "first-disk-marker", "second-disk-marker", "wrote"],
                "console: \(r.consoleLines.suffix(15))")
        #expect(try bytes(of: b, at: 100 * 4096, count: 14) == "from-the-guest")
    }

    @Test("a 2-vCPU guest's blkfront sends 1 MiB indirect requests (the kit's setting) on one ring per vCPU, and 1 MiB direct reads and writes are exact")
    func indirectMultiQueue() throws {
        let path = NSTemporaryDirectory() + "xeno-disk-\(getpid())-\(UUID().uuidString).img"
        defer { unlink(path) }
        let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: 8 << 20)
        try (random + Data(count: 8 << 20)).write(to: URL(fileURLWithPath: path))
        let r = try Xeno.run(["run", "--vcpus", "2", "--disk", path, "--",
                              "cat /sys/block/xvda/queue/max_sectors_kb; ls /sys/block/xvda/mq | wc -l;",
                              "dd if=/dev/xvda bs=1M count=8 iflag=direct 2>/dev/null | md5sum;",
                              "dd if=/dev/xvda of=/dev/xvda bs=1M count=8 seek=8 iflag=direct oflag=direct 2>/dev/null && echo copied"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        // The kit loads blkfront with 256 segments a request (1 MiB), all our
        // blkback takes; Linux's own default is 32 (128 KiB), and without
        // indirect requests it would be 44.
        let hostSum = md5Hex(Array(random))
        #expect(r.commandOutput == ["1024", "2", "\(hostSum)  -", "copied"], "console: \(r.consoleLines.suffix(15))")
        let copy = try Data(contentsOf: URL(fileURLWithPath: path)).subdata(in: (8 << 20)..<(16 << 20))
        #expect(copy == random, "the guest's direct copy of the first 8 MiB differs on the host")
    }

    @Test("a module option on the kernel command line reaches the kit's blkfront and wins over the kit's own")
    func moduleOptionFromCommandLine() throws {
        let a = try makeDisk(mib: 16, marker: "option-marker")
        defer { unlink(a) }
        let r = try Xeno.run(["run", "--disk", a, "--cmdline", "console=hvc0 xen_blkfront.max_indirect_segments=64", "--",
                              "cat /sys/module/xen_blkfront/parameters/max_indirect_segments /sys/block/xvda/queue/max_sectors_kb;",
                              "head -c 13 /dev/xvda; echo"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.commandOutput == ["64", "256", "option-marker"], "console: \(r.consoleLines.suffix(15))")
    }

    @Test("the host caches none of a guest's disk reads by default (O_DIRECT, as Xen's blkback), and caches them with cache=writeback")
    func hostPageCache() throws {
        // A file on a disk-backed file system (NSTemporaryDirectory may be
        // tmpfs elsewhere, whose pages are all resident).
        let path = "/var/tmp/xeno-cache-\(getpid())-\(UUID().uuidString).img"
        defer { unlink(path) }
        let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: 16 << 20)
        try random.write(to: URL(fileURLWithPath: path))
        let read8MiB = "dd if=/dev/xvda bs=1M count=8 iflag=direct 2>/dev/null | md5sum"
        var resident: [String: Int] = [:]
        for caching in ["none", "writeback"] {
            try dropPageCache(path)
            try #require(residentBytes(path) == 0, "the host still caches the file before the guest runs")
            let r = try Xeno.run(["run", "--disk", path + ",cache=" + caching, "--", read8MiB])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            #expect(r.commandOutput == [md5Hex(Array(random.prefix(8 << 20))) + "  -"], "cache=\(caching): console \(r.consoleLines.suffix(10))")
            resident[caching] = try residentBytes(path)
        }
        #expect(resident["none"] == 0, "with cache=none the host cached \(resident["none"] ?? -1) bytes of the guest's reads")
        #expect((resident["writeback"] ?? 0) >= 8 << 20, "with cache=writeback the host cached only \(resident["writeback"] ?? -1) bytes")
    }

    /// Writes back and drops the host's cached pages of `path`.
    func dropPageCache(_ path: String) throws {
        let fd = open(path, O_RDWR)
        try #require(fd >= 0)
        defer { close(fd) }
        fsync(fd)
        try #require(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0)
    }

    /// How many bytes of `path` are in the host's page cache (mincore).
    func residentBytes(_ path: String) throws -> Int {
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        let size = Int(st.st_size), page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let map = try #require(mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), "mmap")
        try #require(map != MAP_FAILED)
        defer { munmap(map, size) }
        var vector = [UInt8](repeating: 0, count: (size + page - 1) / page)
        try #require(mincore(map, size, &vector) == 0)
        return vector.reduce(0) { $0 + Int($1 & 1) } * page
    }

    @Test("a read-only disk: the guest's kernel knows it is read-only and a write fails, the file is unchanged")
    func readOnlyDisk() throws {
        let a = try makeDisk(mib: 16, marker: "read-only-marker")
        defer { unlink(a) }
        let r = try Xeno.run(["run", "--disk", a + ",ro", "--",
                              "cat /sys/block/xvda/ro; head -c 16 /dev/xvda; echo;",
                              "echo overwrite | dd of=/dev/xvda conv=fsync 2>/dev/null && echo wrote || echo refused"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.commandOutput == ["1", "read-only-marker", "refused"], "console: \(r.consoleLines.suffix(15))")
        #expect(try bytes(of: a, at: 0, count: 16) == "read-only-marker")
    }

    @Test("an ext4 file system made in the guest is read back on the host after a clean shutdown")
    func ext4RoundTrip() throws {
        let a = try makeDisk(mib: 64, marker: "")
        defer { unlink(a) }
        let mkfs = Process()
        mkfs.executableURL = URL(fileURLWithPath: "/sbin/mkfs.ext4")
        mkfs.arguments = ["-q", "-F", a]
        try mkfs.run(); mkfs.waitUntilExit()
        try #require(mkfs.terminationStatus == 0)
        let r = try Xeno.run(["run", "--disk", a, "--",
                              "mkdir -p /mnt && mount -t ext4 /dev/xvda /mnt && echo guest-was-here > /mnt/note.txt",
                              "&& rm -f /mnt/lost+found/none && umount /mnt && echo unmounted"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.commandOutput.last == "unmounted", "console: \(r.consoleLines.suffix(15))")
        let cat = Process()
        let pipe = Pipe()
        cat.executableURL = URL(fileURLWithPath: "/sbin/debugfs")
        cat.arguments = ["-R", "cat /note.txt", a]
        cat.standardOutput = pipe
        cat.standardError = FileHandle.nullDevice
        try cat.run(); cat.waitUntilExit()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text == "guest-was-here\n")
        let fsck = Process()
        fsck.executableURL = URL(fileURLWithPath: "/sbin/e2fsck")
        fsck.arguments = ["-fn", a]
        fsck.standardOutput = FileHandle.nullDevice
        fsck.standardError = FileHandle.nullDevice
        try fsck.run(); fsck.waitUntilExit()
        #expect(fsck.terminationStatus == 0, "e2fsck found errors in the guest's file system")
    }
}

@Suite("xeno run --disk refuses bad input", .enabled(if: kitBuilt, "needs the guest kit: run scripts/build-kit.sh"))
struct DiskBadInputTests {
    @Test("a missing disk file is refused in one line")
    func missingFile() throws {
        let r = try Xeno.run(["run", "--disk", "/nonexistent/disk.img"], timeout: 60)
        #expect(r.status == 1)
        #expect(r.stderr.contains("disk /nonexistent/disk.img") && r.stderr.contains("No such file"), "stderr: \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test("a disk option that does not parse is refused")
    func badOption() throws {
        let r = try Xeno.run(["run", "--disk", "/tmp/x.img,rx"], timeout: 60)
        #expect(r.status == 2)
        #expect(r.stderr.contains("unknown option 'rx'"), "stderr: \(r.stderr)")
    }

    @Test("a cache mode other than none or writeback is refused")
    func badCacheMode() throws {
        let r = try Xeno.run(["run", "--disk", "/tmp/x.img,cache=unsafe"], timeout: 60)
        #expect(r.status == 2)
        #expect(r.stderr.contains("unknown option 'cache=unsafe'") && r.stderr.contains("cache=writeback"), "stderr: \(r.stderr)")
    }

    @Test("the same file given twice as writable is refused: it is in use")
    func sameDiskTwice() throws {
        let path = NSTemporaryDirectory() + "xeno-twice-\(getpid()).img"
        FileManager.default.createFile(atPath: path, contents: Data(count: 1 << 20))
        defer { unlink(path) }
        let r = try Xeno.run(["run", "--disk", path, "--disk", path], timeout: 60)
        #expect(r.status == 1)
        #expect(r.stderr.contains("already in use"), "stderr: \(r.stderr)")
    }
}
