/*
 * http.c - the metrics/status HTTP server; see http.h.
 */
#include "obs/http.h"
#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_MAX_REQUEST 8192
#define HTTP_MAX_CONNS 64
#define HTTP_TIMEOUT_MS 5000

struct http_conn {
    struct http_server *srv;
    int fd;
    char req[HTTP_MAX_REQUEST];
    size_t req_len;
    struct buf out;
    size_t out_off;
    uint64_t timer;
    struct http_conn *prev, *next;
};

struct http_server {
    struct loop *loop;
    int fd;
    http_handler_fn *handler;
    void *ctx;
    struct http_conn *conns;
    unsigned nconns;
};

static void conn_free(struct http_conn *c)
{
    struct http_server *h = c->srv;
    loop_fd_del(h->loop, c->fd, LOOP_READABLE | LOOP_WRITABLE);
    if (c->timer)
        loop_timer_del(h->loop, c->timer);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    buf_release(&c->out);
    free(c);
}

static void on_writable(struct loop *l, int fd, void *data, int mask)
{
    struct http_conn *c = data;
    while (c->out_off < c->out.len) {
        ssize_t n = write(fd, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0)
            break;
        c->out_off += (size_t)n;
    }
    conn_free(c);
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

static void respond(struct http_conn *c, int status, const char *ctype,
                    const struct buf *body)
{
    buf_reset(&c->out);
    buf_appendf(&c->out,
                "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                status, reason_of(status), ctype, body ? body->len : 0);
    if (body && body->len)
        buf_append(&c->out, body->data, body->len);
    loop_fd_del(c->srv->loop, c->fd, LOOP_READABLE);
    if (loop_fd_add(c->srv->loop, c->fd, LOOP_WRITABLE, on_writable, c) != 0)
        conn_free(c);
}

static void handle(struct http_conn *c)
{
    char *sp1 = memchr(c->req, ' ', c->req_len);
    char *eol = memchr(c->req, '\r', c->req_len);
    if (!sp1 || !eol || sp1 > eol) {
        respond(c, 400, "text/plain", NULL);
        return;
    }
    if ((size_t)(sp1 - c->req) != 3 || memcmp(c->req, "GET", 3) != 0) {
        respond(c, 405, "text/plain", NULL);
        return;
    }
    char *path = sp1 + 1;
    char *sp2 = memchr(path, ' ', (size_t)(eol - path));
    if (!sp2) {
        respond(c, 400, "text/plain", NULL);
        return;
    }
    *sp2 = '\0';
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    struct buf body = BUF_INIT(64u << 20);
    const char *ctype = "text/plain; charset=utf-8";
    int status = c->srv->handler(c->srv->ctx, path, &body, &ctype);
    respond(c, status, ctype, &body);
    buf_release(&body);
}

static void on_readable(struct loop *l, int fd, void *data, int mask)
{
    struct http_conn *c = data;
    for (;;) {
        if (c->req_len == sizeof c->req - 1) {
            respond(c, 400, "text/plain", NULL);
            return;
        }
        ssize_t n = read(fd, c->req + c->req_len, sizeof c->req - 1 - c->req_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            conn_free(c);
            return;
        }
        c->req_len += (size_t)n;
        c->req[c->req_len] = '\0';
        if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
            handle(c);
            return;
        }
    }
}

static int64_t on_timeout(struct loop *l, uint64_t id, void *data)
{
    struct http_conn *c = data;
    c->timer = 0;
    conn_free(c);
    return LOOP_TIMER_DONE;
}

static void on_accept(struct loop *l, int fd, void *data, int mask)
{
    struct http_server *h = data;
    for (;;) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
            return;
        if (h->nconns >= HTTP_MAX_CONNS) {
            close(cfd);
            continue;
        }
        struct http_conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(cfd);
            return;
        }
        c->srv = h;
        c->fd = cfd;
        buf_init(&c->out, 64u << 20);
        c->next = h->conns;
        if (h->conns)
            h->conns->prev = c;
        h->conns = c;
        h->nconns++;
        if (loop_fd_add(l, cfd, LOOP_READABLE, on_readable, c) != 0) {
            conn_free(c);
            continue;
        }
        c->timer = loop_timer_add(l, HTTP_TIMEOUT_MS, on_timeout, c);
    }
}

int http_server_new(struct loop *l, int fd, http_handler_fn *handler, void *ctx,
                    struct http_server **out, struct weir_errmsg *e)
{
    struct http_server *h = calloc(1, sizeof *h);
    if (!h) {
        close(fd);
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    }
    h->loop = l;
    h->fd = fd;
    h->handler = handler;
    h->ctx = ctx;
    int rc = loop_fd_add(l, fd, LOOP_READABLE, on_accept, h);
    if (rc) {
        close(fd);
        free(h);
        return errmsg_set(e, rc, "cannot watch the metrics listener: %s",
                          weir_strerror(rc));
    }
    *out = h;
    return 0;
}

void http_server_free(struct http_server *h)
{
    if (!h)
        return;
    while (h->conns)
        conn_free(h->conns);
    loop_fd_del(h->loop, h->fd, LOOP_READABLE);
    close(h->fd);
    free(h);
}
