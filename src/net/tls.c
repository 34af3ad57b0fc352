/*
 * tls.c - the OpenSSL backend of tls.h; the only file that includes it.
 *
 * OpenSSL keeps its errors in a per-thread queue. Every call here clears
 * the queue first and turns what is left after a failure into a sentence
 * in the session (t->err), so a worker never reads another connection's
 * stale error.
 */
#include "net/tls.h"
#include "net/loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* Mozilla's "intermediate" TLS 1.2 list (forward secrecy, AEAD only). */
#define TLS12_CIPHERS                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"               \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"               \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"               \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"                     \
    "DHE-RSA-CHACHA20-POLY1305"

/* A client certificate chain larger than this fails the handshake: it
 * bounds what an unauthenticated peer makes the server buffer. */
#define MAX_CERT_LIST (32u << 10)

struct tls_ctx {
    SSL_CTX *ssl;
};

struct tls {
    SSL *ssl;
    int closed;
    char err[256];
};

/* The sentence for OpenSSL's error queue (the first error, the most
 * specific), or fallback if the queue is empty. */
static void queue_text(char *out, size_t cap, const char *fallback)
{
    unsigned long code = ERR_get_error();
    if (!code) {
        snprintf(out, cap, "%s", fallback);
        return;
    }
    const char *reason = ERR_reason_error_string(code);
    if (reason)
        snprintf(out, cap, "%s", reason);
    else
        ERR_error_string_n(code, out, cap);
    ERR_clear_error();
}

/* Never prompt on a terminal for a key's passphrase: an encrypted key
 * fails to load with a message instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return 0;
}

static SSL_CTX *ctx_base(int server, struct weir_errmsg *e)
{
    SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!c) {
        errmsg_set(e, WEIR_ENOMEM, "TLS: cannot create a context (out of memory)");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(c, TLS12_CIPHERS) != 1) {
        SSL_CTX_free(c);
        errmsg_set(e, WEIR_EINVAL, "TLS: OpenSSL accepts none of the TLS 1.2 ciphers");
        return NULL;
    }
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(c, 0);
    SSL_CTX_set_max_cert_list(c, MAX_CERT_LIST);
    SSL_CTX_set_default_passwd_cb(c, no_passphrase);
    /* Fewer read syscalls: OpenSSL reads what the socket has, not one
     * record header at a time. The caller handles what it then holds
     * (tls_pending). */
    SSL_CTX_set_read_ahead(c, 1);
    return c;
}

/* A file that cannot be opened: say so with errno's words, before
 * OpenSSL's vaguer "system lib". */
static int unreadable(const char *what, const char *key, const char *path,
                      struct weir_errmsg *e)
{
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        return 0;
    }
    return errmsg_set(e, WEIR_ECONFIG, "%s%s%s: %s: %s", what ? what : "", what ? "." : "",
                      key, path, strerror(errno));
}

static int load_pair(SSL_CTX *c, const char *cert, const char *key, const char *what,
                     struct weir_errmsg *e)
{
    char why[256];
    int rc;
    if ((rc = unreadable(what, "cert", cert, e)) || (rc = unreadable(what, "key", key, e)))
        return rc;
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(c, cert) != 1) {
        queue_text(why, sizeof why, "not a PEM certificate");
        return errmsg_set(e, WEIR_ECONFIG, "%s%scert: %s: cannot load the certificate: %s",
                          what ? what : "", what ? "." : "", cert, why);
    }
    if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1) {
        unsigned long code = ERR_peek_last_error();
        if (ERR_GET_LIB(code) == ERR_LIB_X509 &&
            ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            return errmsg_set(e, WEIR_ECONFIG,
                              "%s%skey: %s: does not match the certificate %s",
                              what ? what : "", what ? "." : "", key, cert);
        }
        queue_text(why, sizeof why, "not a PEM private key");
        return errmsg_set(e, WEIR_ECONFIG,
                          "%s%skey: %s: cannot load the private key: %s (it must be PEM "
                          "and not encrypted)", what ? what : "", what ? "." : "", key, why);
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        ERR_clear_error();
        return errmsg_set(e, WEIR_ECONFIG, "%s%skey: %s: does not match the certificate %s",
                          what ? what : "", what ? "." : "", key, cert);
    }
    return 0;
}

static int load_ca(SSL_CTX *c, const char *ca, const char *what, struct weir_errmsg *e)
{
    char why[256];
    int rc = unreadable(what, "ca", ca, e);
    if (rc)
        return rc;
    ERR_clear_error();
    if (SSL_CTX_load_verify_locations(c, ca, NULL) != 1) {
        queue_text(why, sizeof why, "no PEM certificate in it");
        return errmsg_set(e, WEIR_ECONFIG, "%s%sca: %s: cannot load the CA certificates: %s",
                          what ? what : "", what ? "." : "", ca, why);
    }
    return 0;
}

