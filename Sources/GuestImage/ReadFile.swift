import Glibc

/// Reads a whole regular file into memory.
///
/// The size is checked against `limit` before anything is allocated, so a
/// wrong path (a huge disk image, `/dev/zero`) fails fast instead of eating
/// the VMM's memory. Plain `read(2)` is used rather than `mmap`: the kernel
/// file is read once at start-up and then decompressed, and an mmap would only
/// add a SIGBUS risk if the file were truncated under us.
public func readWholeFile(_ path: String, limit: Int) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
        let code = errno
        switch code {
        case ENOENT, ENOTDIR: throw GuestImageError.fileNotFound(path: path)
        case EACCES, EPERM: throw GuestImageError.permissionDenied(path: path)
        default: throw GuestImageError.io(path: path, operation: "open", errno: code)
        }
    }
    defer { close(fd) }

    var st = stat()
    guard fstat(fd, &st) == 0 else {
        throw GuestImageError.io(path: path, operation: "fstat", errno: errno)
    }
    guard st.st_mode & S_IFMT == S_IFREG else {
        throw GuestImageError.notARegularFile(path: path)
    }
    let size = Int(st.st_size)
    guard size <= limit else {
        throw GuestImageError.fileTooLarge(path: path, size: size, limit: limit)
    }

    var failure: GuestImageError?
    let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
        if let base = buffer.baseAddress { LZ4.adviseHugePages(UnsafeMutableRawPointer(base), size) }
        var done = 0
        while done < size {
            let n = read(fd, buffer.baseAddress! + done, size - done)
            if n > 0 {
                done += n
            } else if n == 0 {
                // The file shrank between fstat and read; refuse rather than
                // hand a truncated kernel to the loader.
                failure = .io(path: path, operation: "read (file shrank while reading)", errno: EIO)
                break
            } else if errno != EINTR {
                failure = .io(path: path, operation: "read", errno: errno)
                break
            }
        }
        // UInt8 needs no deinitialisation, so reporting what was read is safe
        // even on failure; the array is discarded below.
        initialized = done
    }
    if let failure { throw failure }
    return bytes
}

func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}
