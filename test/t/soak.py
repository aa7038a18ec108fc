#!/usr/bin/env python3
"""The randomized rescue soak's workload and its plan, both from a seed.

  soak.py init ROOT SEED
      a starting tree under ROOT: a few directories of small and
      medium files.

  soak.py work ROOT SEED SECONDS MAXOPS
      a mixed workload on ROOT until SECONDS have passed or MAXOPS
      operations were made (whichever first): creates, overwrites,
      appends, rename-replace (write a temporary file, rename it over an
      existing one), directory renames, deletes of files and of whole
      directories, mkdirs. No fsync: a host that dies loses nothing the
      rescue can read, whatever the page cache held, since the data is
      on this machine. Prints the count of operations made at the end
      (the workload is normally SIGKILLed before).

  soak.py plan SEED
      the trial's schedule as shell assignments: the primary's interval,
      when the primary and
      the workload die, which of the two standbys is paused at that
      moment (if any), and the disruptions of the rescue: each is
      "TARGET:AT:DOWN", TARGET rescue, sa or sb SIGKILLed AT seconds
      after the first rescue started (or once the one before is done,
      if later), restarted DOWN seconds later; rescue1 is the rescue
      SIGKILLed at AT or, if no standby has completed by then, as soon
      as one has (within 10 s), with the other standby paused until
      after it: one standby done, the other not yet.

The same SEED gives the same operations in the same order and the same
plan (the timing of a kill against the workload varies, of course).
"""
import os
import random
import sys
import time


def rel_files(root):
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            if not f.startswith(".asyncrep-tmp."):
                out.append(os.path.join(d, f))
    return out


def rel_dirs(root):
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        out += [os.path.join(d, x) for x in dirs]
    return out


def payload(rng):
    # Mostly small; now and then large enough that a transfer is still
    # in flight when something is killed.
    n = rng.choice((0, 1, 100, 3000, 20000, 70000, 300000, 1500000))
    return rng.randbytes(n) if hasattr(rng, "randbytes") else os.urandom(n)


def init(root, seed):
    rng = random.Random(seed)
    for i in range(rng.randint(3, 6)):
        d = os.path.join(root, "i%d" % i)
        os.makedirs(d, exist_ok=True)
        for j in range(rng.randint(2, 12)):
            with open(os.path.join(d, "f%03d" % j), "wb") as f:
                f.write(payload(rng)[:200000])


def work(root, seed, seconds, maxops):
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    ops = 0
    serial = 0

    def fresh():
        nonlocal serial
        serial += 1
        return "w%05d" % serial

    def somedir():
        return rng.choice([root] + rel_dirs(root))

    while ops < maxops and time.monotonic() < deadline:
        ops += 1
        op = rng.randrange(100)
        try:
            files = rel_files(root)
            if op < 25 or not files:                # create
                with open(os.path.join(somedir(), fresh()), "wb") as f:
                    f.write(payload(rng))
            elif op < 40:                           # overwrite in place
                with open(rng.choice(files), "wb") as f:
                    f.write(payload(rng))
            elif op < 55:                           # append
                with open(rng.choice(files), "ab") as f:
                    f.write(payload(rng)[:rng.choice((1, 500, 40000))])
            elif op < 67:                           # rename-replace
                dst = rng.choice(files)
                tmp = os.path.join(os.path.dirname(dst), "." + fresh() + ".tmp")
                with open(tmp, "wb") as f:
                    f.write(payload(rng))
                os.rename(tmp, dst)
            elif op < 72:                           # rename a file
                src = rng.choice(files)
                os.rename(src, os.path.join(somedir(), fresh()))
            elif op < 80:                           # rename a directory
                dirs = rel_dirs(root)
                if dirs:
                    src = rng.choice(dirs)
                    dst = os.path.join(somedir(), "D" + fresh())
                    if not (dst + "/").startswith(src + "/"):
                        os.rename(src, dst)
            elif op < 90:                           # delete a file
                os.unlink(rng.choice(files))
            elif op < 94:                           # delete a directory
                dirs = rel_dirs(root)
                if dirs:
                    victim = rng.choice(dirs)
                    for d, sub, fs in os.walk(victim, topdown=False):
                        for f in fs:
                            os.unlink(os.path.join(d, f))
                        for s in sub:
                            os.rmdir(os.path.join(d, s))
                    os.rmdir(victim)
            else:                                   # mkdir
                os.mkdir(os.path.join(somedir(), "D" + fresh()))
        except OSError:
            pass
        time.sleep(rng.choice((0, 0, 0.001, 0.005, 0.02)))
    print(ops)


def plan(seed):
    rng = random.Random(seed)
    print("INTERVAL=%s" % rng.choice(("0", "50ms", "200ms", "200ms", "1s")))
    # The primary dies 0.3 to 2.5 s into the workload; the workload
    # dies with it, just before or just after (a host going down).
    print("KILL_AFTER=%.3f" % rng.uniform(0.3, 2.5))
    print("WL_GAP=%.3f" % rng.choice((0, 0, 0.02, 0.1, 0.3)))
    print("WL_FIRST=%d" % rng.randrange(2))
    paused = rng.choice(("", "", "sa", "sb"))
    resume = rng.uniform(0, 1.5)
    events = []
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        events.append((rng.uniform(0, 1.5),
                       rng.choice(("rescue", "rescue", "sa", "sb", "rescue1")),
                       rng.uniform(0, 0.6)))
    events.sort()
    # rescue1: the standby that was paused is resumed only after it, so
    # that the rescue dies between the two confirmations.
    last1 = [a for a, t, d in events if t == "rescue1"]
    if last1:
        paused = paused or rng.choice(("sa", "sb"))
        resume = last1[-1] + rng.uniform(0.05, 1.0)
    print("PAUSED=%s" % paused)
    print("RESUME_AT=%.3f" % resume)
    print("EVENTS='%s'" % " ".join("%s:%.3f:%.3f" % (t, a, d)
                                    for a, t, d in events))


def main(argv):
    if len(argv) == 3 and argv[0] == "init":
        init(argv[1], int(argv[2]))
    elif len(argv) == 5 and argv[0] == "work":
        work(argv[1], int(argv[2]), float(argv[3]), int(argv[4]))
    elif len(argv) == 2 and argv[0] == "plan":
        plan(int(argv[1]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
