// Emulation of one instruction whose destination is memory, for the
// "writable pagetables" path: a guest kernel write faults on a read-only
// page-table page, and the VMM computes what the instruction would have
// stored, validates it, stores it and advances rip (PV-NOTES 4).
//
// The emulator computes; it does not touch guest memory. It reads the old
// destination through the caller's closure (which can fail) and returns the
// address, size and new value. Registers and flags are updated as the
// instruction would, on the caller's `inout` copy, only when emulation
// succeeds.

/// What the instruction would do to memory.
public enum MemoryWrite: Equatable, Hashable, Sendable {
    /// Store the low `size` bytes of the value, little-endian.
    case store(UInt64)
    /// Store 16 bytes (CMPXCHG16B).
    case store128(low: UInt64, high: UInt64)
    /// Nothing to store: a CMPXCHG whose comparison failed. (Hardware
    /// writes the old value back; storing nothing is equivalent.)
    case none
}

/// The instruction that was emulated.
public enum WriteOperation: Equatable, Hashable, Sendable {
    case mov  // 88, 89, C6 /0, C7 /0, A2, A3
    case movnti  // 0F C3
    case stos  // AA, AB without REP
    case xchg  // 86, 87
    case cmpxchg  // 0F B0, 0F B1
    case cmpxchg8b  // 0F C7 /1
    case cmpxchg16b  // REX.W 0F C7 /1
    case xadd  // 0F C0, 0F C1
    case alu(ALUOperation)  // 00–31 r/m,r forms; 80, 81, 83 groups (never .cmp)
    case inc, dec  // FE/FF /0, /1
    case not, neg  // F6/F7 /2, /3
    case bts, btr, btc  // 0F AB, B3, BB; 0F BA /5, /6, /7
}

public struct WriteResult: Equatable, Hashable, Sendable {
    public var operation: WriteOperation
    /// Linear address of the destination (after FS/GS base and any bit-offset
    /// adjustment for BTS/BTR/BTC with a register offset).
    public var address: UInt64
    /// 1, 2, 4, 8, or 16 for CMPXCHG16B.
    public var size: Int
    public var write: MemoryWrite
    /// The destination's value the result was computed from, as read through
    /// the closure (low 8 bytes for CMPXCHG16B); nil for pure stores (MOV,
    /// MOVNTI, STOS), which do not read it. A caller racing other vCPUs
    /// should store with compare-and-swap against this value and, if that
    /// fails, emulate again from the original registers.
    public var oldValue: UInt64?
    /// Bytes 8–15 read by CMPXCHG16B; 0 otherwise.
    public var oldValueHigh: UInt64
    /// LOCK prefix present, or implicitly locked (XCHG with memory).
    public var isLocked: Bool

    public init(
        operation: WriteOperation, address: UInt64, size: Int, write: MemoryWrite,
        oldValue: UInt64?, oldValueHigh: UInt64 = 0, isLocked: Bool
    ) {
        self.operation = operation
        self.address = address
        self.size = size
        self.write = write
        self.oldValue = oldValue
        self.oldValueHigh = oldValueHigh
        self.isLocked = isLocked
    }

    /// The new value if there is a store of at most 8 bytes.
    public var newValue: UInt64? {
        if case .store(let v) = write { return v }
        return nil
    }

    /// For a store that lies wholly inside the 8 bytes at `quadwordAddress`
    /// (a page-table entry, which must be 8-aligned), the entry's value
    /// after the store, given `old`, its value before. nil when there is no
    /// store, or the store is 16 bytes or reaches outside those 8 bytes.
    public func applied(to old: UInt64, at quadwordAddress: UInt64) -> UInt64? {
        guard case .store(let v) = write, size >= 1, size <= 8 else { return nil }
        let offset = address &- quadwordAddress
        guard offset < 8, UInt64(size) <= 8 - offset else { return nil }
        let shift = offset * 8
        let m = sizeMask(size) << shift
        return (old & ~m) | ((v << shift) & m)
    }
}

