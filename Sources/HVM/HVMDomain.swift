import BlockStorage
import CKVM
import Glibc
import GuestImage
import HostNetwork
import KVM
import Machine
import Synchronization
import VirtioPCI

/// What an HVM guest is built from.
public struct HVMConfig: Sendable {
    public var name: String
    public var memoryBytes: UInt64
    /// vCPUs present at boot.
    public var vcpus: Int
    /// vCPUs the guest can grow to while it runs (ACPI CPU hotplug); nil
    /// means `vcpus`. All of them are KVM vCPUs from the start.
    public var maxVCPUs: Int?
    public var cmdline: String
    /// The kernel to boot; nil when the guest is restored from an image.
    public var kernel: GuestKernel?
    public var initrd: [UInt8]?
    /// virtio-blk disks, in PCI slot order (vda, vdb, ...).
    public var disks: [FlatFileDisk]
    /// virtio-net NICs, after the disks.
    public var nics: [HVMNIC]
    /// A virtio-vsock device, after virtio-rng.
    public var vsock: HVMVsock?

    public init(name: String = "xenolith", memoryBytes: UInt64, vcpus: Int, maxVCPUs: Int? = nil, cmdline: String,
                kernel: GuestKernel?, initrd: [UInt8]?, disks: [FlatFileDisk] = [], nics: [HVMNIC] = [],
                vsock: HVMVsock? = nil) {
        self.name = name
        self.memoryBytes = memoryBytes
        self.vcpus = vcpus
        self.maxVCPUs = maxVCPUs
        self.cmdline = cmdline
        self.kernel = kernel
        self.initrd = initrd
        self.disks = disks
        self.nics = nics
        self.vsock = vsock
    }
}

/// The guest's vsock: its CID and the host's listening Unix socket (owned
/// by the caller for the whole run; each boot's device accepts on it).
public struct HVMVsock: Sendable {
    public var guestCID: UInt64
    public var listener: Int32
    public var path: String

    public init(guestCID: UInt64, listener: Int32, path: String) {
        self.guestCID = guestCID
        self.listener = listener
        self.path = path
    }
}

/// A guest NIC's host end and the MAC address the guest gets.
public struct HVMNIC: Sendable {
    public var tap: TapDevice
    public var mac: MACAddress

    public init(tap: TapDevice, mac: MACAddress) {
        self.tap = tap
        self.mac = mac
    }
}

/// How an HVM guest's run ended.
public enum HVMExit: Equatable, Sendable {
    case poweroff
    case reboot
    case crash(String)
    case stopped
    /// The kernel reached the start of init on a KVM that cannot run HVM
    /// guest user space (software-nested, `kvm_pvm`).
    case userSpaceUnsupported
}

public struct HVMBuildError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// A request to a running HVM guest that cannot be done (the control socket's).
public struct HVMRequestError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// A hardware-virtualized guest: the guest kernel runs at CPL0 of its KVM VM
/// on the x86-64 machine of the Machine module (direct 64-bit boot, ACPI,
/// in-kernel interrupt controllers and PIT, legacy devices on I/O ports).
public final class HVMDomain: @unchecked Sendable {
    /// What the domain was built from; dropped once it is built: the
    /// decompressed kernel and the initrd are tens of MiB the VMM need not keep.
    private var config: HVMConfig!
    public let name: String
    /// vCPUs the guest can have (`maxVCPUs`): the KVM vCPUs, the MADT's
    /// local APICs, the DSDT's processor devices.
    public let maxVCPUCount: Int
    public let memoryBytes: UInt64
    let kvm: KVMSystem
    let vm: VirtualMachine
    let memory: GuestMemory
    let layout: BootLayout
    let bus = PortBus()
    /// PCI BARs: the virtio devices' registers.
    let mmio = MMIOBus()
    /// The virtio-pci functions, each with its service thread while running.
    private(set) var virtioDevices: [VirtioPCITransport<GuestPhysicalMemory>] = []
    /// The virtio-balloon and its transport (which tells the driver of a new target).
    private(set) var balloon: VirtioBalloon!
    private var balloonTransport: VirtioPCITransport<GuestPhysicalMemory>!
    private(set) var cpus: [HVMCPU] = []
    private let exitState = Mutex<HVMExit?>(nil)
    /// `pause`: closed while the guest is paused (HVMDomainPause.swift).
    public let pauseGate = PauseGate()
    let console: @Sendable (UnsafeRawBufferPointer) -> Void
    /// The COM1 UART: the guest's console.
    private(set) var serial: Serial16550!
    /// Which vCPUs are present, what the host asked for, the guest's
    /// acknowledgements and ejections.
    private(set) var cpuHotplug: CPUHotplugController!
    /// The ACPI sleep, reset and power button registers.
    private(set) var powerControl: PowerControl!
    /// vcpu-set requests, one at a time: each raises its own GED event.
    private let hotplugRequests = Mutex<Void>(())
    /// The machine's devices whose state a save image carries, each with
    /// the tag that names it there (the virtio functions' come from their slots).
    private(set) var statefulDevices: [(tag: String, device: any StatefulDevice)] = []
    /// Exits the VMM handled by emulating an instruction KVM's emulator failed on.
    let emulationFailures = Atomic<Int>(0)

