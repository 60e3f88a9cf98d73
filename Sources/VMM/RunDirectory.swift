import Glibc

/// Where running guests are found by name: `/run/xenolith` (or
/// `$XENOLITH_RUN_DIR`), holding `NAME.ctl`, the control socket of the guest
/// run with `--name NAME`, and `NAME.lock`, which that run holds locked
/// (flock) for its whole life so that a second guest of the same name is
/// refused. The socket is removed at exit; the empty lock file stays.
public enum RunDirectory {
    public static var path: String {
        if let p = getenv("XENOLITH_RUN_DIR"), p.pointee != 0 { return String(cString: p) }
        return "/run/xenolith"
    }

    public static func controlPath(_ name: String) -> String { path + "/" + name + ".ctl" }
    static func lockPath(_ name: String) -> String { path + "/" + name + ".lock" }

    /// Why `name` cannot name a running guest (it becomes a file name), or nil.
    public static func checkName(_ name: String) -> String? {
        let ok = name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
                || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".")
        }
        guard !name.isEmpty, name.utf8.count <= 64, ok, !name.hasPrefix(".") else {
            return "a guest name is 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
        }
        return nil
    }

    enum ClaimFailure: Error {
        /// Another live run holds the name.
        case taken(String)
        /// The directory or lock file cannot be made (not root, a read-only /run).
        case unavailable(String)
    }

    /// Claims `name` for this process: the run directory exists, no other
    /// live run holds the name. Returns the lock's descriptor (kept open
    /// until the process exits), or why not.
    static func claim(_ name: String) -> Result<Int32, ClaimFailure> {
        let dir = path
        if mkdir(dir, 0o755) != 0 && errno != EEXIST {
            return .failure(.unavailable("cannot create \(dir): \(String(cString: strerror(errno)))"))
        }
        let fd = open(lockPath(name), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return .failure(.unavailable("cannot open \(lockPath(name)): \(String(cString: strerror(errno)))")) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            close(fd)
            if e == EWOULDBLOCK {
                return .failure(.taken("a guest named '\(name)' is already running (its control socket is \(controlPath(name)))"))
            }
            return .failure(.unavailable("cannot lock \(lockPath(name)): \(String(cString: strerror(e)))"))
        }
        return .success(fd)
    }
}
