import Testing
import XLConfig

@Suite struct XLConfigSyntaxTests {
    @Test func settingsListsCommentsAndSeparators() throws {
        let text = """
        # a guest
        name = "web1"   # trailing comment
        memory = 1024; vcpus = 2
        disk = [ 'file:/srv/web1.img,xvda,w',
                 "format=raw, vdev=xvdb, access=ro, target=/srv/data.img",   # spans lines
               ]
        extra = 'console=hvc0 quiet'
        """
        let f = try XLConfigFile(path: "web1.cfg", text: text)
        #expect(f.settings.map(\.key) == ["name", "memory", "vcpus", "disk", "extra"])
        #expect(f.setting("memory")?.value == .number(1024))
        #expect(f.setting("vcpus")?.line == 3)
        #expect(f.setting("extra")?.line == 7)
        guard case .list(let disks)? = f.setting("disk")?.value else { Issue.record("disk is not a list"); return }
        #expect(disks.count == 2)
        #expect(f.setting("name")?.value == .string("web1"))
    }

    @Test func escapesHexAndRepeatedKeys() throws {
        let f = try XLConfigFile(path: "x.cfg", text: "a = 'it\\'s'\nb = 0x10\nb = 3\nc = -1\n")
        #expect(f.setting("a")?.value == .string("it's"))
        #expect(f.setting("b")?.value == .number(3))
        #expect(f.setting("c")?.value == .number(-1))
    }

    @Test(arguments: [
        ("name = \"a\"\nmemory 512\n", 2, "expected '='"),
        ("name = \"a\"\nkernel = '/boot/x\n", 2, "not closed"),
        ("name = \"a\"\ndisk = [ 'a',\n 'b'\n", 4, "not closed with ']'"),
        ("name = \"a\"\nvcpus = two\n", 2, "quoted string, a number or a list"),
        ("name = \"a\"\nmemory = 12ab\n", 2, "not a number"),
        ("name = \"a\" \"b\"\n", 1, "unexpected"),
        ("= 3\n", 1, "expected a setting name"),
        ("x = [[[[[[[[[[1]]]]]]]]]]\n", 1, "nest too deeply"),
    ])
    func syntaxErrorsNameTheLine(text: String, line: Int, message: String) {
        #expect(throws: XLConfigError.self) { try XLConfigFile(path: "bad.cfg", text: text) }
        do {
            _ = try XLConfigFile(path: "bad.cfg", text: text)
        } catch {
            #expect(error.line == line, "\(error)")
            #expect(error.message.contains(message), "\(error)")
            #expect(error.description.hasPrefix("bad.cfg:\(line): "))
        }
    }
}

@Suite struct XLDomainConfigTests {
    @Test func aFullPVDomain() throws {
        let c = try XLDomainConfig(path: "g.cfg", text: """
        name = "g1"
        type = "pv"
        memory = 768
        maxmem = 1024
        vcpus = 2
        maxvcpus = 8
        kernel = "/boot/vmlinuz"
        ramdisk = "/boot/initrd.img"
        root = "/dev/xvda ro"
        extra = "console=hvc0"
        disk = [ 'format=raw, vdev=xvda, access=rw, target=/srv/g1.img', 'file:/srv/g1-data.img,xvdb,r' ]
        vif = [ 'bridge=xenbr0, mac=00:16:3e:01:02:03' ]
        on_poweroff = "destroy"
        on_reboot = "restart"
        on_crash = "preserve"
        cpu_weight = 512
        cap = 50
        vnc = 1
        """)
        #expect(c.name == "g1" && c.type == .pv)
        #expect(c.memoryMiB == 768 && c.maxMemoryMiB == 1024)
        #expect(c.vcpus == 2 && c.maxVCPUs == 8)
        #expect(c.kernel == "/boot/vmlinuz" && c.ramdisk == "/boot/initrd.img")
        #expect(c.cmdline == "root=/dev/xvda ro console=hvc0")
        #expect(c.disks.map(\.target) == ["/srv/g1.img", "/srv/g1-data.img"])
        #expect(c.disks.map(\.vdev) == ["xvda", "xvdb"])
        #expect(c.disks.map(\.readOnly) == [false, true])
        #expect(c.vifs == [try XLVifSpec("bridge=xenbr0,mac=00:16:3e:01:02:03")])
        #expect(c.onCrash == .preserve && c.onReboot == .restart)
        #expect(c.weight == 512 && c.cap == 50)
        #expect(c.ignoredKeys == ["vnc"])
    }

    @Test func defaultsAreXls() throws {
        let c = try XLDomainConfig(path: "g.cfg", text: "name = 'min'\n")
        #expect(c.type == .pv && c.vcpus == 1 && c.maxVCPUs == 1 && c.memoryMiB == 512 && c.maxMemoryMiB == 512)
        #expect(c.onPoweroff == .destroy && c.onReboot == .restart && c.onCrash == .destroy)
        #expect(c.weight == 256 && c.cap == 0 && c.cmdline == nil)
        let hvm = try XLDomainConfig(path: "g.cfg", text: "name = 'h'\nbuilder = 'hvm'\n")
        #expect(hvm.type == .hvm)
    }

