// OpenSSL through dlopen (see ctls.h for why). Only function pointers are
// used: a direct call to an OpenSSL function, or to one of its macros that
// expands to a call, would make the linker look for libssl, and the build
// fails, so nothing slips in by accident.
#define _GNU_SOURCE
#include "ctls.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define FUNCTIONS(X) \
    X(TLS_server_method) X(TLS_client_method) X(SSL_CTX_new) X(SSL_CTX_free) X(SSL_CTX_ctrl) \
    X(SSL_CTX_set_options) X(SSL_CTX_use_certificate_chain_file) X(SSL_CTX_use_PrivateKey_file) \
    X(SSL_CTX_check_private_key) X(SSL_CTX_load_verify_locations) X(SSL_CTX_set_default_verify_paths) \
    X(SSL_CTX_set_verify) X(SSL_new) X(SSL_free) X(SSL_set_fd) X(SSL_accept) X(SSL_connect) \
    X(SSL_read) X(SSL_write) X(SSL_shutdown) X(SSL_get_error) X(SSL_ctrl) X(SSL_set1_host) \
    X(SSL_get0_param) X(SSL_get_verify_result) X(ERR_get_error) X(ERR_error_string_n) \
    X(ERR_clear_error) X(X509_VERIFY_PARAM_set1_ip_asc) X(X509_verify_cert_error_string)

static struct {
#define FIELD(name) __typeof__(name) *name;
    FUNCTIONS(FIELD)
#undef FIELD
} ssl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[256];

static void load(void) {
    void *library = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(load_error, sizeof load_error, "TLS needs OpenSSL 3 (Debian's libssl3): %s", dlerror());
        return;
    }
    // dlsym on libssl's handle also finds libcrypto's symbols (a dependency).
