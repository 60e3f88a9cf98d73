/// The AML terms control methods need (ACPI 6.4 §20.2.5): methods and their
/// arguments and locals, control flow, stores and arithmetic on integers,
/// Notify, mutexes, and operation regions with their fields. Enough for the
/// CPU hotplug methods of the DSDT (`DSDT.cpuHotplug`), no more.
///
/// Like the rest of `AML`, each function returns a term's complete
/// encoding; operands are themselves encoded terms.
extension AML {
    /// Opcodes of this part of the grammar (§20.2.5.2 to §20.2.5.4).
    enum MethodOpcode {
        static let nullName: UInt8 = 0x00           // an omitted Target
        static let string: UInt8 = 0x0D             // StringPrefix
        static let method: UInt8 = 0x14
        static let local0: UInt8 = 0x60
        static let arg0: UInt8 = 0x68
        static let store: UInt8 = 0x70
        static let increment: UInt8 = 0x75
        static let and: UInt8 = 0x7B
        static let notify: UInt8 = 0x86
        static let index: UInt8 = 0x88
        static let logicalEqual: UInt8 = 0x93
        static let logicalLess: UInt8 = 0x95
        static let `if`: UInt8 = 0xA0
        static let `while`: UInt8 = 0xA2
        static let `return`: UInt8 = 0xA4
        // After extendedPrefix (0x5B):
        static let mutex: UInt8 = 0x01
        static let acquire: UInt8 = 0x23
        static let release: UInt8 = 0x27
        static let operationRegion: UInt8 = 0x80
        static let field: UInt8 = 0x81
    }

    // MARK: Strings, arguments, locals

    /// A String constant: StringPrefix, ASCII characters, NUL. `_HID`s such
    /// as "ACPI0007" have no EISA ID form and are strings.
    static func string(_ text: String) -> [UInt8] {
        let chars = Array(text.utf8)
        precondition(chars.allSatisfy { $0 >= 0x01 && $0 <= 0x7F }, "AML: string '\(text)' is not ASCII without NUL")
        return [MethodOpcode.string] + chars + [0]
    }

    /// `Local0`...`Local7`.
    static func local(_ n: Int) -> [UInt8] {
        precondition((0...7).contains(n), "AML: Local\(n) does not exist")
        return [MethodOpcode.local0 + UInt8(n)]
    }

    /// `Arg0`...`Arg6`.
    static func arg(_ n: Int) -> [UInt8] {
        precondition((0...6).contains(n), "AML: Arg\(n) does not exist")
        return [MethodOpcode.arg0 + UInt8(n)]
    }

    // MARK: Methods and calls

    /// `Method(name, argumentCount, Serialized/NotSerialized) { terms }`:
    /// MethodOp PkgLength NameString MethodFlags TermList. MethodFlags:
    /// bits 2:0 the argument count, bit 3 Serialized, bits 7:4 SyncLevel (0).
    static func method(_ name: String, arguments: Int = 0, serialized: Bool = false, _ terms: [[UInt8]]) -> [UInt8] {
        precondition((0...7).contains(arguments), "AML: a method takes at most 7 arguments")
        let flags = UInt8(arguments) | (serialized ? 1 << 3 : 0)
        return [MethodOpcode.method] + withPackageLength(nameString(name) + [flags] + terms.joined())
    }

    /// A method invocation: its name, then exactly as many arguments as
    /// the method declares (the interpreter knows the count from the
    /// namespace, so nothing else delimits them).
    static func call(_ name: String, _ arguments: [[UInt8]] = []) -> [UInt8] {
        nameString(name) + arguments.joined()
    }

    /// `Return(value)`.
    static func `return`(_ value: [UInt8]) -> [UInt8] {
        [MethodOpcode.return] + value
    }

    // MARK: Control flow

    /// `If(predicate) { terms }`: IfOp PkgLength Predicate TermList.
    static func `if`(_ predicate: [UInt8], _ terms: [[UInt8]]) -> [UInt8] {
        [MethodOpcode.if] + withPackageLength(predicate + terms.joined())
    }

    /// `While(predicate) { terms }`: WhileOp PkgLength Predicate TermList.
    static func `while`(_ predicate: [UInt8], _ terms: [[UInt8]]) -> [UInt8] {
        [MethodOpcode.while] + withPackageLength(predicate + terms.joined())
    }

    // MARK: Expressions

    /// `Store(source, target)`, ASL's `target = source`.
    static func store(_ source: [UInt8], into target: [UInt8]) -> [UInt8] {
        [MethodOpcode.store] + source + target
    }

