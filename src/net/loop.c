/*
 * loop.c - the event loop on epoll; see loop.h.
 *
 * Like Redis's ae.c: a table of file events indexed by fd (grown on
 * demand, since fd numbers are process-wide and another thread's sockets
 * push them up), a min-heap of timers ordered by (deadline, id), and an
 * eventfd that other threads write to wake the loop and hand it work.
 * There is one backend (epoll), so it lives in the few functions marked
 * "backend" below rather than in a file of its own.
 */
#include "net/loop.h"
#include "core/log.h"
#include "core/wtime.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Ready events taken per epoll_wait. More stay queued for the next call. */
#define LOOP_MAX_EVENTS 512

struct fd_event {
    int mask;
    loop_fd_fn *rfn;
    loop_fd_fn *wfn;
    void *data;
};

struct timer {
    int64_t when; /* monotonic ns */
    uint64_t id;
    loop_timer_fn *fn;
    void *data;
};

struct post {
    struct post *next;
    loop_call_fn *fn;
    void *data;
};

struct loop {
    int epfd;
    int wakefd;                /* eventfd: other threads write, we read */
    struct fd_event *fds;      /* indexed by fd */
    int nfds;                  /* entries in fds */
    struct epoll_event events[LOOP_MAX_EVENTS];

    struct timer *heap;
    size_t nheap, capheap;
    uint64_t next_id;
    uint64_t running_id;       /* timer whose callback is running, or 0 */
    int running_deleted;       /* ... and it cancelled itself */
    int64_t timers_cutoff;     /* last processing instant: new deadlines go past it */

    pthread_mutex_t post_lock;
    struct post *post_head, *post_tail;

    _Atomic int stop;
    int64_t now_ms;
    loop_call_fn *before_sleep;
    void *before_sleep_data;
};

/* --- backend: epoll ----------------------------------------------------- */

static int backend_update(struct loop *l, int fd, int old_mask, int new_mask)
{
    struct epoll_event ev = {0};
    ev.data.fd = fd;
    if (new_mask & LOOP_READABLE)
        ev.events |= EPOLLIN;
    if (new_mask & LOOP_WRITABLE)
        ev.events |= EPOLLOUT;
    int op = new_mask == LOOP_NONE ? EPOLL_CTL_DEL
             : old_mask == LOOP_NONE ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(l->epfd, op, fd, &ev) == -1)
        return weir_from_errno(errno);
    return 0;
}

/* Wait up to timeout_ms (-1 forever); the number of ready events or a
 * weir error. EINTR is not an error: it is a wake-up with nothing ready. */
static int backend_wait(struct loop *l, int timeout_ms)
{
    int n = epoll_wait(l->epfd, l->events, LOOP_MAX_EVENTS, timeout_ms);
    if (n == -1)
        return errno == EINTR ? 0 : weir_from_errno(errno);
    return n;
}

static int backend_mask(const struct epoll_event *ev)
{
    int mask = 0;
    /* An error or hang-up is reported as readable and writable, so the
     * owner's read or write sees it (as ae does). */
    if (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        mask |= LOOP_READABLE;
    if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        mask |= LOOP_WRITABLE;
    return mask;
}

/* --- file events -------------------------------------------------------- */

static int fds_grow(struct loop *l, int fd)
{
    if (fd < l->nfds)
        return 0;
    int n = l->nfds ? l->nfds : 64;
    while (n <= fd)
        n *= 2;
    struct fd_event *p = realloc(l->fds, (size_t)n * sizeof *p);
    if (!p)
        return WEIR_ENOMEM;
    memset(p + l->nfds, 0, (size_t)(n - l->nfds) * sizeof *p);
    l->fds = p;
    l->nfds = n;
    return 0;
}

int loop_fd_add(struct loop *l, int fd, int mask, loop_fd_fn *fn, void *data)
{
    if (fd < 0 || (mask & ~(LOOP_READABLE | LOOP_WRITABLE)) || !fn)
        return WEIR_EINVAL;
    int rc = fds_grow(l, fd);
    if (rc)
        return rc;
    struct fd_event *fe = &l->fds[fd];
    int new_mask = fe->mask | mask;
    if (new_mask != fe->mask) {
        rc = backend_update(l, fd, fe->mask, new_mask);
        if (rc)
            return rc;
    }
    fe->mask = new_mask;
    if (mask & LOOP_READABLE)
        fe->rfn = fn;
    if (mask & LOOP_WRITABLE)
        fe->wfn = fn;
    fe->data = data;
    return 0;
}

void loop_fd_del(struct loop *l, int fd, int mask)
{
    if (fd < 0 || fd >= l->nfds)
        return;
    struct fd_event *fe = &l->fds[fd];
    int new_mask = fe->mask & ~mask;
    if (new_mask == fe->mask)
        return;
    /* Failure means the fd is already closed or gone from the set; either
     * way the kernel no longer reports it, which is what was asked. */
    (void)backend_update(l, fd, fe->mask, new_mask);
    fe->mask = new_mask;
    if (new_mask == LOOP_NONE)
        memset(fe, 0, sizeof *fe);
}

int loop_fd_mask(const struct loop *l, int fd)
{
    if (fd < 0 || fd >= l->nfds)
        return LOOP_NONE;
    return l->fds[fd].mask;
}

/* --- timers: a binary min-heap on (when, id) ---------------------------- */

static int timer_before(const struct timer *a, const struct timer *b)
{
    return a->when < b->when || (a->when == b->when && a->id < b->id);
}

static void heap_swap(struct loop *l, size_t i, size_t j)
{
    struct timer t = l->heap[i];
    l->heap[i] = l->heap[j];
    l->heap[j] = t;
}

static void heap_up(struct loop *l, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(&l->heap[i], &l->heap[parent]))
            break;
        heap_swap(l, i, parent);
        i = parent;
    }
}

