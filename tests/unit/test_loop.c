/*
 * test_loop.c - the event loop: timer order, repeating and cancelled
 * timers, file events, cross-thread posts, wake-ups and stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "core/wtime.h"
#include "net/loop.h"

static struct loop *new_loop(void)
{
    struct weir_errmsg e;
    struct loop *l = loop_new(&e);
    assert_non_null(l);
    return l;
}

/* --- timers -------------------------------------------------------------- */

static int order[16], norder;

static int64_t record_tag(struct loop *l, uint64_t id, void *data)
{
    order[norder++] = (int)(intptr_t)data;
    return LOOP_TIMER_DONE;
}

static void test_timer_order(void **state)
{
    struct loop *l = new_loop();
    norder = 0;
    loop_timer_add(l, 30, record_tag, (void *)5);
    loop_timer_add(l, 10, record_tag, (void *)2);
    loop_timer_add(l, 20, record_tag, (void *)4);
    loop_timer_add(l, 10, record_tag, (void *)3);
    loop_timer_add(l, 0, record_tag, (void *)1);
    uint64_t gone = loop_timer_add(l, 15, record_tag, (void *)99);
    assert_int_equal(loop_timer_del(l, gone), 0);
    assert_int_equal(loop_timer_del(l, gone), WEIR_ENOTFOUND);
    int64_t t0 = wtime_mono_ns();
    while (norder < 5)
        assert_true(loop_run_once(l, -1) >= 0);
    int64_t took = (wtime_mono_ns() - t0) / WTIME_NS_PER_MS;
    for (int i = 0; i < 5; i++)
        assert_int_equal(order[i], i + 1);
    assert_true(took >= 25 && took < 2000);
    loop_free(l);
}

static int ticks;

static int64_t tick(struct loop *l, uint64_t id, void *data)
{
    return ++ticks < 5 ? 2 : LOOP_TIMER_DONE;
}

static int64_t spin(struct loop *l, uint64_t id, void *data)
{
    (*(int *)data)++;
    return 0; /* re-arm at once: must wait for the next iteration */
}

static uint64_t victim_id;

static int64_t cancel_other(struct loop *l, uint64_t id, void *data)
{
    assert_int_equal(loop_timer_del(l, victim_id), 0);
    assert_int_equal(loop_timer_del(l, id), 0); /* itself, then return 7 */
    return 7;
}

static void test_timer_repeat_cancel(void **state)
{
    struct loop *l = new_loop();
    ticks = 0;
    loop_timer_add(l, 1, tick, NULL);
    while (ticks < 5)
        assert_true(loop_run_once(l, -1) >= 0);
    assert_int_equal(loop_run_once(l, 20), 0); /* no timer left */

    int spins = 0;
    uint64_t sid = loop_timer_add(l, 0, spin, &spins);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(loop_run_once(l, 50), 1);
        assert_int_equal(spins, i);
    }
    assert_int_equal(loop_timer_del(l, sid), 0);

    norder = 0;
    loop_timer_add(l, 1, cancel_other, NULL);
    victim_id = loop_timer_add(l, 2, record_tag, (void *)1);
    int64_t t0 = wtime_mono_ns();
    while (wtime_mono_ns() - t0 < 30 * WTIME_NS_PER_MS)
        assert_true(loop_run_once(l, 5) >= 0);
    assert_int_equal(norder, 0);
    assert_int_equal(loop_run_once(l, 0), 0); /* self-cancel was honoured */
    loop_free(l);
}

/* --- file events ---------------------------------------------------------- */

struct pipe_state {
    int reads;
    char got[64];
    size_t ngot;
};

static void on_pipe(struct loop *l, int fd, void *data, int mask)
{
    struct pipe_state *ps = data;
    assert_int_equal(mask, LOOP_READABLE);
    ssize_t n = read(fd, ps->got + ps->ngot, 1); /* one byte per event */
    assert_true(n == 1);
    ps->ngot++;
    if (++ps->reads == 3)
        loop_fd_del(l, fd, LOOP_READABLE);
}

static void on_writable(struct loop *l, int fd, void *data, int mask)
{
    assert_int_equal(mask, LOOP_WRITABLE);
    (*(int *)data)++;
    loop_fd_del(l, fd, LOOP_WRITABLE);
}

