#!/usr/bin/env python3
"""tls_client.py - TLS (and misbehaving plain-TCP) senders for serve_tls.sh.

python3 standard library only (ssl). Every command takes the server's port
and, for TLS, --ca (verify the server) and optionally --cert/--key (a
client certificate):

  send    one file over one TLS connection (--tls12: TLS 1.2 at most;
          1.3 otherwise): whole, byte by byte, or in
          random chunks; then close_notify and wait for the server to
          close (it has read everything then). --abort: close the TCP
          connection after the last byte without close_notify and without
          waiting (a sender that just goes away)
  conns   every DIR/c*.ndjson over its own TLS connection, all open at
          once: first half of each, then (after --go-file appears) the
          rest in random chunks, then close_notify and wait for the close
  stall   connect, send BYTES (default none) and nothing more: print the
          seconds until the server closes the connection
  plain   connect without TLS, send a record, print the seconds until the
          server closes the connection
  idle    connect (TLS unless --plain), send DATA (no newline at the end),
          then stay silent: print the seconds until the server closes

Exit 0 when the server behaved as the command expects, 1 otherwise, with
the reason on stderr.
"""
import argparse
import glob
import os
import random
import socket
import ssl
import sys
import threading
import time


def context(a):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=a.ca)
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    if a.tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def connect_tls(a, timeout=10.0):
    raw = socket.create_connection(("127.0.0.1", a.port), timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return context(a).wrap_socket(raw, server_hostname="127.0.0.1")


def close_and_wait(s, timeout):
    """close_notify, then read until the server closes: it read it all."""
    s.settimeout(timeout)
    try:
        s.unwrap()  # sends ours, waits for the server's close_notify
    except (ssl.SSLError, OSError):
        pass  # the server closed TCP (with or without its close_notify)
    except socket.timeout:
        return False
    s.close()
    return True


def wait_closed(sock, timeout):
    """Seconds until the peer closes sock, or None on timeout."""
    t0 = time.monotonic()
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except socket.timeout:
        return None
    except OSError:
        pass
    return time.monotonic() - t0


def cmd_send(a):
    data = open(a.file, "rb").read()
    rng = random.Random(a.seed)
    s = connect_tls(a)
    s.settimeout(a.timeout)
    if a.mode == "whole":
        s.sendall(data)
    elif a.mode == "bytes":
        for i in range(len(data)):
            s.sendall(data[i:i + 1])
            if a.gap:
                time.sleep(a.gap / 1000.0)
    else:
        i = 0
        while i < len(data):
            n = rng.randint(1, a.chunk)
            s.sendall(data[i:i + n])
            i += n
            if rng.random() < 0.05:
                time.sleep(0.001)
    if a.abort:
        s.close()  # no close_notify: Python does not send one on close
        return 0
    if not close_and_wait(s, a.timeout):
        print("the server did not close the connection", file=sys.stderr)
        return 1
    return 0


def cmd_conns(a):
    files = sorted(glob.glob(os.path.join(a.dir, "c*.ndjson")))
    errors = []
    ready = threading.Barrier(len(files) + 1)

    def one(i, f):
        rng = random.Random(a.seed + i)
        data = open(f, "rb").read()
        half = len(data) // 2
        s = None
        try:
            s = connect_tls(a, timeout=a.timeout)
            s.sendall(data[:half])
        except Exception as e:  # noqa: BLE001 - report whatever failed
            errors.append("%s: %s" % (f, e))
        try:
            ready.wait(timeout=a.timeout * 2)
        except threading.BrokenBarrierError:
            pass
        if s is None:
            return
        try:
            off = half
            while off < len(data):
                n = rng.randint(1, a.chunk)
                s.sendall(data[off:off + n])
                off += n
            if not close_and_wait(s, a.timeout):
                errors.append("%s: not closed by the server" % f)
        except Exception as e:  # noqa: BLE001
            errors.append("%s: %s" % (f, e))

    threads = [threading.Thread(target=one, args=(i, f)) for i, f in enumerate(files)]
    for t in threads:
        t.start()
    if a.go_file:
        deadline = time.monotonic() + 60
        while not os.path.exists(a.go_file) and time.monotonic() < deadline:
            time.sleep(0.02)
    try:
        ready.wait(timeout=a.timeout * 2)
    except threading.BrokenBarrierError:
        errors.append("not every connection was ready")
    for t in threads:
        t.join()
    for e in errors[:10]:
        print(e, file=sys.stderr)
    print("sent %d connections, %d errors" % (len(files), len(errors)))
    return 1 if errors else 0


def cmd_stall(a):
    s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
    if a.bytes:
        s.sendall(bytes.fromhex(a.bytes))
    t = wait_closed(s, a.timeout)
    if t is None:
        print("still open after %.1f s" % a.timeout, file=sys.stderr)
        return 1
    print("%.2f" % t)
    return 0


def cmd_plain(a):
    s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
    try:
        s.sendall(b'{"ts":1756684800,"c":1,"s":0}\n')
    except OSError:
        pass
    t = wait_closed(s, a.timeout)
    if t is None:
        print("a plain-TCP client was not closed", file=sys.stderr)
        return 1
    print("%.2f" % t)
    return 0


def cmd_idle(a):
    if a.plain:
        s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
    else:
        s = connect_tls(a)
    s.sendall(a.data.encode())
    t0 = time.monotonic()
    s.settimeout(a.timeout)
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        print("still open after %.1f s" % a.timeout, file=sys.stderr)
        return 1
    except (OSError, ssl.SSLError):
        pass
    print("%.2f" % (time.monotonic() - t0))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("port", type=int)
        p.add_argument("--ca")
        p.add_argument("--cert")
        p.add_argument("--key")
        p.add_argument("--timeout", type=float, default=30.0)
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--tls12", action="store_true", help="TLS 1.2 at most")

    s = sub.add_parser("send")
    common(s)
    s.add_argument("file")
    s.add_argument("--mode", choices=["whole", "bytes", "random"], default="whole")
    s.add_argument("--chunk", type=int, default=100)
    s.add_argument("--gap", type=float, default=0.0, help="ms between bytes")
    s.add_argument("--abort", action="store_true")
    c = sub.add_parser("conns")
    common(c)
    c.add_argument("dir")
    c.add_argument("--chunk", type=int, default=40)
    c.add_argument("--go-file")
    st = sub.add_parser("stall")
    common(st)
    st.add_argument("--bytes", default="", help="hex bytes to send first")
    pl = sub.add_parser("plain")
    common(pl)
    i = sub.add_parser("idle")
    common(i)
    i.add_argument("data")
    i.add_argument("--plain", action="store_true")
    a = ap.parse_args()
    return {"send": cmd_send, "conns": cmd_conns, "stall": cmd_stall,
            "plain": cmd_plain, "idle": cmd_idle}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