int tls_ctx_new_server(const char *cert, const char *key, const char *ca, const char *what,
                       struct tls_ctx **out, struct weir_errmsg *e)
{
    struct tls_ctx *t = calloc(1, sizeof *t);
    int rc;
    if (!t)
        return errmsg_set(e, WEIR_ENOMEM, "TLS: out of memory");
    if (!(t->ssl = ctx_base(1, e))) {
        rc = e ? e->code : WEIR_ENOMEM;
        goto fail;
    }
    if ((rc = load_pair(t->ssl, cert, key, what, e)) != 0)
        goto fail;
    if (ca) {
        if ((rc = load_ca(t->ssl, ca, what, e)) != 0)
            goto fail;
        /* Tell clients which CAs we accept (what s_client -cert picks by). */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        if (names)
            SSL_CTX_set_client_CA_list(t->ssl, names);
        ERR_clear_error();
        SSL_CTX_set_verify(t->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    *out = t;
    return 0;
fail:
    tls_ctx_free(t);
    return rc;
}

int tls_ctx_new_client(const char *ca, const char *cert, const char *key, int insecure,
                       struct tls_ctx **out, struct weir_errmsg *e)
{
    struct tls_ctx *t = calloc(1, sizeof *t);
    int rc;
    if (!t)
        return errmsg_set(e, WEIR_ENOMEM, "TLS: out of memory");
    if (!(t->ssl = ctx_base(0, e))) {
        rc = e ? e->code : WEIR_ENOMEM;
        goto fail;
    }
    if (cert && (rc = load_pair(t->ssl, cert, key, NULL, e)) != 0)
        goto fail;
    if (insecure) {
        SSL_CTX_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
    } else {
        if (ca) {
            if ((rc = load_ca(t->ssl, ca, NULL, e)) != 0)
                goto fail;
        } else if (SSL_CTX_set_default_verify_paths(t->ssl) != 1) {
            ERR_clear_error();
        }
        SSL_CTX_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
    }
    *out = t;
    return 0;
fail:
    tls_ctx_free(t);
    return rc;
}

void tls_ctx_free(struct tls_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ssl);
    free(c);
}

int tls_new(struct tls_ctx *ctx, int fd, const char *host, struct tls **out)
{
    struct tls *t = calloc(1, sizeof *t);
    if (!t)
        return WEIR_ENOMEM;
    ERR_clear_error();
    if (!(t->ssl = SSL_new(ctx->ssl)) || SSL_set_fd(t->ssl, fd) != 1)
        goto fail;
    if (host) {
        unsigned char ip[16];
        X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
        if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1) {
            if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1)
                goto fail;
        } else if (SSL_set_tlsext_host_name(t->ssl, host) != 1 ||
                   SSL_set1_host(t->ssl, host) != 1) {
            goto fail;
        }
        SSL_set_connect_state(t->ssl);
    } else {
        SSL_set_accept_state(t->ssl);
    }
    *out = t;
    return 0;
fail:
    ERR_clear_error();
    tls_free(t);
    return WEIR_ENOMEM;
}

void tls_free(struct tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

/* Map the result r of an SSL call: WEIR_EAGAIN with *want, 0 for a clean
 * end of stream, or WEIR_EIO with t->err filled. */
static int outcome(struct tls *t, int r, int *want)
{
    int err = SSL_get_error(t->ssl, r);
    switch (err) {
    case SSL_ERROR_WANT_READ:
        *want = LOOP_READABLE;
        return WEIR_EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        *want = LOOP_WRITABLE;
        return WEIR_EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            snprintf(t->err, sizeof t->err, "%s",
                     errno ? strerror(errno) : "connection closed during the handshake");
            return WEIR_EIO;
        }
        break;
    default:
        break;
    }
    queue_text(t->err, sizeof t->err, "protocol error");
    if (SSL_get_verify_result(t->ssl) != X509_V_OK) {
        /* "certificate verify failed" says less than the reason. */
        size_t n = strlen(t->err);
        snprintf(t->err + n, sizeof t->err - n, " (%s)",
                 X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
    }
    return WEIR_EIO;
}

int tls_handshake(struct tls *t, int *want)
{
    t->err[0] = '\0';
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return 0;
    int rc = outcome(t, r, want);
    if (rc == 0) {
        snprintf(t->err, sizeof t->err, "connection closed during the handshake");
        rc = WEIR_EIO;
    }
    return rc;
}

ssize_t tls_read(struct tls *t, void *buf, size_t n, int *want)
{
    size_t got = 0;
    t->err[0] = '\0';
    ERR_clear_error();
    errno = 0;
    if (SSL_read_ex(t->ssl, buf, n, &got) == 1)
        return (ssize_t)got;
    return outcome(t, 0, want);
}

ssize_t tls_write(struct tls *t, const void *buf, size_t n, int *want)
{
    size_t put = 0;
    t->err[0] = '\0';
    ERR_clear_error();
    errno = 0;
    if (SSL_write_ex(t->ssl, buf, n, &put) == 1)
        return (ssize_t)put;
    int rc = outcome(t, 0, want);
    if (rc == 0) {
        snprintf(t->err, sizeof t->err, "the peer closed the connection");
        rc = WEIR_EIO;
    }
    return rc;
}

int tls_pending(const struct tls *t)
{
    return SSL_has_pending(t->ssl);
}

void tls_close(struct tls *t)
{
    if (!t || t->closed)
        return;
    t->closed = 1;
    ERR_clear_error();
    /* One call sends our close_notify; we do not wait for the peer's. */
    if (SSL_is_init_finished(t->ssl))
        SSL_shutdown(t->ssl);
    ERR_clear_error();
}

const char *tls_error(const struct tls *t)
{
    return t->err;
}

const char *tls_describe(const struct tls *t, char *out, size_t cap)
{
    snprintf(out, cap, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
    return out;
}

void tls_global_cleanup(void)
{
    OPENSSL_cleanup();
}