    /// On a software-nested KVM the guest kernel's `cpuid` runs on the host
    /// CPU, past KVM's CPUID table, so the features KVM's emulator cannot
    /// carry (XSAVE's `xrstor`, SMAP's `clac`, `cmpxchg16b`, `popcnt`, the
    /// SSSE3 and later SIMD that blake2s and friends pick) are taken
    /// away on the kernel's command line instead; and the lockup watchdogs,
    /// which only report how slow emulation is, are turned off. So is
    /// start-up work that costs minutes of emulation and serves only
    /// tracing, debugging or self-checks (measured with initcall_debug):
    /// ftrace's scan for weak symbols (37,000 lookups), the trace event
    /// files and enum maps of tracefs (5.5 min), /sys/kernel/slab (2.2 min),
    /// the crypto self-tests (which also wait for the initramfs), and the
    /// BPF kfunc registrations whose first caller verifies all of the
    /// kernel's BTF (minutes; TCP falls back from cubic to reno for it).
    ///
    /// `lapic=notscdeadline`: the local APIC timer runs in its periodic mode
    /// until the kernel switches to high-resolution timers. With the
    /// TSC-deadline timer (which has no periodic mode) Linux emulates the
    /// periodic tick in one-shot mode, and once a clocksource fit for
    /// high-resolution timers is in place, its tick handler catches up every
    /// missed 4 ms tick in a loop with interrupts off. An emulated tick costs
    /// more than 4 ms of real time when 32 vCPUs share two host cores, so the
    /// loop never ends: measured here, all 32 vCPUs sat in it (no interrupt,
    /// no timer write in 2 s of trace) right after the switch to kvm-clock,
    /// and the boot stopped for good. KVM's periodic timer instead drops
    /// ticks the guest is too slow to take.
    static let emulatedKernelOptions = " lapic=notscdeadline nowatchdog initcall_blacklist=ftrace_check_for_weak_functions,trace_eval_init,tracer_init_tracefs,slab_sysfs_init,cubictcp_register,kfunc_init,bpf_key_sig_kfuncs_init,bpf_prog_test_run_init,bpf_tcp_ca_kfunc_init cryptomgr.notests noxsave clearcpuid=smap,smep,pcid,invpcid,cx16,rdrand,rdseed,fsgsbase,rtm,hle,umip,pku,popcnt,movbe,bmi1,bmi2,abm,adx,ssse3,sse4_1,sse4_2,aes,pclmulqdq,sha_ni"

    /// The I/O APIC input the COM1 UART drives (ISA IRQ 4).
    static let serialIRQ: UInt32 = 4
    /// The Generic Event Device's input: the DSDT's default.
    static let eventIRQ: UInt32 = ACPIConfig(possibleCPUs: 1, enabledCPUs: 1).eventInterrupt
    /// Guest-physical page KVM may use for its real-mode TSS (Intel), and
    /// the identity-map page after it: in the PCI hole, outside RAM.
    static let kvmTSSAddress: UInt64 = 0xfffb_d000

    public convenience init(config: HVMConfig, consoleOutput: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) throws {
        try self.init(config: config, restoring: nil, consoleOutput: consoleOutput)
    }

