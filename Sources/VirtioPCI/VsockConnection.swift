import CKVM
import Glibc

/// One stream connection between a guest vsock port and a host Unix socket,
/// as the device tracks it. Only the device's service thread touches it.
final class VsockConnection {
    enum State {
        /// Host-initiated: accepted, waiting for the `CONNECT <port>` line.
        case awaitingConnectLine
        /// Host-initiated: REQUEST sent (or to send), waiting for the guest's RESPONSE.
        case connecting
        case established
        /// The guest shut both directions down; the host socket is closed
        /// and RST sent once the bytes still held for the host are written.
        case closing
    }

    let fd: Int32
    /// The host end's port (the guest's destination) and the guest's port.
    var hostPort: UInt32 = 0
    var guestPort: UInt32 = 0
    /// Tells apart a slot's successive connections in epoll's event data.
    let id: UInt64
    var state: State

    /// The `CONNECT` line read so far (no newline yet).
    var line: [UInt8] = []

    // Guest → host. The guest may have at most `bufferSize` bytes we have not
    // written to the host socket (rxCount − forwardCount); what the socket
    // does not take at once waits in `held`, so that bound is also the most
    // this connection ever holds in the VMM.
    var receivedCount: UInt32 = 0
    var forwardCount: UInt32 = 0
    /// The forward count last told to the guest (in any packet's header).
    var advertisedForwardCount: UInt32 = 0
    var held: UnsafeMutableRawBufferPointer?
    var heldStart = 0
    var heldCount = 0

    // Host → guest: the guest's credit, from the last header it sent.
    var sentCount: UInt32 = 0
    var peerBufferAllocation: UInt32 = 0
    var peerForwardCount: UInt32 = 0
    /// A CREDIT_REQUEST went out since the credit last ran dry.
    var creditRequested = false

    /// SHUTDOWN flags the guest sent.
    var guestShutdown: UInt32 = 0
    /// The host end sent EOF (read returned 0).
    var hostEOF = false

    // Control packets owed to the guest, sent before any more data.
    var owesRequest = false
    var owesResponse = false
    var owesCreditUpdate = false
    var owesCreditRequest = false
    var owesShutdown: UInt32 = 0

    /// The events this connection's fd is registered for in the device's
    /// epoll set (0: not registered).
    var registeredEvents: UInt32 = 0

    init(fd: Int32, id: UInt64, state: State) {
        self.fd = fd
        self.id = id
        self.state = state
    }

    deinit {
        held?.deallocate()
    }

    /// Bytes the guest may still send before it must wait for our forward count.
    func receiveSpace(bufferSize: UInt32) -> UInt32 {
        let inFlight = receivedCount &- forwardCount
        return inFlight >= bufferSize ? 0 : bufferSize - inFlight
    }

    /// Bytes we may send the guest: its buffer less what it has not yet
    /// passed on. A guest whose counts make no sense (a forward count ahead
    /// of what we sent) gets nothing.
    var credit: UInt32 {
        let inFlight = sentCount &- peerForwardCount
        return inFlight >= peerBufferAllocation ? 0 : peerBufferAllocation - inFlight
    }

    var owesControl: Bool {
        owesRequest || owesResponse || owesCreditUpdate || owesCreditRequest || owesShutdown != 0
    }

    /// Whether bytes from the host socket may go to the guest now.
    var canForwardToGuest: Bool {
        state == .established && !owesResponse && !hostEOF
            && guestShutdown & VsockHeader.shutdownReceive == 0 && credit > 0
    }

    /// The epoll events worth waiting for: only those the device can act
    /// on, so that a level-triggered set never wakes it for nothing.
    var wantedEvents: UInt32 {
        switch state {
        case .awaitingConnectLine:
            return EpollEvents.input
        case .connecting:
            return 0
        case .established, .closing:
            var events: UInt32 = 0
            if heldCount > 0 { events |= EpollEvents.output }
            if canForwardToGuest { events |= EpollEvents.input }
            return events
        }
    }

    // MARK: Bytes held for the host

    /// Keeps `bytes` for the host; the caller checked they fit in `capacity`.
    func hold(_ bytes: UnsafeRawBufferPointer, capacity: Int) {
        if held == nil { held = .allocate(byteCount: capacity, alignment: 64) }
        let ring = held!
        var done = 0
        while done < bytes.count {
            let end = (heldStart + heldCount) % ring.count
            let n = min(bytes.count - done, ring.count - end, ring.count - heldCount)
            guard n > 0 else { break }      // full: cannot happen under the credit check
            (ring.baseAddress! + end).copyMemory(from: bytes.baseAddress! + done, byteCount: n)
            heldCount += n
            done += n
        }
    }

    /// Writes held bytes to the host socket; returns how many went, or nil
    /// when the socket failed (the peer is gone).
    func flushHeld() -> Int? {
        guard let ring = held else { return 0 }
        var total = 0
        while heldCount > 0 {
            let n = min(heldCount, ring.count - heldStart)
            let sent = send(fd, ring.baseAddress! + heldStart, n, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            if sent < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { break }
                return nil
            }
            heldStart = (heldStart + sent) % ring.count
            heldCount -= sent
            total += sent
            if sent < n { break }
        }
        if heldCount == 0 { heldStart = 0 }
        return total
    }
}

/// epoll(7) event bits (sys/epoll.h; the kernel ABI fixes them).
enum EpollEvents {
    static let input: UInt32 = 0x001
    static let output: UInt32 = 0x004
    static let error: UInt32 = 0x008
    static let hangUp: UInt32 = 0x010
}
