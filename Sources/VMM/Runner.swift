import CKVM
import Glibc
import UnixSockets
import GuestImage
import HVM
import BlockStorage
import HostNetwork
import Synchronization
import XenBackends
import XenPV

/// Runs one guest in the foreground: console on this terminal (raw mode,
/// Ctrl-] detaches) or plain stdio when piped.
public enum Runner {
    public static func run(_ options: RunOptions) -> Int32 {
        let runStart = ckvm_monotonic_ns()
        // Before any thread starts (the sockets' accept threads do, below):
        // threads inherit the mask, and a SIGTERM taken by a thread that did
        // not block it would kill the process by its default action, leaving
        // the guest's socket files behind. SignalWatcher takes them instead.
        blockControlSignals()
        if access("/dev/kvm", F_OK) != 0 {
            fail("/dev/kvm does not exist: this host has no KVM (load the kvm module)")
            return 1
        }
        if access("/dev/kvm", R_OK | W_OK) != 0 {
            fail("no permission to use /dev/kvm (run as root or join the kvm group)")
            return 1
        }
        // The vsock socket first: a path that cannot be bound is bad input
        // like the rest, reported before anything is loaded.
        var vsock: HVMVsock?
        if let path = options.vsock {
            do {
                vsock = HVMVsock(guestCID: options.vsockCID ?? 3,
                                 listener: try UnixSocket.listen(path: path, what: "--vsock socket"), path: path)
            } catch {
                fail("\(error)")
                return 1
            }
        }
        // The process exits without running deinits: take the socket file away here.
        defer { if let path = options.vsock { unlink(path) } }
        let kernelPath = options.kernel ?? Kit.kernel
        let initrdPath = options.initrd ?? (options.kernel == nil ? Kit.initrd : nil)
        if options.kernel == nil && !Kit.isBuilt {
            fail("the default guest kit is not built: run 'xeno kit' (or scripts/build-kit.sh) first")
            return 1
        }
        // The console is hvc0 (Xen's PV console) in PV mode, COM1 in HVM mode.
        var cmdline = options.cmdline ?? (options.mode == .pv ? "console=hvc0" : Self.hvmCommandLine)
        if !options.command.isEmpty { cmdline += " -- " + options.command.joined(separator: " ") }

        // A restore takes the guest's size and command line from its image
        // (read and checked first: a bad file is a one-line error).
        var options = options
        // The image says which kind of guest it holds.
        var restoreImage: LoadedSaveImage?
        var hvmRestoreImage: HVMSaveImage?
        if let path = options.restore {
            do {
                if HVMSaveImage.holdsHVMGuest(path: path) {
                    let image = try HVMSaveImage(path: path)
                    options.mode = .hvm
                    options.memoryBytes = image.memoryBytes
                    options.vcpus = image.maxVCPUCount       // which are in the machine comes from the image
                    options.maxVCPUs = image.maxVCPUCount
                    if !options.nameGiven { options.name = image.name }
                    hvmRestoreImage = image
                } else {
                    let image = try LoadedSaveImage(path: path)
                    guard options.mode == .pv else { throw RunOptions.UsageError("\(path) holds a PV guest; restore it without --hvm") }
                    options.memoryBytes = image.memoryBytes
                    options.vcpus = image.vcpuCount
                    options.maxVCPUs = image.maxVCPUCount
                    if !options.nameGiven { options.name = image.name }
                    cmdline = image.cmdline
                    restoreImage = image
                }
            } catch {
                fail("--restore: \(error)")
                return 1
            }
        }

        // A name is one running guest's: a second run of it is refused
        // before anything is set up. (The lock stays held until the process exits.)
        var nameClaimed = false
        if options.nameGiven {
            switch RunDirectory.claim(options.name) {
            case .failure(.taken(let why)):
                fail(why)
                return 1
            case .failure(.unavailable(let why)):
                fail("warning: no control socket for '\(options.name)' (\(why)); xeno exec \(options.name) will not find it")
            case .success:
                nameClaimed = true
            }
        }

        // The first boot's images are read before the terminal goes raw, so a
        // bad kernel or initrd is reported as a plain one-line error.
        var firstImages: (GuestKernel, [UInt8]?)?
        if restoreImage == nil && hvmRestoreImage == nil {
            guard let loaded = loadImages(kernelPath: kernelPath, initrdPath: initrdPath,
                                          memoryBytes: options.memoryBytes, mode: options.mode) else { return 1 }
            firstImages = loaded
        }
        // Disks are opened (and locked) once, for every boot of this run.
        var disks: [FlatFileDisk] = []
        for d in options.disks {
            do {
                let disk = try FlatFileDisk(path: d.path, readOnly: d.readOnly, caching: d.caching)
                if disk.caching != d.caching {
                    note("disk \(d.path): the host file system has no direct I/O; reads and writes go through its page cache")
                }
                disks.append(disk)
            } catch {
                fail("\(error)")
                return 1
            }
        }
        // TAP devices likewise live as long as the run.
        var taps: [(TapDevice, MACAddress)] = []
        for n in options.nics {
            guard let mac = n.mac.map({ MACAddress($0) }) ?? MACAddress.random() else {
                fail("--net: '\(n.mac ?? "")' is not a unicast MAC address like 00:16:3e:12:34:56")
                return 1
            }
            do {
                taps.append((try TapDevice(name: n.tap, bridge: n.bridge), mac))
            } catch {
                fail("\(error)")
                return 1
            }
        }
        var storeSocket: StoreSocket?
        if let path = options.storeSocket {
            guard options.mode == .pv else {
                fail("--xenstore-socket: HVM guests have no xenstore")
                return 1
            }
            do {
                storeSocket = try StoreSocket(path: path)
            } catch {
                fail("\(error)")
                return 1
            }
            storeSocket?.start()
        }
        // PV guests get a guest agent channel (console/1), for `exec`.
        let agent = options.mode == .pv ? GuestAgent() : nil
        var control: ControlSocket?
        if let path = options.controlSocket {
            do {
                control = try ControlSocket(path: path, agent: agent)
            } catch {
                fail("\(error)")
                return 1
            }
            control?.start()
        }
        // The process exits without running deinits: take the socket file away here.
        defer { control?.removeSocketFile() }
        // With --name, also at the name's place in the run directory, so
        // `xeno exec NAME` and `xeno ctl` find the guest by name.
        var namedControl: ControlSocket?
        if nameClaimed {
            do {
                namedControl = try ControlSocket(path: RunDirectory.controlPath(options.name), agent: agent)
                namedControl?.start()
            } catch {
                fail("warning: \(error); xeno exec \(options.name) will not find it")
            }
        }
        defer { namedControl?.removeSocketFile() }
        // With --name, the console is also on a socket (`xeno console NAME`).
        let consoleSocket = nameClaimed ? ConsoleSocket.open(name: options.name) : nil
        defer { consoleSocket?.removeSocketFile() }
        let terminal = Terminal()
        var status: Int32 = 0
        while true {
            // Images are read for each boot (a reboot re-reads them) and
            // released once the domain is built.
            let restoring = restoreImage != nil || hvmRestoreImage != nil
            let images = restoring ? nil : firstImages ?? loadImages(kernelPath: kernelPath, initrdPath: initrdPath,
                                                                     memoryBytes: options.memoryBytes, mode: options.mode)
            guard restoring || images != nil else {
                terminal.restore()
                return 1
            }
            firstImages = nil
            let domain: ConsoleGuest
            var backends: [BlockBackend] = []
            var nics: [NetBackend] = []
            var agentChannel: ConsoleChannelBackend?
            do {
                switch options.mode {
                case .pv:
                    let pv: PVDomain
                    if let image = restoreImage {
                        pv = try PVDomain(restoring: image, consoleOutput: { bytes in Terminal.writeOut(bytes); consoleSocket?.output(bytes) })
                        restoreImage = nil          // a reboot boots the kernel
                    } else {
                        pv = try PVDomain(
                            config: PVDomainConfig(name: options.name, memoryBytes: options.memoryBytes,
                                                   vcpus: options.vcpus, maxVCPUs: options.maxVCPUs,
                                                   cmdline: cmdline, kernel: images!.0, initrd: images!.1),
                            consoleOutput: { bytes in Terminal.writeOut(bytes); consoleSocket?.output(bytes) })
                    }
                    for (i, disk) in disks.enumerated() {
                        backends.append(try BlockBackend(domain: pv, disk: disk, diskIndex: i))
                    }
                    for (i, (tap, mac)) in taps.enumerated() {
                        nics.append(try NetBackend(domain: pv, tap: tap, mac: mac, nicIndex: i))
                    }
                    if let agent {
                        let channel = try ConsoleChannelBackend(domain: pv, deviceID: 1, name: "xenolith-agent", client: agent)
                        agent.attach(channel)
                        agentChannel = channel
                    }
                    storeSocket?.serve(store: pv.store)
                    for b in backends { b.start() }
                    for n in nics { n.start() }
                    agentChannel?.start()
                    domain = pv
                case .hvm:
                    domain = try HVMDomain(
                        config: HVMConfig(name: options.name, memoryBytes: options.memoryBytes,
                                          vcpus: options.vcpus, maxVCPUs: options.maxVCPUs,
                                          cmdline: cmdline, kernel: images?.0, initrd: images?.1,
                                          disks: disks, nics: taps.map { HVMNIC(tap: $0.0, mac: $0.1) },
                                          vsock: vsock),
                        restoring: hvmRestoreImage,
                        consoleOutput: { bytes in Terminal.writeOut(bytes); consoleSocket?.output(bytes) })
                    hvmRestoreImage = nil           // a reboot boots the kernel
                }
            } catch {
                terminal.restore()
                fail("\(error)")
                return 1
            }
            let counters = options.mode == .pv ? DeviceCounters(disks: backends, nics: nics) : nil
            control?.serve(domain as? any ControlTarget, devices: counters)
            namedControl?.serve(domain as? any ControlTarget, devices: counters)
            consoleSocket?.serve(domain)
            if options.restore != nil, getenv("XENO_TIMING") != nil {
                fail("restore: serving \((ckvm_monotonic_ns() &- runStart) / 1000) us after the run began")
            }
            let input = ConsoleInput(domain: domain, terminal: terminal)
            input.start()
            let signals = SignalWatcher(domain: domain)
            signals.start()
            let reason = domain.runToEnd()
            // Before the next boot: one watcher at a time, so a signal is
            // never taken by one whose guest has already ended.
            signals.finish()
            control?.serve(nil)
            namedControl?.serve(nil)
            consoleSocket?.serve(nil)
            input.stop()
            for b in backends { b.stop() }
            for n in nics { n.stop() }
            agentChannel?.stop()
            agent?.detach()
            switch reason {
            case .poweroff: status = 0
            case .reboot where signals.received == 0:
                if options.reboot { continue }
                status = 0
            case .crash(let message):
                terminal.restore()
                fail("guest '\(options.name)' crashed: \(message)")
                status = 3
            case .userSpaceUnsupported:
                terminal.restore()
                fail("guest '\(options.name)': its kernel booted to the start of init, but this host's KVM (kvm_pvm, software-nested) cannot run HVM guest user space: a 64-bit syscall from a guest process never reaches the guest kernel. Run it as a PV guest (without --hvm).")
                status = 4
            case .stopped, .reboot:
                // A reboot here came with a signal: the watcher took it while
                // the guest was resetting itself, so the reset was the
                // domain's first exit reason; the signal is no longer pending
                // for the next boot's watcher, and must still end the run.
                let sig = signals.received
                status = sig == 0 ? 0 : 128 + sig
                if sig != 0 {
                    terminal.restore()
                    let name = sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "signal \(sig)"
                    fail("guest '\(options.name)' stopped by \(name)")
                }
            }
            break
        }
        terminal.restore()
        return status
    }

