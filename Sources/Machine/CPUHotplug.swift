import Synchronization

/// The CPU hotplug register block: how the DSDT's processor devices learn
/// which CPUs are present and which the host wants added or removed, and
/// how the guest acknowledges and ejects (QEMU's "modern" CPU hotplug
/// interface and Cloud Hypervisor's CPU manager have the same shape). The
/// host changes what it wants with `request(enabledCount:)` and raises the
/// Generic Event Device's interrupt; the GED's `_EVT` runs the DSDT's
/// `CSCN`, which selects each CPU, Notifies the OS of pending inserts and
/// removes, and acknowledges them.
///
/// Twelve I/O ports from `base`, little-endian, any access size (an access
/// is taken byte by byte):
///
///     +0  CSEL  4 bytes, read/write: the selected CPU (its ACPI UID and
///               APIC ID). A selector of a CPU that does not exist selects
///               nothing: the status reads 0 and commands are ignored.
///     +4  read: the selected CPU's status
///               bit 0 CPEN  enabled (present: `_STA` says 0xF)
///               bit 1 CINS  insert pending (the host added it)
///               bit 2 CRMV  remove pending (the host wants it removed)
///         write: commands for the selected CPU, one bit each
///               bit 1  acknowledge the insert (clears CINS)
///               bit 2  acknowledge the remove request (clears CRMV)
///               bit 3  eject (`_EJ0`): the CPU is no longer present and
///                      its vCPU stops. The boot CPU cannot be ejected.
///     +8  4 bytes, read-only: how many CPUs there can be (`possibleCPUs`)
///
/// Everything the guest writes here is untrusted: the selector is checked
/// before it indexes anything, unknown bits and registers are ignored.
public final class CPUHotplugController: PortDevice, @unchecked Sendable {
    /// Beside `PowerControl` (0x600...0x602), out of the way of the PC's
    /// legacy ports and the PCI configuration ports.
    public static let defaultBase: UInt16 = 0x610
    public static let length: UInt16 = 12

    /// Register offsets from `base`.
    public enum Offset {
        public static let selector: UInt16 = 0
        public static let status: UInt16 = 4
        public static let count: UInt16 = 8
    }

