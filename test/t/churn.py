"""Random changes to a tree for a bounded time, for follow tests.

Usage: churn.py DIR SECONDS SEED [MAXOPS]
Every kind of change the watcher must replicate: mkdir, create, append,
overwrite, truncate, rename of files and directories, delete, rmdir,
symlink, chmod. Stops after SECONDS or MAXOPS operations.
"""
import os
import random
import shutil
import sys
import time

root, seconds, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
maxops = int(sys.argv[4]) if len(sys.argv) > 4 else 100000
rnd = random.Random(seed)
deadline = time.monotonic() + seconds


def entries(kind):
    out = []
    for d, dirs, files in os.walk(root):
        if kind == "d":
            out += [os.path.join(d, x) for x in dirs]
        else:
            out += [os.path.join(d, x) for x in files]
    return out


def somedir():
    dirs = [root] + entries("d")
    return rnd.choice(dirs)


def name():
    return "n%05d" % rnd.randrange(100000)


ops = 0
while time.monotonic() < deadline and ops < maxops:
    ops += 1
    op = rnd.randrange(11)
    try:
        if op == 0:
            os.mkdir(os.path.join(somedir(), name()))
        elif op in (1, 2):
            with open(os.path.join(somedir(), name()), "wb") as f:
                f.write(os.urandom(rnd.choice((0, 10, 3000, 70000, 200000))))
        elif op == 3:
            fs = entries("f")
            if fs:
                with open(rnd.choice(fs), "ab") as f:
                    f.write(os.urandom(rnd.randrange(1, 5000)))
        elif op == 4:
            fs = entries("f")
            if fs:
                p = rnd.choice(fs)
                if not os.path.islink(p):
                    with open(p, "r+b") as f:
                        f.seek(rnd.randrange(max(1, os.path.getsize(p))))
                        f.write(os.urandom(100))
        elif op == 5:
            fs = entries("f")
            if fs:
                p = rnd.choice(fs)
                if not os.path.islink(p):
                    os.truncate(p, rnd.randrange(max(1, os.path.getsize(p))))
        elif op == 6:
            fs = entries("f") + entries("d")
            if fs:
                src = rnd.choice(fs)
                dst = os.path.join(somedir(), name())
                if not dst.startswith(src + "/"):
                    os.rename(src, dst)
        elif op == 7:
            fs = entries("f")
            if fs:
                os.unlink(rnd.choice(fs))
        elif op == 8:
            ds = entries("d")
            if ds:
                shutil.rmtree(rnd.choice(ds))
        elif op == 9:
            os.symlink(name(), os.path.join(somedir(), name()))
        elif op == 10:
            fs = entries("f") + entries("d")
            if fs:
                p = rnd.choice(fs)
                if not os.path.islink(p):
                    os.chmod(p, rnd.choice((0o600, 0o644, 0o755, 0o700)))
    except (FileNotFoundError, FileExistsError, NotADirectoryError,
            IsADirectoryError, OSError):
        pass
print(ops)