static void heap_down(struct loop *l, size_t i)
{
    for (;;) {
        size_t left = 2 * i + 1, right = left + 1, min = i;
        if (left < l->nheap && timer_before(&l->heap[left], &l->heap[min]))
            min = left;
        if (right < l->nheap && timer_before(&l->heap[right], &l->heap[min]))
            min = right;
        if (min == i)
            return;
        heap_swap(l, i, min);
        i = min;
    }
}

static void heap_remove(struct loop *l, size_t i)
{
    assert(i < l->nheap);
    l->nheap--;
    if (i == l->nheap)
        return;
    l->heap[i] = l->heap[l->nheap];
    heap_up(l, i);
    heap_down(l, i);
}

static int heap_push(struct loop *l, const struct timer *t)
{
    if (l->nheap == l->capheap) {
        size_t cap = l->capheap ? l->capheap * 2 : 16;
        struct timer *p = realloc(l->heap, cap * sizeof *p);
        if (!p)
            return WEIR_ENOMEM;
        l->heap = p;
        l->capheap = cap;
    }
    l->heap[l->nheap++] = *t;
    heap_up(l, l->nheap - 1);
    return 0;
}

/* A deadline ms from now, but always after the last processing instant, so
 * that a timer armed from a callback waits for the next iteration. */
static int64_t deadline(const struct loop *l, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    if (ms > INT64_MAX / WTIME_NS_PER_MS / 2)
        ms = INT64_MAX / WTIME_NS_PER_MS / 2;
    int64_t when = wtime_mono_ns() + ms * WTIME_NS_PER_MS;
    return when > l->timers_cutoff ? when : l->timers_cutoff + 1;
}

uint64_t loop_timer_add(struct loop *l, int64_t ms, loop_timer_fn *fn, void *data)
{
    struct timer t = {deadline(l, ms), ++l->next_id, fn, data};
    if (heap_push(l, &t))
        return 0;
    return t.id;
}

int loop_timer_del(struct loop *l, uint64_t id)
{
    if (id != 0 && id == l->running_id) {
        l->running_deleted = 1;
        return 0;
    }
    /* Linear: loops hold a handful of timers (drain, fsync, hour close). */
    for (size_t i = 0; i < l->nheap; i++)
        if (l->heap[i].id == id) {
            heap_remove(l, i);
            return 0;
        }
    return WEIR_ENOTFOUND;
}

static int run_timers(struct loop *l)
{
    int ran = 0;
    int64_t now = wtime_mono_ns();
    l->timers_cutoff = now;
    while (l->nheap > 0 && l->heap[0].when <= now) {
        struct timer t = l->heap[0];
        heap_remove(l, 0);
        l->running_id = t.id;
        l->running_deleted = 0;
        int64_t next = t.fn(l, t.id, t.data);
        l->running_id = 0;
        ran++;
        if (next >= 0 && !l->running_deleted) {
            t.when = deadline(l, next);
            /* Can fail only if the callback filled the heap with new
             * timers and memory ran out; the owner learns nothing of it,
             * so say it loudly. */
            if (heap_push(l, &t))
                log_error("event loop: out of memory re-arming a timer");
        }
    }
    return ran;
}

/* ms until the first timer (0 if due), -1 if there is none. */
static int64_t next_timer_ms(const struct loop *l)
{
    if (l->nheap == 0)
        return -1;
    int64_t left = l->heap[0].when - wtime_mono_ns();
    if (left <= 0)
        return 0;
    return (left + WTIME_NS_PER_MS - 1) / WTIME_NS_PER_MS;
}

/* --- posts and wake-ups ------------------------------------------------- */

