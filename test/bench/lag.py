#!/usr/bin/env python3
"""lag.py: measuring helpers for the follow part of bench.sh (stdlib only).

  lag.py mktree ROOT FILES DIRS SIZE
      FILES files of SIZE random bytes spread over DIRS directories.
  lag.py same SRC DST TIMEOUT [meta]
      wait until DST holds the same regular files as SRC (names, sizes,
      then contents; with "meta": names, sizes and mtimes to the second,
      for a standby seeded with cp -a); prints the seconds waited. Exit 1
      on timeout.
  lag.py lag SRC DST COUNT GAP_MAX TIMEOUT TAG [SAMPLES_FILE [WARM WARM_TIMEOUT]]
      COUNT times, one at a time: pause a random 0..GAP_MAX seconds, write
      4 KiB of random data to SRC/TAG-i, then poll DST/TAG-i (os.stat,
      then read and compare, every 0.2 ms, at most TIMEOUT seconds) until
      it holds exactly those bytes. Prints "p50 p99 max ok timeouts
      warm_timeouts", times in milliseconds (time.monotonic_ns, from
      before open() on the primary to the successful compare on the
      standby; p50 and p99 by nearest rank); the samples, one per line
      with their index, go to SAMPLES_FILE if given ("-": nowhere). WARM
      unmeasured writes (SRC/warm-TAG-i, waited for up to WARM_TIMEOUT
      seconds each) come first.
  lag.py overwrite SRC OFFSET SIZE
      SIZE random bytes over SRC at OFFSET, in place, fsynced.
  lag.py inplacelag SRC DST OFFSET SIZE TIMEOUT
      the same, then poll DST (every 1 ms, opened each time) until it
      holds those bytes at OFFSET; prints the seconds from before the
      write, or "timeout" (exit 1).
  lag.py burst SRC DST COUNT DIRS TIMEOUT
      write COUNT files of 4 KiB into DIRS new directories under
      SRC/burst as fast as possible, then poll DST/burst (every 5 ms) until
      COUNT files of 4096 bytes are there and a byte compare of all of
      them succeeds. Prints the seconds from the first write. Exit 1 on
      timeout (prints how many were there).
  lag.py appendlag SRC DST COUNT SIZE TIMEOUT [RSYNC_URL]
      COUNT times, one at a time: pause a random 0..10 ms, append SIZE
      random bytes to the file SRC and fsync it, then poll DST (os.stat,
      then a read of its last SIZE bytes, every 0.2 ms, at most TIMEOUT
      seconds) until it holds them; with RSYNC_URL, run
      `rsync --append --inplace SRC RSYNC_URL` after each append instead
      of polling, and time that. Prints "p50 p99 max ok timeouts" in ms.
  lag.py steady SRC DST RATE SECONDS TIMEOUT
      append 100 random bytes (fsynced) to SRC RATE times a second for
      SECONDS, then poll DST until it has SRC's size and its last bytes;
      prints the seconds from the last append until then ("timeout").
  lag.py behind SRC DST MODE STAGE COUNT TIMEOUT SAMPLES_FILE
      a small file behind a big one, COUNT times: MODE "append" writes
      100 bytes (fsynced) to SRC/big, MODE "rewrite" overwrites 1 MiB
      of random bytes in its middle, in place (fsynced), MODE "new"
      renames STAGE/new-i (a copy of STAGE/big0 made first, outside the
      timing) to SRC/new-i; right after, 10 bytes go to SRC/small-i.
      The time is from before the big change to the moment DST/small-i
      holds the 10 bytes (polled every 0.2 ms); then it waits until DST
      has the big file's size (rewrite: the rewritten bytes; and, new,
      removes it on both sides when it is there).
      Prints "p50 p99 max ok timeouts" in milliseconds; samples to
      SAMPLES_FILE ("-": nowhere).
  lag.py waitlog FILE REGEX TIMEOUT T0 [PID]
      poll FILE every 1 ms until a line matches REGEX; print the seconds
      since T0 (a time.time() value, e.g. `date +%s.%N`). Exit 1 on
      timeout or if PID has exited.
"""
import os
import re
import sys
import time