static void test_fd_events(void **state)
{
    struct loop *l = new_loop();
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct pipe_state ps = {0};
    assert_int_equal(loop_fd_add(l, p[0], LOOP_READABLE, on_pipe, &ps), 0);
    assert_int_equal(loop_fd_mask(l, p[0]), LOOP_READABLE);
    assert_int_equal(write(p[1], "abcdef", 6), 6);
    /* Level-triggered: bytes left unread are reported again. */
    for (int i = 0; i < 5; i++)
        loop_run_once(l, 10);
    assert_int_equal(ps.reads, 3);
    assert_memory_equal(ps.got, "abc", 3);
    assert_int_equal(loop_fd_mask(l, p[0]), LOOP_NONE);

    int w = 0;
    assert_int_equal(loop_fd_add(l, p[1], LOOP_WRITABLE, on_writable, &w), 0);
    loop_run_once(l, 100);
    loop_run_once(l, 0);
    assert_int_equal(w, 1);
    assert_int_equal(loop_fd_add(l, -1, LOOP_READABLE, on_pipe, NULL), WEIR_EINVAL);
    loop_fd_del(l, 12345, LOOP_READABLE); /* never added: harmless */
    close(p[0]);
    close(p[1]);
    loop_free(l);
}

/* --- other threads ------------------------------------------------------- */

#define NPOSTS 20000

struct post_state {
    struct loop *l;
    int next;      /* the value the next post must carry */
    int bad_order;
    int sleeps;
};

struct post_arg {
    struct post_state *ps;
    int v;
};

static struct post_arg args[NPOSTS];

static void on_post_arg(struct loop *l, void *data)
{
    struct post_arg *a = data;
    if (a->v != a->ps->next)
        a->ps->bad_order++;
    a->ps->next++;
}

static void *poster(void *arg)
{
    struct post_state *ps = arg;
    for (int i = 0; i < NPOSTS; i++) {
        args[i].ps = ps;
        args[i].v = i;
        assert_int_equal(loop_post(ps->l, on_post_arg, &args[i]), 0);
        if (i % 1000 == 0)
            usleep(100); /* let the loop sleep in between */
    }
    loop_stop(ps->l);
    return NULL;
}

static void count_sleep(struct loop *l, void *data)
{
    ((struct post_state *)data)->sleeps++;
}

static void test_cross_thread_post(void **state)
{
    struct post_state ps = {0};
    ps.l = new_loop();
    loop_set_before_sleep(ps.l, count_sleep, &ps);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, poster, &ps), 0);
    assert_int_equal(loop_run(ps.l), 0);
    pthread_join(t, NULL);
    /* The stop was asked after the last post, but loop_run may see it in
     * an iteration that took the queue before the last posts landed:
     * those run on the next iterations. */
    while (ps.next < NPOSTS)
        assert_true(loop_run_once(ps.l, 100) >= 0);
    assert_int_equal(ps.next, NPOSTS);
    assert_int_equal(ps.bad_order, 0);
    assert_true(ps.sleeps >= 1);
    loop_free(ps.l);
}

static void *stopper(void *arg)
{
    usleep(30000);
    loop_stop(arg);
    return NULL;
}

static void *waker(void *arg)
{
    usleep(30000);
    loop_wake(arg);
    return NULL;
}

static void test_stop_and_wake(void **state)
{
    struct loop *l = new_loop();
    pthread_t t;
    /* Blocked with nothing to wait for: only the other thread ends it. */
    int64_t t0 = wtime_mono_ns();
    assert_int_equal(pthread_create(&t, NULL, stopper, l), 0);
    assert_int_equal(loop_run(l), 0);
    pthread_join(t, NULL);
    assert_true(wtime_mono_ns() - t0 >= 25 * WTIME_NS_PER_MS);

    t0 = wtime_mono_ns();
    assert_int_equal(pthread_create(&t, NULL, waker, l), 0);
    assert_true(loop_run_once(l, -1) >= 0);
    pthread_join(t, NULL);
    assert_true(wtime_mono_ns() - t0 < 5000 * WTIME_NS_PER_MS);

    /* A stop asked before the run makes it return at once. */
    loop_stop(l);
    assert_int_equal(loop_run(l), 0);
    /* Posted functions that never ran are freed with the loop. */
    assert_int_equal(loop_post(l, count_sleep, NULL), 0);
    loop_free(l);
    loop_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_order),
        cmocka_unit_test(test_timer_repeat_cancel),
        cmocka_unit_test(test_fd_events),
        cmocka_unit_test(test_cross_thread_post),
        cmocka_unit_test(test_stop_and_wake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
