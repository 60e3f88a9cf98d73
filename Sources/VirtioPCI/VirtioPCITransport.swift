import CKVM
import Glibc
import Machine
import Synchronization
import Virtio

/// A virtio 1.x device on the modern PCI transport (virtio 1.2 §4.1): a PCI
/// function with one 64-bit memory BAR holding the common configuration, ISR,
/// device configuration, doorbells and the MSI-X table.
///
/// Everything here is the guest's to write. Register accesses of a shape the
/// spec does not define read as zero and are otherwise ignored; settings the
/// device cannot honour (features it did not offer, rings outside memory,
/// vectors beyond the table) are refused as the spec says: FEATURES_OK does
/// not stick, the vector reads NO_VECTOR, or the device sets NEEDS_RESET.
///
/// The queues are worked on by one service thread per device (`start()`),
/// woken by an eventfd that KVM signals on doorbell writes; vCPU threads only
/// touch registers. One lock covers registers and queue work, so a driver
/// resetting the device never races a request in flight.
public final class VirtioPCITransport<Memory: GuestMemoryView>: PCIFunction, MMIODevice, @unchecked Sendable {
    public let device: any VirtioDevice
    let interrupts: any MSISignaller
    let doorbells: (any DoorbellBinder)?
    let state: Mutex<TransportState<Memory>>
    /// The configuration-space bytes that never change (IDs, capabilities).
    let configTemplate: [UInt8]
    let offeredFeatures: UInt64
    /// The service thread's wake-up: doorbells and stop requests.
    let kick: Int32
    private let stopping = Atomic<Bool>(false)
    /// The running service thread, joined by `stop()`.
    private let serviceThread = Mutex<pthread_t?>(nil)

    /// - Parameters:
    ///   - barAddress: where BAR0 starts, as firmware would have assigned it
    ///     (aligned to `VirtioPCITransport.barSize`); 0 leaves it unassigned
    ///     with memory decoding off, for the guest to place.
    ///   - doorbells: binds doorbells to the kick eventfd; nil takes them as MMIO.
    public init(device: any VirtioDevice, memory: Memory, interrupts: any MSISignaller,
                doorbells: (any DoorbellBinder)?, barAddress: UInt64) {
        self.device = device
        self.interrupts = interrupts
        self.doorbells = doorbells
        offeredFeatures = device.deviceFeatures | VirtioFeature.transport
        let queues = device.queueMaxSizes.map { QueueSlot(memory: memory, maxSize: $0) }
        configTemplate = Self.makeConfigTemplate(device: device, queueCount: queues.count)
        kick = ckvm_eventfd()
        let base = barAddress & ~(Self.barSize - 1)
        state = Mutex(TransportState(command: base != 0 ? PCICommand.memorySpace : 0, barAddress: base,
                                     queues: queues, msix: MSIXTable(vectors: queues.count + 1)))
        device.reset()
        state.withLock { updateDoorbells(&$0) }
    }

    deinit {
        state.withLock { s in
            if let base = s.boundDoorbellBase { unbindDoorbells(base: base, count: s.queues.count) }
        }
        close(kick)
    }

    /// The size of BAR0.
    public static var barSize: UInt64 { VirtioPCILayout.barSize }

    // MARK: Interrupts

    /// Raises `vector` for a used-buffer notification (ISR bit 0) or a
    /// configuration change (bit 1).
    func interrupt(_ vector: UInt16, isrBit: UInt8, _ s: inout TransportState<Memory>) {
        s.isr |= isrBit
        s.msix.signal(vector) { interrupts.signalMSI(address: $0.address, data: $0.data) }
    }

    /// Changes the device configuration from the host side: `change` runs
    /// under the transport's lock (so no register access sees half of it),
    /// then config_generation moves on and, once the driver is running, the
    /// configuration-change interrupt (ISR bit 1, the config MSI-X vector)
    /// tells it to look (§4.1.4.5). Before DRIVER_OK there is nobody to tell:
    /// a driver reads the configuration when it starts.
    public func changeConfiguration(_ change: () -> Void) {
        state.withLock { s in
            change()
            s.configGeneration &+= 1
            if s.status & DeviceStatus.driverOK != 0 { interrupt(s.configVector, isrBit: 2, &s) }
        }
    }

