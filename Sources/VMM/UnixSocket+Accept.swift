import Glibc
import UnixSockets

extension UnixSocket {
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

}