    /// Builds the machine; then boots `config.kernel`, or, with `image`,
    /// puts back the saved guest (memory, KVM's state, every device's) in
    /// place of a boot (HVMDomainSave.swift).
    public init(config: HVMConfig, restoring image: HVMSaveImage?,
         consoleOutput: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) throws {
        guard config.vcpus >= 1 else { throw HVMBuildError("at least one vCPU is needed") }
        let maxVCPUs = config.maxVCPUs ?? config.vcpus
        guard maxVCPUs >= config.vcpus, maxVCPUs <= ACPIConfig.maximumCPUs else {
            throw HVMBuildError("\(maxVCPUs) possible vCPUs for \(config.vcpus) at boot: between \(config.vcpus) and \(ACPIConfig.maximumCPUs)")
        }
        self.config = config
        name = config.name
        maxVCPUCount = maxVCPUs
        memoryBytes = config.memoryBytes
        self.console = consoleOutput
        kvm = try KVMSystem()
        vm = try kvm.createVM()
        layout = BootLayout(memorySize: config.memoryBytes)
        memory = try GuestMemory(size: config.memoryBytes, name: "xenolith-\(config.name)")

        var slot: UInt32 = 0
        var hostOffset: UInt64 = 0
        for r in layout.ramRanges {
            try vm.setMemoryRegion(slot: slot, guestPhysical: r.start, size: r.size, host: memory.base + Int(hostOffset))
            slot += 1
            hostOffset += r.size
        }
        try vm.setTSSAddress(Self.kvmTSSAddress)
        try? vm.setIdentityMapAddress(Self.kvmTSSAddress + 0x3000)
        try vm.createInterruptController()
        try vm.createPIT()

        try buildDevices()
        if image == nil { try load() }

        let policy = HVMCPUIDPolicy(supported: try kvm.supportedCPUID(), emulatedKernel: HVMCPUIDPolicy.kernelIsEmulated)
        // Every possible vCPU exists in KVM from the start (its local APIC
        // can then take the guest's INIT/SIPI whenever it is added); those
        // not present at boot have their threads parked until then.
        for i in 0..<maxVCPUs {
            let vcpu = try vm.createVCPU(id: i)
            let leaves = policy.entries(forVCPU: i, count: maxVCPUs)
            if i == 0 && getenv("XENO_TRACE") != nil {
                for e in leaves {
                    let line = "cpuid \(String(e.function, radix: 16)).\(e.index): \(String(e.eax, radix: 16)) \(String(e.ebx, radix: 16)) \(String(e.ecx, radix: 16)) \(String(e.edx, radix: 16))\n"
                    _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
                }
            }
            try vcpu.setCPUID(leaves)
            cpus.append(HVMCPU(domain: self, id: i, vcpu: vcpu, present: i < config.vcpus))
        }
        if let image {
            try restore(from: image)
        } else if let kernel = config.kernel {
            try cpus[0].setBootState(entry: kernel.elf.entry)
        }
        self.config = nil
    }

    /// Guest RAM is one memfd; below 4 GiB the address is the offset, above
    /// it the offset continues after the low part.
    func hostPointer(_ gpa: UInt64, length: UInt64) -> UnsafeMutableRawPointer? {
        for r in layout.ramRanges {
            guard gpa >= r.start, length <= r.size, gpa - r.start <= r.size - length else { continue }
            let offset = gpa - r.start + (r.start == 0 ? 0 : layout.lowRAMTop)
            return memory.pointer(offset, length: length)
        }
        return nil
    }

    private func write(_ bytes: [UInt8], at gpa: UInt64, what: String) throws {
        guard let p = hostPointer(gpa, length: UInt64(bytes.count)) else {
            throw HVMBuildError("\(what) (\(bytes.count) bytes at 0x\(String(gpa, radix: 16))) does not fit in guest memory")
        }
        bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }

    private func buildDevices() throws {
        let watcher = InitStartWatcher(active: HVMCPUIDPolicy.kernelIsEmulated) { [weak self] in
            self?.end(.userSpaceUnsupported)
        }
        let serial = Serial16550(
            output: { [console] byte in
                withUnsafeBytes(of: byte) { console($0) }
                watcher.feed(byte)
            },
            interrupt: { [weak self] high in try? self?.vm.setInterruptLine(Self.serialIRQ, high: high) })
        self.serial = serial
        let hotplug = CPUHotplugController(possibleCPUs: config.maxVCPUs ?? config.vcpus, enabledCPUs: config.vcpus,
                                           onEject: { [weak self] cpu in self?.cpus[cpu].leave() })
        cpuHotplug = hotplug
        let pci = PCIHostBridge()
        try buildVirtioDevices(on: pci)
        let power = PowerControl(powerOff: { [weak self] in self?.end(.poweroff) }, reset: { [weak self] in self?.end(.reboot) })
        powerControl = power
        // The port devices, each with the tag a save image knows it by.
        let devices: [(tag: String, device: any PortDevice & StatefulDevice)] = [
            ("com1", serial),
            ("i8042", I8042(reset: { [weak self] in self?.end(.reboot) })),
            ("cmos", CMOSClock()),
            ("pci-host", pci),
            ("acpi-power", power),
            ("acpi-cpu-hotplug", hotplug),
        ]
        for d in devices where !bus.register(d.device) {
            throw HVMBuildError("I/O ports \(d.device.ports) claimed twice")
        }
        statefulDevices = devices.map { ($0.tag, $0.device) }
        for (slot, transport) in virtioDevices.enumerated() {
            statefulDevices.append(("virtio-\(transport.device.type)@\(slot + 1)", transport))
        }
    }

