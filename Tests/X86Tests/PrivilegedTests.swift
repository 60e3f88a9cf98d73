import Testing
import X86

@Suite struct PrivilegedTests {
    func op(_ bytes: [UInt8]) -> PrivilegedOp? { priv(bytes)?.op }
    func len(_ bytes: [UInt8]) -> Int? { priv(bytes)?.length }

    @Test func simpleSystemInstructions() {
        let cases: [([UInt8], PrivilegedOp, Int)] = [
            ([0x0f, 0x30], .wrmsr, 2),
            ([0x0f, 0x32], .rdmsr, 2),
            ([0x0f, 0xa2], .cpuid, 2),
            ([0xf4], .hlt, 1),
            ([0xfa], .cli, 1),
            ([0xfb], .sti, 1),
            ([0x0f, 0x06], .clts, 2),
            ([0x0f, 0x09], .wbinvd, 2),
            ([0x0f, 0x08], .invd, 2),
            ([0x0f, 0x01, 0xd1], .xsetbv, 3),
            ([0x0f, 0x01, 0xd0], .xgetbv, 3),
            ([0x0f, 0x31], .rdtsc, 2),
            ([0x0f, 0x01, 0xf9], .rdtscp, 3),
            ([0x0f, 0x33], .rdpmc, 2),
            ([0x0f, 0x01, 0xf8], .swapgs, 3),
            ([0xcd, 0x80], .int(0x80), 2),
            ([0xcd, 0x03], .int(3), 2),
            ([0xcc], .int3, 1),
            ([0xf1], .int1, 1),
            ([0xce], .into, 1),
            ([0x0f, 0x0b], .ud2, 2),
            ([0x48, 0xcf], .iret(size: 8), 2),
            ([0xcf], .iret(size: 4), 1),
            ([0x66, 0xcf], .iret(size: 2), 2),
            ([0x48, 0x0f, 0x07], .sysret(size: 8), 3),
            ([0x0f, 0x07], .sysret(size: 4), 2),
            // Ignored prefixes still count in the length.
            ([0x2e, 0x0f, 0x30], .wrmsr, 3),
            ([0x66, 0xce], .into, 2),
        ]
        for (bytes, expected, length) in cases {
            let p = priv(bytes + [0x90, 0x90])
            #expect(p?.op == expected, "\(InstructionBytes(bytes))")
            #expect(p?.length == length, "\(InstructionBytes(bytes))")
        }
    }

    @Test func xenForcedCPUID() throws {
        // Linux's xen_cpuid as it appears in the 6.1 cloud kernel:
        // mov (%rdx),%ecx; ud2; "xen"; cpuid; mov %eax,(%r8)
        let kernel: [UInt8] = [0x8b, 0x0a, 0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2, 0x41, 0x89, 0x00]
        let p = try #require(priv(Array(kernel[2...])))
        #expect(p.op == .xenForcedCPUID)
        #expect(p.length == 7)
        #expect(p.instruction?.opcode == 0xa2 && p.instruction?.length == 2)
        // Exactly 7 bytes available is enough.
        #expect(op([0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2]) == .xenForcedCPUID)
        // The marker followed by anything but CPUID is a plain ud2 (Xen injects #UD).
        #expect(op([0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0x31]) == .ud2)
        #expect(len([0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f]) == 2)
        #expect(op([0x0f, 0x0b, 0x78, 0x65, 0x6f, 0x0f, 0xa2]) == .ud2)
        // A prefix in front is not the marker.
        #expect(op([0x66, 0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2]) == .ud2)
    }

