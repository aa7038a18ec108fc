#!/usr/bin/env python3
"""An application that logs its durable writes, and the check of a tree
against that log.

  writes.py write ROOT LOG [SEED [MAX_BYTES [PER_DIR]]]
      forever: write a file of 1..MAX_BYTES random bytes (default 48 KiB)
      under ROOT, fsync it and its directory, and only then append
      "name size sha256" to LOG: a logged line is a write the application
      was told is durable. Every tenth step appends to an earlier file.
      PER_DIR files go in each directory (default 40).

  writes.py check [-v] LOG TREE
      the last logged content of every file against what TREE holds: it
      must start that file (an append after it may have been made and
      not logged yet when the application died). Prints "WRITTEN PRESENT
      LOST"; -v lists the lost ones on stderr. Exits 1 if anything is
      lost or nothing was logged.
"""
import hashlib
import os
import random
import sys
import time


def write(root, log, seed=40, max_bytes=48 * 1024, per_dir=40):
    rng = random.Random(seed)
    lf = open(log, "a")
    i = 0
    while True:
        sub = "d%02d" % (i // per_dir)
        os.makedirs(os.path.join(root, sub), exist_ok=True)
        if i % 10 == 9:
            name = "d%02d/w%05d" % ((i - 5) // per_dir, i - 5)
            flags = os.O_WRONLY | os.O_APPEND
        else:
            name = "%s/w%05d" % (sub, i)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        path = os.path.join(root, name)
        fd = os.open(path, flags, 0o644)
        os.write(fd, os.urandom(rng.randint(1, max_bytes)))
        os.fsync(fd)
        os.close(fd)
        dfd = os.open(os.path.dirname(path), os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
        with open(path, "rb") as f:
            data = f.read()
        lf.write("%s %d %s\n" % (name, len(data),
                                  hashlib.sha256(data).hexdigest()))
        lf.flush()
        i += 1
        time.sleep(0.002)


def check(log, tree, verbose):
    last = {}
    for line in open(log):
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and len(parts[2]) == 64:
            last[parts[0]] = (int(parts[1]), parts[2])
    lost = 0
    for name, (size, h) in sorted(last.items()):
        try:
            with open(os.path.join(tree, name), "rb") as f:
                data = f.read()
            ok = len(data) >= size and \
                hashlib.sha256(data[:size]).hexdigest() == h
        except OSError:
            ok = False
        if not ok:
            lost += 1
            if verbose:
                print("  lost: %s" % name, file=sys.stderr)
    print(len(last), len(last) - lost, lost)
    return 1 if lost or not last else 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "write":
        nums = [int(a) for a in argv[3:6]]
        write(argv[1], argv[2], *nums)
        return 0
    if len(argv) in (3, 4) and argv[0] == "check":
        verbose = argv[1] == "-v"
        return check(argv[-2], argv[-1], verbose)
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
