import Glibc
import UnixSockets
import Synchronization

/// `xeno run --control PATH`: a Unix socket (mode 0600) taking one request
/// line at a time (ControlRequest) and answering each with one line,
/// `ok ...` or `error <why>`. A client may send several requests; one that
/// sends a line too long, or nothing for a while, is answered and dropped.
/// Nothing a client sends reaches the domain unparsed.
final class ControlSocket: @unchecked Sendable {
    let path: String
    private let listener: Int32
    /// The running guest (nil between a reboot's end and the next boot).
    private let target = Mutex<(any ControlTarget)?>(nil)
    /// Its devices' counters, for `stats` (nil: none to report).
    private let devices = Mutex<DeviceCounters?>(nil)
    /// The guest agent's host end (PV guests), for `exec`.
    private let agent: GuestAgent?
    /// Clients being served; more are turned away rather than given threads.
    private let clients = Atomic<Int>(0)
    static let maxClients = 8
    static let idleSeconds = 30

    init(path: String, agent: GuestAgent?) throws(RunError) {
        self.path = path
        self.agent = agent
        do { listener = try UnixSocket.listen(path: path, what: "control socket") } catch { throw RunError(error.description) }
    }

    deinit {
        close(listener)
        unlink(path)
    }

    /// Stops new clients finding the socket (the run is over).
    func removeSocketFile() { unlink(path) }

    /// Requests go to `guest` from now on (nil: refused while there is none).
    func serve(_ guest: (any ControlTarget)?, devices: DeviceCounters? = nil) {
        target.withLock { $0 = guest }
        self.devices.withLock { $0 = devices }
    }

    /// Accepts clients on a thread of its own, for the life of the process.
    func start() {
        UnixSocket.acceptForever(listener) { [self] client in
            if clients.add(1, ordering: .acquiringAndReleasing).newValue > Self.maxClients {
                _ = UnixSocket.sendAll(client, Array("error too many control clients at once\n".utf8))
                close(client)
                clients.subtract(1, ordering: .acquiringAndReleasing)
                return
            }
            spawnThread { [self] in
                serve(client)
                close(client)
                clients.subtract(1, ordering: .acquiringAndReleasing)
            }
        }
    }

    /// One client: a reply per request line until it hangs up, goes quiet
    /// or oversteps the line limit.
    private func serve(_ client: Int32) {
        UnixSocket.setReceiveTimeout(client, seconds: Self.idleSeconds)
        var line: [UInt8] = []
        line.reserveCapacity(ControlRequest.maxLength)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                // A request cut off by the hang-up is not run, but is answered.
                if n == 0 && !line.isEmpty {
                    _ = UnixSocket.sendAll(client, Array("error request not ended by a newline\n".utf8))
                }
                return
            }
            for byte in buffer[0..<n] {
                if byte == UInt8(ascii: "\n") {
                    if case .success(.exec(let command, let seconds)) = ControlRequest.parse(line) {
                        // The reply is the command's output, then its status.
                        guard let agent else {
                            guard UnixSocket.sendAll(client, Array("error agent: HVM guests have no agent channel (PV guests do)\n".utf8)) else { return }
                            line.removeAll(keepingCapacity: true)
                            continue
                        }
                        agent.exec(base64Command: command, timeoutSeconds: seconds, client: client)
                        UnixSocket.setReceiveTimeout(client, seconds: Self.idleSeconds)
                    } else {
                        guard UnixSocket.sendAll(client, Array((answer(line) + "\n").utf8)) else { return }
                    }
                    line.removeAll(keepingCapacity: true)
                } else if line.count < ControlRequest.maxLength
                            || line.count < ControlRequest.lengthLimit(startingWith: line) {
                    line.append(byte)
                } else {
                    let limit = ControlRequest.lengthLimit(startingWith: line)
                    _ = UnixSocket.sendAll(client, Array("error request longer than \(limit) bytes\n".utf8))
                    return
                }
            }
        }
    }

    /// The reply line (without its newline) to one request line.
    func answer(_ line: [UInt8]) -> String {
        let request: ControlRequest
        switch ControlRequest.parse(line) {
        case .success(let r): request = r
        case .failure(let e): return "error \(e)"
        }
        guard let guest = target.withLock({ $0 }) else { return "error the guest is not running (it is rebooting)" }
        do throws(ControlError) {
            switch request {
            case .info: return "ok " + guest.info()
            case .stats:
                let words = devices.withLock { $0?.words }
                return "ok exits=\(guest.exitCount)" + (words.map { " " + $0 } ?? "")
            case .setVCPUs(let n):
                try guest.setVCPUs(n)
                return "ok vcpus=\(n)"
            case .setMemory(let bytes):
                try guest.setMemory(bytes: bytes)
                return "ok memory-target-kib=\(bytes >> 10)"
            case .shutdown(let reboot):
                guard let target = guest as? any GuestShutdownTarget else {
                    return "error this guest cannot be asked to shut down; stop it instead"
                }
                let how = try target.requestShutdown(reboot: reboot)
                return "ok shutdown=\(reboot ? "reboot" : "poweroff") via=\(how)"
            case .pause:
                try guest.pauseGuest()
                return "ok state=paused"
            case .unpause:
                guest.unpauseGuest()
                return "ok state=running"
            case .save(let path):
                return "ok " + (try guest.save(to: path))
            case .exec:
                return "error exec is answered by its own reply stream"     // (serve runs it)
            }
        } catch {
            return "error \(error)"
        }
    }
}
