// TLS for xenod's TCP listener and for `xeno`'s client of it, over
// OpenSSL's libssl.so.3 loaded with dlopen when TLS is first used. Why
// dlopen: `xeno` is also the per-guest VMM, which must stay small, and a
// linked libssl and libcrypto would be mapped into every guest's process;
// this way only a process that speaks TLS loads them. Why OpenSSL (Debian's
// libssl3, headers from libssl-dev) and not swift-nio-ssl: it is already on
// every Debian host, it is the TLS stack a fleet's operators patch, and it
// costs CI no build of BoringSSL from a clean clone.
//
// Every function returns NULL or a negative number on failure and writes a
// one-line reason into `error` (at most `length` bytes, NUL-terminated).
#ifndef CTLS_H
#define CTLS_H

#include <stddef.h>

typedef struct ctls_context ctls_context;   // an SSL_CTX
typedef struct ctls_stream ctls_stream;     // an SSL on a connected socket

// A server context: certificate chain and private key from PEM files; TLS 1.2 or later.
ctls_context *ctls_server_context(const char *certificate_chain, const char *private_key, char *error, size_t length);
// A client context that verifies the server against the CA certificates in
// `ca_file` (PEM), or the system's when it is NULL; TLS 1.2 or later.
ctls_context *ctls_client_context(const char *ca_file, char *error, size_t length);
void ctls_context_free(ctls_context *context);

// The server side of a handshake on `fd` (blocking; the socket's timeouts bound it).
ctls_stream *ctls_accept(ctls_context *context, int fd, char *error, size_t length);
// The client side: `host` is checked against the certificate (a DNS name or an IP address) and sent as SNI.
ctls_stream *ctls_connect(ctls_context *context, int fd, const char *host, char *error, size_t length);
// Bytes read (> 0), 0 at the peer's end of stream, -1 on an error or timeout.
long ctls_read(ctls_stream *stream, void *buffer, size_t count);
// Bytes written (> 0), -1 on an error.
long ctls_write(ctls_stream *stream, const void *buffer, size_t count);
// Sends close_notify (without waiting for the peer's) and frees the stream; the fd stays open.
void ctls_close(ctls_stream *stream);

#endif
