// Classification of the instruction at a #GP or #UD raised by a PV guest
// kernel running at CPL3: the system instructions Xen's emul-priv-op.c and
// emul-inv-op.c emulate, plus the other faulting system instructions with
// their operands, so the VMM can emulate or reflect each one.
//
// POPF/PUSHF are deliberately absent: at CPL3 with IOPL 0 they do not fault
// (POPF silently keeps IF), so they never reach this path.

/// The port operand of IN/OUT.
public enum IOPort: Equatable, Hashable, Sendable {
    case immediate(UInt8)  // E4–E7
    case dx  // EC–EF
}

/// A ModRM r/m operand: a register (encoding number 0–15) or memory.
public enum RMOperand: Equatable, Hashable, Sendable {
    case register(Int)
    case memory(MemoryOperand)
}

public enum PrivilegedOp: Equatable, Hashable, Sendable {
    case wrmsr  // 0F 30
    case rdmsr  // 0F 32
    case cpuid  // 0F A2
    /// Linux's `xen_cpuid`: ud2 + "xen" + cpuid (0F 0B 78 65 6E 0F A2),
    /// 7 bytes. Emulate CPUID and skip all 7 (Xen emul-inv-op.c).
    case xenForcedCPUID
    /// MOV CRn, r64 (0F 22). cr is 0, 2, 3, 4 or 8; gpr is 0–15.
    case movToCR(cr: Int, gpr: Int)
    /// MOV r64, CRn (0F 20).
    case movFromCR(cr: Int, gpr: Int)
    /// MOV DRn, r64 (0F 23). dr is 0–7.
    case movToDR(dr: Int, gpr: Int)
    /// MOV r64, DRn (0F 21).
    case movFromDR(dr: Int, gpr: Int)
    /// IN AL/AX/EAX, imm8 or DX; size 1, 2 or 4.
    case `in`(port: IOPort, size: Int)
    /// OUT imm8 or DX, AL/AX/EAX.
    case out(port: IOPort, size: Int)
    /// INS m, DX (6C/6D) to [rdi]; addressSize 8, or 4 with 0x67.
    case ins(size: Int, rep: Bool, addressSize: Int)
    /// OUTS DX, m (6E/6F) from [rsi], whose DS may be overridden (FS/GS matter).
    case outs(size: Int, rep: Bool, addressSize: Int, segment: SegmentRegister?)
    case hlt  // F4
    case cli  // FA
    case sti  // FB
    case clts  // 0F 06
    case wbinvd  // 0F 09
    case invd  // 0F 08
    case invlpg(MemoryOperand)  // 0F 01 /7, memory
    case xsetbv  // 0F 01 D1
    case xgetbv  // 0F 01 D0
    case rdtsc  // 0F 31
    case rdtscp  // 0F 01 F9
    case rdpmc  // 0F 33
    case lgdt(MemoryOperand)  // 0F 01 /2, memory
    case lidt(MemoryOperand)  // 0F 01 /3, memory
    case sgdt(MemoryOperand)  // 0F 01 /0, memory
    case sidt(MemoryOperand)  // 0F 01 /1, memory
    case lldt(RMOperand)  // 0F 00 /2, 16-bit source
    case ltr(RMOperand)  // 0F 00 /3, 16-bit source
    /// 0F 00 /0. size: 2 for memory; 2, 4 or 8 for a register (4 zero-extends).
    case sldt(RMOperand, size: Int)
    /// 0F 00 /1. size as for sldt.
    case str(RMOperand, size: Int)
    case lmsw(RMOperand)  // 0F 01 /6, 16-bit source
    /// 0F 01 /4. size as for sldt.
    case smsw(RMOperand, size: Int)
    case swapgs  // 0F 01 F8
    case int(UInt8)  // CD ib
    case int3  // CC
    case int1  // F1 (ICEBP)
    /// CE: invalid in 64-bit mode (#UD); classified so the caller can say so.
    case into
    case ud2  // 0F 0B (not followed by "xen" + cpuid)
    /// IRET (CF): size 8 for iretq (REX.W), 4 for iretd, 2 with 0x66.
    case iret(size: Int)
    /// SYSRET (0F 07): size 8 for sysretq (REX.W, to 64-bit code), else 4.
    case sysret(size: Int)
    /// MOV Sreg, r/m16 (8E). The segment is never CS.
    case movToSegment(SegmentRegister, source: RMOperand)
    /// MOV r/m, Sreg (8C). size 2 for memory; 2, 4 or 8 for a register.
    case movFromSegment(SegmentRegister, destination: RMOperand, size: Int)
}

