import Testing
@testable import HVM

/// What the VMM adds to the command line of a guest kernel that a
/// software-nested KVM (kvm_pvm) emulates.
@Suite struct EmulatedKernelOptionsTests {
    /// With the TSC-deadline timer, Linux emulates its periodic tick in
    /// one-shot mode and, once kvm-clock is in place, catches up missed ticks
    /// in a loop with interrupts off, which never ends when 32 emulated vCPUs
    /// share two host cores (docs/BENCHMARKS.md, "HVM boot on this host").
    @Test func localAPICTimerTicksInPeriodicMode() {
        let words = HVMDomain.emulatedKernelOptions.split(separator: " ")
        #expect(words.contains("lapic=notscdeadline"))
    }

    /// The options leave room for the user's own command line within the
    /// 2,047 bytes Debian's x86 kernel takes (its `cmdline_size`).
    @Test func optionsLeaveRoomForTheUsersCommandLine() {
        let user = "console=ttyS0 earlyprintk=ttyS0 loglevel=7 i8042.noaux reboot=acpi initcall_debug"
        #expect(user.utf8.count + HVMDomain.emulatedKernelOptions.utf8.count + 1024 < 2047)
    }
}