/// Emulates `insn` (decoded at `registers.rip`) if its destination is a
/// memory operand and it is one of the instructions listed in
/// `WriteOperation`. `oldValue(address, size)` must return the `size` bytes
/// at the linear `address`, zero-extended, or nil if they cannot be read.
///
/// Returns nil, leaving `registers` untouched, for: register destinations,
/// other instructions, LOCK where the instruction forbids it (#UD in
/// hardware), REP STOS, a misaligned CMPXCHG16B (#GP in hardware), or a
/// failed read. On success `registers` holds the registers and flags after
/// the instruction, including rip advanced past it. Emulate on a copy if the
/// store might still be refused.
public func emulateMemoryWrite(
    _ insn: Instruction, registers: inout RegisterFile, fsBase: UInt64 = 0, gsBase: UInt64 = 0,
    oldValue: (_ address: UInt64, _ size: Int) -> UInt64?
) -> WriteResult? {
    var regs = registers
    // Keep only the bytes asked for, whatever the closure returns.
    func read(_ address: UInt64, _ size: Int) -> UInt64? {
        oldValue(address, size).map { $0 & sizeMask(size) }
    }
    guard let result = emulate(insn, &regs, fsBase: fsBase, gsBase: gsBase, read: read) else {
        return nil
    }
    regs.rip &+= UInt64(insn.length)
    registers = regs
    return result
}