    /// `Increment(target)`, ASL's `target++`.
    static func increment(_ target: [UInt8]) -> [UInt8] {
        [MethodOpcode.increment] + target
    }

    /// `And(a, b)` with no target: its value is the result.
    static func and(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        [MethodOpcode.and] + a + b + [MethodOpcode.nullName]
    }

    /// `LEqual(a, b)`, ASL's `a == b`.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        [MethodOpcode.logicalEqual] + a + b
    }

    /// `LLess(a, b)`, ASL's `a < b`.
    static func less(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        [MethodOpcode.logicalLess] + a + b
    }

    /// `Index(source, index)` with no target: a reference to one element
    /// of a Buffer or Package, which `store(_:into:)` can write through.
    static func index(_ source: [UInt8], _ index: [UInt8]) -> [UInt8] {
        [MethodOpcode.index] + source + index + [MethodOpcode.nullName]
    }

    /// `Notify(object, value)`: queues a notification for the OS (§5.6.6;
    /// 1 device check, 3 eject request).
    static func notify(_ object: String, _ value: [UInt8]) -> [UInt8] {
        [MethodOpcode.notify] + nameString(object) + value
    }

    // MARK: Mutexes

    /// `Mutex(name, 0)`: ExtOpPrefix MutexOp NameString SyncFlags.
    static func mutex(_ name: String) -> [UInt8] {
        [Opcode.extendedPrefix, MethodOpcode.mutex] + nameString(name) + [0]
    }

    /// `Acquire(mutex, 0xFFFF)`: wait for ever. The timeout is a raw
    /// WordData, not an integer term.
    static func acquire(_ name: String) -> [UInt8] {
        [Opcode.extendedPrefix, MethodOpcode.acquire] + nameString(name) + [0xFF, 0xFF]
    }

    /// `Release(mutex)`.
    static func release(_ name: String) -> [UInt8] {
        [Opcode.extendedPrefix, MethodOpcode.release] + nameString(name)
    }

    // MARK: Operation regions

    /// Region spaces (Table 19.26).
    enum RegionSpace: UInt8 {
        case systemMemory = 0, systemIO = 1
    }

    /// `OperationRegion(name, space, offset, length)`.
    static func operationRegion(_ name: String, space: RegionSpace, offset: UInt64, length: UInt64) -> [UInt8] {
        [Opcode.extendedPrefix, MethodOpcode.operationRegion] + nameString(name) + [space.rawValue]
            + integer(offset) + integer(length)
    }

    /// FieldFlags (§19.6.48): AccessType bits 3:0, LockRule bit 4,
    /// UpdateRule bits 6:5.
    enum FieldAccess: UInt8 {
        case any = 0, byte = 1, word = 2, dword = 3
    }

    /// One entry of a Field's list: a named field of `bits` bits, or
    /// `bits` reserved (skipped) bits.
    enum FieldUnit {
        case named(String, bits: Int)
        case reserved(bits: Int)
    }

    /// `Field(region, access, NoLock, WriteAsZeros) { units }`. Write as
    /// zeros: a write to one bit of a register writes zeros to the other
    /// bits of the access instead of reading them back first, so writing a
    /// write-1-to-act bit does not also write back every other bit that
    /// reads 1 (Preserve would).
    static func field(_ region: String, access: FieldAccess, _ units: [FieldUnit]) -> [UInt8] {
        let writeAsZeros: UInt8 = 2 << 5
        var list: [UInt8] = []
        for unit in units {
            switch unit {
            case .named(let name, let bits):
                let segment = nameString(name)
                precondition(segment.count == 4, "AML: a field name is one NameSeg, not '\(name)'")
                list += segment + encodedLength(bits)
            case .reserved(let bits):
                list += [0x00] + encodedLength(bits)
            }
        }
        return [Opcode.extendedPrefix, MethodOpcode.field]
            + withPackageLength(nameString(region) + [access.rawValue | writeAsZeros] + list)
    }

    /// A field's bit length, in PkgLength's encoding but counting only the
    /// bits: unlike a package's, it does not include its own bytes.
    static func encodedLength(_ value: Int) -> [UInt8] {
        precondition(value >= 0 && value <= maximumPackageLength, "AML: length \(value) out of range")
        if value <= 0x3F { return [UInt8(value)] }
        let following = value < 1 << 12 ? 1 : value < 1 << 20 ? 2 : 3
        var bytes = [UInt8(following << 6) | UInt8(value & 0x0F)]
        for i in 0..<following { bytes.append(UInt8(truncatingIfNeeded: value >> (4 + 8 * i))) }
        return bytes
    }
}