    /// Status bits (read at `Offset.status`).
    public struct Status: OptionSet, Sendable, Equatable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let enabled = Status(rawValue: 1 << 0)
        public static let insertPending = Status(rawValue: 1 << 1)
        public static let removePending = Status(rawValue: 1 << 2)
    }

    /// Command bits (written at `Offset.status`).
    public enum Command {
        public static let acknowledgeInsert: UInt8 = 1 << 1
        public static let acknowledgeRemove: UInt8 = 1 << 2
        public static let eject: UInt8 = 1 << 3
    }

    public let ports: ClosedRange<UInt16>
    public let possibleCPUs: Int

    private struct State {
        var cpus: [Status]
        var selector: UInt32 = 0
    }
    private let state: Mutex<State>
    private let onEject: @Sendable (Int) -> Void

    /// - Parameters:
    ///   - enabledCPUs: CPUs 0..<enabledCPUs are present at boot (the MADT
    ///     marks them Enabled); the rest, up to `possibleCPUs`, are not.
    ///   - onEject: called with a CPU's index once the guest ejected it,
    ///     outside any lock of this device.
    /// - Precondition: 1 <= enabledCPUs <= possibleCPUs <= `ACPIConfig.maximumCPUs`.
    public init(base: UInt16 = defaultBase, possibleCPUs: Int, enabledCPUs: Int,
                onEject: @escaping @Sendable (Int) -> Void = { _ in }) {
        precondition((1...ACPIConfig.maximumCPUs).contains(possibleCPUs) && (1...possibleCPUs).contains(enabledCPUs),
                     "CPU hotplug: \(enabledCPUs) of \(possibleCPUs) CPUs")
        ports = base...(base + Self.length - 1)
        self.possibleCPUs = possibleCPUs
        state = Mutex(State(cpus: (0..<possibleCPUs).map { $0 < enabledCPUs ? .enabled : [] }))
        self.onEject = onEject
    }

    // MARK: Host side

    /// The host wants CPUs 0..<count present and the rest gone. New CPUs
    /// become enabled with an insert pending; enabled CPUs above `count`
    /// get a remove pending, and go away when the guest ejects them. A CPU
    /// added but not yet seen by the guest (its insert still pending) is
    /// simply withdrawn. Returns whether the guest has something to look at
    /// (the caller then raises the GED interrupt).
    /// - Precondition: `count` in 1...`possibleCPUs` (the boot CPU stays).
    public func request(enabledCount count: Int) -> Bool {
        precondition((1...possibleCPUs).contains(count), "CPU hotplug: \(count) CPUs of \(possibleCPUs)")
        return state.withLock { s in
            var event = false
            for i in 0..<possibleCPUs {
                var cpu = s.cpus[i]
                if i < count {
                    if !cpu.contains(.enabled) {
                        cpu = [.enabled, .insertPending]
                        event = true
                    } else if cpu.contains(.removePending) {
                        cpu.remove(.removePending)          // not yet seen: nothing to undo
                    }
                } else if cpu.contains(.enabled) {
                    if cpu.contains(.insertPending) {
                        cpu = []
                    } else if !cpu.contains(.removePending) {
                        cpu.insert(.removePending)
                        event = true
                    }
                }
                s.cpus[i] = cpu
            }
            return event
        }
    }

    /// Whether an insert or removal waits for the guest to acknowledge it.
    public var hasPendingEvents: Bool {
        state.withLock { $0.cpus.contains { !$0.isDisjoint(with: [.insertPending, .removePending]) } }
    }

    /// CPUs present now (enabled, whether or not the guest has onlined them).
    public var enabledCount: Int {
        state.withLock { $0.cpus.reduce(0) { $0 + ($1.contains(.enabled) ? 1 : 0) } }
    }

    /// One CPU's status, as the guest would read it after selecting it.
    public func status(cpu: Int) -> Status {
        state.withLock { s in s.cpus.indices.contains(cpu) ? s.cpus[cpu] : [] }
    }

    // MARK: Guest side

    public func read(port: UInt16, size: Int) -> UInt32 {
        guard ports.contains(port), size == 1 || size == 2 || size == 4 else { return 0xFFFF_FFFF }
        let offset = port - ports.lowerBound
        return state.withLock { s in
            var value: UInt32 = 0
            for i in 0..<size {
                value |= UInt32(Self.readByte(s, at: offset &+ UInt16(i))) << (8 * UInt32(i))
            }
            return value
        }
    }

    public func write(port: UInt16, size: Int, value: UInt32) {
        guard ports.contains(port), size == 1 || size == 2 || size == 4 else { return }
        let offset = port - ports.lowerBound
        let ejected: Int? = state.withLock { s in
            var ejected: Int?
            for i in 0..<size {
                let byte = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))
                if let cpu = Self.writeByte(&s, at: offset &+ UInt16(i), byte) { ejected = cpu }
            }
            return ejected
        }
        if let ejected { onEject(ejected) }
    }

    private static func readByte(_ s: State, at offset: UInt16) -> UInt8 {
        switch offset {
        case Offset.selector..<(Offset.selector + 4):
            return UInt8(truncatingIfNeeded: s.selector >> (8 * UInt32(offset - Offset.selector)))
        case Offset.status:
            return selected(s).map { s.cpus[$0].rawValue } ?? 0
        case Offset.count..<(Offset.count + 4):
            return UInt8(truncatingIfNeeded: UInt32(s.cpus.count) >> (8 * UInt32(offset - Offset.count)))
        default:
            return 0xFF                                     // past the block: the unassigned +5...+7, or beyond
        }
    }

    /// Applies one byte of a guest write; returns the CPU it ejected, if any.
    private static func writeByte(_ s: inout State, at offset: UInt16, _ byte: UInt8) -> Int? {
        switch offset {
        case Offset.selector..<(Offset.selector + 4):
            let shift = 8 * UInt32(offset - Offset.selector)
            s.selector = s.selector & ~(0xFF << shift) | UInt32(byte) << shift
            return nil
        case Offset.status:
            guard let cpu = selected(s) else { return nil }
            if byte & Command.acknowledgeInsert != 0 { s.cpus[cpu].remove(.insertPending) }
            if byte & Command.acknowledgeRemove != 0 { s.cpus[cpu].remove(.removePending) }
            // The boot CPU stays: Linux never ejects it, and a machine
            // without it would have nothing left to run the guest.
            if byte & Command.eject != 0, cpu != 0, s.cpus[cpu].contains(.enabled) {
                s.cpus[cpu] = []
                return cpu
            }
            return nil
        default:
            return nil
        }
    }

    /// The selected CPU's index, if the selector names one.
    private static func selected(_ s: State) -> Int? {
        s.selector < UInt32(s.cpus.count) ? Int(s.selector) : nil
    }
}

// MARK: - Saved state

/// Each CPU's status (present, insert or remove pending) and the selector.
/// Which vCPUs run is the domain's to restore; it must agree with the
/// enabled CPUs here (`status(cpu:)` after the restore says which).
extension CPUHotplugController: StatefulDevice {
    public func saveState(into writer: inout StateWriter) {
        state.withLock { s in
            writer.u32(s.selector)
            writer.block(s.cpus.map(\.rawValue))
        }
    }

    public func restoreState(from reader: inout StateReader) throws(DeviceStateError) {
        let selector = try reader.u32()
        let raw = try reader.block(limit: possibleCPUs)
        func refuse(_ what: String) -> DeviceStateError { DeviceStateError("\(reader.what): \(what)") }
        guard raw.count == possibleCPUs else { throw refuse("\(raw.count) CPUs saved, this machine has \(possibleCPUs) possible") }
        let pending: Status = [.insertPending, .removePending]
        for (cpu, byte) in raw.enumerated() {
            let status = Status(rawValue: byte)
            // What `request` and the guest's commands can leave: pending
            // events only on a present CPU, never both, boot CPU present.
            guard byte & ~(Status.enabled.rawValue | pending.rawValue) == 0,
                  status.isDisjoint(with: pending) || status.contains(.enabled),
                  !status.isSuperset(of: pending),
                  cpu != 0 || status == .enabled
            else { throw refuse("CPU \(cpu) status 0x\(String(byte, radix: 16)) cannot arise") }
        }
        state.withLock { s in
            s.selector = selector
            s.cpus = raw.map { Status(rawValue: $0) }
        }
    }
}
