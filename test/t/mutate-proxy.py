#!/usr/bin/env python3
"""mutate-proxy.py: a real primary's answers, mutated frame by frame.

Usage:
  mutate-proxy.py --listen IP:PORT --upstream IP:PORT --seed N
                  [--rate P] [--ready-file F] [--lifetime SECONDS]

An HTTP/1.1 proxy for one standby: every request goes to the real
asyncrep primary at --upstream, and the answers of POST /v1/files,
/v1/delta, /v1/append and /v1/blocks (the frame sequences the standby's
state machines in core/fetch.c, core/append.c and core/clone.c read) are
mutated before they are passed on, each with probability --rate
(default 0.5): one to three of

  drop      a frame left out
  dup       a frame sent twice
  swap      two neighbouring frames exchanged
  move      a frame moved elsewhere (a T before its D, an F after it)
  retype    a frame's type byte replaced by another frame type
  flip      one byte of a frame's payload changed
  grow      a frame's payload extended by 1 to 70000 bytes, its length
            field to match (a frame that claims more than it should)
  shrink    a frame's payload cut short, its length field to match
  lie       a frame's length field changed, its payload not (the rest of
            the answer read out of step)
  cut       the answer cut at a byte

The hello, the manifest and the change stream pass unchanged: what a
primary lists, a standby must believe, but nothing in a file's answer may
make it write anything but the primary's bytes, verified. Each mutation
is logged to stderr with the request ("mutate POST /v1/files #3: drop 4
(D)"), so a failure is reproduced by its seed. Only loopback addresses
are accepted. The proxy exits by itself after --lifetime seconds.
"""
import argparse
import importlib.util
import http.client
import http.server
import ipaddress
import os
import random
import struct
import sys
import threading

_SPEC = importlib.util.spec_from_file_location(
    "fake_primary", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "fake-primary.py"))
_FAKE = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_FAKE)

MUTATED = ("/v1/files", "/v1/delta", "/v1/append", "/v1/blocks")
TYPES = b"HPEFDTZXROYBQIKLSUA"
MAX_BODY = 64 << 20            # the largest answer passed on
HDR = 5


def frames(body):
    """The frames of body as (type, payload), or None when it does not
    parse (a compressed or cut answer)."""
    out, off = [], 0
    while off < len(body):
        if len(body) - off < HDR:
            return None
        n = struct.unpack(">I", body[off + 1:off + HDR])[0]
        if n > len(body) - off - HDR:
            return None
        out.append((body[off:off + 1], body[off + HDR:off + HDR + n]))
        off += HDR + n
    return out


def join(fs):
    return b"".join(t + struct.pack(">I", len(p)) + p for t, p in fs)


