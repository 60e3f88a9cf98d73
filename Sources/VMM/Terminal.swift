import Glibc
import Synchronization

/// The host side of the guest console: raw mode on a TTY (restored on exit),
/// Ctrl-] to detach, plain stdio when piped.
final class Terminal: @unchecked Sendable {
    let isTTY: Bool
    private var saved = termios()
    private var raw = false

    init() {
        isTTY = isatty(0) == 1
        if isTTY && tcgetattr(0, &saved) == 0 {
            var t = saved
            cfmakeraw(&t)
            t.c_oflag |= tcflag_t(OPOST | ONLCR)
            if tcsetattr(0, TCSANOW, &t) == 0 { raw = true }
        }
    }

    func restore() {
        if raw { tcsetattr(0, TCSANOW, &saved); raw = false }
    }

    static func writeOut(_ bytes: UnsafeRawBufferPointer) {
        var done = 0
        while done < bytes.count {
            let n = write(1, bytes.baseAddress! + done, bytes.count - done)
            if n <= 0 { if errno == EINTR { continue }; return }
            done += n
        }
    }
}

/// Reads host input and feeds it to the guest console as it makes room.
final class ConsoleInput: @unchecked Sendable {
    let domain: ConsoleGuest
    let terminal: Terminal
    private let done = Atomic<Bool>(false)
    init(domain: ConsoleGuest, terminal: Terminal) { self.domain = domain; self.terminal = terminal }

    func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var t = pthread_t()
        pthread_create(&t, nil, { arg in
            let me = Unmanaged<ConsoleInput>.fromOpaque(arg!).takeRetainedValue()
            me.loop()
            return nil
        }, box)
        pthread_detach(t)
    }

    func stop() { done.store(true, ordering: .releasing) }

    private func loop() {
        var buf = [UInt8](repeating: 0, count: 1024)
        var eof = false
        while !done.load(ordering: .acquiring) && !domain.hasEnded {
            // Pace input to the guest: only read more when the backlog is small.
            if eof || domain.consoleHasPendingInput {
                domain.pushConsoleInput()
                usleep(20_000)
                continue
            }
            var p = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, 200)
            if r <= 0 { domain.pushConsoleInput(); continue }
            let n = buf.withUnsafeMutableBytes { read(0, $0.baseAddress!, 1024) }
            if n <= 0 { eof = true; continue }
            if terminal.isTTY, let i = buf[0..<n].firstIndex(of: 0x1d) {   // Ctrl-]
                if i > 0 { buf.withUnsafeBytes { domain.enqueueConsoleInput(UnsafeRawBufferPointer(rebasing: $0[0..<i])) } }
                domain.stopRun()
                return
            }
            buf.withUnsafeBytes { domain.enqueueConsoleInput(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            domain.pushConsoleInput()
        }
    }
}
