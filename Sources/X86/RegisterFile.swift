// The general-purpose register state the emulator reads and writes.
//
// Register numbers follow the x86 encoding (ModRM.reg / ModRM.rm / SIB fields
// extended by REX.R / REX.B / REX.X), not KVM's `struct kvm_regs` order, so a
// decoded field indexes the file directly:
//   0 rax, 1 rcx, 2 rdx, 3 rbx, 4 rsp, 5 rbp, 6 rsi, 7 rdi, 8–15 r8–r15.

/// RFLAGS bit masks (Intel SDM vol. 1, 3.4.3).
public enum RFLAGS {
    public static let carry: UInt64 = 1 << 0  // CF
    public static let fixed1: UInt64 = 1 << 1  // always 1 in hardware
    public static let parity: UInt64 = 1 << 2  // PF
    public static let auxiliaryCarry: UInt64 = 1 << 4  // AF
    public static let zero: UInt64 = 1 << 6  // ZF
    public static let sign: UInt64 = 1 << 7  // SF
    public static let trap: UInt64 = 1 << 8  // TF
    public static let interrupt: UInt64 = 1 << 9  // IF
    public static let direction: UInt64 = 1 << 10  // DF
    public static let overflow: UInt64 = 1 << 11  // OF
    public static let iopl: UInt64 = 3 << 12
    public static let nestedTask: UInt64 = 1 << 14
    public static let resume: UInt64 = 1 << 16
    public static let virtual8086: UInt64 = 1 << 17
    public static let alignmentCheck: UInt64 = 1 << 18
    public static let virtualInterrupt: UInt64 = 1 << 19
    public static let virtualInterruptPending: UInt64 = 1 << 20
    public static let id: UInt64 = 1 << 21

    /// The six status flags that arithmetic instructions define.
    public static let arithmetic: UInt64 = carry | parity | auxiliaryCarry | zero | sign | overflow
}

/// Register numbers as x86 encodes them (ModRM/SIB fields with REX extension).
public enum GPR {
    public static let rax = 0, rcx = 1, rdx = 2, rbx = 3, rsp = 4, rbp = 5, rsi = 6, rdi = 7
    public static let r8 = 8, r9 = 9, r10 = 10, r11 = 11, r12 = 12, r13 = 13, r14 = 14, r15 = 15
}

public struct RegisterFile: Equatable, Hashable, Sendable {
    public var rax: UInt64 = 0
    public var rcx: UInt64 = 0
    public var rdx: UInt64 = 0
    public var rbx: UInt64 = 0
    public var rsp: UInt64 = 0
    public var rbp: UInt64 = 0
    public var rsi: UInt64 = 0
    public var rdi: UInt64 = 0
    public var r8: UInt64 = 0
    public var r9: UInt64 = 0
    public var r10: UInt64 = 0
    public var r11: UInt64 = 0
    public var r12: UInt64 = 0
    public var r13: UInt64 = 0
    public var r14: UInt64 = 0
    public var r15: UInt64 = 0
    public var rip: UInt64 = 0
    /// Bit 1 is architecturally always set.
    public var rflags: UInt64 = RFLAGS.fixed1

    public init() {}

    /// The full 64-bit register by encoding number. Only the low 4 bits of
    /// `index` are used: numbers come from decoded 4-bit fields, and masking
    /// keeps a stray value from trapping.
    public subscript(_ index: Int) -> UInt64 {
        get {
            switch index & 15 {
            case 0: return rax
            case 1: return rcx
            case 2: return rdx
            case 3: return rbx
            case 4: return rsp
            case 5: return rbp
            case 6: return rsi
            case 7: return rdi
            case 8: return r8
            case 9: return r9
            case 10: return r10
            case 11: return r11
            case 12: return r12
            case 13: return r13
            case 14: return r14
            default: return r15
            }
        }
        set {
            switch index & 15 {
            case 0: rax = newValue
            case 1: rcx = newValue
            case 2: rdx = newValue
            case 3: rbx = newValue
            case 4: rsp = newValue
            case 5: rbp = newValue
            case 6: rsi = newValue
            case 7: rdi = newValue
            case 8: r8 = newValue
            case 9: r9 = newValue
            case 10: r10 = newValue
            case 11: r11 = newValue
            case 12: r12 = newValue
            case 13: r13 = newValue
            case 14: r14 = newValue
            default: r15 = newValue
            }
        }
    }

    // MARK: Sub-registers

    /// An 8-bit register. Without any REX prefix, encodings 4–7 name AH, CH,
    /// DH, BH (bits 15:8 of rax, rcx, rdx, rbx); with a REX prefix (even 0x40)
    /// they name SPL, BPL, SIL, DIL (SDM vol. 2, 3.1.1.3, table 3-1).
    public func read8(_ index: Int, hasREX: Bool) -> UInt8 {
        let i = index & 15
        if !hasREX && (4...7).contains(i) {
            return UInt8(truncatingIfNeeded: self[i - 4] >> 8)
        }
        return UInt8(truncatingIfNeeded: self[i])
    }

    /// 8-bit writes leave the other 56 bits alone.
    public mutating func write8(_ index: Int, _ value: UInt8, hasREX: Bool) {
        let i = index & 15
        if !hasREX && (4...7).contains(i) {
            self[i - 4] = (self[i - 4] & ~0xff00) | (UInt64(value) << 8)
        } else {
            self[i] = (self[i] & ~0xff) | UInt64(value)
        }
    }

    public func read16(_ index: Int) -> UInt16 { UInt16(truncatingIfNeeded: self[index]) }

    /// 16-bit writes leave bits 63:16 alone.
    public mutating func write16(_ index: Int, _ value: UInt16) {
        self[index] = (self[index] & ~0xffff) | UInt64(value)
    }

    public func read32(_ index: Int) -> UInt32 { UInt32(truncatingIfNeeded: self[index]) }

    /// 32-bit writes zero-extend into the whole 64-bit register
    /// (SDM vol. 1, 3.4.1.1).
    public mutating func write32(_ index: Int, _ value: UInt32) {
        self[index] = UInt64(value)
    }

    public func read64(_ index: Int) -> UInt64 { self[index] }

    public mutating func write64(_ index: Int, _ value: UInt64) { self[index] = value }

    /// Reads `size` (1, 2, 4 or 8) bytes of a register, zero-extended.
    /// `hasREX` only matters for size 1 (AH..BH versus SPL..DIL).
    public func read(_ index: Int, size: Int, hasREX: Bool) -> UInt64 {
        switch size {
        case 1: return UInt64(read8(index, hasREX: hasREX))
        case 2: return UInt64(read16(index))
        case 4: return UInt64(read32(index))
        default: return self[index]
        }
    }

    /// Writes the low `size` bytes of `value` with x86 merge/zero-extend rules.
    public mutating func write(_ index: Int, size: Int, _ value: UInt64, hasREX: Bool) {
        switch size {
        case 1: write8(index, UInt8(truncatingIfNeeded: value), hasREX: hasREX)
        case 2: write16(index, UInt16(truncatingIfNeeded: value))
        case 4: write32(index, UInt32(truncatingIfNeeded: value))
        default: self[index] = value
        }
    }
}