void loop_wake(struct loop *l)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: a wake-up is pending. */
    ssize_t n = write(l->wakefd, &one, sizeof one);
    (void)n;
}

void loop_stop(struct loop *l)
{
    atomic_store(&l->stop, 1);
    loop_wake(l);
}

int loop_post(struct loop *l, loop_call_fn *fn, void *data)
{
    struct post *p = malloc(sizeof *p);
    if (!p)
        return WEIR_ENOMEM;
    p->next = NULL;
    p->fn = fn;
    p->data = data;
    pthread_mutex_lock(&l->post_lock);
    if (l->post_tail)
        l->post_tail->next = p;
    else
        l->post_head = p;
    l->post_tail = p;
    pthread_mutex_unlock(&l->post_lock);
    loop_wake(l);
    return 0;
}

static void on_wake(struct loop *l, int fd, void *data, int mask)
{
    uint64_t count;
    ssize_t n = read(fd, &count, sizeof count);
    (void)n;
    pthread_mutex_lock(&l->post_lock);
    struct post *p = l->post_head;
    l->post_head = l->post_tail = NULL;
    pthread_mutex_unlock(&l->post_lock);
    /* Functions posted while these run wait for the next wake-up, which
     * their loop_post has already signalled. */
    while (p) {
        struct post *next = p->next;
        p->fn(l, p->data);
        free(p);
        p = next;
    }
}

/* --- the loop ----------------------------------------------------------- */

struct loop *loop_new(struct weir_errmsg *e)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l) {
        errmsg_set(e, WEIR_ENOMEM, "event loop: out of memory");
        return NULL;
    }
    l->epfd = l->wakefd = -1;
    pthread_mutex_init(&l->post_lock, NULL);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd == -1) {
        errmsg_set(e, weir_from_errno(errno), "event loop: epoll_create1: %s",
                   strerror(errno));
        goto fail;
    }
    l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->wakefd == -1) {
        errmsg_set(e, weir_from_errno(errno), "event loop: eventfd: %s",
                   strerror(errno));
        goto fail;
    }
    int rc = loop_fd_add(l, l->wakefd, LOOP_READABLE, on_wake, NULL);
    if (rc) {
        errmsg_set(e, rc, "event loop: watching the eventfd: %s", weir_strerror(rc));
        goto fail;
    }
    l->now_ms = wtime_mono_ns() / WTIME_NS_PER_MS;
    return l;
fail:
    loop_free(l);
    return NULL;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    if (l->epfd != -1)
        close(l->epfd);
    if (l->wakefd != -1)
        close(l->wakefd);
    struct post *p = l->post_head;
    while (p) {
        struct post *next = p->next;
        free(p);
        p = next;
    }
    pthread_mutex_destroy(&l->post_lock);
    free(l->fds);
    free(l->heap);
    free(l);
}

void loop_set_before_sleep(struct loop *l, loop_call_fn *fn, void *data)
{
    l->before_sleep = fn;
    l->before_sleep_data = data;
}

int64_t loop_now_ms(const struct loop *l)
{
    return l->now_ms;
}

int loop_run_once(struct loop *l, int64_t timeout_ms)
{
    if (l->before_sleep)
        l->before_sleep(l, l->before_sleep_data);

    int64_t wait = next_timer_ms(l);
    if (timeout_ms >= 0 && (wait < 0 || timeout_ms < wait))
        wait = timeout_ms;
    if (atomic_load(&l->stop))
        wait = 0;
    if (wait > INT32_MAX)
        wait = INT32_MAX;

    int n = backend_wait(l, (int)wait);
    if (n < 0)
        return n;
    l->now_ms = wtime_mono_ns() / WTIME_NS_PER_MS;

    int ran = 0;
    for (int i = 0; i < n; i++) {
        int fd = l->events[i].data.fd;
        int mask = backend_mask(&l->events[i]);
        /* Re-read the table before each call: an earlier callback of this
         * iteration may have removed (or closed and replaced) this fd. */
        if (fd < l->nfds && (l->fds[fd].mask & mask & LOOP_READABLE)) {
            l->fds[fd].rfn(l, fd, l->fds[fd].data, LOOP_READABLE);
            ran++;
        }
        if (fd < l->nfds && (l->fds[fd].mask & mask & LOOP_WRITABLE)) {
            l->fds[fd].wfn(l, fd, l->fds[fd].data, LOOP_WRITABLE);
            ran++;
        }
    }
    return ran + run_timers(l);
}

int loop_run(struct loop *l)
{
    int rc = 0;
    while (!atomic_load(&l->stop)) {
        int n = loop_run_once(l, -1);
        if (n < 0) {
            rc = n;
            break;
        }
    }
    atomic_store(&l->stop, 0);
    return rc;
}
