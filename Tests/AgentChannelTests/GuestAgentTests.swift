import Foundation
import Synchronization
import Testing
@testable import VMM

/// The secondary console as the agent sees it: what was sent to the guest.
final class FakeChannel: GuestAgentChannel, @unchecked Sendable {
    private let sent = Mutex<[UInt8]>([])
    func send(_ bytes: UnsafeRawBufferPointer) -> Bool {
        sent.withLock { $0.append(contentsOf: bytes) }
        return true
    }
    func kick() {}
    var text: String { String(decoding: sent.withLock { $0 }, as: UTF8.self) }

    /// Waits up to 10 s for the guest to have been sent `needle`.
    func waitFor(_ needle: String) -> Bool {
        for _ in 0..<1000 {
            if text.contains(needle) { return true }
            usleep(10_000)
        }
        return false
    }
}

/// An exec running on its own thread against a client socket we hold the other end of.
final class ExecRun: @unchecked Sendable {
    let client: Int32
    private(set) var peer: Int32
    let done = Mutex(false)

    init(_ agent: GuestAgent, command: String, timeout: Int = 0) {
        var fds: [Int32] = [-1, -1]
        socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
        client = fds[0]; peer = fds[1]
        let b64 = Array(Data(command.utf8).base64EncodedString().utf8)
        let client = self.client
        Thread { [self] in
            agent.exec(base64Command: b64, timeoutSeconds: timeout, client: client)
            done.withLock { $0 = true }
        }.start()
    }

    deinit { close(client); if peer >= 0 { close(peer) } }