def mutate(rng, body, log):
    fs = frames(body)
    if fs is None or not fs:
        if not body:
            return body
        at = rng.randrange(len(body))
        log("cut at %d of an unparsed answer" % at)
        return body[:at]
    raw = None
    for _ in range(rng.randint(1, 3)):
        if raw is not None:
            break
        op = rng.choice(("drop", "dup", "swap", "move", "retype", "flip",
                         "grow", "shrink", "lie", "cut"))
        i = rng.randrange(len(fs))
        t, p = fs[i]
        name = "%s %d (%s)" % (op, i, t.decode("ascii", "replace"))
        if op == "drop":
            del fs[i]
        elif op == "dup":
            fs.insert(i, (t, p))
        elif op == "swap" and i + 1 < len(fs):
            fs[i], fs[i + 1] = fs[i + 1], fs[i]
        elif op == "move":
            j = rng.randrange(len(fs))
            del fs[i]
            fs.insert(j, (t, p))
            name += " to %d" % j
        elif op == "retype":
            nt = bytes([rng.choice(TYPES)])
            fs[i] = (nt, p)
            name += " to %s" % nt.decode()
        elif op == "flip" and p:
            k = rng.randrange(len(p))
            b = bytearray(p)
            b[k] ^= rng.randint(1, 255)
            fs[i] = (t, bytes(b))
            name += " byte %d" % k
        elif op == "grow":
            extra = rng.choice((1, 8, 4096, 65537, 70000))
            fs[i] = (t, p + bytes(rng.getrandbits(8) for _ in range(8))
                     * (extra // 8) + b"\x5a" * (extra % 8))
            name += " by %d" % extra
        elif op == "shrink" and p:
            k = rng.randrange(len(p))
            fs[i] = (t, p[:k])
            name += " to %d" % k
        elif op == "lie":
            b = bytearray(join(fs))
            off = sum(HDR + len(q) for _, q in fs[:i])
            n = len(p) + rng.choice((-4096, -1, 1, 7, 4096, 1 << 20,
                                     (1 << 32) - 1 - len(p)))
            b[off + 1:off + HDR] = struct.pack(">I", max(0, n) & 0xffffffff)
            raw = bytes(b)
            name += " length %d for %d" % (max(0, n), len(p))
        elif op == "cut":
            b = join(fs)
            off = sum(HDR + len(q) for _, q in fs[:i])
            at = off + rng.randrange(HDR + len(p))
            raw = b[:at]
            name += " at byte %d" % at
        else:
            name += ": nothing to do"
        log(name)
    return raw if raw is not None else join(fs)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def note(self, text):
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    # Content-Length or chunked, bounded: fake-primary.py's reader.
    read_body = _FAKE.Handler.read_body

    def forward(self):
        srv = self.server
        body = self.read_body() if self.command == "POST" else None
        up = getattr(self, "up", None)
        if up is None:
            up = http.client.HTTPConnection(*srv.upstream, timeout=30)
            self.up = up
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "connection",
                                        "transfer-encoding",
                                        "content-length", "expect")}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        try:
            up.request(self.command, self.path, body=body, headers=headers)
            res = up.getresponse()
            data = res.read(MAX_BODY + 1)
        except (OSError, http.client.HTTPException) as e:
            self.note("%s %s: upstream: %s" % (self.command, self.path, e))
            self.up = None
            up.close()
            self.close_connection = True
            return
        path = self.path.split("?", 1)[0]
        with srv.lock:
            srv.count += 1
            n = srv.count
            rng = random.Random("%d/%d" % (srv.seed, n))
        if (self.command == "POST" and path in MUTATED and res.status == 200
                and rng.random() < srv.rate):
            data = mutate(rng, data, lambda what: self.note(
                "mutate %s %s #%d: %s" % (self.command, path, n, what)))
        else:
            self.note("pass %s %s #%d: %d, %d bytes" % (
                self.command, path, n, res.status, len(data)))
        self.send_response(res.status)
        for k, v in res.getheaders():
            if k.lower() not in ("transfer-encoding", "content-length",
                                 "connection", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    do_GET = forward
    do_POST = forward


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A standby that hangs up on a mutated answer: one line, no
        # traceback.
        sys.stderr.write("connection from %s:%d ended: %s\n" % (
            client_address[0], client_address[1], sys.exc_info()[1]))


def loopback(spec, what):
    ip, _, port = spec.rpartition(":")
    if not ipaddress.ip_address(ip.strip("[]")).is_loopback:
        raise SystemExit("mutate-proxy: %s %s is not a loopback address"
                         % (what, ip))
    return ip.strip("[]"), int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--rate", type=float, default=0.5)
    ap.add_argument("--ready-file")
    ap.add_argument("--lifetime", type=float, default=600.0)
    args = ap.parse_args()
    srv = Server(loopback(args.listen, "--listen"), Handler)
    srv.upstream = loopback(args.upstream, "--upstream")
    srv.seed = args.seed
    srv.rate = args.rate
    srv.count = 0
    srv.lock = threading.Lock()
    t = threading.Timer(args.lifetime + 5, lambda: os._exit(0))
    t.daemon = True
    t.start()
    stop = threading.Timer(args.lifetime, srv.shutdown)
    stop.daemon = True
    stop.start()
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(args.ready_file + ".tmp", args.ready_file)
    srv.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
