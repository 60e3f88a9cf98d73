// The decoded form of one x86-64 instruction: its prefixes, opcode and
// operand bytes, in the layout of SDM vol. 2, chapter 2 ("Instruction
// Format"): legacy prefixes, REX, opcode (1–3 bytes), ModRM, SIB,
// displacement, immediate. Everything is a value type held inline.

/// The processor mode the bytes are decoded in. Only 64-bit mode (a
/// long-mode code segment with L=1) exists: a Xen PV guest kernel runs in it.
public enum CPUMode: Sendable {
    case long64
}

/// Segment registers in the order of the ModRM "Sreg" field (8C/8E), which is
/// also the order of the segment-override prefixes in the manuals' tables.
public enum SegmentRegister: UInt8, Equatable, Hashable, Sendable {
    case es = 0, cs = 1, ss = 2, ds = 3, fs = 4, gs = 5
}

/// F3 (REP/REPE) or F2 (REPNE). When both appear the last one is kept, as
/// hardware does for the mandatory-prefix and string-repeat meaning.
public enum RepeatPrefix: Equatable, Hashable, Sendable {
    case rep  // F3
    case repne  // F2
}

public struct Prefixes: Equatable, Hashable, Sendable {
    /// 0x66: operand size 16 (unless REX.W).
    public var operandSize = false
    /// 0x67: address size 32 in 64-bit mode.
    public var addressSize = false
    /// 0xF0.
    public var lock = false
    public var rep: RepeatPrefix? = nil
    /// The last of 26/2E/36/3E/64/65. In 64-bit mode only FS and GS change
    /// the address (ES/CS/SS/DS have base 0); the others are kept for
    /// completeness.
    public var segment: SegmentRegister? = nil
    /// Legacy prefix bytes seen (REX not included).
    public var count = 0

    public init() {}
}

/// REX (0x40–0x4F) in 64-bit mode: W selects 64-bit operands; R, X, B
/// extend ModRM.reg, SIB.index and ModRM.rm/SIB.base/opcode register.
public struct REX: Equatable, Hashable, Sendable {
    public var raw: UInt8
    public init(raw: UInt8) { self.raw = raw }
    public var w: Bool { raw & 8 != 0 }
    public var r: Bool { raw & 4 != 0 }
    public var x: Bool { raw & 2 != 0 }
    public var b: Bool { raw & 1 != 0 }
}

/// Which opcode table the opcode byte indexes.
public enum OpcodeMap: Equatable, Hashable, Sendable {
    case primary  // one-byte opcodes
    case secondary  // 0F xx
    case map0F38  // 0F 38 xx
    case map0F3A  // 0F 3A xx
}

public struct ModRM: Equatable, Hashable, Sendable {
    public var raw: UInt8
    public init(raw: UInt8) { self.raw = raw }
    /// 3 = register operand; 0–2 = memory with no / 8-bit / 32-bit displacement.
    public var mod: Int { Int(raw >> 6) }
    /// Register or opcode-extension field (bits 5:3), without REX.R.
    public var reg: Int { Int((raw >> 3) & 7) }
    /// Register or addressing form (bits 2:0), without REX.B.
    public var rm: Int { Int(raw & 7) }
}

public struct SIB: Equatable, Hashable, Sendable {
    public var raw: UInt8
    public init(raw: UInt8) { self.raw = raw }
    /// log2 of the scale factor.
    public var scale: Int { Int(raw >> 6) }
    /// Without REX.X.
    public var index: Int { Int((raw >> 3) & 7) }
    /// Without REX.B.
    public var base: Int { Int(raw & 7) }
}

public struct Instruction: Equatable, Hashable, Sendable {
    /// Total length in bytes, 1...15.
    public var length: Int
    /// The `length` bytes of the instruction.
    public var bytes: InstructionBytes
    public var prefixes: Prefixes
    /// The REX prefix in effect (one immediately before the opcode).
    public var rex: REX?
    public var map: OpcodeMap
    /// The opcode byte within `map` (for 0F 38 xx this is xx).
    public var opcode: UInt8
    public var modrm: ModRM?
    public var sib: SIB?
    /// Sign-extended displacement; for the moffs forms (A0–A3) the
    /// zero-extended absolute offset.
    public var displacement: Int64
    /// 0, 1, 4, or for moffs 4 or 8.
    public var displacementSize: Int
    /// The first immediate, zero-extended from `immediateSize` bytes. Relative
    /// branch targets (rel8/rel32) are immediates here too.
    public var immediate: UInt64
    /// 0, 1, 2, 4 or 8.
    public var immediateSize: Int
    /// ENTER's second immediate (the nesting level, 1 byte); otherwise 0.
    public var secondImmediate: UInt64
    public var secondImmediateSize: Int
    /// Operand size from prefixes: 8 with REX.W, else 2 with 0x66, else 4.
    /// Byte-sized opcodes ignore it; instructions that default to 64 bits
    /// (push, pop, near branches) also ignore the 4.
    public var operandSize: Int
    /// 8, or 4 with 0x67.
    public var addressSize: Int

    /// ModRM.reg extended by REX.R (0–15).
    public var reg: Int {
        (modrm?.reg ?? 0) | (rex?.r == true ? 8 : 0)
    }

    /// ModRM.rm extended by REX.B (0–15): the register operand when mod == 3.
    public var rm: Int {
        (modrm?.rm ?? 0) | (rex?.b == true ? 8 : 0)
    }

    /// The register encoded in the low 3 opcode bits (50+r, B8+r, ...) with REX.B.
    public var opcodeRegister: Int {
        Int(opcode & 7) | (rex?.b == true ? 8 : 0)
    }

