// swift-tools-version: 6.0
import PackageDescription

// Dependencies point one way: CKVM → KVM → X86 → GuestImage → Machine → HVM / XenPV → VMM → xeno.
// The per-guest process (xeno run) links no Foundation: it costs ~10 MiB RSS.
let package = Package(
    name: "Xenolith",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "xeno", targets: ["xeno"]),
        .executable(name: "xenod", targets: ["xenod"]),
    ],
    targets: [
        // linux/kvm.h request numbers and ioctl shims Swift cannot import.
        .target(name: "CKVM"),
        // Xen's public ABI headers as Debian's libxen-dev installs them.
        .target(name: "CXen"),
        // Typed wrappers over /dev/kvm: system, VM, vCPU, memory slots.
        .target(name: "KVM", dependencies: ["CKVM"]),
        // x86-64 architecture facts and the instruction decoder/emulator.
        .target(name: "X86"),
        // bzImage, LZ4 legacy frames, ELF64 and Xen ELF notes.
        .target(name: "GuestImage"),
        // The x86-64 HVM machine: boot protocol, e820, long-mode entry, CPUID,
        // ACPI tables, legacy devices (16550, i8042, CMOS RTC, PCI host bridge).
        .target(name: "Machine", dependencies: ["GuestImage"]),
        // Hardware-virtualized guests: a KVM VM running the Machine (vCPU
        // threads, port I/O to devices, in-kernel interrupt controllers).
        .target(name: "HVM", dependencies: ["KVM", "Machine", "GuestImage", "X86", "CKVM", "Virtio", "VirtioPCI", "BlockStorage", "HostNetwork"]),
        // Xenstore: the tree, its wire protocol and the guest ring.
        .target(name: "XenStore"),
        // The Xen x86-64 PV ABI on KVM: domain builder, trampoline, hypercalls,
        // MMU validation, event channels, time, console.
        .target(name: "XenPV", dependencies: ["KVM", "X86", "GuestImage", "XenStore", "CXen", "XenRings"]),
        // Guest disks as flat files on the host: the backend of virtio-blk and blkback.
        .target(name: "BlockStorage"),
        // What a PV guest controls in the split drivers, over plain memory:
        // grant entries, blkif and netif rings, request checks. No KVM, no
        // Foundation. (Its fuzzer is scripts/fuzz-xen-rings.sh, not a target.)
        .target(name: "XenRings", dependencies: ["CKVM", "BlockStorage"]),
        // Struct-ifreq ioctls for TAP devices and bridges.
        .target(name: "CNet"),
        // Guest NICs' host ends: TAP devices, bridges, MAC addresses.
        .target(name: "HostNetwork", dependencies: ["CNet"]),
        // Xen split-driver backends in the VMM (blkback, netback), over xenstore and grants.
        .target(name: "XenBackends", dependencies: ["XenPV", "XenRings", "XenStore", "BlockStorage", "HostNetwork", "CKVM"]),
        // Assembles a guest from options, runs vCPU threads, console, lifecycle.
        // Unix stream sockets (Glibc only): the VMM's, xenod's and the CLI's.
        .target(name: "UnixSockets"),
        .target(name: "VMM", dependencies: ["UnixSockets", "XenPV", "XenBackends", "BlockStorage", "HostNetwork", "HVM", "KVM"]),
        // xl.cfg files: the syntax, and a domain's settings with xl's meanings.
        .target(name: "XLConfig"),
        // TLS over OpenSSL's libssl.so.3, loaded on first use (not linked: `xeno` is also the VMM).
        .target(name: "CTLS"),
        // The host daemon's core: domains as VMM processes, their records, the HTTP API.
        .target(name: "Host", dependencies: ["XLConfig", "UnixSockets", "CTLS"]),
        .executableTarget(name: "xenod", dependencies: ["Host"]),
        // xl's verbs for `xeno`: a client of xenod's API (no Foundation).
        .target(name: "Toolstack", dependencies: ["UnixSockets", "CTLS"]),
        .executableTarget(name: "xeno", dependencies: ["VMM", "Toolstack"]),
        // The split virtqueue every virtio device model shares: ring setup,
        // validated descriptor chains, used ring, notification suppression.
        // No Foundation. (Its fuzzer is scripts/fuzz-virtqueue.sh, not a target.)
        .target(name: "Virtio", dependencies: ["KVM"]),
        // The virtio 1.x PCI transport (a PCI function with one BAR, MSI-X,
        // ioeventfd doorbells) and the devices behind it: blk, net, rng, balloon, vsock.
        .target(name: "VirtioPCI", dependencies: ["Virtio", "Machine", "KVM", "CKVM", "BlockStorage", "HostNetwork"]),
        .testTarget(name: "KVMTests", dependencies: ["KVM"]),
        .testTarget(name: "X86Tests", dependencies: ["X86"]),
        .testTarget(name: "GuestImageTests", dependencies: ["GuestImage"]),
        .testTarget(name: "XenStoreTests", dependencies: ["XenStore"]),
        .testTarget(name: "MachineTests", dependencies: ["Machine"]),
        .testTarget(name: "HVMTests", dependencies: ["HVM", "KVM"]),
        .testTarget(name: "XenPVTests", dependencies: ["XenPV", "VMM"]),
        .testTarget(name: "CLITests", dependencies: []),
        // The guest agent channel without KVM: console ring bounds, the agent's line protocol, exec requests.
        .testTarget(name: "AgentChannelTests", dependencies: ["XenBackends", "VMM"]),
        .testTarget(name: "VirtioTests", dependencies: ["Virtio"]),
        .testTarget(name: "XLConfigTests", dependencies: ["XLConfig"]),
        // xenod's access checks without a daemon: the bearer token, the route table, --listen addresses.
        .testTarget(name: "HostTests", dependencies: ["Host"]),
        .testTarget(name: "VirtioPCITests", dependencies: ["VirtioPCI", "Virtio", "Machine", "BlockStorage", "HostNetwork", "KVM"]),
        .testTarget(name: "XenRingsTests", dependencies: ["XenRings", "BlockStorage"]),
        .testTarget(name: "BlockStorageTests", dependencies: ["BlockStorage"]),
    ],
    swiftLanguageModes: [.v6]
)
