import CKVM
import Glibc
import UnixSockets
import Synchronization
import XenBackends

/// Where the agent's requests go: the secondary console (a fake in tests).
protocol GuestAgentChannel: AnyObject, Sendable {
    /// Queues bytes for the guest; false if they cannot be (no connection, queue full).
    func send(_ bytes: UnsafeRawBufferPointer) -> Bool
    /// The agent took queued output: bytes left in the guest's ring may come now.
    func kick()
}

extension ConsoleChannelBackend: GuestAgentChannel {}

/// The host end of the kit's guest agent (scripts/kit/xenolith-agent), over
/// the PV guest's secondary console (`console/1`, `/dev/hvc1` in the guest).
///
/// The protocol is lines of printable ASCII both ways:
///
///     guest → host   hello xenolith-agent 1        the agent is up (again)
///     host → guest   exec <id> <length>
///                    <base64 command: exactly <length> bytes>
///     guest → host   start <id>
///                    <base64 of the output>        any number of lines
///                    exit <id> <status>
///     host → guest   kill <id>                     stop that command (timeout, client gone)
///
/// Commands run one at a time (later `exec` requests wait for the slot).
/// Output lines are checked (well-formed base64, at most `maxLine` bytes) and
/// passed to the control client as `data <base64>`; the client decodes
/// them. Everything from the guest is untrusted: a line that is too long
/// or malformed is dropped, and an `exit` or output for any command but the
/// current one is ignored.
final class GuestAgent: ConsoleChannelClient, @unchecked Sendable {
    /// The longest line taken from the guest (busybox's base64 writes 76).
    static let maxLine = 1024
    /// Output queued for the client before the ring is left full (the guest waits).
    static let pendingLimit = 64 << 10
    /// How long `exec` waits for the agent to be up (a guest still booting).
    let readySeconds: Int
    /// How long the agent may take to start a command once it has the request.
    let startSeconds: Int

    private struct State {
        var channel: (any GuestAgentChannel)?
        /// The agent said hello on the current connection.
        var ready = false
        /// An exec owns the channel.
        var busy = false
        /// The command whose output is wanted (0: none), and whose `start` the agent sent last.
        var current: UInt64 = 0
        var streaming: UInt64 = 0
        var started = false
        var pending: [UInt8] = []
        var finished: Int?
        /// The channel went away while `current` ran.
        var lost = false
        var nextID: UInt64 = 1
    }

    private let state = Mutex(State())
    /// Wakes the exec that owns the channel: output, an exit, a disconnect.
    private let wakeFD = ckvm_eventfd()
    /// The line being assembled (the backend's thread only).
    private var line: [UInt8] = []
    private var discarding = false
    /// Something for the exec came in this batch.
    private var wakeClient = false

    init(readySeconds: Int = 30, startSeconds: Int = 30) {
        self.readySeconds = readySeconds
        self.startSeconds = startSeconds
        line.reserveCapacity(Self.maxLine)
        state.withLock { $0.pending.reserveCapacity(Self.pendingLimit) }
    }

    deinit { close(wakeFD) }

    // MARK: Boots

    /// The channel of this boot.
    func attach(_ channel: any GuestAgentChannel) {
        state.withLock { $0.channel = channel; $0.ready = false }
    }

    /// The boot is over.
    func detach() {
        state.withLock { s in
            s.channel = nil
            s.ready = false
            if s.current != 0 { s.lost = true }
        }
        signal()
    }

    /// The agent said hello on the current connection.
    var isReady: Bool { state.withLock { $0.ready } }

    private func signal() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    // MARK: ConsoleChannelClient (the backend's thread)

    func channelConnected() {
        line.removeAll(keepingCapacity: true)
        discarding = false
        state.withLock { $0.ready = false; $0.streaming = 0 }
    }

    func channelDisconnected() {
        state.withLock { s in
            s.ready = false
            s.streaming = 0
            if s.current != 0 { s.lost = true }
        }
        signal()
    }

