// Integer arithmetic with x86 status flags (SDM vol. 1, 3.4.3.1 and the
// per-instruction "Flags Affected" sections), for 1, 2, 4 and 8-byte operands.

/// All-ones in the low `size` bytes.
@inline(__always)
func sizeMask(_ size: Int) -> UInt64 {
    // Int shift counts are "smart": any count stays defined, so nothing traps.
    size >= 8 ? ~0 : (UInt64(1) << (8 * max(size, 0))) &- 1
}

@inline(__always)
func signBit(_ size: Int) -> UInt64 {
    UInt64(1) << UInt64(8 * min(max(size, 1), 8) - 1)
}

/// Sign-extends the low `size` bytes of `value` to 64 bits.
@inline(__always)
func signExtend(_ value: UInt64, size: Int) -> Int64 {
    switch size {
    case 1: return Int64(Int8(truncatingIfNeeded: value))
    case 2: return Int64(Int16(truncatingIfNeeded: value))
    case 4: return Int64(Int32(truncatingIfNeeded: value))
    default: return Int64(bitPattern: value)
    }
}

/// The binary ALU operations of opcodes 00–3F and group 1 (80/81/83), in
/// their encoding order (opcode bits 5:3, or ModRM.reg for group 1).
public enum ALUOperation: Int, Equatable, Hashable, Sendable {
    case add = 0, or, adc, sbb, and, sub, xor, cmp
}

/// The result and the six status flags of one operation.
struct FlagResult {
    var value: UInt64
    var carry: Bool
    var overflow: Bool
    var auxiliary: Bool

    /// Replaces CF/PF/AF/ZF/SF/OF in `rflags`; ZF, SF and PF come from `value`.
    /// `keepCarry` leaves CF as it was (INC/DEC).
    func apply(to rflags: inout UInt64, size: Int, keepCarry: Bool = false) {
        var f = rflags & ~(RFLAGS.arithmetic & ~(keepCarry ? RFLAGS.carry : 0))
        let v = value & sizeMask(size)
        if carry && !keepCarry { f |= RFLAGS.carry }
        if overflow { f |= RFLAGS.overflow }
        if auxiliary { f |= RFLAGS.auxiliaryCarry }
        if v == 0 { f |= RFLAGS.zero }
        if v & signBit(size) != 0 { f |= RFLAGS.sign }
        // PF reflects only the low byte: set when it has an even number of 1s.
        if (v & 0xff).nonzeroBitCount & 1 == 0 { f |= RFLAGS.parity }
        rflags = f
    }
}

/// a + b + carryIn in `size` bytes.
func addWithCarry(_ a: UInt64, _ b: UInt64, carryIn: Bool, size: Int) -> FlagResult {
    let m = sizeMask(size)
    let a = a & m, b = b & m, c: UInt64 = carryIn ? 1 : 0
    let r: UInt64
    let cf: Bool
    if size >= 8 {
        let (s1, o1) = a.addingReportingOverflow(b)
        let (s2, o2) = s1.addingReportingOverflow(c)
        r = s2
        cf = o1 || o2
    } else {
        let s = a + b + c  // at most 2^33: no overflow in 64 bits
        r = s & m
        cf = s > m
    }
    // Signed overflow: both inputs differ in sign from the result.
    let of = (a ^ r) & (b ^ r) & signBit(size) != 0
    let af = (a ^ b ^ r) & 0x10 != 0
    return FlagResult(value: r, carry: cf, overflow: of, auxiliary: af)
}

/// a - b - borrowIn in `size` bytes; CF is the borrow.
func subtractWithBorrow(_ a: UInt64, _ b: UInt64, borrowIn: Bool, size: Int) -> FlagResult {
    let m = sizeMask(size)
    let a = a & m, b = b & m, c: UInt64 = borrowIn ? 1 : 0
    let r = (a &- b &- c) & m
    let cf: Bool
    if size >= 8 {
        let (d1, o1) = a.subtractingReportingOverflow(b)
        let (_, o2) = d1.subtractingReportingOverflow(c)
        cf = o1 || o2
    } else {
        cf = a < b + c
    }
    // Signed overflow: operands differ in sign and the result's sign differs from a's.
    let of = (a ^ b) & (a ^ r) & signBit(size) != 0
    let af = (a ^ b ^ r) & 0x10 != 0
    return FlagResult(value: r, carry: cf, overflow: of, auxiliary: af)
}

/// One ALU operation with the flags it defines. The logical ones clear CF and
/// OF; their AF is undefined, and we clear it.
func alu(_ op: ALUOperation, _ a: UInt64, _ b: UInt64, size: Int, carryIn: Bool) -> FlagResult {
    let m = sizeMask(size)
    switch op {
    case .add: return addWithCarry(a, b, carryIn: false, size: size)
    case .adc: return addWithCarry(a, b, carryIn: carryIn, size: size)
    case .sub, .cmp: return subtractWithBorrow(a, b, borrowIn: false, size: size)
    case .sbb: return subtractWithBorrow(a, b, borrowIn: carryIn, size: size)
    case .or: return FlagResult(value: (a | b) & m, carry: false, overflow: false, auxiliary: false)
    case .and: return FlagResult(value: (a & b) & m, carry: false, overflow: false, auxiliary: false)
    case .xor: return FlagResult(value: (a ^ b) & m, carry: false, overflow: false, auxiliary: false)
    }
}