public struct PrivilegedInstruction: Equatable, Hashable, Sendable {
    public var op: PrivilegedOp
    /// Bytes to skip to step over the instruction (7 for the forced CPUID).
    public var length: Int
    /// The decoded instruction (prefixes, REX, ModRM...). For
    /// `.xenForcedCPUID` this is the 2-byte CPUID after the 5-byte marker;
    /// for `.into` it is nil (CE does not decode in 64-bit mode).
    public var instruction: Instruction?

    public init(op: PrivilegedOp, length: Int, instruction: Instruction?) {
        self.op = op
        self.length = length
        self.instruction = instruction
    }
}

/// Linux's XEN_EMULATE_PREFIX (`ud2a; .ascii "xen"`) followed by CPUID.
let xenForcedCPUIDBytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
    (0x0F, 0x0B, 0x78, 0x65, 0x6E, 0x0F, 0xA2)

/// Classifies the instruction at the start of `bytes` (the faulting rip).
/// Returns nil for anything not listed in `PrivilegedOp`, for truncated
/// input, and for encodings that raise #UD in hardware before any privilege
/// check (a LOCK prefix, CR1/5/6/7, DR8–15, MOV to CS) so that the caller
/// reflects the original exception.
public func decodePrivileged(_ bytes: UnsafeRawBufferPointer) -> PrivilegedInstruction? {
    // Xen only honours the marker with no prefix in front and CPUID after it.
    if bytes.count >= 7 {
        let s = xenForcedCPUIDBytes
        if bytes[0] == s.0 && bytes[1] == s.1 && bytes[2] == s.2 && bytes[3] == s.3
            && bytes[4] == s.4 && bytes[5] == s.5 && bytes[6] == s.6
        {
            let cpuid = decode(UnsafeRawBufferPointer(rebasing: bytes[5..<7]))
            return PrivilegedInstruction(op: .xenForcedCPUID, length: 7, instruction: cpuid)
        }
    }

    guard let insn = decode(bytes) else {
        return intoAfterPrefixes(bytes)
    }
    // LOCK on any of these is #UD, raised before the privilege check.
    guard !insn.prefixes.lock, let op = classify(insn) else { return nil }
    return PrivilegedInstruction(op: op, length: insn.length, instruction: insn)
}

public func decodePrivileged(_ bytes: InstructionBytes) -> PrivilegedInstruction? {
    bytes.withUnsafeBytes { decodePrivileged($0) }
}

/// INTO (CE) is invalid in 64-bit mode, so `decode` refuses it; recognise it
/// here (after any legacy/REX prefixes, which it ignores).
private func intoAfterPrefixes(_ bytes: UnsafeRawBufferPointer) -> PrivilegedInstruction? {
    let limit = min(bytes.count, InstructionBytes.maximumLength)
    var i = 0
    while i < limit {
        switch bytes[i] {
        case 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF2, 0xF3, 0x40...0x4F:
            i += 1
        case 0xCE:
            return PrivilegedInstruction(op: .into, length: i + 1, instruction: nil)
        default:
            return nil
        }
    }
    return nil
}

private func rmOperand(_ insn: Instruction) -> RMOperand {
    if let m = insn.memoryOperand { return .memory(m) }
    return .register(insn.rm)
}

/// Store size of SLDT/STR/SMSW/MOV-from-Sreg: 16 bits to memory, the
/// operand size to a register.
private func storeSize(_ insn: Instruction) -> Int {
    insn.memoryOperand == nil ? insn.operandSize : 2
}

