"""Print a canonical listing of a tree for byte-exact comparison.

One line per path (sorted by bytes), with type, permission bits (not
for symlinks: Linux cannot set them), owner and group, size, mtime in
nanoseconds (symlinks' too: they are set with utimensat), symlink
target, and SHA-256 of regular files. Names are printed with repr() of
their bytes so newlines and invalid UTF-8 are visible and cannot split a
line.
"""
import hashlib
import os
import stat
import sys

# TREELIST_MTIME_RES=N: mtimes truncated to multiples of N ns (a tree
# that went through a filesystem with coarser timestamps, such as sftp's
# whole seconds).
MTIME_RES = int(os.environ.get("TREELIST_MTIME_RES", "1") or "1")


def mtime(st):
    return st.st_mtime_ns // MTIME_RES * MTIME_RES


def walk(root):
    out = []
    stack = [b""]
    while stack:
        rel = stack.pop()
        full = os.path.join(root, rel) if rel else root
        for name in os.listdir(full):
            if name.startswith(b".asyncrep-tmp."):
                continue
            r = os.path.join(rel, name) if rel else name
            p = os.path.join(root, r)
            st = os.lstat(p)
            mode = stat.S_IMODE(st.st_mode)
            own = "%d:%d" % (st.st_uid, st.st_gid)
            if stat.S_ISDIR(st.st_mode):
                out.append((r, "d %o %s - %d" % (mode, own, mtime(st))))
                stack.append(r)
            elif stat.S_ISLNK(st.st_mode):
                out.append((r, "l %s %d -> %r" % (own, mtime(st),
                                                  os.readlink(p))))
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    while True:
                        b = f.read(1 << 20)
                        if not b:
                            break
                        h.update(b)
                out.append((r, "f %o %s %d %d %s" % (mode, own, st.st_size,
                                                     mtime(st),
                                                     h.hexdigest())))
            else:
                out.append((r, "o"))
    out.sort()
    for r, desc in out:
        sys.stdout.write("%r %s\n" % (r, desc))


walk(os.fsencode(sys.argv[1]))