    /// Where the first virtio function's BAR goes: the bottom of the PCI
    /// memory window the DSDT gives the host bridge. Each function's BAR is
    /// assigned here, as firmware would, one after the other.
    static let virtioBARBase: UInt64 = BootLayout.pciHoleStart

    /// virtio-pci functions at 00:01.0 onwards: the disks, the NICs, then
    /// virtio-rng and virtio-balloon (always present), then virtio-vsock if
    /// asked for. The balloon is always there, as in a Xen guest, so
    /// `mem-set` works without planning ahead: it costs a sleeping thread and
    /// a bit per guest page until used. Optional functions come last so the
    /// others keep their slots.
    private func buildVirtioDevices(on pci: PCIHostBridge) throws {
        let ram = GuestPhysicalMemory(memory: memory, layout: layout)
        var models: [any VirtioDevice] = config.disks.map { VirtioBlock(disk: $0) }
        models += config.nics.map { VirtioNet(port: $0.tap, mac: $0.mac) }
        models.append(VirtioEntropy())
        let balloon = VirtioBalloon(memory: ram)
        self.balloon = balloon
        models.append(balloon)
        if let v = config.vsock {
            models.append(VirtioVsock(guestCID: v.guestCID, listener: v.listener, socketPath: v.path))
        }
        guard models.count <= 31 else { throw HVMBuildError("\(models.count) virtio devices do not fit on PCI bus 0 (31 slots)") }
        for (i, model) in models.enumerated() {
            let bar = Self.virtioBARBase + UInt64(i) * VirtioPCITransport<GuestPhysicalMemory>.barSize
            let transport = VirtioPCITransport(device: model, memory: ram, interrupts: vm, doorbells: vm, barAddress: bar)
            guard pci.register(transport, device: UInt8(i + 1)) else {
                throw HVMBuildError("PCI slot \(i + 1) taken twice")
            }
            mmio.register(transport)
            virtioDevices.append(transport)
            if model === balloon { balloonTransport = transport }
        }
    }

    // MARK: Memory target

    /// Asks the guest's balloon driver to give back memory until it holds
    /// `bytes` (at most its boot size: there is no memory hotplug): the
    /// balloon's num_pages becomes (boot size - target) / 4 KiB, and the
    /// driver is told with a configuration-change interrupt.
    public func setMemoryTarget(bytes: UInt64) throws(HVMRequestError) {
        guard bytes <= memoryBytes else {
            throw HVMRequestError("mem-set: \(bytes >> 20) MiB exceeds this guest's maximum of \(memoryBytes >> 20) MiB (its boot size)")
        }
        let pages = UInt32(clamping: (memoryBytes - bytes) / VirtioBalloon.pageSize)
        balloonTransport.changeConfiguration { balloon.setTarget(pages: pages) }
    }

    /// The target as the host last set it, in bytes.
    public var memoryTargetBytes: UInt64 { memoryBytes - UInt64(balloon.targetPages) * VirtioBalloon.pageSize }
    /// Guest memory less the frames the balloon freed, in bytes.
    public var currentMemoryBytes: UInt64 { memoryBytes - UInt64(balloon.balloonedFrames) * VirtioBalloon.pageSize }
    /// The balloon's size as its driver reports it (`actual`), in bytes.
    public var balloonActualBytes: UInt64 { UInt64(balloon.actualPages) * VirtioBalloon.pageSize }

