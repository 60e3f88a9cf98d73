// A length decoder for the legacy opcode maps in 64-bit mode, built from the
// opcode maps of SDM vol. 2, appendix A (and AMD APM vol. 3, appendix A).
//
// The bytes are untrusted guest memory: every read is bounds-checked against
// min(available, 15), nothing traps, and anything this decoder does not
// model returns nil. It does not model VEX/EVEX/XOP (C4, C5, 62, 8F /1-7),
// 3DNow! (0F 0F), opcodes invalid in 64-bit mode, or encodings whose length
// differs between Intel and AMD (66-prefixed near branches: Intel ignores
// 0x66 and takes rel32, AMD takes rel16). The emulator only needs the
// ordinary integer and system instructions; refusing the rest lets the
// caller inject the original fault instead of guessing.

/// How the immediate bytes after ModRM/SIB/displacement are sized.
enum ImmediateKind {
    case none
    case byte  // ib, rel8
    case word  // iw
    case z  // iz: 2 with 0x66, else 4 (never 8: sign-extended under REX.W)
    case v  // iv: 2, 4 or 8 (only B8+r: MOV r64, imm64)
    case wordByte  // ENTER iw, ib
    case moffs  // A0–A3: 8-byte offset, 4 with 0x67
    case rel32  // near branch displacement; 0x66 form refused (vendor-specific)
}

struct OpcodeShape {
    var hasModRM: Bool
    var immediate: ImmediateKind
    init(_ hasModRM: Bool, _ immediate: ImmediateKind = .none) {
        self.hasModRM = hasModRM
        self.immediate = immediate
    }
}

/// One-byte opcode map (SDM table A-2), 64-bit mode column.
func primaryShape(_ op: UInt8) -> OpcodeShape? {
    switch op {
    // PUSH/POP ES/CS/SS/DS, DAA/DAS/AAA/AAS: invalid in 64-bit mode.
    case 0x06, 0x07, 0x0E, 0x16, 0x17, 0x1E, 0x1F, 0x27, 0x2F, 0x37, 0x3F:
        return nil
    // Prefixes and escapes are consumed before the opcode; never an opcode here.
    case 0x0F, 0x26, 0x2E, 0x36, 0x3E, 0x40...0x4F, 0x64...0x67, 0xF0, 0xF2, 0xF3:
        return nil
    // ADD/OR/ADC/SBB/AND/SUB/XOR/CMP: Eb,Gb Ev,Gv Gb,Eb Gv,Ev AL,Ib rAX,Iz.
    case 0x00...0x3F:
        switch op & 7 {
        case 0...3: return OpcodeShape(true)
        case 4: return OpcodeShape(false, .byte)
        default: return OpcodeShape(false, .z)
        }
    case 0x50...0x5F: return OpcodeShape(false)  // PUSH/POP r64
    // PUSHA/POPA/BOUND invalid; 62 is EVEX in 64-bit mode.
    case 0x60, 0x61, 0x62: return nil
    case 0x63: return OpcodeShape(true)  // MOVSXD
    case 0x68: return OpcodeShape(false, .z)  // PUSH Iz
    case 0x69: return OpcodeShape(true, .z)  // IMUL Gv,Ev,Iz
    case 0x6A: return OpcodeShape(false, .byte)  // PUSH Ib
    case 0x6B: return OpcodeShape(true, .byte)  // IMUL Gv,Ev,Ib
    case 0x6C...0x6F: return OpcodeShape(false)  // INS/OUTS
    case 0x70...0x7F: return OpcodeShape(false, .byte)  // Jcc rel8
    case 0x80, 0x83: return OpcodeShape(true, .byte)  // group 1 Eb,Ib / Ev,Ib
    case 0x81: return OpcodeShape(true, .z)  // group 1 Ev,Iz
    case 0x82: return nil  // invalid in 64-bit mode
    case 0x84...0x8F: return OpcodeShape(true)  // TEST, XCHG, MOV, LEA, MOV Sreg, POP Ev
    case 0x90...0x99: return OpcodeShape(false)  // XCHG/NOP/PAUSE, CBW.., CWD..
    case 0x9A: return nil  // far CALL ptr: invalid in 64-bit mode
    case 0x9B...0x9F: return OpcodeShape(false)  // FWAIT, PUSHF, POPF, SAHF, LAHF
    case 0xA0...0xA3: return OpcodeShape(false, .moffs)  // MOV AL/rAX <-> moffs
    case 0xA4...0xA7: return OpcodeShape(false)  // MOVS, CMPS
    case 0xA8: return OpcodeShape(false, .byte)  // TEST AL,Ib
    case 0xA9: return OpcodeShape(false, .z)  // TEST rAX,Iz
    case 0xAA...0xAF: return OpcodeShape(false)  // STOS, LODS, SCAS
    case 0xB0...0xB7: return OpcodeShape(false, .byte)  // MOV r8,Ib
    case 0xB8...0xBF: return OpcodeShape(false, .v)  // MOV r,Iv (imm64 under REX.W)
    case 0xC0, 0xC1: return OpcodeShape(true, .byte)  // shift group 2 Ib
    case 0xC2: return OpcodeShape(false, .word)  // RET Iw
    case 0xC3: return OpcodeShape(false)
    case 0xC4, 0xC5: return nil  // VEX in 64-bit mode
    case 0xC6: return OpcodeShape(true, .byte)  // group 11 MOV Eb,Ib / XABORT
    case 0xC7: return OpcodeShape(true, .z)  // group 11 MOV Ev,Iz / XBEGIN
    case 0xC8: return OpcodeShape(false, .wordByte)  // ENTER Iw,Ib
    case 0xC9: return OpcodeShape(false)  // LEAVE
    case 0xCA: return OpcodeShape(false, .word)  // RETF Iw
    case 0xCB, 0xCC: return OpcodeShape(false)  // RETF, INT3
    case 0xCD: return OpcodeShape(false, .byte)  // INT Ib
    case 0xCE: return nil  // INTO: invalid in 64-bit mode
    case 0xCF: return OpcodeShape(false)  // IRET
    case 0xD0...0xD3: return OpcodeShape(true)  // shift group 2 by 1 / CL
    case 0xD4, 0xD5, 0xD6: return nil  // AAM, AAD, SALC: invalid in 64-bit mode
    case 0xD7: return OpcodeShape(false)  // XLAT
    case 0xD8...0xDF: return OpcodeShape(true)  // x87 escapes
    case 0xE0...0xE7: return OpcodeShape(false, .byte)  // LOOPcc, JrCXZ, IN/OUT Ib
    case 0xE8, 0xE9: return OpcodeShape(false, .rel32)  // CALL/JMP rel32
    case 0xEA: return nil  // far JMP ptr: invalid in 64-bit mode
    case 0xEB: return OpcodeShape(false, .byte)  // JMP rel8
    case 0xEC...0xEF: return OpcodeShape(false)  // IN/OUT DX
    case 0xF1, 0xF4, 0xF5: return OpcodeShape(false)  // INT1, HLT, CMC
    case 0xF6: return OpcodeShape(true, .byte)  // group 3; Ib only for /0 /1 (TEST)
    case 0xF7: return OpcodeShape(true, .z)  // group 3; Iz only for /0 /1
    case 0xF8...0xFD: return OpcodeShape(false)  // CLC STC CLI STI CLD STD
    case 0xFE, 0xFF: return OpcodeShape(true)  // groups 4 and 5
    default: return nil
    }
}