    /// Whether a REX prefix is in effect (this changes AH..BH to SPL..DIL).
    public var hasREX: Bool { rex != nil }

    /// The immediate sign-extended from its size.
    public var signExtendedImmediate: Int64 {
        switch immediateSize {
        case 1: return Int64(Int8(truncatingIfNeeded: immediate))
        case 2: return Int64(Int16(truncatingIfNeeded: immediate))
        case 4: return Int64(Int32(truncatingIfNeeded: immediate))
        default: return Int64(bitPattern: immediate)
        }
    }

    /// True for a ModRM memory operand or a moffs operand.
    public var hasMemoryOperand: Bool { memoryOperand != nil }

    /// The memory operand, if the instruction has one: a ModRM with mod != 3
    /// (except MOV to/from CR/DR, whose ModRM is always a register form) or
    /// the absolute offset of A0–A3. String instructions' implicit rsi/rdi
    /// operands are not included.
    public var memoryOperand: MemoryOperand? {
        if let modrm {
            guard modrm.mod != 3, !Self.modrmIsAlwaysRegister(map: map, opcode: opcode) else { return nil }
            var m = MemoryOperand(
                base: nil, index: nil, scale: 1, displacement: displacement,
                ripRelative: false, addressSize: addressSize, segment: prefixes.segment,
                instructionLength: length)
            let rexB = rex?.b == true ? 8 : 0
            if modrm.rm == 4, let sib {
                // SIB: index 4 without REX.X means "no index" (SDM table 2-3).
                let index = sib.index | (rex?.x == true ? 8 : 0)
                if index != 4 {
                    m.index = index
                    m.scale = 1 << sib.scale
                }
                // Base 5 with mod 0 means "no base, disp32", whatever REX.B.
                if !(sib.base == 5 && modrm.mod == 0) {
                    m.base = sib.base | rexB
                }
            } else if modrm.rm == 5 && modrm.mod == 0 {
                // In 64-bit mode this form is RIP-relative (SDM 2.2.1.6).
                m.ripRelative = true
            } else {
                m.base = modrm.rm | rexB
            }
            return m
        }
        if map == .primary && (0xA0...0xA3).contains(opcode) {
            return MemoryOperand(
                base: nil, index: nil, scale: 1, displacement: displacement,
                ripRelative: false, addressSize: addressSize, segment: prefixes.segment,
                instructionLength: length)
        }
        return nil
    }

    /// MOV to/from control and debug registers ignore ModRM.mod: the operand
    /// is always a register and no SIB/displacement follows (SDM MOV—Move
    /// to/from Control Registers: "the mod field is ignored").
    static func modrmIsAlwaysRegister(map: OpcodeMap, opcode: UInt8) -> Bool {
        map == .secondary && (0x20...0x23).contains(opcode)
    }
}

/// A decoded memory operand: base + index*scale + displacement (or
/// next-rip + displacement), wrapped to the address size, plus the FS or GS
/// base when overridden.
public struct MemoryOperand: Equatable, Hashable, Sendable {
    public var base: Int?
    public var index: Int?
    /// 1, 2, 4 or 8.
    public var scale: Int
    public var displacement: Int64
    public var ripRelative: Bool
    /// 8, or 4 with an 0x67 prefix.
    public var addressSize: Int
    public var segment: SegmentRegister?
    /// RIP-relative addresses are relative to the next instruction.
    public var instructionLength: Int

    public init(
        base: Int?, index: Int?, scale: Int, displacement: Int64, ripRelative: Bool,
        addressSize: Int, segment: SegmentRegister?, instructionLength: Int
    ) {
        self.base = base
        self.index = index
        self.scale = scale
        self.displacement = displacement
        self.ripRelative = ripRelative
        self.addressSize = addressSize
        self.segment = segment
        self.instructionLength = instructionLength
    }

    /// The offset within the segment (the "effective address" proper),
    /// truncated to 32 bits under an 0x67 prefix.
    public func offset(registers: RegisterFile) -> UInt64 {
        var ea = UInt64(bitPattern: displacement)
        if ripRelative {
            ea &+= registers.rip &+ UInt64(truncatingIfNeeded: instructionLength)
        }
        if let base { ea &+= registers[base] }
        if let index { ea &+= registers[index] &* UInt64(truncatingIfNeeded: scale) }
        return addressSize == 4 ? ea & 0xffff_ffff : ea
    }

    /// The linear address: the offset plus the FS or GS base. In 64-bit mode
    /// the ES/CS/SS/DS bases are treated as 0 (SDM vol. 1, 3.4.2.1), so only
    /// FS/GS overrides matter. The base is added after the 32-bit truncation.
    public func linearAddress(registers: RegisterFile, fsBase: UInt64, gsBase: UInt64) -> UInt64 {
        offset(registers: registers) &+ segmentBase(fsBase: fsBase, gsBase: gsBase)
    }

    func segmentBase(fsBase: UInt64, gsBase: UInt64) -> UInt64 {
        switch segment {
        case .fs: return fsBase
        case .gs: return gsBase
        default: return 0
        }
    }
}

/// The linear address of `insn`'s memory operand (ModRM or moffs), or nil if
/// it has none. RIP-relative operands use `registers.rip + insn.length`, so
/// `registers.rip` must be the address of `insn` itself.
public func effectiveAddress(
    _ insn: Instruction, registers: RegisterFile, fsBase: UInt64 = 0, gsBase: UInt64 = 0
) -> UInt64? {
    insn.memoryOperand?.linearAddress(registers: registers, fsBase: fsBase, gsBase: gsBase)
}
