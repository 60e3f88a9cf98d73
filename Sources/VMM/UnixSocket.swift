import Glibc

/// Unix stream sockets for the host-side interfaces of a run (the xenstore
/// socket, the control socket).
enum UnixSocket {
    /// Accepts clients of `listener` on a thread of its own, for the life of
    /// the process, handing each (close-on-exec) to `client` on that thread.
    static func acceptForever(_ listener: Int32, _ client: @escaping @Sendable (Int32) -> Void) {
        spawnThread {
            while true {
                let fd = accept(listener, nil, nil)
                if fd < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return
                }
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                client(fd)
            }
        }
    }

    /// A listening socket at `path`, born mode 0600 (only the host's owner of
    /// the run may talk to it). A stale socket file there is replaced; any
    /// other file is left alone and refused.
    static func listen(path: String, what: String) throws(RunError) -> Int32 {
        guard path.utf8.count < 108 else { throw RunError("\(what) path '\(path)' is too long") }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else { throw RunError("\(what) \(path): exists and is not a socket") }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RunError("\(what): \(String(cString: strerror(errno)))") }
        var address = address(path)
        let old = umask(0o177)          // the socket is born 0600
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        guard bound == 0, Glibc.listen(fd, 16) == 0 else {
            let e = errno
            close(fd)
            throw RunError("\(what) \(path): \(String(cString: strerror(e)))")
        }
        return fd
    }

    /// A connection to the socket at `path`.
    static func connect(path: String) throws(RunError) -> Int32 {
        guard path.utf8.count < 108 else { throw RunError("socket path '\(path)' is too long") }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RunError("socket: \(String(cString: strerror(errno)))") }
        var address = address(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let e = errno
            close(fd)
            throw RunError("cannot connect to \(path): \(String(cString: strerror(e)))")
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
    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; return false }
            off += n
        }
        return true
    }

    /// Gives up on a client that takes nothing for `seconds`.
    static func setSendTimeout(_ fd: Int32, seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Gives up on a client that sends nothing for `seconds`.
    static func setReceiveTimeout(_ fd: Int32, seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
}
