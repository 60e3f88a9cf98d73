/// A xenstore failure as it travels on the wire: xenstored answers a failed
/// request with an `XS_ERROR` message whose payload is the errno *name*
/// ("ENOENT\0"), not its number, so the names are the values here.
///
/// The cases are those of `xsd_errors` in `xen/io/xs_wire.h`, in its order.
public enum XenStoreError: String, Error, Sendable, CaseIterable, CustomStringConvertible {
    case EINVAL
    case EACCES
    case EEXIST
    case EISDIR
    case ENOENT
    case ENOMEM
    case ENOSPC
    case EIO
    case ENOTEMPTY
    case ENOSYS
    case EROFS
    case EBUSY
    case EAGAIN
    case EISCONN
    case E2BIG
    case EPERM

    /// The `XS_ERROR` payload: the name and its terminating NUL.
    public var wirePayload: [UInt8] { Array(rawValue.utf8) + [0] }

    public var description: String { rawValue }
}