    /// Kernel at its physical addresses, initrd at the top of low RAM,
    /// command line, ACPI tables, zero page, GDT and page tables.
    private func load() throws {
        guard let kernel = config.kernel else { throw HVMBuildError("no kernel to boot") }
        let (kstart, kend) = kernel.kernelPhysicalRange()
        guard kstart >= BootLayout.highMemoryStart, kend <= layout.lowRAMTop else {
            throw HVMBuildError("the kernel needs guest memory 0x\(String(kstart, radix: 16))–0x\(String(kend, radix: 16)); give the guest more memory")
        }
        try kernel.loadSegments { paddr, bytes, memorySize in
            guard let p = hostPointer(paddr, length: memorySize) else {
                throw HVMBuildError("kernel segment at 0x\(String(paddr, radix: 16)) does not fit in guest memory")
            }
            p.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            memset(p + bytes.count, 0, Int(memorySize) - bytes.count)
        }

        var initrdPlace: (address: UInt64, size: UInt64)?
        if let initrd = config.initrd, !initrd.isEmpty {
            let limit = min(layout.lowRAMTop, BootParams.initrdAddressLimit(kernel.bzImage) + 1)
            let size = UInt64(initrd.count)
            guard limit > size else { throw HVMBuildError("initrd of \(initrd.count) bytes does not fit below 0x\(String(limit, radix: 16))") }
            let address = (limit - size) & ~UInt64(0xfff)
            guard address >= (kend + 0xfff) & ~UInt64(0xfff) else {
                throw HVMBuildError("initrd of \(initrd.count) bytes does not fit beside the kernel in \(config.memoryBytes >> 20) MiB")
            }
            try write(initrd, at: address, what: "initrd")
            initrdPlace = (address, size)
        }

        let cmdline = Array((config.cmdline + (HVMCPUIDPolicy.kernelIsEmulated ? Self.emulatedKernelOptions : "")).utf8)
        let cmdlineLimit = min(BootParams.commandLineLimit(kernel.bzImage), BootLayout.commandLineLimit)
        guard cmdline.count < cmdlineLimit else {
            throw HVMBuildError("command line of \(cmdline.count) bytes exceeds the kernel's \(cmdlineLimit - 1)")
        }
        try write(cmdline + [0], at: BootLayout.commandLineAddress, what: "command line")

        let acpi = ACPITables(config: ACPIConfig(possibleCPUs: config.maxVCPUs ?? config.vcpus, enabledCPUs: config.vcpus),
                              base: BootLayout.acpiAddress)
        guard acpi.bytes.count <= BootLayout.acpiLimit else { throw HVMBuildError("ACPI tables too large") }
        try write(acpi.bytes, at: acpi.base, what: "ACPI tables")

        let zeroPage = BootParams.zeroPage(bzImage: kernel.bzImage, e820: layout.e820,
                                           commandLineAddress: BootLayout.commandLineAddress,
                                           initrd: initrdPlace, acpiRSDPAddress: acpi.rsdpAddress)
        try write(zeroPage, at: BootLayout.zeroPageAddress, what: "zero page")
        try write(LongModeEntry.gdt, at: BootLayout.gdtAddress, what: "GDT")
        try write(LongModeEntry.pageTables, at: BootLayout.pml4Address, what: "page tables")
    }

    // MARK: Running

    public var exitReason: HVMExit? { exitState.withLock { $0 } }

    /// Records how the run ends (the first reason wins) and stops every vCPU.
    public func end(_ reason: HVMExit) {
        let first = exitState.withLock { state -> Bool in
            guard state == nil else { return false }
            state = reason
            return true
        }
        if first { for c in cpus { c.stop() } }
    }

    /// Runs every vCPU on its own thread until the guest ends.
    public func run() -> HVMExit {
        for d in virtioDevices { d.start() }
        for c in cpus { c.start() }
        for c in cpus { c.join() }
        for d in virtioDevices { d.stop() }
        return exitReason ?? .stopped
    }

    // MARK: vCPU hotplug

    /// vCPUs present now: those at boot, plus those added, minus those the
    /// guest ejected.
    public var presentVCPUCount: Int { cpuHotplug.enabledCount }

    /// VM exits of all vCPUs so far (for the control socket's `stats`).
    public var exitCount: UInt64 { cpus.reduce(0) { $0 &+ $1.exits } }