/// Two-byte opcode map 0F xx (SDM table A-3).
func secondaryShape(_ op: UInt8, prefixes: Prefixes) -> OpcodeShape? {
    switch op {
    case 0x00...0x03: return OpcodeShape(true)  // group 6, group 7, LAR, LSL
    case 0x05...0x09: return OpcodeShape(false)  // SYSCALL CLTS SYSRET INVD WBINVD
    case 0x0B: return OpcodeShape(false)  // UD2
    case 0x0D: return OpcodeShape(true)  // PREFETCH(W)
    case 0x04, 0x0A, 0x0C: return nil
    case 0x0E, 0x0F: return nil  // FEMMS, 3DNow! (AMD only, obsolete)
    case 0x10...0x1F: return OpcodeShape(true)  // SSE moves, hint NOPs, ENDBR
    case 0x20...0x23: return OpcodeShape(true)  // MOV CR/DR (always register form)
    case 0x24...0x27: return nil  // MOV TR (obsolete)
    case 0x28...0x2F: return OpcodeShape(true)
    case 0x30...0x35, 0x37: return OpcodeShape(false)  // WRMSR RDTSC RDMSR RDPMC SYSENTER SYSEXIT GETSEC
    case 0x36, 0x39, 0x3B...0x3F: return nil
    case 0x38, 0x3A: return nil  // escapes, handled by the caller
    case 0x40...0x6F: return OpcodeShape(true)  // CMOVcc, SSE/MMX
    case 0x70...0x73: return OpcodeShape(true, .byte)  // PSHUF*, shift groups 12–14
    case 0x74...0x76: return OpcodeShape(true)
    case 0x77: return OpcodeShape(false)  // EMMS
    // VMREAD; with 66/F2 it is AMD's EXTRQ/INSERTQ with two immediates: refused.
    case 0x78: return prefixes.operandSize || prefixes.rep == .repne ? nil : OpcodeShape(true)
    case 0x79: return OpcodeShape(true)  // VMWRITE, EXTRQ/INSERTQ register forms
    case 0x7A, 0x7B: return nil
    case 0x7C...0x7F: return OpcodeShape(true)
    case 0x80...0x8F: return OpcodeShape(false, .rel32)  // Jcc rel32
    case 0x90...0x9F: return OpcodeShape(true)  // SETcc
    case 0xA0...0xA2: return OpcodeShape(false)  // PUSH FS, POP FS, CPUID
    case 0xA3: return OpcodeShape(true)  // BT Ev,Gv
    case 0xA4: return OpcodeShape(true, .byte)  // SHLD Ib
    case 0xA5: return OpcodeShape(true)  // SHLD CL
    case 0xA6, 0xA7: return nil
    case 0xA8...0xAA: return OpcodeShape(false)  // PUSH GS, POP GS, RSM
    case 0xAB: return OpcodeShape(true)  // BTS Ev,Gv
    case 0xAC: return OpcodeShape(true, .byte)  // SHRD Ib
    case 0xAD...0xAF: return OpcodeShape(true)  // SHRD CL, group 15, IMUL
    case 0xB0...0xB7: return OpcodeShape(true)  // CMPXCHG, LSS, BTR, LFS, LGS, MOVZX
    // POPCNT needs F3; without it 0F B8 is JMPE (IA-64 only).
    case 0xB8: return prefixes.rep == .rep ? OpcodeShape(true) : nil
    case 0xB9: return OpcodeShape(true)  // UD1 (group 10)
    case 0xBA: return OpcodeShape(true, .byte)  // group 8: BT/BTS/BTR/BTC Ev,Ib
    case 0xBB...0xBF: return OpcodeShape(true)  // BTC, BSF/TZCNT, BSR/LZCNT, MOVSX
    case 0xC2, 0xC4, 0xC5, 0xC6: return OpcodeShape(true, .byte)  // CMPPS, PINSRW, PEXTRW, SHUFPS
    case 0xC0, 0xC1, 0xC3, 0xC7: return OpcodeShape(true)  // XADD, MOVNTI, group 9
    case 0xC8...0xCF: return OpcodeShape(false)  // BSWAP
    case 0xD0...0xFE: return OpcodeShape(true)  // MMX/SSE
    // UD0: Intel gives it a ModRM, older AMD parts do not.
    case 0xFF: return nil
    default: return nil
    }
}