private func emulate(
    _ insn: Instruction, _ regs: inout RegisterFile, fsBase: UInt64, gsBase: UInt64,
    read: (UInt64, Int) -> UInt64?
) -> WriteResult? {
    let lock = insn.prefixes.lock
    let rex = insn.hasREX
    // The destination of every ModRM form below must be memory: a register
    // destination cannot fault on a page-table write.
    let address = insn.memoryOperand?.linearAddress(registers: regs, fsBase: fsBase, gsBase: gsBase)
    // Odd opcodes in these pairs are the full-size forms; even ones are bytes.
    let wideSize = insn.operandSize
    let reg = insn.reg
    let modrmReg = insn.modrm?.reg ?? 0

    switch insn.map {
    case .primary:
        switch insn.opcode {
        case 0x88, 0x89:  // MOV Eb,Gb / Ev,Gv
            guard !lock, let address else { return nil }
            let size = insn.opcode == 0x88 ? 1 : wideSize
            let value = regs.read(reg, size: size, hasREX: rex)
            return plainStore(.mov, address: address, size: size, value: value)

        case 0xC6, 0xC7:  // group 11 /0: MOV Eb,Ib / Ev,Iz (Iz sign-extended under REX.W)
            guard !lock, modrmReg == 0, let address else { return nil }
            let size = insn.opcode == 0xC6 ? 1 : wideSize
            let value = UInt64(bitPattern: insn.signExtendedImmediate) & sizeMask(size)
            return plainStore(.mov, address: address, size: size, value: value)

        case 0xA2, 0xA3:  // MOV moffs,AL / moffs,rAX
            guard !lock, let address else { return nil }
            let size = insn.opcode == 0xA2 ? 1 : wideSize
            let value = regs.read(GPR.rax, size: size, hasREX: rex)
            return plainStore(.mov, address: address, size: size, value: value)

        case 0xAA, 0xAB:  // STOS m8 / m16/32/64 at [rdi]; ES cannot be overridden
            guard !lock, insn.prefixes.rep == nil else { return nil }
            let size = insn.opcode == 0xAA ? 1 : wideSize
            let value = regs.read(GPR.rax, size: size, hasREX: rex)
            let down = regs.rflags & RFLAGS.direction != 0
            let target: UInt64
            if insn.addressSize == 4 {
                // 32-bit address size uses and updates EDI (a 32-bit write,
                // so bits 63:32 of rdi become zero).
                let edi = regs.read32(GPR.rdi)
                target = UInt64(edi)
                regs.write32(GPR.rdi, down ? edi &- UInt32(size) : edi &+ UInt32(size))
            } else {
                target = regs.rdi
                regs.rdi = down ? regs.rdi &- UInt64(size) : regs.rdi &+ UInt64(size)
            }
            return plainStore(.stos, address: target, size: size, value: value)

        case 0x86, 0x87:  // XCHG Eb,Gb / Ev,Gv: locked whether or not LOCK is present
            guard let address else { return nil }
            let size = insn.opcode == 0x86 ? 1 : wideSize
            guard let old = read(address, size) else { return nil }
            let value = regs.read(reg, size: size, hasREX: rex)
            regs.write(reg, size: size, old, hasREX: rex)
            return WriteResult(
                operation: .xchg, address: address, size: size, write: .store(value), oldValue: old,
                isLocked: true)

        case 0x00, 0x01, 0x08, 0x09, 0x10, 0x11, 0x18, 0x19, 0x20, 0x21, 0x28, 0x29, 0x30, 0x31:
            // ADD OR ADC SBB AND SUB XOR Eb,Gb / Ev,Gv (CMP, 38/39, does not write)
            guard let address, let op = ALUOperation(rawValue: Int(insn.opcode >> 3)) else { return nil }
            let size = insn.opcode & 1 == 0 ? 1 : wideSize
            let source = regs.read(reg, size: size, hasREX: rex)
            return aluWrite(op, address: address, size: size, source: source, lock: lock, &regs, read: read)

        case 0x80, 0x81, 0x83:  // group 1 Eb,Ib / Ev,Iz / Ev,Ib (sign-extended)
            guard let address, let op = ALUOperation(rawValue: modrmReg), op != .cmp else { return nil }
            let size = insn.opcode == 0x80 ? 1 : wideSize
            let source = UInt64(bitPattern: insn.signExtendedImmediate) & sizeMask(size)
            return aluWrite(op, address: address, size: size, source: source, lock: lock, &regs, read: read)

        case 0xF6, 0xF7:  // group 3: /2 NOT, /3 NEG (TEST/MUL/DIV do not write memory)
            guard let address, modrmReg == 2 || modrmReg == 3 else { return nil }
            let size = insn.opcode == 0xF6 ? 1 : wideSize
            guard let old = read(address, size) else { return nil }
            if modrmReg == 2 {
                // NOT affects no flags.
                return WriteResult(
                    operation: .not, address: address, size: size, write: .store(~old & sizeMask(size)),
                    oldValue: old, isLocked: lock)
            }
            // NEG: 0 - x; CF is set unless x was 0.
            let r = subtractWithBorrow(0, old, borrowIn: false, size: size)
            r.apply(to: &regs.rflags, size: size)
            return WriteResult(
                operation: .neg, address: address, size: size, write: .store(r.value), oldValue: old,
                isLocked: lock)

        case 0xFE, 0xFF:  // groups 4/5: /0 INC, /1 DEC; CF is preserved
            guard let address, modrmReg <= 1 else { return nil }
            let size = insn.opcode == 0xFE ? 1 : wideSize
            guard let old = read(address, size) else { return nil }
            let r = modrmReg == 0
                ? addWithCarry(old, 1, carryIn: false, size: size)
                : subtractWithBorrow(old, 1, borrowIn: false, size: size)
            r.apply(to: &regs.rflags, size: size, keepCarry: true)
            return WriteResult(
                operation: modrmReg == 0 ? .inc : .dec, address: address, size: size,
                write: .store(r.value), oldValue: old, isLocked: lock)

        default:
            return nil
        }

    case .secondary:
        switch insn.opcode {
        case 0xB0, 0xB1:  // CMPXCHG Eb,Gb / Ev,Gv
            guard let address else { return nil }
            let size = insn.opcode == 0xB0 ? 1 : wideSize
            guard let old = read(address, size) else { return nil }
            let accumulator = regs.read(GPR.rax, size: size, hasREX: rex)
            // Flags as CMP accumulator, destination.
            subtractWithBorrow(accumulator, old, borrowIn: false, size: size).apply(to: &regs.rflags, size: size)
            if accumulator == old {
                let value = regs.read(reg, size: size, hasREX: rex)
                return WriteResult(
                operation: .cmpxchg, address: address, size: size, write: .store(value), oldValue: old,
                isLocked: lock)
            }
            // Mismatch: the accumulator is loaded (a 32-bit load zero-extends
            // rax; on a match rax is left untouched).
            regs.write(GPR.rax, size: size, old, hasREX: rex)
            return WriteResult(
                operation: .cmpxchg, address: address, size: size, write: .none, oldValue: old,
                isLocked: lock)

        case 0xC7:  // group 9 /1: CMPXCHG8B m64 / CMPXCHG16B m128 (REX.W)
            guard let address, modrmReg == 1 else { return nil }
            if insn.rex?.w == true {
                // CMPXCHG16B requires a 16-byte-aligned operand (#GP otherwise).
                guard address & 15 == 0,
                    let oldLow = read(address, 8), let oldHigh = read(address &+ 8, 8)
                else { return nil }
                if oldLow == regs.rax && oldHigh == regs.rdx {
                    regs.rflags |= RFLAGS.zero
                    return WriteResult(
                        operation: .cmpxchg16b, address: address, size: 16,
                        write: .store128(low: regs.rbx, high: regs.rcx),
                        oldValue: oldLow, oldValueHigh: oldHigh, isLocked: lock)
                }
                regs.rflags &= ~RFLAGS.zero
                regs.rax = oldLow
                regs.rdx = oldHigh
                return WriteResult(
                    operation: .cmpxchg16b, address: address, size: 16, write: .none,
                    oldValue: oldLow, oldValueHigh: oldHigh, isLocked: lock)
            }
            guard let old = read(address, 8) else { return nil }
            let expected = UInt64(regs.read32(GPR.rdx)) << 32 | UInt64(regs.read32(GPR.rax))
            if old == expected {
                regs.rflags |= RFLAGS.zero
                let value = UInt64(regs.read32(GPR.rcx)) << 32 | UInt64(regs.read32(GPR.rbx))
                return WriteResult(
                operation: .cmpxchg8b, address: address, size: 8, write: .store(value), oldValue: old,
                isLocked: lock)
            }
            // Only ZF changes; EDX:EAX are 32-bit writes, so they zero-extend.
            regs.rflags &= ~RFLAGS.zero
            regs.write32(GPR.rax, UInt32(truncatingIfNeeded: old))
            regs.write32(GPR.rdx, UInt32(truncatingIfNeeded: old >> 32))
            return WriteResult(
                operation: .cmpxchg8b, address: address, size: 8, write: .none, oldValue: old,
                isLocked: lock)

        case 0xC0, 0xC1:  // XADD Eb,Gb / Ev,Gv
            guard let address else { return nil }
            let size = insn.opcode == 0xC0 ? 1 : wideSize
            guard let old = read(address, size) else { return nil }
            let source = regs.read(reg, size: size, hasREX: rex)
            let r = addWithCarry(old, source, carryIn: false, size: size)
            r.apply(to: &regs.rflags, size: size)
            regs.write(reg, size: size, old, hasREX: rex)
            return WriteResult(
                operation: .xadd, address: address, size: size, write: .store(r.value), oldValue: old,
                isLocked: lock)

        case 0xAB, 0xB3, 0xBB:  // BTS/BTR/BTC Ev,Gv
            guard let memory = insn.memoryOperand else { return nil }
            let size = wideSize
            let bits = Int64(size * 8)
            // The bit offset is a signed operand-size integer that may address
            // memory outside the operand (SDM BT: "bit string"): the operand
            // actually touched is `size` bytes at EA + size * floor(offset / bits).
            let offset = signExtend(regs.read(reg, size: size, hasREX: rex), size: size)
            let wordIndex = offset >> Int64(bits.trailingZeroBitCount)  // arithmetic shift: floors
            var ea = memory.offset(registers: regs) &+ UInt64(bitPattern: wordIndex &* Int64(size))
            if memory.addressSize == 4 { ea &= 0xffff_ffff }
            let address = ea &+ memory.segmentBase(fsBase: fsBase, gsBase: gsBase)
            let bit = Int(offset & (bits - 1))
            let op: WriteOperation = insn.opcode == 0xAB ? .bts : (insn.opcode == 0xB3 ? .btr : .btc)
            return bitWrite(op, address: address, size: size, bit: bit, lock: lock, &regs, read: read)

        case 0xBA:  // group 8 Ev,Ib: /5 BTS, /6 BTR, /7 BTC (/4 BT only reads)
            guard let address, modrmReg >= 5 else { return nil }
            let size = wideSize
            // The immediate is taken modulo the operand width; it never
            // reaches outside the operand.
            let bit = Int(truncatingIfNeeded: insn.immediate) & (size * 8 - 1)
            let op: WriteOperation = modrmReg == 5 ? .bts : (modrmReg == 6 ? .btr : .btc)
            return bitWrite(op, address: address, size: size, bit: bit, lock: lock, &regs, read: read)

        case 0xC3:  // MOVNTI My,Gy: 32 or 64 bits; no 66/F2/F3 form exists
            guard !lock, !insn.prefixes.operandSize, insn.prefixes.rep == nil, let address else { return nil }
            let size = insn.rex?.w == true ? 8 : 4
            let value = regs.read(reg, size: size, hasREX: rex)
            return plainStore(.movnti, address: address, size: size, value: value)

        default:
            return nil
        }

    case .map0F38, .map0F3A:
        return nil
    }
}