    /// HVM: COM1 console; no PS/2 probe wait; kvm-clock from the start.
    static let hvmCommandLine = "console=ttyS0 earlyprintk=ttyS0 i8042.noaux reboot=acpi"

    private static func loadImages(kernelPath: String, initrdPath: String?,
                                   memoryBytes: UInt64, mode: RunOptions.Mode) -> (GuestKernel, [UInt8]?)? {
        let kernel: GuestKernel
        do {
            kernel = try GuestKernel.load(path: kernelPath)
        } catch {
            fail("kernel: \(error)")
            return nil
        }
        if mode == .hvm, let image = kernel.bzImage, !image.has64BitEntry {
            fail("\(kernelPath): kernel does not support the 64-bit boot protocol (XLF_KERNEL_64 not set in its header)")
            return nil
        }
        guard mode == .hvm || kernel.xen != nil else {
            fail("\(kernelPath): kernel has no Xen PV support (no Xen ELF notes); boot it with --hvm")
            return nil
        }
        var initrd: [UInt8]? = nil
        if let initrdPath {
            do {
                initrd = try readWholeFile(initrdPath, limit: Int(min(memoryBytes / 2, 1 << 31)))
            } catch {
                fail("initrd: \(error)")
                return nil
            }
        }
        return (kernel, initrd)
    }