    /// Reply lines until the exec ends (or 15 s pass).
    func replies() -> [String] {
        var tv = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var text: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if done.withLock({ $0 }) {
                // Whatever is left in the socket.
                var more = true
                while more {
                    let n = recv(peer, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                    if n > 0 { text += buffer[0..<n] } else { more = false }
                }
                break
            }
            var fd = pollfd(fd: peer, events: Int16(POLLIN), revents: 0)
            if poll(&fd, 1, 100) > 0 {
                let n = recv(peer, &buffer, buffer.count, 0)
                if n <= 0 { break }
                text += buffer[0..<n]
            }
        }
        return String(decoding: text, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    func hangUp() {
        close(peer)
        peer = -1       // (closed once: the number may be another test's by the time of deinit)
    }
}

@discardableResult
func feed(_ agent: GuestAgent, _ text: String) -> Int {
    Array(text.utf8).withUnsafeBytes { agent.channelOutput($0) }
}

func connectedAgent(ready: Bool = true, readySeconds: Int = 5) -> (GuestAgent, FakeChannel) {
    let agent = GuestAgent(readySeconds: readySeconds, startSeconds: 5)
    let channel = FakeChannel()
    agent.attach(channel)
    agent.channelConnected()
    if ready { feed(agent, "hello xenolith-agent 1\n") }
    return (agent, channel)
}

@Suite("guest agent protocol (host end), without a guest")
struct GuestAgentTests {
    @Test("exec: request line to the guest, output and status back to the client")
    func roundTrip() {
        let (agent, channel) = connectedAgent()
        #expect(agent.isReady)
        let run = ExecRun(agent, command: "echo hello; exit 7")
        let b64 = Data("echo hello; exit 7".utf8).base64EncodedString()
        #expect(channel.waitFor("exec 1 \(b64.utf8.count)\n\(b64)\n"))
        // Split anywhere: lines are put together across calls.
        feed(agent, "start 1\naGVs")
        feed(agent, "bG8K\r\nexit 1 7\n")
        #expect(run.replies() == ["data aGVsbG8K", "ok status=7"])
    }

    @Test("untrusted output: other commands' lines, bad exits, long or non-base64 lines are dropped")
    func untrustedLines() {
        let (agent, channel) = connectedAgent()
        feed(agent, "start 9\nAAAA\nexit 9 0\n")                 // before any exec: nobody wants it
        let run = ExecRun(agent, command: "x")
        #expect(channel.waitFor("exec 1 "))
        feed(agent, "start 1\n")
        feed(agent, String(repeating: "A", count: 5000) + "\n")   // longer than a line may be
        feed(agent, "not base64!\n")
        feed(agent, "garbage\n")                                 // the alphabet, but not whole quanta
        feed(agent, "QQ==QUJD\n")                                // padding inside
        feed(agent, "exit 2 0\n")                                 // another command's exit
        feed(agent, "exit 1 300\n")                               // not a status
        feed(agent, "exit 1 x\n")
        feed(agent, "QUJD\n")
        feed(agent, "exit 1 3\n")
        #expect(run.replies() == ["data QUJD", "ok status=3"])
    }

    @Test("a client that hangs up stops the command: kill goes to the guest")
    func hangUp() {
        let (agent, channel) = connectedAgent()
        let run = ExecRun(agent, command: "sleep 1000")
        #expect(channel.waitFor("exec 1 "))
        feed(agent, "start 1\n")
        run.hangUp()
        #expect(channel.waitFor("kill 1\n"))
        // The next command still runs, after the killed one's late lines are ignored.
        let next = ExecRun(agent, command: "true")
        #expect(channel.waitFor("exec 2 "))
        feed(agent, "AAAA\nexit 1 137\nstart 2\nexit 2 0\n")
        #expect(next.replies() == ["ok status=0"])
    }

    @Test("--timeout: the command is stopped and the client told")
    func timeout() {
        let (agent, channel) = connectedAgent()
        let run = ExecRun(agent, command: "sleep 1000", timeout: 1)
        #expect(channel.waitFor("exec 1 "))
        feed(agent, "start 1\n")
        let replies = run.replies()
        #expect(replies.count == 1 && replies[0].hasPrefix("error timeout: "), "\(replies)")
        #expect(channel.text.hasSuffix("kill 1\n"))
    }

    @Test("a command that never stops printing still times out")
    func timeoutWhilePrinting() {
        final class Flag: @unchecked Sendable { let on = Atomic<Bool>(true) }
        let (agent, channel) = connectedAgent()
        let run = ExecRun(agent, command: "yes", timeout: 1)
        #expect(channel.waitFor("exec 1 "))
        feed(agent, "start 1\n")
        let feeding = Flag()
        Thread {
            while feeding.on.load(ordering: .acquiring) {
                feed(agent, "eWVzCnllcwp5ZXMK\n")
                usleep(500)
            }
        }.start()
        let replies = run.replies()
        feeding.on.store(false, ordering: .releasing)
        #expect(replies.count > 1 && replies.last?.hasPrefix("error timeout: ") == true, "\(replies.suffix(2))")
        #expect(replies.dropLast().allSatisfy { $0 == "data eWVzCnllcwp5ZXMK" })
        #expect(channel.waitFor("kill 1\n"))
    }

    @Test("no agent: one error line after the wait, nothing sent to the guest")
    func noAgent() {
        let (agent, channel) = connectedAgent(ready: false, readySeconds: 1)
        let replies = ExecRun(agent, command: "true").replies()
        #expect(replies.count == 1 && replies[0].hasPrefix("error agent: no guest agent answered"), "\(replies)")
        #expect(channel.text.isEmpty)
    }

    @Test("the channel closing while a command runs ends the exec with an error")
    func channelLost() {
        let (agent, channel) = connectedAgent()
        let run = ExecRun(agent, command: "sleep 1000")
        #expect(channel.waitFor("exec 1 "))
        feed(agent, "start 1\n")
        agent.channelDisconnected()
        let replies = run.replies()
        #expect(replies.count == 1 && replies[0].hasPrefix("error agent: "), "\(replies)")
        #expect(!agent.isReady)
    }
}

@Suite("exec requests and base64")
struct ExecRequestTests {
    func parse(_ s: String) -> Result<ControlRequest, ControlError> { ControlRequest.parse(Array(s.utf8)) }
    func parsed(_ s: String) -> ControlRequest? { try? parse(s).get() }

    @Test("exec SECONDS BASE64 is parsed strictly")
    func parsing() {
        #expect(parsed("exec 0 ZWNobw==") == .exec(base64Command: Array("ZWNobw==".utf8), timeoutSeconds: 0))
        #expect(parsed("exec 30 YQ==") == .exec(base64Command: Array("YQ==".utf8), timeoutSeconds: 30))
        for bad in ["exec", "exec 0", "exec ZWNobw==", "exec -1 YQ==", "exec 1234567 YQ==", "exec 0 YQ=", "exec 0 Y===",
                    "exec 0 YQ==YQ==", "exec 0 Y!Q=", "exec 0 ", "exec  0 YQ==", "exec 0 YQ== x"] {
            guard case .failure = parse(bad) else { Issue.record("accepted '\(bad)'"); continue }
        }
        // Empty, and over 64 KiB once decoded.
        #expect(parsed("exec 0 ====") == nil)
        let big = Base64.encode([UInt8](repeating: 0x61, count: ControlRequest.maxCommandBytes + 1))
        guard case .failure(let e) = ControlRequest.parse(Array("exec 0 ".utf8) + big) else { Issue.record("accepted 64 KiB + 1"); return }
        #expect(e.description.contains("longer than"))
        let fits = Base64.encode([UInt8](repeating: 0x61, count: ControlRequest.maxCommandBytes))
        #expect((try? ControlRequest.parse(Array("exec 999999 ".utf8) + fits).get()) == .exec(base64Command: fits, timeoutSeconds: 999999))
        #expect(ControlRequest.lengthLimit(startingWith: Array("info".utf8)) == ControlRequest.maxLength)
    }

    @Test("base64 matches Foundation's both ways, for every length up to 300")
    func base64() {
        let bytes = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        for n in 0...300 {
            let data = Array(bytes[0..<n])
            let ours = Base64.encode(data)
            #expect(String(decoding: ours, as: UTF8.self) == Data(data).base64EncodedString())
            var back: [UInt8] = []
            #expect(Base64.decode(ours, into: &back) && back == data)
        }
        var sink: [UInt8] = []
        #expect(!Base64.decode(Array("YQ=a".utf8), into: &sink))
        #expect(!Base64.decode(Array("YQ".utf8), into: &sink))
    }
}

@Suite("the stats request")
struct StatsRequestTests {
    @Test("stats takes no arguments")
    func parsing() {
        #expect((try? ControlRequest.parse(Array("stats".utf8)).get()) == .stats)
        for bad in ["stats 1", "stats ", " stats", "STATS"] {
            guard case .failure = ControlRequest.parse(Array(bad.utf8)) else { Issue.record("accepted '\(bad)'"); continue }
        }
    }
}