#define RESOLVE(name) \
    if (!(ssl.name = (__typeof__(name) *)dlsym(library, #name))) { \
        snprintf(load_error, sizeof load_error, "libssl.so.3 has no %s", #name); return; }
    FUNCTIONS(RESOLVE)
#undef RESOLVE
}

static int loaded(char *error, size_t length) {
    pthread_once(&load_once, load);
    if (load_error[0]) { snprintf(error, length, "%s", load_error); return 0; }
    return 1;
}

// The first queued OpenSSL error, or `fallback`; clears the thread's queue.
static void reason(char *error, size_t length, const char *what, const char *fallback) {
    unsigned long code = ssl.ERR_get_error();
    char text[200] = "";
    if (code) ssl.ERR_error_string_n(code, text, sizeof text);
    snprintf(error, length, "%s: %s", what, code ? text : fallback);
    ssl.ERR_clear_error();
}

static ctls_context *new_context(int server, char *error, size_t length) {
    SSL_CTX *context = ssl.SSL_CTX_new(server ? ssl.TLS_server_method() : ssl.TLS_client_method());
    if (!context) { reason(error, length, "TLS", "cannot make a context"); return NULL; }
    ssl.SSL_CTX_ctrl(context, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL);
    // No renegotiation (a client could make the server redo handshakes at
    // will); HTTP's Content-Length detects a truncated body, so a peer that
    // closes without close_notify is an end of stream, not an error.
    ssl.SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    return (ctls_context *)context;
}

ctls_context *ctls_server_context(const char *certificate_chain, const char *private_key, char *error, size_t length) {
    if (!loaded(error, length)) return NULL;
    SSL_CTX *context = (SSL_CTX *)new_context(1, error, length);
    if (!context) return NULL;
    if (ssl.SSL_CTX_use_certificate_chain_file(context, certificate_chain) != 1) {
        reason(error, length, certificate_chain, "not a PEM certificate chain");
    } else if (ssl.SSL_CTX_use_PrivateKey_file(context, private_key, SSL_FILETYPE_PEM) != 1) {
        reason(error, length, private_key, "not a PEM private key");
    } else if (ssl.SSL_CTX_check_private_key(context) != 1) {
        reason(error, length, private_key, "does not match the certificate");
    } else {
        return (ctls_context *)context;
    }
    ssl.SSL_CTX_free(context);
    return NULL;
}

ctls_context *ctls_client_context(const char *ca_file, char *error, size_t length) {
    if (!loaded(error, length)) return NULL;
    SSL_CTX *context = (SSL_CTX *)new_context(0, error, length);
    if (!context) return NULL;
    int ok = ca_file ? ssl.SSL_CTX_load_verify_locations(context, ca_file, NULL)
                     : ssl.SSL_CTX_set_default_verify_paths(context);
    if (ok != 1) {
        reason(error, length, ca_file ? ca_file : "system CA certificates", "cannot be read as PEM certificates");
        ssl.SSL_CTX_free(context);
        return NULL;
    }
    ssl.SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
    return (ctls_context *)context;
}

void ctls_context_free(ctls_context *context) {
    if (context) ssl.SSL_CTX_free((SSL_CTX *)context);
}

ctls_stream *ctls_accept(ctls_context *context, int fd, char *error, size_t length) {
    SSL *s = ssl.SSL_new((SSL_CTX *)context);
    if (!s) { reason(error, length, "TLS", "out of memory"); return NULL; }
    ssl.SSL_set_fd(s, fd);
    int r = ssl.SSL_accept(s);
    if (r != 1) {
        int e = ssl.SSL_get_error(s, r);
        if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            snprintf(error, length, "TLS handshake: timed out");
            ssl.ERR_clear_error();
        } else {
            reason(error, length, "TLS handshake", e == SSL_ERROR_SYSCALL ? "connection closed" : "failed");
        }
        ssl.SSL_free(s);
        return NULL;
    }
    return (ctls_stream *)s;
}

ctls_stream *ctls_connect(ctls_context *context, int fd, const char *host, char *error, size_t length) {
    SSL *s = ssl.SSL_new((SSL_CTX *)context);
    if (!s) { reason(error, length, "TLS", "out of memory"); return NULL; }
    ssl.SSL_set_fd(s, fd);
    unsigned char address[16];
    int is_address = inet_pton(AF_INET, host, address) == 1 || inet_pton(AF_INET6, host, address) == 1;
    if (is_address) {
        ssl.X509_VERIFY_PARAM_set1_ip_asc(ssl.SSL_get0_param(s), host);
    } else {
        ssl.SSL_set1_host(s, host);
        ssl.SSL_ctrl(s, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, (void *)host);
    }
    int r = ssl.SSL_connect(s);
    if (r != 1) {
        long verify = ssl.SSL_get_verify_result(s);
        if (verify != X509_V_OK) {
            snprintf(error, length, "TLS: the server's certificate is not trusted: %s", ssl.X509_verify_cert_error_string(verify));
            ssl.ERR_clear_error();
        } else {
            reason(error, length, "TLS handshake", "failed (is it a TLS port?)");
        }
        ssl.SSL_free(s);
        return NULL;
    }
    return (ctls_stream *)s;
}

long ctls_read(ctls_stream *stream, void *buffer, size_t count) {
    int want = count > 1 << 30 ? 1 << 30 : (int)count;
    int r = ssl.SSL_read((SSL *)stream, buffer, want);
    if (r > 0) return r;
    int e = ssl.SSL_get_error((SSL *)stream, r);
    ssl.ERR_clear_error();
    return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

long ctls_write(ctls_stream *stream, const void *buffer, size_t count) {
    int want = count > 1 << 30 ? 1 << 30 : (int)count;
    int r = ssl.SSL_write((SSL *)stream, buffer, want);
    if (r > 0) return r;
    ssl.ERR_clear_error();
    return -1;
}

void ctls_close(ctls_stream *stream) {
    if (!stream) return;
    ssl.SSL_shutdown((SSL *)stream);
    ssl.ERR_clear_error();
    ssl.SSL_free((SSL *)stream);
}
