#!/usr/bin/env python3
"""A TCP proxy that makes a primary look older than it is.

  version-cap.py LISTEN_IP LISTEN_PORT UPSTREAM_IP UPSTREAM_PORT CAP

Forwards every connection to the upstream primary, rewriting the range
a standby offers in its hello (X-Asyncrep-Versions: MIN-MAX) to end at
CAP: the hello then chooses at most CAP, and the standby names that
version in every later request, as it would with a primary of that
release. Everything else passes unchanged, both ways.
"""
import re
import socket
import sys
import threading

OFFER = re.compile(rb"(X-Asyncrep-Versions: *)(\d+)-(\d+)", re.I)


def pump(src, dst, cap):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if cap is not None:
                data = OFFER.sub(
                    lambda m: m.group(1) + m.group(2) + b"-" +
                    str(min(int(m.group(3)), cap)).encode(), data)
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    lip, lport, uip, uport, cap = sys.argv[1:6]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((lip, int(lport)))
    ls.listen(16)
    print("proxy listening", flush=True)
    while True:
        c, _ = ls.accept()
        u = socket.create_connection((uip, int(uport)))
        for a, b, k in ((c, u, int(cap)), (u, c, None)):
            threading.Thread(target=pump, args=(a, b, k),
                             daemon=True).start()


if __name__ == "__main__":
    main()
