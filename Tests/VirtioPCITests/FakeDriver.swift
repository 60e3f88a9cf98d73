import Synchronization
import Virtio
@testable import VirtioPCI

/// Records the MSI-X messages a transport sends.
final class RecordingMSI: MSISignaller {
    let messages = Mutex<[(address: UInt64, data: UInt32)]>([])
    func signalMSI(address: UInt64, data: UInt32) {
        messages.withLock { $0.append((address, data)) }
    }
    var count: Int { messages.withLock { $0.count } }
    var data: [UInt32] { messages.withLock { $0.map(\.data) } }
}

/// Plays a virtio-pci driver against a transport over heap memory, through
/// the same registers a guest uses: PCI configuration space and BAR0.
final class FakeDriver {
    static let bar: UInt64 = 0xc000_0000
    static let queueSize: UInt16 = 8
    /// Queue n's rings: descriptors at area(n), driver area +0x1000, device area +0x2000.
    static func area(_ queue: Int) -> UInt64 { 0x1_0000 + UInt64(queue) * 0x4000 }
    /// Where tests put buffers.
    static let data: UInt64 = 0x8_0000

    // Offsets in BAR0.
    static let common: UInt64 = 0x0000, isr: UInt64 = 0x1000, deviceConfig: UInt64 = 0x2000
    static let notify: UInt64 = 0x3000, msixTable: UInt64 = 0x4000

    let memory: HeapGuestMemory
    let msi = RecordingMSI()
    let transport: VirtioPCITransport<HeapGuestMemory>
    private var availIndex: [UInt16] = [0, 0, 0, 0]
    private var nextDescriptor: [UInt16] = [0, 0, 0, 0]

    init(device: any VirtioDevice) {
        memory = HeapGuestMemory(size: 1 << 20)
        transport = VirtioPCITransport(device: device, memory: memory, interrupts: msi, doorbells: nil, barAddress: Self.bar)
    }

    /// The same driver carrying on against a new transport for `device`
    /// over the same memory: a restored device, before its state is put back.
    init(device: any VirtioDevice, continuing previous: FakeDriver, doorbells: (any DoorbellBinder)? = nil) {
        memory = previous.memory
        transport = VirtioPCITransport(device: device, memory: memory, interrupts: msi, doorbells: doorbells, barAddress: Self.bar)
        availIndex = previous.availIndex
        nextDescriptor = previous.nextDescriptor
    }

    // MARK: Registers

    func config(_ offset: UInt16, _ size: Int = 4) -> UInt32 { transport.configRead(offset: offset, size: size) }
    func setConfig(_ offset: UInt16, _ size: Int, _ value: UInt32) { transport.configWrite(offset: offset, size: size, value: value) }

    func read(_ offset: UInt64, _ size: Int) -> UInt64? { transport.mmioRead(address: Self.bar + offset, size: size) }
    func write(_ offset: UInt64, _ size: Int, _ value: UInt64) { _ = transport.mmioWrite(address: Self.bar + offset, size: size, value: value) }

    var status: UInt8 { UInt8(read(Self.common + 0x14, 1) ?? 0xff) }
    func setStatus(_ s: UInt8) { write(Self.common + 0x14, 1, UInt64(s)) }

    func deviceFeatures() -> UInt64 {
        write(Self.common + 0x00, 4, 0)
        let low = read(Self.common + 0x04, 4)!
        write(Self.common + 0x00, 4, 1)
        return read(Self.common + 0x04, 4)! << 32 | low
    }

    func setDriverFeatures(_ f: UInt64) {
        write(Self.common + 0x08, 4, 0)
        write(Self.common + 0x0c, 4, f & 0xffff_ffff)
        write(Self.common + 0x08, 4, 1)
        write(Self.common + 0x0c, 4, f >> 32)
    }

    /// Enables MSI-X with vector n's message data 0x40 + n, all unmasked.
    func enableMSIX(vectors: Int) {
        for n in 0..<vectors {
            let entry = Self.msixTable + UInt64(n) * 16
            write(entry, 4, 0xfee0_0000)
            write(entry + 4, 4, 0)
            write(entry + 8, 4, 0x40 + UInt64(n))
            write(entry + 12, 4, 0)
        }
        setConfig(0x86, 2, 0x8000)
    }

    /// Programs queue `q` at its fixed rings with MSI-X vector `vector` and enables it.
    func setUpQueue(_ q: Int, size: UInt16 = FakeDriver.queueSize, vector: UInt16) {
        write(Self.common + 0x16, 2, UInt64(q))
        write(Self.common + 0x18, 2, UInt64(size))
        write(Self.common + 0x1a, 2, UInt64(vector))
        write(Self.common + 0x20, 8, Self.area(q))
        write(Self.common + 0x28, 4, (Self.area(q) + 0x1000) & 0xffff_ffff)
        write(Self.common + 0x2c, 4, (Self.area(q) + 0x1000) >> 32)
        write(Self.common + 0x30, 8, Self.area(q) + 0x2000)
        write(Self.common + 0x1c, 2, 1)
    }

    /// The whole driver start-up (§3.1.1) for a device with `queues` queues;
    /// queue n gets vector n + 1, configuration changes vector 0.
    func start(queues: Int, features: UInt64 = VirtioFeature.version1) {
        setStatus(0)
        setStatus(1)
        setStatus(1 | 2)
        setDriverFeatures(features)
        setStatus(1 | 2 | 8)
        enableMSIX(vectors: queues + 1)
        write(Self.common + 0x10, 2, 0)
        for q in 0..<queues { setUpQueue(q, vector: UInt16(q + 1)) }
        setStatus(1 | 2 | 8 | 4)
    }

    // MARK: Rings

    /// Makes a chain of `buffers` available on queue `q`; returns its head.
    @discardableResult
    func submit(_ q: Int, _ buffers: [(address: UInt64, length: UInt32, writable: Bool)]) -> UInt16 {
        let size = Self.queueSize
        let head = nextDescriptor[q]
        for (i, b) in buffers.enumerated() {
            let index = (head &+ UInt16(i)) % size
            let at = Self.area(q) + UInt64(index) * 16
            let last = i == buffers.count - 1
            memory.store(b.address, at: at)
            memory.store(b.length, at: at + 8)
            memory.store(UInt16((last ? 0 : 1) | (b.writable ? 2 : 0)), at: at + 12)
            memory.store((index + 1) % size, at: at + 14)
        }
        nextDescriptor[q] = (head &+ UInt16(buffers.count)) % size
        let avail = Self.area(q) + 0x1000
        memory.store(head, at: avail + 4 + 2 * UInt64(availIndex[q] % size))
        availIndex[q] &+= 1
        memory.store(availIndex[q], at: avail + 2)
        return head
    }

    /// Sets queue `q`'s available index directly (to corrupt the ring).
    func setAvailIndex(_ q: Int, _ value: UInt16) {
        memory.store(value, at: Self.area(q) + 0x1000 + 2)
    }

    /// The used ring's index and entries so far.
    func used(_ q: Int) -> [(id: UInt32, length: UInt32)] {
        let used = Self.area(q) + 0x2000
        let index: UInt16 = memory.load(used + 2)!
        return (0..<index).map { i in
            let at = used + 4 + 8 * UInt64(i % Self.queueSize)
            return (memory.load(at)!, memory.load(at + 4)!)
        }
    }

    /// Rings queue `q`'s doorbell and lets the device work (as its thread would).
    func kick(_ q: Int) {
        write(Self.notify + 4 * UInt64(q), 2, UInt64(q))
        transport.serviceQueues()
    }
}