    static func fail(_ message: String) { note(message) }

    /// One line on stderr that the run goes on after.
    static func note(_ message: String) {
        let line = "xeno: \(message)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }

    private static func blockControlSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT); sigaddset(&set, SIGTERM); sigaddset(&set, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }
}

/// Waits for SIGINT/SIGTERM/SIGHUP and stops the guest cleanly. One per
/// boot; `finish()` waits for it to notice its guest ended (within 50 ms),
/// after which `received` is final and any later signal stays pending for
/// the next boot's watcher.
final class SignalWatcher: @unchecked Sendable {
    let domain: ConsoleGuest
    private let got = Atomic<Int32>(0)
    /// Set by `finish()`: the run is over even if the guest never recorded an end.
    private let over = Atomic<Bool>(false)
    private var thread: pthread_t?
    var received: Int32 { got.load(ordering: .acquiring) }
    init(domain: ConsoleGuest) { self.domain = domain }

    func finish() {
        over.store(true, ordering: .releasing)
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var t = pthread_t()
        defer { thread = t }
        pthread_create(&t, nil, { arg in
            let me = Unmanaged<SignalWatcher>.fromOpaque(arg!).takeRetainedValue()
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGINT); sigaddset(&set, SIGTERM); sigaddset(&set, SIGHUP)
            var sig: Int32 = 0
            while !me.domain.hasEnded && !me.over.load(ordering: .acquiring) {
                var ts = timespec(tv_sec: 0, tv_nsec: 50_000_000)
                sig = sigtimedwait(&set, nil, &ts)
                if sig > 0 {
                    me.got.store(sig, ordering: .releasing)
                    me.domain.stopRun()
                    break
                }
            }
            return nil
        }, box)
    }
}
