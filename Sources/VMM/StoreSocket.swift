import CKVM
import Glibc
import UnixSockets
import Synchronization
import XenStore

/// The guest's xenstore on a host Unix socket, speaking xenstored's wire
/// protocol (`io/xs_wire.h`), so that Debian's xenstore-utils work against
/// it unchanged: `XENSTORED_PATH=SOCKET xenstore-ls /local/domain/1`.
///
/// The socket is mode 0600 and every client is domain 0 (the host's root).
/// Each client gets a thread; a malformed message closes that client only.
final class StoreSocket: @unchecked Sendable {
    let path: String
    private let listener: Int32
    /// The running domain's store (a reboot builds a new domain and store).
    private let tree = Mutex<XenStoreTree?>(nil)

    init(path: String) throws(RunError) {
        self.path = path
        let fd: Int32
        do { fd = try UnixSocket.listen(path: path, what: "xenstore socket") } catch { throw RunError(error.description) }
        listener = fd
    }

    /// New clients talk to `store` from now on.
    func serve(store: XenStoreTree) { tree.withLock { $0 = store } }

    deinit {
        close(listener)
        unlink(path)
    }

    /// Accepts clients on a thread of its own, for the life of the process.
    func start() {
        UnixSocket.acceptForever(listener) { [self] client in spawnThread { [self] in serve(client) } }
    }

    /// One client: requests in, replies and watch events out, until it
    /// hangs up or sends something that is not a xenstore message.
    private func serve(_ client: Int32) {
        let wake = ckvm_eventfd()
        defer { close(client); close(wake) }
        guard let tree = tree.withLock({ $0 }) else { return }
        let connection = XenStoreConnection(tree: tree, domainID: 0, onOutput: {
            var one: UInt64 = 1
            _ = write(wake, &one, 8)
        })
        defer { connection.close() }
        var input: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        var fds = [pollfd(fd: client, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        while true {
            if poll(&fds, 2, -1) < 0 { if errno == EINTR { continue }; return }
            if fds[1].revents != 0 {
                var count: UInt64 = 0
                _ = read(wake, &count, 8)
            }
            if fds[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let n = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
                if n <= 0 { return }
                input += buffer[0..<n]
                while true {
                    let parsed: (message: XenStoreMessage, length: Int)?
                    do { parsed = try XenStoreMessage.parse(input) } catch { return }
                    guard let (message, length) = parsed else { break }
                    input.removeFirst(length)
                    connection.handle(message)
                }
            }
            while true {
                let n = buffer.withUnsafeMutableBytes { connection.readOutput(into: $0) }
                if n == 0 { break }
                var off = 0
                while off < n {
                    let w = buffer[off..<n].withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                    if w < 0 { if errno == EINTR { continue }; return }
                    off += w
                }
            }
        }
    }
}

/// Runs `body` on a new detached thread.
func spawnThread(_ body: @escaping @Sendable () -> Void) {
    final class Box: @unchecked Sendable { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    var thread = pthread_t()
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    pthread_create(&thread, nil, { arg in
        Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
        return nil
    }, box)
    pthread_detach(thread)
}

/// A run could not be set up.
struct RunError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