/// MOV, MOVNTI, STOS: a store that does not read the destination.
private func plainStore(_ op: WriteOperation, address: UInt64, size: Int, value: UInt64) -> WriteResult {
    WriteResult(operation: op, address: address, size: size, write: .store(value), oldValue: nil, isLocked: false)
}

/// Read-modify-write ALU operation on memory; updates the flags.
private func aluWrite(
    _ op: ALUOperation, address: UInt64, size: Int, source: UInt64, lock: Bool,
    _ regs: inout RegisterFile, read: (UInt64, Int) -> UInt64?
) -> WriteResult? {
    guard let old = read(address, size) else { return nil }
    let r = alu(op, old, source, size: size, carryIn: regs.rflags & RFLAGS.carry != 0)
    r.apply(to: &regs.rflags, size: size)
    return WriteResult(
                operation: .alu(op), address: address, size: size, write: .store(r.value), oldValue: old,
                isLocked: lock)
}

/// BTS/BTR/BTC: CF gets the old bit. ZF is unaffected; OF, SF, AF and PF are
/// undefined, and we leave them unchanged.
private func bitWrite(
    _ op: WriteOperation, address: UInt64, size: Int, bit: Int, lock: Bool,
    _ regs: inout RegisterFile, read: (UInt64, Int) -> UInt64?
) -> WriteResult? {
    guard let old = read(address, size) else { return nil }
    let mask = UInt64(1) << UInt64(bit & 63)
    if old & mask != 0 {
        regs.rflags |= RFLAGS.carry
    } else {
        regs.rflags &= ~RFLAGS.carry
    }
    let value: UInt64
    switch op {
    case .bts: value = old | mask
    case .btr: value = old & ~mask
    default: value = old ^ mask
    }
    return WriteResult(
                operation: op, address: address, size: size, write: .store(value & sizeMask(size)), oldValue: old,
                isLocked: lock)
}