    /// `vcpu-set`: the host wants vCPUs 0..<count. Added vCPUs are present
    /// at once (their threads run KVM_RUN, where the guest's INIT/SIPI
    /// finds them); removed ones stay until the guest ejects them. Either
    /// way the guest hears of it through the GED's interrupt, a pulse on
    /// an edge-triggered I/O APIC input. The pulse is repeated while any
    /// event is unacknowledged: an edge the guest missed (one raised after
    /// its boot-time ACPI scan but before its GED driver was bound) is then
    /// made good by asking again.
    public func setPresentVCPUs(_ count: Int) throws(HVMBuildError) {
        guard (1...maxVCPUCount).contains(count) else {
            throw HVMBuildError("vcpu-set \(count): this guest has 1 to \(maxVCPUCount) vCPUs (--maxvcpus)")
        }
        try hotplugRequests.withLock { _ throws(HVMBuildError) in
            _ = cpuHotplug.request(enabledCount: count)
            guard cpuHotplug.hasPendingEvents else { return }
            // A vCPU withdrawn before the guest saw it leaves again.
            for (i, cpu) in cpus.enumerated() {
                if cpuHotplug.status(cpu: i).contains(.enabled) { cpu.enter() } else { cpu.leave() }
            }
            do { try pulseEventInterrupt() } catch {
                throw HVMBuildError("vcpu-set: raising the hotplug interrupt: \(error)")
            }
        }
    }

    /// The GED's interrupt: a pulse on an edge-triggered I/O APIC input.
    private func pulseEventInterrupt() throws {
        try vm.setInterruptLine(Self.eventIRQ, high: true)
        try vm.setInterruptLine(Self.eventIRQ, high: false)
    }

    /// `xl shutdown` of an HVM guest: a press of its ACPI power button (as
    /// Xen sends one to an HVM guest without PV drivers). The guest's GED
    /// handler notifies the button device; Linux's ACPI button driver
    /// reports KEY_POWER, and systemd-logind (or acpid) powers the guest
    /// off, which ends the run as any poweroff does. A guest with nothing
    /// listening ignores it, as a PC would. Each request pulses the
    /// interrupt again, so one the guest missed (before its GED driver was
    /// bound) is made good by asking again.
    public func pressPowerButton() throws(HVMRequestError) {
        guard exitReason == nil else { throw HVMRequestError("shutdown: the guest is ending") }
        powerControl.pressPowerButton()
        do { try hotplugRequests.withLock { _ in try pulseEventInterrupt() } } catch {
            throw HVMRequestError("shutdown: raising the event interrupt: \(error)")
        }
    }

    /// Host input the UART had no room for yet.
    private let pendingInput = Mutex<[UInt8]>([])

    /// Host input for the guest's console (COM1).
    public func enqueueConsoleInput(_ bytes: UnsafeRawBufferPointer) {
        pendingInput.withLock { $0.append(contentsOf: bytes) }
        pushConsoleInput()
    }

    /// Moves held-back input into the UART as it makes room.
    public func pushConsoleInput() {
        pendingInput.withLock { p in
            guard !p.isEmpty else { return }
            let taken = serial.enqueueInput(p)
            p.removeFirst(taken)
        }
    }

    public var consoleHasPendingInput: Bool { pendingInput.withLock { !$0.isEmpty } }
}

/// Watches the console for the kernel's "Run /init as init process" line
/// (or, when the console is quiet, the panic that follows when init dies).
/// On a software-nested KVM (`kvm_pvm`) a 64-bit `syscall` from a guest
/// process faults instead of entering the guest kernel, so an HVM guest
/// dies at its first user-space system call: the VMM stops it right there
/// with a clear word instead of letting it panic.
final class InitStartWatcher: @unchecked Sendable {
    private let active: Bool
    private let onStart: @Sendable () -> Void
    private let line = Mutex<[UInt8]>([])
    private static let prefix = Array("Run ".utf8)
    private static let suffix = Array(" as init process".utf8)
    private static let initDied = Array("Attempted to kill init".utf8)

    init(active: Bool, onStart: @escaping @Sendable () -> Void) {
        self.active = active
        self.onStart = onStart
    }

    func feed(_ byte: UInt8) {
        guard active else { return }
        let matched = line.withLock { l -> Bool in
            if byte == 0x0a || byte == 0x0d {
                defer { l.removeAll(keepingCapacity: true) }
                // The line may carry a timestamp before "Run ".
                if l.firstRange(of: Self.initDied) != nil { return true }
                guard let start = l.firstRange(of: Self.prefix)?.lowerBound else { return false }
                return l[start...].starts(with: Self.prefix) && l.suffix(Self.suffix.count).elementsEqual(Self.suffix)
            }
            if l.count < 512 { l.append(byte) }
            return false
        }
        if matched { onStart() }
    }
}