    @Test func cpusIsXlsHardAffinity() throws {
        #expect(try XLDomainConfig(path: "g.cfg", text: "name='a'\ncpus='1'\n").cpus == [1])
        #expect(try XLDomainConfig(path: "g.cfg", text: "name='a'\ncpus='0-2,6'\n").cpus == [0, 1, 2, 6])
        #expect(try XLDomainConfig(path: "g.cfg", text: "name='a'\ncpus='all'\n").cpus == nil)
        #expect(try XLDomainConfig(path: "g.cfg", text: "name='a'\nvcpus=4\ncap=400\n").cap == 400)
        #expect(CPUList.format([0, 1, 2, 6, 8, 9]) == "0-2,6,8-9")
    }

    @Test func cmdlineOverridesRootAndExtra() throws {
        let c = try XLDomainConfig(path: "g.cfg", text: "name='a'\nextra='x'\ncmdline='console=hvc0 y'\n")
        #expect(c.cmdline == "console=hvc0 y")
    }

    @Test(arguments: [
        ("memory = 512\n", 1, "'name' is required"),
        ("name = 'a b'\n", 1, "not a valid domain name"),
        ("name = '../etc'\n", 1, "not a valid domain name"),
        ("name = 'a'\ntype = 'pvh'\n", 2, "not supported"),
        ("name = 'a'\nmemory = 'lots'\n", 2, "must be a number"),
        ("name = 'a'\nmemory = 16\n", 2, "must be 64 to"),
        ("name = 'a'\nvcpus = 33\n", 2, "must be 1 to 32"),
        ("name = 'a'\nvcpus = 4\nmaxvcpus = 2\n", 3, "below vcpus"),
        ("name = 'a'\nmemory = 1024\nmaxmem = 512\n", 3, "below memory"),
        ("name = 'a'\ndisk = '/x,,xvda'\n", 2, "must be a list"),
        ("name = 'a'\n\ndisk = [ '/x,,xvda,rwx' ]\n", 3, "access 'rwx'"),
        ("name = 'a'\ndisk = [ 'format=qcow2,vdev=xvda,target=/x' ]\n", 2, "not supported"),
        ("name = 'a'\ndisk = [ 'target=/x' ]\n", 2, "no vdev"),
        ("name = 'a'\ndisk = [ 'vdev=xvda' ]\n", 2, "no target"),
        ("name = 'a'\ndisk = [ '/x,,eth0' ]\n", 2, "not a disk name"),
        ("name = 'a'\ndisk = [ '/x,,xvda', '/y,,xvda' ]\n", 2, "given twice"),
        ("name = 'a'\ndisk = [ 'vdev=xvda,vdev=xvdb,target=/x' ]\n", 2, "given twice"),
        ("name = 'a'\nvif = [ 'colour=red' ]\n", 2, "unknown key"),
        ("name = 'a'\non_crash = 'explode'\n", 2, "must be one of"),
        ("name = 'a'\ncpu_weight = 0\n", 2, "must be 1 to 65535"),
        ("name = 'a'\nvcpus = 2\ncap = 250\n", 3, "above 100 × maxvcpus"),
        ("name = 'a'\ncpus = '1-'\n", 2, "not a CPU list"),
        ("name = 'a'\ncpus = '3-1'\n", 2, "not a CPU list"),
    ])
    func badSettingsNameTheFileAndLine(text: String, line: Int, message: String) {
        do {
            _ = try XLDomainConfig(path: "dom.cfg", text: text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.hasPrefix("dom.cfg:\(line): "), "\(error)")
            #expect(error.message.contains(message), "\(error)")
        }
    }
}

@Suite struct XLDiskSpecTests {
    @Test(arguments: [
        "/dev/vg/guest-volume,,hda",
        "/dev/vg/guest-volume,raw,hda,rw",
        "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
        "raw:/dev/vg/guest-volume,hda,w",
        "phy:/dev/vg/guest-volume,hda,w",
    ])
    func equivalentForms(spec: String) throws {
        let d = try XLDiskSpec(spec)
        #expect(d == (try XLDiskSpec("target=/dev/vg/guest-volume,vdev=hda")))
        #expect(d.target == "/dev/vg/guest-volume" && d.vdev == "hda" && !d.readOnly && d.format == "raw")
    }

    @Test("xl's direct-io-safe flag is accepted: direct I/O is already every disk's default")
    func directIOSafe() throws {
        let d = try XLDiskSpec("/var/lib/xen/images/guest.img,raw,xvda,rw,direct-io-safe")
        #expect(d == (try XLDiskSpec("/var/lib/xen/images/guest.img,raw,xvda,rw")))
        #expect(d.target == "/var/lib/xen/images/guest.img" && d.vdev == "xvda")
    }

    @Test func cdromsAreReadOnly() throws {
        for spec in ["/root/image.iso,,hdc,cdrom", "/root/image.iso,,hdc,,cdrom", "/root/image.iso,raw,hdc,devtype=cdrom",
                     "raw:/root/image.iso,hdc:cdrom,ro"] {
            let d = try XLDiskSpec(spec)
            #expect(d.cdrom && d.readOnly && d.vdev == "hdc" && d.target == "/root/image.iso", "\(spec)")
        }
    }

    @Test func diskIndices() {
        #expect(XLDiskSpec.diskIndex("xvda") == 0)
        #expect(XLDiskSpec.diskIndex("xvdb") == 1)
        #expect(XLDiskSpec.diskIndex("sdz") == 25)
        #expect(XLDiskSpec.diskIndex("xvdaa") == 26)
        #expect(XLDiskSpec.diskIndex("xvd") == nil)
        #expect(XLDiskSpec.diskIndex("xvdA") == nil)
        #expect(XLDiskSpec.diskIndex("xvdabc") == nil)
    }
}
