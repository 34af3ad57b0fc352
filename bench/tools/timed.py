#!/usr/bin/env python3
"""timed.py - run a command and write what it cost, finer than /usr/bin/time.

    timed.py OUT CMD [ARG...]

Runs CMD with this process's stdin, stdout and stderr (so the caller's
redirections apply), waits for it with wait4() and writes one line to OUT:

    wall_s user_s sys_s maxrss_kb exit

wall from a monotonic clock taken just before the fork and just after the
wait (microseconds; /usr/bin/time's %e has 10 ms steps, too coarse for
queries of 30 ms), CPU and peak RSS from the child's rusage. Exits with
the command's status (128 + N when a signal N ended it).
"""
import os
import sys
import time


def main():
    if len(sys.argv) < 3:
        sys.stderr.write("usage: timed.py OUT CMD [ARG...]\n")
        return 2
    out, cmd = sys.argv[1], sys.argv[2:]
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        except OSError as e:
            sys.stderr.write("timed.py: %s: %s\n" % (cmd[0], e))
        os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        code = 128 - code
    with open(out, "w") as f:
        f.write("%.6f %.6f %.6f %d %d\n" % (wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss, code))
    return code


if __name__ == "__main__":
    sys.exit(main())