def mktree(root, files, dirs, size):
    files, dirs, size = int(files), int(dirs), int(size)
    for d in range(dirs):
        os.makedirs(os.path.join(root, "d%05d" % d), exist_ok=True)
    blob = os.urandom(size + 4096)
    for i in range(files):
        off = i % 4096
        with open(os.path.join(root, "d%05d" % (i % dirs), "f%06d" % i),
                  "wb") as f:
            f.write(blob[off:off + size])


def listing(root, meta=False):
    out = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            it = os.scandir(os.path.join(root, rel) if rel else root)
        except FileNotFoundError:
            continue
        with it:
            for e in it:
                p = os.path.join(rel, e.name) if rel else e.name
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(p)
                    elif e.is_file(follow_symlinks=False):
                        st = e.stat(follow_symlinks=False)
                        out[p] = ((st.st_size, int(st.st_mtime)) if meta
                                  else st.st_size)
                except FileNotFoundError:
                    pass
    return out


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError):
        return None


def same(src, dst, timeout, mode="full"):
    t0 = time.monotonic()
    deadline = t0 + float(timeout)
    meta = mode == "meta"
    while True:
        a = listing(src, meta)
        b = listing(dst, meta)
        if a == b and (meta or all(read(os.path.join(src, p)) ==
                                   read(os.path.join(dst, p)) for p in a)):
            print("%.3f" % (time.monotonic() - t0))
            return 0
        if time.monotonic() > deadline:
            missing = sum(1 for p in a if b.get(p) != a[p])
            extra = sum(1 for p in b if p not in a)
            print("timeout: %d of %d files missing or different, %d extra"
                  % (missing, len(a), extra))
            return 1
        time.sleep(0.2)


