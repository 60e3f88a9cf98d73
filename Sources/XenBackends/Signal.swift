import CKVM
import Glibc

/// A wake-up for a backend's thread: an eventfd, so that signalling from a
/// vCPU thread is one write and never blocks.
final class WakeSignal: @unchecked Sendable {
    private let fd: Int32

    init() throws(BackendError) {
        fd = ckvm_eventfd()
        guard fd >= 0 else { throw BackendError("eventfd: \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd) }

    var fileDescriptor: Int32 { fd }

    /// Clears pending wake-ups without blocking (after `poll` said there are some).
    func drain() {
        var count: UInt64 = 0
        _ = read(fd, &count, 8)
    }

    func signal() {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    /// Blocks until signalled at least once since the last wait.
    func wait() {
        var count: UInt64 = 0
        while read(fd, &count, 8) < 0 && errno == EINTR {}
    }
}

/// A backend could not be set up.
public struct BackendError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