    func channelOutput(_ bytes: UnsafeRawBufferPointer) -> Int {
        // One wake-up per batch of lines, not per line.
        defer {
            if wakeClient { signal() }
            wakeClient = false
        }
        var i = 0
        while i < bytes.count {
            guard let nl = bytes[i...].firstIndex(of: UInt8(ascii: "\n")) else {
                append(UnsafeRawBufferPointer(rebasing: bytes[i...]))
                return bytes.count
            }
            append(UnsafeRawBufferPointer(rebasing: bytes[i..<nl]))
            // The newline is taken only once the line found room.
            guard lineEnded() else { return nl }
            line.removeAll(keepingCapacity: true)
            discarding = false
            i = nl + 1
        }
        return bytes.count
    }

    private func append(_ part: UnsafeRawBufferPointer) {
        guard !discarding else { return }
        if line.count + part.count > Self.maxLine {
            discarding = true
            line.removeAll(keepingCapacity: true)
        } else {
            line.append(contentsOf: part)
        }
    }

    /// One whole line from the guest; false if it must wait for the client
    /// to make room (the line is kept and offered again).
    private func lineEnded() -> Bool {
        if discarding { return true }
        var text = line[...]
        if text.last == UInt8(ascii: "\r") { text = text.dropLast() }
        if text.starts(with: "hello ".utf8) {
            state.withLock { s in
                s.ready = true
                // A new agent: a command the old one had started is gone.
                if s.current != 0 && s.started && s.finished == nil { s.lost = true }
                s.streaming = 0
            }
            wakeClient = true
        } else if text.starts(with: "start ".utf8) {
            guard let id = Self.number(text.dropFirst(6)) else { return true }
            state.withLock { s in
                s.streaming = id
                if id == s.current { s.started = true }
            }
            wakeClient = true
        } else if text.starts(with: "exit ".utf8) {
            let words = text.dropFirst(5).split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
            guard words.count == 2, let id = Self.number(words[0]), let status = Self.number(words[1]), status <= 255 else { return true }
            state.withLock { s in
                if s.streaming == id { s.streaming = 0 }
                if id == s.current && s.finished == nil { s.finished = Int(status) }
            }
            wakeClient = true
        } else if !text.isEmpty && Base64.decodedLength(text) != nil {
            let taken = state.withLock { s -> Bool in
                guard s.current != 0 && s.streaming == s.current else { return true }   // nobody wants it
                guard s.pending.count + text.count + 6 <= Self.pendingLimit else { return false }
                s.pending.append(contentsOf: "data ".utf8)
                s.pending.append(contentsOf: text)
                s.pending.append(UInt8(ascii: "\n"))
                return true
            }
            if !taken { return false }
            wakeClient = true
        }
        return true
    }

    /// A decimal number of at most 19 digits.
    private static func number<C: Collection>(_ digits: C) -> UInt64? where C.Element == UInt8 {
        guard !digits.isEmpty, digits.count <= 19 else { return nil }
        var n: UInt64 = 0
        for d in digits {
            guard d >= 0x30 && d <= 0x39 else { return nil }
            n = n * 10 + UInt64(d - 0x30)
        }
        return n
    }

    // MARK: exec (a control client's thread)

