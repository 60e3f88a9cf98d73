import Glibc

/// A failed KVM operation: which request failed and the errno it returned.
public struct KVMError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let errno: Int32

    public init(_ operation: String, errno: Int32 = Glibc.errno) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        errno == 0 ? operation : "\(operation): \(String(cString: strerror(errno)))"
    }
}
