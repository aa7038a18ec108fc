#!/usr/bin/env python3
"""A hostile standby (a peer of the primary), for the tests of issue 10.

Usage: hostile-standby.py IP PORT MODE [ARGS...]

Modes (each prints one line per answer, "STATUS FRAMES" or "STATUS TEXT",
as t0017's req does, in the order the requests were made):

  sigbomb PATH N SIGBYTES BLOCK_LEN
      N concurrent POST /v1/delta for PATH, each with a crafted signature
      of about SIGBYTES bytes of blocks of BLOCK_LEN (strong sums of 32).
  hold PATH SECONDS
      POST /v1/delta for PATH whose body stops after the N frame and the
      signature's header; prints "held" once sent, waits for "go" on
      stdin (at most SECONDS), then sends the rest and prints the answer.
  delta PATH
      One honest-looking POST /v1/delta for PATH with a one-block
      signature (block length 256).
  badtoken N
      N requests of GET /v1/hello with a wrong bearer token, one after
      the other on one keep-alive connection where the server allows;
      prints the count of each status seen ("401 x3").
  trickle N SECONDS
      N connections that each send a request line and then one header
      line per second, never ending the headers, for at most SECONDS;
      prints how many the server closed, "closed K of N".
Every socket has a timeout; nothing here waits without a bound.
"""
import http.client
import select
import socket
import struct
import sys
import threading
import time

TIMEOUT = 60


def frame(t, payload):
    return t.encode() + struct.pack(">I", len(payload)) + payload


def n_frame(path, basis=0):
    p = path.encode()
    return frame("N", struct.pack(">H", len(p)) + p + struct.pack(">Q", basis))


def sig_header(block_len, strong=32):
    # RS_RK_BLAKE2_SIG_MAGIC
    return struct.pack(">III", 0x72730147, block_len, strong)


def sig_blocks(nbytes, strong=32):
    """Block sums: distinct weak sums, so no hash chain degenerates."""
    per = 4 + strong
    n = max(1, nbytes // per)
    out = bytearray()
    for i in range(n):
        out += struct.pack(">I", (i * 2654435761) & 0xffffffff)
        out += bytes([i & 0xff]) * strong
    return bytes(out)


def data_frames(b, chunk=256 * 1024):
    return b"".join(frame("D", b[i:i + chunk])
                    for i in range(0, len(b), chunk))


def describe(status, ctype, data):
    if ctype == "application/x-asyncrep":
        types, pos = "", 0
        while pos + 5 <= len(data):
            types += chr(data[pos])
            pos += 5 + int.from_bytes(data[pos + 1:pos + 5], "big")
        return "%d %s" % (status, types + ("" if pos == len(data) else "?"))
    return "%d %s" % (status, data.decode(errors="replace").strip())


def post(ip, port, path, body):
    conn = http.client.HTTPConnection(ip, port, timeout=TIMEOUT)
    try:
        conn.request("POST", path, body=body)
        r = conn.getresponse()
        return describe(r.status, r.getheader("Content-Type"), r.read())
    except (OSError, http.client.HTTPException) as e:
        return "closed %s" % type(e).__name__
    finally:
        conn.close()


def sigbomb(ip, port, path, n, sigbytes, block_len):
    body = (n_frame(path) +
            data_frames(sig_header(block_len) + sig_blocks(sigbytes)))
    out = [None] * n

    def one(i):
        out[i] = post(ip, port, "/v1/delta", body)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(TIMEOUT)
    for line in out:
        print(line)


def hold(ip, port, path, seconds):
    head = n_frame(path) + frame("D", sig_header(256))
    rest = data_frames(sig_blocks(36))
    body = head + rest
    s = socket.create_connection((ip, port), timeout=TIMEOUT)
    s.sendall(("POST /v1/delta HTTP/1.1\r\nHost: x\r\n"
               "Content-Length: %d\r\n\r\n" % len(body)).encode() + head)
    print("held", flush=True)
    r, _, _ = select.select([sys.stdin], [], [], seconds)
    if r:
        sys.stdin.readline()
    s.sendall(rest)
    f = s.makefile("rb")
    resp = http.client.HTTPResponse(s)
    resp.begin()
    print(describe(resp.status, resp.getheader("Content-Type"), resp.read()),
          flush=True)
    f.close()
    s.close()


def delta(ip, port, path):
    body = n_frame(path) + data_frames(sig_header(256) + sig_blocks(36))
    print(post(ip, port, "/v1/delta", body))


def badtoken(ip, port, n):
    counts = {}
    conn = None
    for i in range(n):
        if conn is None:
            conn = http.client.HTTPConnection(ip, port, timeout=TIMEOUT)
        try:
            conn.request("GET", "/v1/hello",
                         headers={"Authorization": "Bearer wrong%d" % i})
            r = conn.getresponse()
            r.read()
            key = str(r.status)
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            key = "closed"
            conn.close()
            conn = None
        counts[key] = counts.get(key, 0) + 1
    if conn is not None:
        conn.close()
    print(" ".join("%s x%d" % (k, counts[k]) for k in sorted(counts)))


def trickle(ip, port, n, seconds):
    socks = []
    for i in range(n):
        try:
            s = socket.create_connection((ip, port), timeout=5)
            s.sendall(b"GET /v1/hello HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            pass
    closed = n - len(socks)
    end = time.monotonic() + seconds
    i = 0
    while socks and time.monotonic() < end:
        time.sleep(1)
        i += 1
        alive = []
        for s in socks:
            try:
                s.sendall(b"X-Slow-%d: %d\r\n" % (i, i))
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":
                        raise OSError("closed")
                except BlockingIOError:
                    pass
                s.setblocking(True)
                s.settimeout(5)
                alive.append(s)
            except OSError:
                closed += 1
                s.close()
        socks = alive
    for s in socks:
        s.close()
    print("closed %d of %d" % (closed, n))


def main():
    ip, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    a = sys.argv[4:]
    if mode == "sigbomb":
        sigbomb(ip, port, a[0], int(a[1]), int(a[2]), int(a[3]))
    elif mode == "hold":
        hold(ip, port, a[0], float(a[1]))
    elif mode == "delta":
        delta(ip, port, a[0])
    elif mode == "badtoken":
        badtoken(ip, port, int(a[0]))
    elif mode == "trickle":
        trickle(ip, port, int(a[0]), float(a[1]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
