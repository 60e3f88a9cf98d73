/// Xen's errno values (public errno.h), returned negated in rax.
enum XenErrno {
    static let EPERM: Int64 = 1
    static let ENOENT: Int64 = 2
    static let ESRCH: Int64 = 3
    static let EFAULT: Int64 = 14
    static let EBUSY: Int64 = 16
    static let EEXIST: Int64 = 17
    static let EINVAL: Int64 = 22
    static let ENOSPC: Int64 = 28
    static let ENOSYS: Int64 = 38
    static let ENODATA: Int64 = 61
    static let EALREADY: Int64 = 114
}
