import Glibc

/// Unix stream sockets for the host's interfaces: a run's control,
/// xenstore and vsock sockets, xenod's API and the clients of both. Glibc
/// only: the per-guest VMM links this.
public enum UnixSocket {
    /// A listening socket at `path`, born mode 0600 (only the host's owner of
    /// the run may talk to it). A stale socket file there is replaced; any
    /// other file is left alone and refused.
    public static func listen(path: String, what: String) throws(UnixSocketError) -> Int32 {
        guard path.utf8.count < 108 else { throw UnixSocketError("\(what) path '\(path)' is too long") }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else { throw UnixSocketError("\(what) \(path): exists and is not a socket") }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw UnixSocketError("\(what): \(String(cString: strerror(errno)))") }
        var address = address(path)
        let old = umask(0o177)          // the socket is born 0600
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        guard bound == 0, Glibc.listen(fd, 16) == 0 else {
            let e = errno
            close(fd)
            throw UnixSocketError("\(what) \(path): \(String(cString: strerror(e)))")
        }
        return fd
    }

    /// A connection to the socket at `path`.
    public static func connect(path: String) throws(UnixSocketError) -> Int32 {
        guard path.utf8.count < 108 else { throw UnixSocketError("socket path '\(path)' is too long") }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw UnixSocketError("socket: \(String(cString: strerror(errno)))") }
        var address = address(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let e = errno
            close(fd)
            throw UnixSocketError("cannot connect to \(path): \(String(cString: strerror(e)))")
        }
        return fd
    }

    private static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        return address
    }

    /// Writes all of `bytes`; false if the peer went away. MSG_NOSIGNAL: a
    /// client that hangs up must not kill the VMM with SIGPIPE.
    public static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; return false }
            off += n
        }
        return true
    }

    /// Gives up on a client that takes nothing for `seconds`.
    public static func setSendTimeout(_ fd: Int32, seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Gives up on a client that sends nothing for `seconds`.
    public static func setReceiveTimeout(_ fd: Int32, seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
}

/// Why a socket could not be made or reached, in one line.
public struct UnixSocketError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