    @Test func controlAndDebugRegisters() {
        #expect(op([0x0f, 0x22, 0xd8]) == .movToCR(cr: 3, gpr: GPR.rax))  // mov %rax,%cr3
        #expect(op([0x41, 0x0f, 0x20, 0xe1]) == .movFromCR(cr: 4, gpr: GPR.r9))  // mov %cr4,%r9
        #expect(op([0x41, 0x0f, 0x22, 0xc7]) == .movToCR(cr: 0, gpr: GPR.r15))  // mov %r15,%cr0
        #expect(op([0x0f, 0x20, 0xd2]) == .movFromCR(cr: 2, gpr: GPR.rdx))  // mov %cr2,%rdx
        #expect(op([0x44, 0x0f, 0x20, 0xc0]) == .movFromCR(cr: 8, gpr: GPR.rax))  // mov %cr8,%rax
        #expect(op([0x0f, 0x23, 0xf9]) == .movToDR(dr: 7, gpr: GPR.rcx))  // mov %rcx,%db7
        #expect(op([0x41, 0x0f, 0x21, 0xf3]) == .movFromDR(dr: 6, gpr: GPR.r11))  // mov %db6,%r11
        // mod is ignored: 0f 22 18 is mov %rax,%cr3 too, 3 bytes.
        #expect(op([0x0f, 0x22, 0x18]) == .movToCR(cr: 3, gpr: GPR.rax))
        #expect(len([0x0f, 0x22, 0x1c, 0x25, 0, 0, 0, 0]) == 3)
        // CR1, CR5–7, CR9–15, DR8–15: #UD, not classified.
        #expect(op([0x0f, 0x22, 0xc8]) == nil)
        #expect(op([0x0f, 0x20, 0xe8]) == nil)
        #expect(op([0x44, 0x0f, 0x22, 0xc8]) == nil)
        #expect(op([0x44, 0x0f, 0x23, 0xc0]) == nil)
        // LOCK: #UD (AMD's alternative CR8 encoding is not taken).
        #expect(op([0xf0, 0x0f, 0x22, 0xc0]) == nil)
    }

    @Test func portIO() {
        #expect(op([0xe4, 0x71]) == .in(port: .immediate(0x71), size: 1))
        #expect(op([0xe5, 0x60]) == .in(port: .immediate(0x60), size: 4))
        #expect(op([0x66, 0xe5, 0x60]) == .in(port: .immediate(0x60), size: 2))
        #expect(op([0x48, 0xe5, 0x60]) == .in(port: .immediate(0x60), size: 4))  // REX.W ignored
        #expect(op([0xec]) == .in(port: .dx, size: 1))
        #expect(op([0x66, 0xed]) == .in(port: .dx, size: 2))
        #expect(op([0xed]) == .in(port: .dx, size: 4))
        #expect(op([0xe6, 0x80]) == .out(port: .immediate(0x80), size: 1))
        #expect(op([0xe7, 0x80]) == .out(port: .immediate(0x80), size: 4))
        #expect(op([0xef]) == .out(port: .dx, size: 4))
        #expect(op([0x66, 0xef]) == .out(port: .dx, size: 2))
        #expect(op([0xee]) == .out(port: .dx, size: 1))
        #expect(op([0x6c]) == .ins(size: 1, rep: false, addressSize: 8))
        #expect(op([0x66, 0xf3, 0x6d]) == .ins(size: 2, rep: true, addressSize: 8))
        #expect(op([0x67, 0x6d]) == .ins(size: 4, rep: false, addressSize: 4))
        #expect(op([0xf3, 0x6e]) == .outs(size: 1, rep: true, addressSize: 8, segment: nil))
        #expect(op([0x64, 0x6f]) == .outs(size: 4, rep: false, addressSize: 8, segment: .fs))
        #expect(len([0x66, 0xf3, 0x6d]) == 3)
        #expect(len([0xe4]) == nil)  // truncated
    }