    /// The device cannot go on until the driver resets it (§2.1.2).
    func requireReset(_ why: String, _ s: inout TransportState<Memory>) {
        report("virtio-\(device.type) \(why): device needs a reset")
        guard s.status & DeviceStatus.needsReset == 0 else { return }
        s.status |= DeviceStatus.needsReset
        if s.status & DeviceStatus.driverOK != 0 { interrupt(s.configVector, isrBit: 2, &s) }
    }

    // MARK: Queue work

    /// Works every enabled queue once and interrupts the driver where it
    /// asked. The service thread calls this on each wake-up; tests call it
    /// directly.
    public func serviceQueues() {
        let more = state.withLock { s -> Bool in
            guard s.status & DeviceStatus.driverOK != 0, s.status & DeviceStatus.needsReset == 0 else { return false }
            // A device may find work for an earlier queue while serving a
            // later one (vsock: a reply owed on rx to a packet from tx).
            for _ in 0..<Self.maxPasses {
                for (index, slot) in s.queues.enumerated() where slot.enabled {
                    device.service(queue: index, slot.virtqueue)
                    if let fault = slot.virtqueue.fault {
                        requireReset("queue \(index): \(fault)", &s)
                        return false
                    }
                    if slot.virtqueue.needsNotification() { interrupt(slot.vector, isrBit: 1, &s) }
                }
                if !device.hasPendingWork { return false }
            }
            return true
        }
        // Still more: come back after letting the vCPUs at the registers.
        if more { wake() }
    }

    /// Passes over the queues per service call, so one call's work (and
    /// the time the lock is held) stays bounded.
    static var maxPasses: Int { 4 }

    /// A doorbell rang without ioeventfd, or the device has news: wake the thread.
    func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(kick, &one, 8)
    }

    // MARK: Service thread

    /// Starts the device's service thread. After `stop()` it may start
    /// again (a domain that goes on running after it was saved).
    public func start() {
        stopping.store(false, ordering: .releasing)
        let thread = startThread { self.serviceLoop() }
        serviceThread.withLock { $0 = thread }
    }

    /// Ends the service thread and waits until it has: the pass it is in
    /// finishes (every chain it took is completed, under the lock) and it
    /// starts no other. So once `stop()` returns, the device touches
    /// neither guest memory nor its state until `start()`: what a save
    /// needs. A doorbell rung meanwhile stays counted in the kick eventfd
    /// and is served after `start()`.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake()
        guard let thread = serviceThread.withLock({ t in defer { t = nil }; return t }) else { return }
        // From the service thread itself (a device ending the guest) there
        // is nothing to wait for: it leaves its loop on return.
        if pthread_equal(thread, pthread_self()) != 0 {
            pthread_detach(thread)
        } else {
            pthread_join(thread, nil)
        }
    }

    /// Sleeps until a doorbell or, while the device wants it, host input;
    /// then works the queues.
    private func serviceLoop() {
        var fds = [pollfd(fd: kick, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: device.hostInputFD ?? -1, events: Int16(POLLIN), revents: 0)]
        while !stopping.load(ordering: .acquiring) {
            // Host input matters only while the driver runs the device;
            // otherwise a readable TAP would spin this loop.
            let watchHost = state.withLock { s in
                s.status & (DeviceStatus.driverOK | DeviceStatus.needsReset) == DeviceStatus.driverOK
                    && device.hostInputFD != nil && device.wantsHostInput
            }
            let n = poll(&fds, watchHost ? 2 : 1, -1)
            if n < 0 { if errno == EINTR { continue }; break }
            // Woken to stop: no further pass (the doorbell count, if any,
            // stays for the next start).
            if stopping.load(ordering: .acquiring) { break }
            if fds[0].revents != 0 {
                var count: UInt64 = 0
                _ = Glibc.read(kick, &count, 8)
            }
            serviceQueues()
        }
    }
}

/// Runs `body` on a new thread, for the caller to join. (A generic class
/// cannot form the C function pointer itself, so the body travels in a box.)
func startThread(_ body: @escaping () -> Void) -> pthread_t {
    final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
    var thread = pthread_t()
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    pthread_create(&thread, nil, { arg in
        Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
        return nil
    }, box)
    return thread
}

/// One line on the VMM's stderr: device trouble the guest caused.
func report(_ line: String) {
    let text = "xeno: " + line + "\n"
    _ = text.withCString { Glibc.write(2, $0, strlen($0)) }
}

extension VirtioDeviceType: CustomStringConvertible {
    public var description: String {
        switch self {
        case .network: "net"
        case .block: "blk"
        case .entropy: "rng"
        case .balloon: "balloon"
        case .socket: "vsock"
        }
    }
}