/// Decodes one instruction in 64-bit mode from at most the first 15 bytes of
/// `bytes`. Returns nil if the bytes run out before the instruction ends, if
/// it would exceed 15 bytes, or if the encoding is not modelled (see above).
public func decode(_ bytes: UnsafeRawBufferPointer, mode: CPUMode = .long64) -> Instruction? {
    var reader = ByteReader(bytes)
    var prefixes = Prefixes()
    var rex: REX? = nil

    // Legacy prefixes (any order, repeats allowed) and REX. A REX prefix
    // counts only immediately before the opcode: one followed by a legacy
    // prefix is ignored (SDM 2.2.1), and of several REX bytes the last wins.
    var first: UInt8
    prefixLoop: while true {
        guard let b = reader.next() else { return nil }
        switch b {
        case 0x66: prefixes.operandSize = true
        case 0x67: prefixes.addressSize = true
        case 0xF0: prefixes.lock = true
        case 0xF2: prefixes.rep = .repne
        case 0xF3: prefixes.rep = .rep
        case 0x26: prefixes.segment = .es
        case 0x2E: prefixes.segment = .cs
        case 0x36: prefixes.segment = .ss
        case 0x3E: prefixes.segment = .ds
        case 0x64: prefixes.segment = .fs
        case 0x65: prefixes.segment = .gs
        case 0x40...0x4F:
            rex = REX(raw: b)
            continue prefixLoop
        default:
            first = b
            break prefixLoop
        }
        prefixes.count += 1
        rex = nil
    }

    var map = OpcodeMap.primary
    var opcode = first
    if first == 0x0F {
        guard let second = reader.next() else { return nil }
        switch second {
        case 0x38:
            map = .map0F38
            guard let third = reader.next() else { return nil }
            opcode = third
        case 0x3A:
            map = .map0F3A
            guard let third = reader.next() else { return nil }
            opcode = third
        default:
            map = .secondary
            opcode = second
        }
    }

    let shape: OpcodeShape?
    switch map {
    case .primary: shape = primaryShape(opcode)
    case .secondary: shape = secondaryShape(opcode, prefixes: prefixes)
    case .map0F38: shape = OpcodeShape(true)  // every 0F 38 opcode has ModRM and no immediate
    case .map0F3A: shape = OpcodeShape(true, .byte)  // every 0F 3A opcode has ModRM and Ib
    }
    guard let shape else { return nil }

    let operandSize = rex?.w == true ? 8 : (prefixes.operandSize ? 2 : 4)
    let addressSize = prefixes.addressSize ? 4 : 8

    var modrm: ModRM? = nil
    var sib: SIB? = nil
    var displacement: Int64 = 0
    var displacementSize = 0
    var immediateKind = shape.immediate

    if shape.hasModRM {
        guard let m = reader.next() else { return nil }
        let mr = ModRM(raw: m)
        modrm = mr
        if map == .primary {
            switch opcode {
            // 8F /1–/7 is AMD's XOP escape; only /0 (POP Ev) is a legacy opcode.
            case 0x8F where mr.reg != 0: return nil
            // Group 11: /0 is MOV; C6 F8 is XABORT and C7 F8 XBEGIN; the rest #UD.
            case 0xC6 where mr.reg != 0 && mr.raw != 0xF8, 0xC7 where mr.reg != 0 && mr.raw != 0xF8:
                return nil
            // Group 3: only TEST (/0, /1) has an immediate.
            case 0xF6 where mr.reg > 1, 0xF7 where mr.reg > 1: immediateKind = .none
            // Group 4: only INC/DEC.
            case 0xFE where mr.reg > 1: return nil
            // Group 5: /7 is undefined.
            case 0xFF where mr.reg == 7: return nil
            default: break
            }
        }
        // Register form, or MOV CR/DR which ignores mod: nothing more follows.
        if mr.mod != 3 && !Instruction.modrmIsAlwaysRegister(map: map, opcode: opcode) {
            // 64-bit and 32-bit addressing share this form (SDM table 2-2;
            // 16-bit addressing does not exist in 64-bit mode).
            if mr.rm == 4 {
                guard let s = reader.next() else { return nil }
                sib = SIB(raw: s)
                if mr.mod == 0 && s & 7 == 5 { displacementSize = 4 }
            } else if mr.mod == 0 && mr.rm == 5 {
                displacementSize = 4  // RIP-relative disp32
            }
            if mr.mod == 1 { displacementSize = 1 }
            if mr.mod == 2 { displacementSize = 4 }
            if displacementSize > 0 {
                guard let d = reader.read(displacementSize) else { return nil }
                displacement = displacementSize == 1
                    ? Int64(Int8(truncatingIfNeeded: d))
                    : Int64(Int32(truncatingIfNeeded: d))
            }
        }
    }

    var immediate: UInt64 = 0
    var immediateSize = 0
    var secondImmediate: UInt64 = 0
    var secondImmediateSize = 0
    switch immediateKind {
    case .none: break
    case .byte: immediateSize = 1
    case .word: immediateSize = 2
    case .z: immediateSize = operandSize == 2 ? 2 : 4
    case .v: immediateSize = operandSize
    case .wordByte:
        immediateSize = 2
        secondImmediateSize = 1
    case .moffs:
        // The absolute offset is an address, so it is sized by address size.
        guard let d = reader.read(addressSize) else { return nil }
        displacement = Int64(bitPattern: d)
        displacementSize = addressSize
    case .rel32:
        if prefixes.operandSize { return nil }
        immediateSize = 4
    }
    if immediateSize > 0 {
        guard let v = reader.read(immediateSize) else { return nil }
        immediate = v
    }
    if secondImmediateSize > 0 {
        guard let v = reader.read(secondImmediateSize) else { return nil }
        secondImmediate = v
    }

    let length = reader.position
    var copy = InstructionBytes()
    for i in 0..<length { copy.append(bytes[i]) }

    return Instruction(
        length: length, bytes: copy, prefixes: prefixes, rex: rex, map: map, opcode: opcode,
        modrm: modrm, sib: sib, displacement: displacement, displacementSize: displacementSize,
        immediate: immediate, immediateSize: immediateSize,
        secondImmediate: secondImmediate, secondImmediateSize: secondImmediateSize,
        operandSize: operandSize, addressSize: addressSize)
}

/// Decodes from an inline byte buffer (e.g. 15 bytes fetched from the guest).
public func decode(_ bytes: InstructionBytes, mode: CPUMode = .long64) -> Instruction? {
    bytes.withUnsafeBytes { decode($0, mode: mode) }
}

/// Bounds-checked little-endian reads, never past min(count, 15).
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let limit: Int
    private(set) var position = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        self.limit = min(bytes.count, InstructionBytes.maximumLength)
    }

    mutating func next() -> UInt8? {
        guard position < limit else { return nil }
        let b = bytes[position]
        position += 1
        return b
    }

    /// `n` bytes (1...8) little-endian, zero-extended.
    mutating func read(_ n: Int) -> UInt64? {
        guard n >= 0, n <= 8, limit - position >= n else { return nil }
        var v: UInt64 = 0
        for i in 0..<n {
            v |= UInt64(bytes[position + i]) << UInt64(8 * i)
        }
        position += n
        return v
    }
}