    @Test func descriptorTablesAndInvlpg() throws {
        let inv = try #require(priv([0x0f, 0x01, 0x7c, 0xd8, 0x10]))  // invlpg 0x10(%rax,%rbx,8)
        #expect(inv.length == 5)
        guard case .invlpg(let m) = inv.op else { Issue.record("not invlpg"); return }
        var r = RegisterFile()
        r.rax = 0x1000
        r.rbx = 2
        #expect(m.linearAddress(registers: r, fsBase: 0, gsBase: 0) == 0x1020)
        #expect(m.base == GPR.rax && m.index == GPR.rbx && m.scale == 8 && m.displacement == 0x10)

        let simple = MemoryOperand(base: GPR.rdi, index: nil, scale: 1, displacement: 0, ripRelative: false, addressSize: 8, segment: nil, instructionLength: 3)
        #expect(op([0x0f, 0x01, 0x3f]) == .invlpg(simple))
        #expect(op([0x0f, 0x01, 0x17]) == .lgdt(simple))
        var rsp8 = simple
        rsp8.base = GPR.rsp
        rsp8.displacement = 8
        rsp8.instructionLength = 5
        #expect(op([0x0f, 0x01, 0x5c, 0x24, 0x08]) == .lidt(rsp8))
        var rax = simple
        rax.base = GPR.rax
        #expect(op([0x0f, 0x01, 0x00]) == .sgdt(rax))
        #expect(op([0x0f, 0x01, 0x08]) == .sidt(rax))
        #expect(op([0x0f, 0x00, 0xd0]) == .lldt(.register(GPR.rax)))
        #expect(op([0x0f, 0x00, 0x17]) == .lldt(.memory(simple)))
        #expect(op([0x41, 0x0f, 0x00, 0xd8]) == .ltr(.register(GPR.r8)))
        #expect(op([0x0f, 0x00, 0xc0]) == .sldt(.register(GPR.rax), size: 4))
        #expect(op([0x0f, 0x00, 0x07]) == .sldt(.memory(simple), size: 2))
        #expect(op([0x0f, 0x00, 0xc9]) == .str(.register(GPR.rcx), size: 4))
        #expect(op([0x48, 0x0f, 0x00, 0xc9]) == .str(.register(GPR.rcx), size: 8))
        #expect(op([0x0f, 0x01, 0xe0]) == .smsw(.register(GPR.rax), size: 4))
        #expect(op([0x66, 0x0f, 0x01, 0xe0]) == .smsw(.register(GPR.rax), size: 2))
        #expect(op([0x0f, 0x01, 0x27]) == .smsw(.memory(simple), size: 2))
        #expect(op([0x0f, 0x01, 0xf2]) == .lmsw(.register(GPR.rdx)))
        #expect(op([0x0f, 0x01, 0x37]) == .lmsw(.memory(simple)))
        // Register forms of lgdt/invlpg are other instructions (monitor, clac, ...).
        #expect(op([0x0f, 0x01, 0xc8]) == nil)  // monitor
        #expect(op([0x0f, 0x01, 0xca]) == nil)  // clac
        #expect(op([0x0f, 0x01, 0xfa]) == nil)  // monitorx
        #expect(op([0x0f, 0x00, 0x27]) == nil)  // verr
    }

    @Test func segmentRegisterMoves() {
        let rdi = MemoryOperand(base: GPR.rdi, index: nil, scale: 1, displacement: 0, ripRelative: false, addressSize: 8, segment: nil, instructionLength: 2)
        #expect(op([0x8e, 0xd8]) == .movToSegment(.ds, source: .register(GPR.rax)))
        #expect(op([0x8e, 0x27]) == .movToSegment(.fs, source: .memory(rdi)))
        #expect(op([0x41, 0x8e, 0xe9]) == .movToSegment(.gs, source: .register(GPR.r9)))
        #expect(op([0x8e, 0xd0]) == .movToSegment(.ss, source: .register(GPR.rax)))
        #expect(op([0x8e, 0xc8]) == nil)  // mov to CS: #UD
        #expect(op([0x8e, 0xf0]) == nil)  // Sreg 6: #UD
        #expect(op([0x8c, 0xd0]) == .movFromSegment(.ss, destination: .register(GPR.rax), size: 4))
        #expect(op([0x8c, 0x07]) == .movFromSegment(.es, destination: .memory(rdi), size: 2))
        #expect(op([0x8c, 0xe8]) == .movFromSegment(.gs, destination: .register(GPR.rax), size: 4))
        #expect(op([0x48, 0x8c, 0xe8]) == .movFromSegment(.gs, destination: .register(GPR.rax), size: 8))
        #expect(op([0x66, 0x41, 0x8c, 0xe2]) == .movFromSegment(.fs, destination: .register(GPR.r10), size: 2))
    }

    @Test func notPrivilegedOrUnknown() {
        for bytes: [[UInt8]] in [
            [[0x9c]], [[0x9d]],  // pushf/popf do not fault at CPL3
            [[0x48, 0x89, 0x37]], [[0x90]], [[0x0f, 0x05]], [[0xc3]],
            [[0xf0, 0x0f, 0x30]],  // LOCK: #UD before the privilege check
            [[0xf0, 0xf4]],
            [[0x0f, 0x01, 0xc1]],  // vmcall
            [[0x0f, 0x00, 0xe0]],  // verr %ax
            [[0xc4, 0xe2, 0xbb, 0xf7, 0xf6]],
            [[]], [[0x0f]], [[0x0f, 0x01]], [[0xcd]], [[0x66, 0x66]],
        ] {
            #expect(priv(bytes[0]) == nil, "\(InstructionBytes(bytes[0]))")
        }
    }

    @Test func inlineBytes() {
        let b = InstructionBytes([0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2, 0x41, 0x89, 0x00])
        #expect(decodePrivileged(b)?.op == .xenForcedCPUID)
    }
}
