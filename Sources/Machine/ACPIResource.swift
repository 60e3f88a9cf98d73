/// Resource data descriptors (ACPI 6.4 §6.4) for `_CRS` buffers: the small
/// I/O and IRQ descriptors a legacy device needs and the large address
/// space descriptors a host bridge declares its windows with.
enum ResourceDescriptor {
    /// Small resource tags: item name in bits 6:3, length in bits 2:0.
    enum SmallTag {
        static let irqNoFlags: UInt8 = 0x22         // IRQ (0x04 << 3), 2 bytes
        static let io: UInt8 = 0x47                 // I/O port (0x08 << 3), 7 bytes
        static let end: UInt8 = 0x79                // End Tag (0x0F << 3), 1 byte
    }

    /// Large resource tags: bit 7 set, then the item name.
    enum LargeTag {
        static let dwordAddressSpace: UInt8 = 0x87
        static let wordAddressSpace: UInt8 = 0x88
        static let extendedInterrupt: UInt8 = 0x89
    }

    /// Address space resource types (Table 6.44).
    enum AddressSpace: UInt8 {
        case memory = 0, io = 1, busNumber = 2
    }

    /// General flags of an address space descriptor: minimum and maximum
    /// fixed (the window is exactly this range), positive decode, and bit 0
    /// clear: the bridge produces the range for devices below it.
    static let fixedProducerWindow: UInt8 = 0b1100
    /// I/O type flags: the window passes both ISA and non-ISA ranges.
    static let ioEntireRange: UInt8 = 0b11
    /// Memory type flags: read-write, non-cacheable, address range memory.
    static let memoryReadWriteNonCacheable: UInt8 = 0b1

    /// `IO(Decode16, base, base, alignment, length)`: a device's fixed
    /// block of I/O ports (§6.4.2.5), full 16-bit address decode.
    static func io(base: UInt16, alignment: UInt8, length: UInt8) -> [UInt8] {
        var d: [UInt8] = [SmallTag.io, 0x01]                    // Decode16
        d.appendLittleEndian(base)                               // minimum base
        d.appendLittleEndian(base)                               // maximum base
        d += [alignment, length]
        return d
    }

    /// `IRQNoFlags() { irqs }`: ISA IRQs, edge-triggered, active high
    /// (§6.4.2.1); the mask has bit n for IRQ n.
    static func irqNoFlags(_ irqs: [UInt8]) -> [UInt8] {
        let mask = irqs.reduce(UInt16(0)) { mask, irq in
            precondition(irq < 16, "ACPI: ISA IRQ \(irq) out of range")
            return mask | 1 << irq
        }
        var d = [SmallTag.irqNoFlags]
        d.appendLittleEndian(mask)
        return d
    }

    /// `Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi }`
    /// (§6.4.3.6): one global system interrupt a device raises. Flags: bit 0
    /// consumer, bit 1 edge-triggered, bit 2 active low (clear), bit 3
    /// shared (clear). Edge: the VMM pulses the line, and a hardware-reduced
    /// machine has no register a guest could acknowledge a level with.
    static func edgeInterrupt(gsi: UInt32) -> [UInt8] {
        var d = [LargeTag.extendedInterrupt]
        d.appendLittleEndian(UInt16(6))                          // length of what follows
        d += [0b11, 1]                                           // consumer, edge; one interrupt
        d.appendLittleEndian(gsi)
        return d
    }

    /// `WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, ...)`.
    static func wordBusNumber(_ buses: ClosedRange<UInt16>) -> [UInt8] {
        wordAddressSpace(.busNumber, typeFlags: 0, buses)
    }

    /// `WordIO(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, ...)`.
    static func wordIO(_ ports: ClosedRange<UInt16>) -> [UInt8] {
        wordAddressSpace(.io, typeFlags: ioEntireRange, ports)
    }

    /// `DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed,
    /// NonCacheable, ReadWrite, ...)` (§6.4.3.5.2).
    static func dwordMemory(_ window: ClosedRange<UInt32>) -> [UInt8] {
        var d = [LargeTag.dwordAddressSpace]
        d.appendLittleEndian(UInt16(23))                         // length of what follows
        d += [AddressSpace.memory.rawValue, fixedProducerWindow, memoryReadWriteNonCacheable]
        for field in [0, window.lowerBound, window.upperBound, 0] as [UInt32] {   // granularity, min, max, translation
            d.appendLittleEndian(field)
        }
        d.appendLittleEndian(window.upperBound - window.lowerBound &+ 1)    // length; wraps only for all 4 GiB
        return d
    }

    /// The Word Address Space Descriptor (§6.4.3.5.3), with no translation
    /// and no resource source. With min and max fixed the length must be
    /// max - min + 1 (Table 6.45).
    private static func wordAddressSpace(_ space: AddressSpace, typeFlags: UInt8, _ range: ClosedRange<UInt16>) -> [UInt8] {
        var d = [LargeTag.wordAddressSpace]
        d.appendLittleEndian(UInt16(13))                         // length of what follows
        d += [space.rawValue, fixedProducerWindow, typeFlags]
        for field in [0, range.lowerBound, range.upperBound, 0] as [UInt16] {     // granularity, min, max, translation
            d.appendLittleEndian(field)
        }
        d.appendLittleEndian(range.upperBound - range.lowerBound &+ 1)
        return d
    }

    /// `descriptors` closed by the End Tag, whose second byte makes the
    /// whole template sum to zero (§6.4.2.9; 0 would also do: "treated as
    /// if the checksum operation succeeded").
    static func terminated(_ descriptors: [UInt8]) -> [UInt8] {
        let withTag = descriptors + [SmallTag.end]
        return withTag + [acpiChecksum(withTag)]
    }
}
