import Glibc
import Synchronization
import UnixSockets

/// The guest console on a Unix socket, for `xeno console NAME` (xl console):
/// `NAME.console.sock` in the run directory with `--name` (mode 0600,
/// removed at exit). One client at a time: what the guest prints goes to
/// it as well as to the VMM's stdout (xenod's log), and what it sends is
/// the guest's console input, paced to the guest as `xeno run` paces its
/// stdin. The client detaches by hanging up (Ctrl-] on its side).
final class ConsoleSocket: @unchecked Sendable {
    let path: String
    private let listener: Int32
    /// The attached client's descriptor, or -1; output and close take the
    /// lock, so output never goes to a descriptor being closed.
    private let client = Mutex<Int32>(-1)
    private let guest = Mutex<(any ConsoleGuest)?>(nil)

    init(path: String) throws(RunError) {
        self.path = path
        do { listener = try UnixSocket.listen(path: path, what: "console socket") } catch { throw RunError(error.description) }
    }

    func removeSocketFile() { unlink(path) }

    /// Input goes to `g` from now on (nil between boots: input waits).
    func serve(_ g: (any ConsoleGuest)?) { guest.withLock { $0 = g } }

    func start() {
        UnixSocket.acceptForever(listener) { [self] fd in
            let attached = client.withLock { current -> Bool in
                guard current < 0 else { return false }
                current = fd
                return true
            }
            guard attached else {
                _ = UnixSocket.sendAll(fd, Array("xeno: another console client is attached to this guest\r\n".utf8))
                close(fd)
                return
            }
            spawnThread { [self] in
                forwardInput(from: fd)
                client.withLock { current in
                    close(current)
                    current = -1
                }
            }
        }
    }

    /// Guest output, copied to the client if one is attached. A client that
    /// does not keep up loses output rather than stalling the guest.
    func output(_ bytes: UnsafeRawBufferPointer) {
        client.withLock { fd in
            guard fd >= 0, bytes.count > 0 else { return }
            _ = send(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
        }
    }

    private func forwardInput(from fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            // Wait for a guest that has room (a reboot in between leaves none for a moment).
            while true {
                guard let g = guest.withLock({ $0 }) else { usleep(50_000); continue }
                if g.consoleHasPendingInput { g.pushConsoleInput(); usleep(20_000); continue }
                buffer.withUnsafeBytes { g.enqueueConsoleInput(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                g.pushConsoleInput()
                break
            }
        }
    }
}

extension ConsoleSocket {
    /// The console socket of the guest named `name`.
    public static func path(name: String) -> String { RunDirectory.path + "/" + name + ".console.sock" }

    /// Opens and starts it; a failure is one warning line, and the guest
    /// runs without it.
    static func open(name: String) -> ConsoleSocket? {
        do {
            let socket = try ConsoleSocket(path: path(name: name))
            socket.start()
            return socket
        } catch {
            Runner.fail("warning: \(error); xeno console \(name) will not find it")
            return nil
        }
    }
}