    /// Runs `base64Command` in the guest for the control client `client`,
    /// writing the reply to it: `data <base64>` lines, then `ok status=N`,
    /// or `error agent: ...` (no agent), `error timeout: ...` (the command
    /// was stopped after `timeoutSeconds`). A client that hangs up stops the
    /// command too.
    func exec(base64Command: [UInt8], timeoutSeconds: Int, client: Int32) {
        // A client that stops reading must not hold the channel for ever.
        UnixSocket.setSendTimeout(client, seconds: 60)
        // One command at a time: wait for the slot while the client is there.
        while !state.withLock({ s -> Bool in
            if s.busy { return false }
            s.busy = true
            return true
        }) {
            if Self.clientGone(client, waitMilliseconds: 50) { return }
        }
        defer {
            state.withLock { s in
                s.busy = false
                s.current = 0
                s.pending.removeAll(keepingCapacity: true)
            }
        }

        // The agent must be up: a guest may still be booting.
        let readyBy = Self.now() + Double(readySeconds)
        var channel: (any GuestAgentChannel)?
        while true {
            channel = state.withLock { $0.ready ? $0.channel : nil }
            if channel != nil { break }
            if Self.now() > readyBy {
                reply(client, "error agent: no guest agent answered on the console channel within \(readySeconds) s (a PV guest booted with the kit runs one)")
                return
            }
            if wait(client, seconds: 0.2) { return }
        }
        guard let channel else { return }

        let id = state.withLock { s -> UInt64 in
            let id = s.nextID
            s.nextID += 1
            s.current = id
            s.started = false
            s.finished = nil
            s.lost = false
            s.pending.removeAll(keepingCapacity: true)
            return id
        }
        // The command follows its line, its length given, so that the agent
        // can take it with one bulk read rather than a byte per read.
        var request = Array("exec \(id) \(base64Command.count)\n".utf8)
        request.reserveCapacity(request.count + base64Command.count + 1)
        request += base64Command
        request.append(UInt8(ascii: "\n"))
        guard request.withUnsafeBytes({ channel.send($0) }) else {
            reply(client, "error agent: the console channel takes no request (not connected, or the guest is not reading it)")
            return
        }

        // (A long command takes the guest longer to read: 1 s more per 2 KiB.)
        let startBy = Self.now() + Double(startSeconds + base64Command.count / 2048)
        let stopBy = timeoutSeconds > 0 ? Self.now() + Double(timeoutSeconds) : Double.infinity
        var out: [UInt8] = []
        out.reserveCapacity(Self.pendingLimit)
        while true {
            let (started, finished, lost) = state.withLock { s in
                swap(&out, &s.pending)
                return (s.started, s.finished, s.lost)
            }
            if !out.isEmpty {
                channel.kick()      // the guest's ring may be waiting for this room
                guard UnixSocket.sendAll(client, out) else { return interrupt(id, channel) }
                out.removeAll(keepingCapacity: true)
            } else {
                if let finished { return reply(client, "ok status=\(finished)") }
                if lost { return reply(client, "error agent: the guest's console channel closed while the command ran") }
            }
            let now = Self.now()
            if !started && now > startBy {
                interrupt(id, channel)
                state.withLock { $0.ready = false }     // until it says hello again
                return reply(client, "error agent: the guest agent did not start the command within \(startSeconds) s")
            }
            // (Checked after output too: a command that never stops printing still times out.)
            if now > stopBy {
                interrupt(id, channel)
                return reply(client, "error timeout: the command ran for more than \(timeoutSeconds) s and was stopped")
            }
            if finished != nil || lost { continue }      // output came first: send the end now
            if wait(client, seconds: min(1, stopBy - now)) { return interrupt(id, channel) }
        }
    }

    /// Tells the agent to stop command `id`; its output is dropped from now on.
    private func interrupt(_ id: UInt64, _ channel: any GuestAgentChannel) {
        state.withLock { $0.current = 0; $0.pending.removeAll(keepingCapacity: true) }
        _ = Array("kill \(id)\n".utf8).withUnsafeBytes { channel.send($0) }
    }

    private func reply(_ client: Int32, _ line: String) {
        _ = UnixSocket.sendAll(client, Array((line + "\n").utf8))
    }

    /// Waits for a wake-up or `seconds`; true if the client hung up.
    private func wait(_ client: Int32, seconds: Double) -> Bool {
        var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: client, events: Self.peerClosed, revents: 0)]
        let n = poll(&fds, 2, Int32(max(0.001, min(seconds, 60)) * 1000))
        if n > 0 && fds[0].revents != 0 {
            var count: UInt64 = 0
            _ = read(wakeFD, &count, 8)
        }
        return n > 0 && fds[1].revents != 0
    }

    /// POLLRDHUP: the peer closed (or shut down writing). POLLHUP and POLLERR come unasked.
    static let peerClosed: Int16 = 0x2000

    /// True if the client hung up (waits up to the given time for it).
    static func clientGone(_ client: Int32, waitMilliseconds: Int32) -> Bool {
        var fd = pollfd(fd: client, events: peerClosed, revents: 0)
        return poll(&fd, 1, waitMilliseconds) > 0 && fd.revents != 0
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