def pct(sorted_ms, p):
    # nearest rank
    if not sorted_ms:
        return float("nan")
    k = max(0, min(len(sorted_ms) - 1,
                   int(-(-p * len(sorted_ms) // 100)) - 1))
    return sorted_ms[k]


def one_write(src, dst, name, timeout):
    """Write 4 KiB to src/name; nanoseconds until dst/name has them."""
    data = os.urandom(4096)
    sp, dp = os.path.join(src, name), os.path.join(dst, name)
    t0 = time.monotonic_ns()
    with open(sp, "wb") as f:
        f.write(data)
    deadline = t0 + int(timeout * 1e9)
    while True:
        try:
            if os.stat(dp).st_size == 4096:
                with open(dp, "rb") as f:
                    if f.read() == data:
                        return time.monotonic_ns() - t0
        except FileNotFoundError:
            pass
        if time.monotonic_ns() > deadline:
            return None
        time.sleep(0.0002)


def lag(src, dst, count, gap_max, timeout, tag, samples=None, warm=0,
        warm_timeout=600):
    import random
    count, gap_max, timeout = int(count), float(gap_max), float(timeout)
    warm_fail = 0
    for i in range(int(warm)):
        if one_write(src, dst, "warm-%s-%d" % (tag, i),
                     float(warm_timeout)) is None:
            warm_fail += 1
    rng = random.Random(1234)
    lags, timeouts = [], 0
    log = open(samples, "w") if samples and samples != "-" else None
    for i in range(count):
        if gap_max > 0:
            time.sleep(rng.uniform(0, gap_max))
        ns = one_write(src, dst, "%s-%03d" % (tag, i), timeout)
        if ns is not None:
            lags.append(ns / 1e6)
            if log:
                log.write("%d %.3f\n" % (i, ns / 1e6))
        else:
            timeouts += 1
            if log:
                log.write("%d timeout\n" % i)
    if log:
        log.close()
    s = sorted(lags)
    print("%.2f %.2f %.2f %d %d %d" % (pct(s, 50), pct(s, 99),
                                       s[-1] if s else float("nan"),
                                       len(s), timeouts, warm_fail))
    return 0


def burst(src, dst, count, dirs, timeout):
    count, dirs, timeout = int(count), int(dirs), float(timeout)
    base_s, base_d = os.path.join(src, "burst"), os.path.join(dst, "burst")
    blob = os.urandom(4096 + count)
    t0 = time.monotonic_ns()
    os.mkdir(base_s)
    for d in range(dirs):
        os.mkdir(os.path.join(base_s, "d%02d" % d))
    for i in range(count):
        with open(os.path.join(base_s, "d%02d" % (i % dirs), "f%05d" % i),
                  "wb") as f:
            f.write(blob[i:i + 4096])
    t_written = time.monotonic_ns()
    deadline = t0 + int(timeout * 1e9)
    n = 0
    while True:
        now = time.monotonic_ns()
        b = listing(base_d)
        n = sum(1 for v in b.values() if v == 4096)
        if n == count:
            ok = True
            for i in range(count):
                rel = os.path.join("d%02d" % (i % dirs), "f%05d" % i)
                if read(os.path.join(base_d, rel)) != blob[i:i + 4096]:
                    ok = False
                    break
            if ok:
                t1 = time.monotonic_ns()
                print("%.3f %.3f" % ((t1 - t0) / 1e9,
                                     (t_written - t0) / 1e9))
                return 0
        if now > deadline:
            print("timeout %d/%d" % (n, count))
            return 1
        time.sleep(0.005)


def waitlog(path, regex, timeout, t0, pid=None):
    rx = re.compile(regex)
    deadline = time.time() + float(timeout)
    pos = 0
    buf = b""
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            pos += len(chunk)
            buf += chunk
            lines = buf.split(b"\n")
            buf = lines.pop()
            for ln in lines:
                if rx.search(ln.decode("utf-8", "replace")):
                    print("%.3f" % (time.time() - float(t0)))
                    return 0
        if time.time() > deadline:
            print("timeout")
            return 1
        if pid and not os.path.exists("/proc/%s" % pid):
            print("exited")
            return 1
        time.sleep(0.001)


def append_bytes(src, size):
    data = os.urandom(size)
    with open(src, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
        return f.tell(), data


def tail_is(dst, end, data):
    try:
        if os.stat(dst).st_size < end:
            return False
        with open(dst, "rb") as f:
            f.seek(end - len(data))
            return f.read(len(data)) == data
    except OSError:
        return False


def appendlag(src, dst, count, size, timeout, rsync_url=None):
    import random
    import subprocess
    count, size, timeout = int(count), int(size), float(timeout)
    ms, bad = [], 0
    for _ in range(count):
        time.sleep(random.random() * 0.01)
        t0 = time.monotonic_ns()
        end, data = append_bytes(src, size)
        if rsync_url:
            ok = subprocess.call(["rsync", "--append", "--inplace", src,
                                  rsync_url]) == 0
        else:
            deadline = time.monotonic() + timeout
            ok = False
            while time.monotonic() < deadline:
                if tail_is(dst, end, data):
                    ok = True
                    break
                time.sleep(0.0002)
        if ok:
            ms.append((time.monotonic_ns() - t0) / 1e6)
        else:
            bad += 1
    ms.sort()
    print("%.2f %.2f %.2f %d %d" % (pct(ms, 50), pct(ms, 99),
                                   ms[-1] if ms else float("nan"),
                                   len(ms), bad))


def steady(src, dst, rate, seconds, timeout):
    rate, seconds, timeout = float(rate), float(seconds), float(timeout)
    n = int(rate * seconds)
    start = time.monotonic()
    for i in range(n):
        due = start + i / rate
        d = due - time.monotonic()
        if d > 0:
            time.sleep(d)
        end, data = append_bytes(src, 100)
    t_last = time.monotonic()
    deadline = t_last + timeout
    while time.monotonic() < deadline:
        if os.stat(dst).st_size == end and tail_is(dst, end, data):
            print("%.3f" % (time.monotonic() - t_last))
            return 0
        time.sleep(0.0002)
    print("timeout")
    return 1


def wait_size(path, size, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.stat(path).st_size == size:
                return True
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    return False


def wait_bytes(path, off, data, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                if os.pread(f.fileno(), len(data), off) == data:
                    return True
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    return False


def wait_gone(path, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(path):
            return True
        time.sleep(0.01)
    return False


def behind(src, dst, mode, stage, count, timeout, samples="-"):
    count, timeout = int(count), float(timeout)
    ms, lost = [], 0
    for i in range(count):
        if mode == "new":
            staged = os.path.join(stage, "new-%d" % i)
            with open(os.path.join(stage, "big0"), "rb") as a, \
                    open(staged, "wb") as b:
                size = os.fstat(a.fileno()).st_size
                while size > 0:
                    n = os.copy_file_range(a.fileno(), b.fileno(),
                                           min(size, 1 << 30))
                    if n <= 0:
                        break
                    size -= n
                b.write(b"%d" % i)
            big = os.path.join(src, "new-%d" % i)
        else:
            big = os.path.join(src, "big")
        if mode == "rewrite":
            size = os.stat(big).st_size
            roff = (size // 2) & ~4095
            rdata = os.urandom(min(1 << 20, size - roff))
        data = os.urandom(5).hex().encode()
        sp = os.path.join(src, "small-%d" % i)
        dp = os.path.join(dst, "small-%d" % i)
        t0 = time.monotonic_ns()
        if mode == "new":
            os.rename(staged, big)
        elif mode == "rewrite":
            fd = os.open(big, os.O_WRONLY)
            try:
                os.pwrite(fd, rdata, roff)
                os.fsync(fd)
            finally:
                os.close(fd)
        else:
            with open(big, "ab") as f:
                f.write(os.urandom(100))
                f.flush()
                os.fsync(f.fileno())
        with open(sp, "wb") as f:
            f.write(data)
        deadline = t0 + int(timeout * 1e9)
        got = None
        while got is None:
            try:
                if os.stat(dp).st_size == len(data):
                    with open(dp, "rb") as f:
                        if f.read() == data:
                            got = time.monotonic_ns() - t0
                            break
            except FileNotFoundError:
                pass
            if time.monotonic_ns() > deadline:
                break
            time.sleep(0.0002)
        if got is None:
            lost += 1
        else:
            ms.append(got / 1e6)
        rel = os.path.basename(big)
        if mode == "rewrite":
            if not wait_bytes(os.path.join(dst, rel), roff, rdata, timeout):
                sys.stderr.write("behind: %s rewrite never arrived\n" % rel)
        elif not wait_size(os.path.join(dst, rel), os.stat(big).st_size,
                           timeout):
            sys.stderr.write("behind: %s never arrived\n" % rel)
        if mode == "new":
            os.unlink(big)
            wait_gone(os.path.join(dst, rel), timeout)
    if samples != "-":
        with open(samples, "w") as f:
            for k, v in enumerate(ms):
                f.write("%d %.3f\n" % (k, v))
    ms.sort()
    print("%.3f %.3f %.3f %d %d" % (pct(ms, 50), pct(ms, 99),
                                    ms[-1] if ms else float("nan"),
                                    len(ms), lost))
    return 0


def overwrite(src, offset, size):
    """SIZE random bytes over SRC at OFFSET, in place, fsynced."""
    data = os.urandom(int(size))
    fd = os.open(src, os.O_WRONLY)
    try:
        os.pwrite(fd, data, int(offset))
        os.fsync(fd)
    finally:
        os.close(fd)
    return data


def holds(dst, offset, data):
    try:
        fd = os.open(dst, os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.pread(fd, len(data), offset) == data
    finally:
        os.close(fd)


def inplacelag(src, dst, offset, size, timeout):
    """Overwrite SIZE bytes of SRC at OFFSET, then poll DST (every 1 ms,
    opened again each time: the standby renames a new version in) until
    it holds them; print the seconds from before the write."""
    offset, timeout = int(offset), float(timeout)
    t0 = time.monotonic()
    data = overwrite(src, offset, size)
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if holds(dst, offset, data):
            print("%.3f" % (time.monotonic() - t0))
            return 0
        time.sleep(0.001)
    print("timeout")
    return 1


def main(argv):
    cmds = {"mktree": mktree, "same": same, "lag": lag, "burst": burst,
            "waitlog": waitlog, "appendlag": appendlag, "steady": steady,
            "behind": behind, "inplacelag": inplacelag,
            "overwrite": lambda *a: overwrite(*a) and 0}
    if len(argv) < 2 or argv[1] not in cmds:
        sys.stderr.write(__doc__)
        return 2
    return cmds[argv[1]](*argv[2:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
