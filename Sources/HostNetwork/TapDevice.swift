import CNet
import Glibc

/// A guest NIC's host end: a TAP device, optionally enslaved to a Linux
/// bridge. Frames are plain Ethernet (no packet-information header);
/// the fd is non-blocking so a backend thread can poll it with its wake-ups.
public final class TapDevice: @unchecked Sendable {
    public let name: String
    public let fd: Int32

    /// Opens TAP `name` (created if missing; "" lets the kernel name it),
    /// sets it up and, with `bridge`, adds it to that bridge.
    public init(name: String, bridge: String? = nil) throws(NetworkError) {
        guard name.utf8.count < 16 else { throw NetworkError("TAP name '\(name)' is longer than 15 characters") }
        var actual = [CChar](repeating: 0, count: 16)
        let fd = cnet_tap_open(name, &actual)
        guard fd >= 0 else { throw NetworkError("TAP '\(name)': \(String(cString: strerror(-fd)))") }
        self.fd = fd
        self.name = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if let bridge {
            let rc = cnet_bridge_add(bridge, self.name)
            guard rc == 0 else {
                close(fd)
                throw NetworkError("bridge '\(bridge)': cannot add \(self.name): \(String(cString: strerror(-rc)))")
            }
        }
        let up = cnet_link_up(self.name)
        guard up == 0 else { close(fd); throw NetworkError("TAP \(self.name): cannot set it up: \(String(cString: strerror(-up)))") }
    }

    deinit { close(fd) }

    /// Reads one frame; nil when none is waiting.
    public func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            return nil
        }
    }

    /// Sends one frame; false if the host dropped it.
    @discardableResult
    public func send(_ frame: UnsafeRawBufferPointer) -> Bool {
        while true {
            let n = write(fd, frame.baseAddress, frame.count)
            if n >= 0 { return n == frame.count }
            if errno == EINTR { continue }
            return false
        }
    }
}

/// A MAC address: from configuration ("00:16:3e:12:34:56") or made up in
/// Xen's OUI 00:16:3e, as xl does.
public struct MACAddress: Sendable, Equatable, CustomStringConvertible {
    public var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    public init?(_ text: String) {
        let parts = text.split(separator: ":")
        guard parts.count == 6 else { return nil }
        var b = [UInt8]()
        for p in parts {
            guard p.count == 2, let v = UInt8(p, radix: 16) else { return nil }
            b.append(v)
        }
        guard b[0] & 1 == 0 else { return nil }      // not a multicast address
        bytes = (b[0], b[1], b[2], b[3], b[4], b[5])
    }

    /// 00:16:3e plus three random bytes.
    public static func random() -> MACAddress {
        var r = UInt32.random(in: 0...UInt32.max)
        return MACAddress("00:16:3e:" + [r & 0x7f, (r >> 8) & 0xff, (r >> 16) & 0xff]
            .map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":"))!
    }

    public var description: String {
        [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5]
            .map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }

    public static func == (a: MACAddress, b: MACAddress) -> Bool { a.description == b.description }
}

/// A host network set-up failed.
public struct NetworkError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
