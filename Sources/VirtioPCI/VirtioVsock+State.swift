import Machine
import Virtio

/// What survives a save: the guest CID (checked, not restored: the device
/// is built with its own), and the receive chain the device held, if any.
/// Connections do not: their host ends are Unix sockets of the saved VMM.
/// The restored device starts with none and tells the driver with a
/// VIRTIO_VSOCK_EVENT_TRANSPORT_RESET event (virtio 1.2 §5.10.6.6) on its
/// event queue, so the guest drops its sockets (and rereads the CID);
/// until the event is out, nothing is sent on the receive queue, so no
/// new connection is caught by the reset.
extension VirtioVsock {
    /// struct virtio_vsock_event's id for a transport reset.
    static let transportResetEvent: UInt32 = 0

    public func saveDeviceState(into writer: inout StateWriter) {
        writer.u64(guestCID)
        writer.bool(heldReceive != nil)
        writer.u16(heldReceive?.head ?? 0)
    }

    public func restoreDeviceState(from reader: inout StateReader) throws(DeviceStateError) {
        let cid = try reader.u64()
        let held = try reader.bool()
        let head = try reader.u16()
        guard cid == guestCID else {
            throw DeviceStateError("\(reader.what): saved for guest CID \(cid), this device is CID \(guestCID)")
        }
        // The queue judges the head when it is used (beyond its size: refused).
        guard held || head == 0 else { throw DeviceStateError("\(reader.what): a held receive chain saved as absent") }
        reset()
        heldReceiveToReturn = held ? head : nil
        transportResetOwed = true
    }

    /// Posts the owed TRANSPORT_RESET on the event queue, if a buffer is
    /// there; otherwise it waits for the driver's kick.
    func postTransportReset<Memory: GuestMemoryView>(_ queue: Virtqueue<Memory>) {
        while transportResetOwed {
            switch queue.popAvailable() {
            case .empty, .failed:
                return
            case .refused(let head, let error):
                refuse("event chain refused: \(error)")
                try? queue.pushUsed(id: head, length: 0)
            case .chain(let chain):
                guard chain.writableLength >= 4 else {
                    refuse("event buffer of \(chain.writableLength) bytes")
                    try? queue.pushUsed(id: chain.head, length: 0)
                    continue
                }
                withUnsafeBytes(of: Self.transportResetEvent.littleEndian) { _ = chain.writable.copyIn($0, at: 0) }
                try? queue.pushUsed(id: chain.head, length: 4)
                transportResetOwed = false
                receiveAfterTransportReset = true
            }
        }
    }
}
