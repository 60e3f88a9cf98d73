import Glibc
import KVM
import Testing

let kvmAvailable = access("/dev/kvm", R_OK | W_OK) == 0

@Suite("KVM binding", .enabled(if: kvmAvailable, "needs /dev/kvm (read-write)"))
struct KVMBindingTests {
    @Test("general and special registers read back as written")
    func registersRoundTrip() throws {
        let vm = try KVMSystem().createVM()
        let vcpu = try vm.createVCPU(id: 0)
        var r = try vcpu.registers()
        r.rax = 0x1234_5678_9abc_def0; r.r11 = 42; r.rip = 0x1000; r.rflags = 0x2
        try vcpu.setRegisters(r)
        let back = try vcpu.registers()
        #expect(back.rax == r.rax && back.r11 == 42 && back.rip == 0x1000)
        var s = try vcpu.specialRegisters()
        s.cr3 = 0x5000
        try vcpu.setSpecialRegisters(s)
        #expect(try vcpu.specialRegisters().cr3 == 0x5000)
    }
}
