/*
 * loop.h - a small event loop: file events, timers, cross-thread posts.
 *
 * In the style of Redis's ae.c, on epoll. weir serve runs one loop per
 * worker thread; a loop and everything registered on it belong to that
 * thread. The only calls another thread (or a signal handler, where noted)
 * may make are loop_post, loop_wake and loop_stop. There is no global
 * state: two loops in one process know nothing of each other.
 *
 * File events: for each fd, a readable and a writable callback with one
 * clientData pointer (as ae: registering a second mask on the same fd
 * replaces the pointer). Level-triggered: a callback that leaves bytes
 * unread is called again on the next iteration, which is how a connection
 * is read fairly, one chunk per turn, among a thousand others.
 *
 * Timers: a delay in milliseconds on the monotonic clock; the callback
 * returns the delay until its next run (a repeating timer) or
 * LOOP_TIMER_DONE (a one-shot). Timers due at the same time run in the
 * order they were added. A timer re-armed with 0 ms, or added by a
 * callback, runs on the next iteration, never in the same one, so timers
 * cannot starve file events.
 *
 * One iteration: run the before-sleep hook, wait in epoll_wait (until the
 * next timer at most), call the file callbacks of the ready fds (readable
 * first), then run the due timers. Posted functions run from a file
 * callback on the loop's eventfd, in the order they were posted.
 *
 * docs/network.md describes how serve uses it.
 */
#ifndef WEIR_NET_LOOP_H
#define WEIR_NET_LOOP_H

#include <stdint.h>

#include "core/error.h"

struct loop;

#define LOOP_NONE 0
#define LOOP_READABLE 1
#define LOOP_WRITABLE 2

/* A timer callback's answer when it should not run again. */
#define LOOP_TIMER_DONE (-1)

/* fd is ready for the operations in mask (one of LOOP_READABLE or
 * LOOP_WRITABLE per call); data is the pointer given at loop_fd_add. */
typedef void loop_fd_fn(struct loop *l, int fd, void *data, int mask);

/* Return the delay in ms until the next run, or LOOP_TIMER_DONE. id is the
 * timer's own id (so it can tell a shared callback which timer fired). */
typedef int64_t loop_timer_fn(struct loop *l, uint64_t id, void *data);

/* A function posted from another thread, or the before-sleep hook. */
typedef void loop_call_fn(struct loop *l, void *data);

/* A new loop, or NULL with e filled (epoll or eventfd could not be made,
 * or out of memory). */
struct loop *loop_new(struct weir_errmsg *e);

/* Free the loop. Registered fds are not closed (their owners close them);
 * timers are dropped, and so are posted functions that have not run, with
 * their data. Safe on NULL. Call only when no thread runs or posts to it. */
void loop_free(struct loop *l);

/* Watch fd for mask (LOOP_READABLE and/or LOOP_WRITABLE), calling fn.
 * Adds to what fd is already watched for. 0, or a weir error (WEIR_ENOMEM,
 * or the error of epoll_ctl, e.g. WEIR_EINVAL for an fd epoll refuses). */
int loop_fd_add(struct loop *l, int fd, int mask, loop_fd_fn *fn, void *data);

/* Stop watching fd for mask; the fd is forgotten once its mask is empty.
 * Safe for an fd never added. Call it before closing an fd. Events for fd
 * already collected in this iteration are not delivered for the bits
 * removed. */
void loop_fd_del(struct loop *l, int fd, int mask);

/* What fd is watched for (LOOP_NONE if nothing). */
int loop_fd_mask(const struct loop *l, int fd);

/* Run fn after ms milliseconds (0: next iteration). Returns the timer's id
 * (never 0), or 0 when out of memory. */
uint64_t loop_timer_add(struct loop *l, int64_t ms, loop_timer_fn *fn, void *data);

/* Cancel a timer: 0, or WEIR_ENOTFOUND if it has already run out or never
 * existed. A timer may cancel itself from its own callback (its return
 * value is then ignored). */
int loop_timer_del(struct loop *l, uint64_t id);

/* Run fn(l, data) on the loop's thread, soon. Thread-safe; this is how
 * other threads hand work to a loop. 0, or WEIR_ENOMEM. */
int loop_post(struct loop *l, loop_call_fn *fn, void *data);

/* Interrupt the loop's wait (it runs its timers and hook and waits again).
 * Thread-safe and async-signal-safe. */
void loop_wake(struct loop *l);

/* Make loop_run return after the current iteration. Thread-safe and
 * async-signal-safe. A stop requested before loop_run starts makes it
 * return at once. */
void loop_stop(struct loop *l);

/* Run iterations until loop_stop. 0, or a weir error if epoll_wait failed
 * (other than EINTR). The stop request is cleared on return. */
int loop_run(struct loop *l);

/* One iteration, waiting at most timeout_ms (-1: until an event or the
 * next timer; 0: do not wait). Returns the number of callbacks run (fd
 * events, timers), or a weir error. For tests and for callers that
 * drive the loop from their own loop. */
int loop_run_once(struct loop *l, int64_t timeout_ms);

/* Call fn(l, data) before each wait (NULL: none). Redis's beforeSleep:
 * the place to flush what the iteration's callbacks batched up. */
void loop_set_before_sleep(struct loop *l, loop_call_fn *fn, void *data);

/* Monotonic milliseconds, as sampled at the start of the current
 * iteration's callbacks (cheap; use wtime_mono_ns for a fresh value). */
int64_t loop_now_ms(const struct loop *l);

#endif