private func classify(_ insn: Instruction) -> PrivilegedOp? {
    guard let modrm = insn.modrm else {
        return classifyNoModRM(insn)
    }
    let memory = insn.memoryOperand
    switch (insn.map, insn.opcode) {
    case (.primary, 0x8E):  // MOV Sreg, Ew
        guard let seg = SegmentRegister(rawValue: UInt8(modrm.reg)), seg != .cs else { return nil }
        return .movToSegment(seg, source: rmOperand(insn))
    case (.primary, 0x8C):  // MOV Ev, Sreg
        guard let seg = SegmentRegister(rawValue: UInt8(modrm.reg)) else { return nil }
        return .movFromSegment(seg, destination: rmOperand(insn), size: storeSize(insn))

    case (.secondary, 0x20), (.secondary, 0x22):  // MOV r64, CRn / MOV CRn, r64
        // Valid control registers in 64-bit mode; the rest are #UD.
        let cr = insn.reg
        guard cr == 0 || cr == 2 || cr == 3 || cr == 4 || cr == 8 else { return nil }
        return insn.opcode == 0x22 ? .movToCR(cr: cr, gpr: insn.rm) : .movFromCR(cr: cr, gpr: insn.rm)
    case (.secondary, 0x21), (.secondary, 0x23):  // MOV r64, DRn / MOV DRn, r64
        // REX.R would name DR8–DR15, which do not exist (#UD).
        guard insn.rex?.r != true else { return nil }
        let dr = modrm.reg
        return insn.opcode == 0x23 ? .movToDR(dr: dr, gpr: insn.rm) : .movFromDR(dr: dr, gpr: insn.rm)

    case (.secondary, 0x00):  // group 6
        switch modrm.reg {
        case 0: return .sldt(rmOperand(insn), size: storeSize(insn))
        case 1: return .str(rmOperand(insn), size: storeSize(insn))
        case 2: return .lldt(rmOperand(insn))
        case 3: return .ltr(rmOperand(insn))
        default: return nil  // VERR, VERW do not fault at CPL3
        }

    case (.secondary, 0x01):  // group 7
        if let memory {
            switch modrm.reg {
            case 0: return .sgdt(memory)
            case 1: return .sidt(memory)
            case 2: return .lgdt(memory)
            case 3: return .lidt(memory)
            case 4: return .smsw(.memory(memory), size: 2)
            case 6: return .lmsw(.memory(memory))
            case 7: return .invlpg(memory)
            default: return nil
            }
        }
        switch modrm.reg {
        case 4: return .smsw(.register(insn.rm), size: insn.operandSize)
        case 6: return .lmsw(.register(insn.rm))
        default: break
        }
        // Register forms select other instructions by the whole ModRM byte.
        switch modrm.raw {
        case 0xD0: return .xgetbv
        case 0xD1: return .xsetbv
        case 0xF8: return .swapgs
        case 0xF9: return .rdtscp
        default: return nil
        }

    default:
        return nil
    }
}

private func classifyNoModRM(_ insn: Instruction) -> PrivilegedOp? {
    let wide = insn.operandSize == 2 ? 2 : 4  // IN/OUT/INS/OUTS ignore REX.W
    switch (insn.map, insn.opcode) {
    case (.primary, 0xE4): return .in(port: .immediate(UInt8(truncatingIfNeeded: insn.immediate)), size: 1)
    case (.primary, 0xE5): return .in(port: .immediate(UInt8(truncatingIfNeeded: insn.immediate)), size: wide)
    case (.primary, 0xE6): return .out(port: .immediate(UInt8(truncatingIfNeeded: insn.immediate)), size: 1)
    case (.primary, 0xE7): return .out(port: .immediate(UInt8(truncatingIfNeeded: insn.immediate)), size: wide)
    case (.primary, 0xEC): return .in(port: .dx, size: 1)
    case (.primary, 0xED): return .in(port: .dx, size: wide)
    case (.primary, 0xEE): return .out(port: .dx, size: 1)
    case (.primary, 0xEF): return .out(port: .dx, size: wide)
    // F2 and F3 both repeat INS/OUTS in hardware.
    case (.primary, 0x6C): return .ins(size: 1, rep: insn.prefixes.rep != nil, addressSize: insn.addressSize)
    case (.primary, 0x6D): return .ins(size: wide, rep: insn.prefixes.rep != nil, addressSize: insn.addressSize)
    case (.primary, 0x6E), (.primary, 0x6F):
        return .outs(
            size: insn.opcode == 0x6E ? 1 : wide, rep: insn.prefixes.rep != nil,
            addressSize: insn.addressSize, segment: insn.prefixes.segment)
    case (.primary, 0xF4): return .hlt
    case (.primary, 0xFA): return .cli
    case (.primary, 0xFB): return .sti
    case (.primary, 0xCC): return .int3
    case (.primary, 0xCD): return .int(UInt8(truncatingIfNeeded: insn.immediate))
    case (.primary, 0xF1): return .int1
    case (.primary, 0xCF): return .iret(size: insn.operandSize)
    case (.secondary, 0x06): return .clts
    case (.secondary, 0x07): return .sysret(size: insn.rex?.w == true ? 8 : 4)
    case (.secondary, 0x08): return .invd
    case (.secondary, 0x09): return .wbinvd
    case (.secondary, 0x0B): return .ud2
    case (.secondary, 0x30): return .wrmsr
    case (.secondary, 0x31): return .rdtsc
    case (.secondary, 0x32): return .rdmsr
    case (.secondary, 0x33): return .rdpmc
    case (.secondary, 0xA2): return .cpuid
    default: return nil
    }
}
