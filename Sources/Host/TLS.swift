import CTLS
import Glibc

/// xenod's TLS: a server context from PEM files, and the TLS side of one
/// accepted connection. OpenSSL through the CTLS shim (ctls.h says why
/// OpenSSL and why loaded on first use).
final class TLSServerContext: @unchecked Sendable {
    // An SSL_CTX: OpenSSL 3 contexts may be shared by threads once set up.
    let context: OpaquePointer

    init(certificateChain: String, privateKey: String) throws {
        var error = [CChar](repeating: 0, count: 512)
        guard let context = ctls_server_context(certificateChain, privateKey, &error, error.count) else {
            throw HostError(tlsErrorText(error))
        }
        self.context = context
    }

    deinit { ctls_context_free(context) }

    /// The server's handshake on `fd`, bounded by the socket's receive
    /// timeout; nil (with OpenSSL's reason) when the peer does not speak TLS.
    func accept(_ fd: Int32) -> Result<TLSStream, HostError> {
        var error = [CChar](repeating: 0, count: 256)
        guard let stream = ctls_accept(context, fd, &error, error.count) else {
            return .failure(HostError(tlsErrorText(error)))
        }
        return .success(TLSStream(stream))
    }
}

/// One TLS connection: the byte stream HTTPServer reads and writes.
final class TLSStream: HTTPStream {
    private var stream: OpaquePointer?

    init(_ stream: OpaquePointer) { self.stream = stream }

    func receive(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let stream else { return -1 }
        return ctls_read(stream, buffer.baseAddress, buffer.count)
    }

    func send(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard let stream else { return -1 }
        return ctls_write(stream, bytes.baseAddress, bytes.count)
    }

    /// close_notify, then the TLS state goes; the socket is the server's to close.
    func finish() {
        if let stream { ctls_close(stream) }
        stream = nil
    }
}

/// The NUL-terminated reason CTLS wrote into `buffer`.
func tlsErrorText(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
