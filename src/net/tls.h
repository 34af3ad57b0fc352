/*
 * tls.h - TLS for ingest connections and for `weir send`, over OpenSSL.
 *
 * The only file that includes OpenSSL's headers is tls.c (as curl keeps
 * each TLS library in one file of lib/vtls/). Two objects:
 *
 *   struct tls_ctx  what every connection of one side shares: protocol
 *                   settings, certificate and key, the CA that verifies
 *                   the peer. weir serve loads one per pipeline at start
 *                   (a bad file stops the start with a message naming
 *                   it); it is read-only afterwards, so the worker
 *                   threads share it without a lock.
 *   struct tls      one connection: a non-blocking TLS session on an fd
 *                   the caller owns (tls never closes it).
 *
 * Settings (both sides): TLS 1.2 minimum; TLS 1.2 ciphers limited to
 * ECDHE/DHE with AES-GCM or ChaCha20-Poly1305 (Mozilla's "intermediate"
 * list), TLS 1.3 with OpenSSL's defaults; renegotiation off; no session
 * tickets or cache (senders reconnect rarely, and a server that never
 * writes after the handshake is simpler to reason about); a peer that
 * closes TCP without a close_notify is treated as a normal end of stream
 * (the framer already turns a cut record into a quarantined truncated
 * one). Buffers are released while a connection is idle, so a TLS
 * connection costs about 25 KiB (measured with a client certificate),
 * plus up to two 16 KiB record buffers while bytes are in flight.
 *
 * Non-blocking calls return WEIR_EAGAIN with *want set to LOOP_READABLE
 * or LOOP_WRITABLE: call again when the fd is ready for that (a read may
 * need a write, e.g. for a TLS 1.3 key update, and the other way round).
 * Other failures return WEIR_EIO (protocol error, failed verification,
 * reset) and tls_error() says why in words.
 *
 * Certificates are read once; replacing the files needs a restart.
 * docs/network.md, "TLS", describes the whole.
 */
#ifndef WEIR_NET_TLS_H
#define WEIR_NET_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "core/error.h"

struct tls_ctx;
struct tls;

/*
 * A server context: cert (PEM, the server's certificate, optionally
 * followed by intermediates), key (PEM, unencrypted private key matching
 * cert), ca (PEM CA certificates, or NULL). With ca, clients must present
 * a certificate that verifies against it, or the handshake fails. Errors
 * name the file and the problem ("/etc/weir/key.pem: does not match the
 * certificate /etc/weir/cert.pem"); what names the config key prefix for
 * messages ("pipeline t: source.tls"), may be NULL.
 */
int tls_ctx_new_server(const char *cert, const char *key, const char *ca,
                       const char *what, struct tls_ctx **out, struct weir_errmsg *e);

/*
 * A client context (weir send). ca: verify the server against these CAs
 * (NULL: the system's default CAs); cert and key: a client certificate
 * (both or neither); insecure: do not verify the server at all.
 */
int tls_ctx_new_client(const char *ca, const char *cert, const char *key, int insecure,
                       struct tls_ctx **out, struct weir_errmsg *e);

/* Free a context (connections made from it keep it alive until they are
 * freed). Safe on NULL. */
void tls_ctx_free(struct tls_ctx *c);

/* A session on fd (a connected, usually non-blocking socket). host: for a
 * client, the name or address the server's certificate must match (also
 * sent as SNI if it is a name); NULL for a server. WEIR_ENOMEM on failure. */
int tls_new(struct tls_ctx *ctx, int fd, const char *host, struct tls **out);

/* Free the session (the fd stays open). Safe on NULL. */
void tls_free(struct tls *t);

/* Advance the handshake: 0 when complete, WEIR_EAGAIN (*want), or
 * WEIR_EIO (tls_error says why: "wrong version number" for a plain-TCP
 * client, "peer did not return a certificate", a verification error). */
int tls_handshake(struct tls *t, int *want);

/* Read decrypted bytes: > 0 bytes read; 0 the peer ended the stream
 * (close_notify, or TCP EOF); WEIR_EAGAIN (*want); WEIR_EIO. */
ssize_t tls_read(struct tls *t, void *buf, size_t n, int *want);

/* Write: > 0 bytes written (all of n on a blocking fd); WEIR_EAGAIN
 * (*want); WEIR_EIO (also when the peer is gone). */
ssize_t tls_write(struct tls *t, const void *buf, size_t n, int *want);

/* 1 if the session holds bytes already taken from the socket (decrypted
 * or not) that tls_read would return without the fd becoming readable:
 * epoll cannot tell, so the caller must read again on its own. */
int tls_pending(const struct tls *t);

/* Send close_notify once (best effort: never blocks on a non-blocking fd,
 * ignores failures). After it, only tls_free. */
void tls_close(struct tls *t);

/* Why the last call failed, in words (empty if it did not). */
const char *tls_error(const struct tls *t);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" after the handshake, for log lines. */
const char *tls_describe(const struct tls *t, char *out, size_t cap);

/* Free OpenSSL's process-wide state. Call once at exit, after every
 * context and session is freed, so leak checkers see only weir's own
 * leaks. Nothing TLS may be used afterwards. */
void tls_global_cleanup(void);

#endif
