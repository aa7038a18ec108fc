#!/usr/bin/env python3
"""fake-primary.py: a hostile or broken asyncrep primary, for tests.

Usage:
  fake-primary.py --listen IP:PORT --mode MODE [--ready-file F]
                  [--tree DIR] [--outside DIR] [--victim PATH]
                  [--auth-token-file F] [--lifetime SECONDS]

It speaks PROTOCOL.md (versions 1 and 2; WIRE_V_APPEND in the append-* modes, which
answer POST /v1/append; WIRE_V_BLOCKS in the blocks-* modes, which answer
POST /v1/blocks) over HTTP/1.1 with the Python standard
library only: GET /v1/hello, GET /v1/manifest, POST /v1/files and
POST /v1/delta. It serves the tree under --tree honestly (a manifest built
from lstat, whole files, and "deltas" that are a single librsync LITERAL
command, which is a valid delta against any basis) except for the one
attack that --mode selects. A test gives the standby a copy of the same
tree (cp -a), so everything that is not the attack is already identical
and a correct standby changes nothing.

--outside names a directory outside the standby's data dir that the
attacks aim at (absolute paths, symlink targets). It defaults to /etc as
the attack would be in real life, but tests always pass a scratch
directory: a broken standby that "syncs" /etc could delete files there.

Every attack is documented in MODES below with what the standby must do.
The server exits by itself after --lifetime seconds (default 120), so it
can never outlive a test that forgot it. Only loopback addresses are
accepted for --listen.

Each request is logged to stderr as one line ("GET /v1/manifest",
"POST /v1/files doc.txt", "POST /v1/delta big.bin"), so a test can check
that the attack was actually delivered.
"""
import argparse
import hashlib
import hmac
import http.server
import ipaddress
import os
import random
import secrets
import socket
import stat
import struct
import sys
import tempfile
import threading
import time

# --- protocol constants (PROTOCOL.md) ----------------------------------------
VERSION = 2                     # the highest version spoken


def _wire_constant(name):
    # A version number as core/wire.h defines it (the number may change
    # when versions are renumbered; the name stays).
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "..", "..", "core", "wire.h")
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[:2] == ["#define", name]:
                return int(parts[2])
    raise SystemExit("fake-primary: %s not in %s" % (name, path))


V_FIDELITY = _wire_constant("WIRE_V_FIDELITY")  # special files, xattrs, links
V_APPEND = _wire_constant("WIRE_V_APPEND")  # POST /v1/append
V_BLOCKS = _wire_constant("WIRE_V_BLOCKS")  # POST /v1/blocks
V_NAMES = _wire_constant("WIRE_V_NAMES")  # I frames: owner names
ROLE_PRIMARY = 1
MAX_FRAME = 1 << 20
DATA_CHUNK = 256 * 1024
RETRY_GONE = 2
DELTA_MAGIC = 0x72730236        # librsync RS_DELTA_MAGIC
OP_END = 0x00
OP_LITERAL_N4 = 0x43            # LITERAL, length in the next 4 bytes
OP_COPY_N1_N4 = 0x47            # COPY, position 1 byte, length 4 bytes
OP_COPY_N8_N4 = 0x53            # COPY, position 8 bytes, length 4 bytes
MAX_BODY = 256 << 20            # largest request body we read

# --- the attacks --------------------------------------------------------------
# Each value says what the attack is and what a correct standby must do.
# "6" is AR_EPROTO, "3" AR_EPARTIAL, "10" AR_EVERSION (core/error.h).
MODES = {
    "honest":
        "no attack: serve the tree faithfully. The standby must exit 0 and "
        "hold an identical tree; proves the fake speaks the protocol.",
    "traversal-entry":
        "the root block lists a file entry named '..' (served as 'pwned' by "
        "/v1/files). A name must be one component, never '.' or '..': "
        "reject the manifest (6), write nothing.",
    "traversal-dir":
        "a P frame names '../escape' with a file 'pwned' in it. A path must "
        "not contain '..': reject (6); nothing appears beside the data dir.",
    "traversal-file":
        "doc.txt is announced as changed; the /v1/files answer for it is an "
        "F frame whose path is '../../outside/pwned' (with valid data and "
        "trailer). An F path must be valid and be the path requested: "
        "reject (6); doc.txt and the outside dir stay as they are.",
    "absolute":
        "a P frame names the absolute path of --outside (/etc by default) "
        "with a file 'pwned' in it. Paths are relative: reject (6).",
    "oversize-frame":
        "after the root block, a frame header announces a 2 GiB payload "
        "(64 KiB of filler follow, then the body ends). Reject at the header "
        "(limit is 1 MiB) without trying to buffer it (6).",
    "oversize-name":
        "the root block lists a file whose name is 300 bytes (the limit of "
        "a component is 255). Reject (6).",
    "oversize-data":
        "doc.txt is announced as changed, size 1 MiB + 1; its /v1/files "
        "answer carries one D frame of 1 MiB + 1 bytes, above the frame "
        "limit. Reject (6); doc.txt unchanged.",
    "short-file":
        "doc.txt is announced with size 10; F says 10, one D frame carries "
        "5 bytes, the trailer claims size 10 and the hash of 10 bytes the "
        "standby never got. The file must not be renamed into place: fail "
        "this file (3) or the run (6); doc.txt unchanged, no temp file left.",
    "bad-hash":
        "doc.txt: F size, D bytes and trailer size agree, but the trailer's "
        "SHA-256 is that of other bytes. Must not be renamed into place "
        "(3 or 6); doc.txt unchanged.",
    "expand":
        "doc.txt: F announces 100 bytes, D frames carry 1000; the trailer "
        "claims 100 bytes and the hash of the first 100 bytes, so only a "
        "standby that notices the excess (rather than silently truncating) "
        "refuses it. Never write more than F's size; reject (3 or 6).",
    "append-bad-block":
        "speaks the append version; the victim (--victim) is announced 100 bytes "
        "longer, and the /v1/append answer announces a block hash that does "
        "not match the bytes it sends. The standby must refuse (6) before "
        "writing any of them: its copy unchanged, same inode.",
    "append-expand":
        "speaks version 3; as append-bad-block, but the D frames carry more "
        "bytes than the announced block holds. Never write past the block: "
        "refuse (6), the copy unchanged.",
    "blocks-bad-block":
        "speaks the changed-blocks version; the victim (--victim) is "
        "announced changed in place (its middle 4 KiB, size kept), and the "
        "/v1/blocks answer announces a block hash that does not match the "
        "bytes it sends. The standby must refuse the answer before writing "
        "them, say why, and take the delta path (answered honestly): 0, "
        "the new version, no temp file left.",
    "blocks-expand":
        "as blocks-bad-block, but the D frames carry more bytes than the "
        "announced block holds. Never write past the block: refuse, the "
        "delta path, 0.",
    "blocks-skip":
        "as blocks-bad-block, but the changed block is left out: only T, "
        "with a root that is not the new version's. The standby's root "
        "check must refuse it: the delta path, 0.",
    "corrupt-delta":
        "big.bin is announced as changed (same size, new mtime); /v1/files "
        "answers honestly, but the /v1/delta answer holds garbage D frames "
        "instead of a librsync delta. The patch must fail cleanly (3 or 6); "
        "big.bin unchanged, no temp file left.",
    "delta-expand":
        "big.bin is announced with half its size (F says the same); the "
        "delta is a valid librsync delta with one LITERAL command of that "
        "size + 4096 bytes, and the trailer claims the announced size and "
        "the hash of the first bytes of the literal. Cap the patch output "
        "at F's size and reject the excess (3 or 6).",
    "delta-copy-past-eof":
        "a valid delta header then a COPY command from offset 2^40 of the "
        "basis, far past its end. librsync's copy callback must return an "
        "error (a zero-length RS_DONE would hang rs_job_iter): the standby "
        "must fail, not hang (3 or 6).",
    "delta-bomb":
        "a 21-byte-per-command delta that COPYs the whole basis 64 times "
        "(64x expansion); the trailer claims the basis size and its hash, so "
        "the first F-size bytes are right. Reject the excess (3 or 6); "
        "big.bin keeps its mtime.",
    "symlink-escape":
        "the root lists 'link' as a symlink to the outside dir (the standby "
        "already holds the same symlink), then a P block 'link' lists a "
        "file 'pwned' served by /v1/files. The standby must never write "
        "through a symlink: reject (6, or 3 if detected when the file is "
        "opened); the outside dir unchanged.",
    "truncated":
        "the manifest body ends in the middle of an E frame (header and "
        "half its payload; the HTTP body itself is complete). Reject (6) "
        "and delete nothing.",
    "truncated-close":
        "the manifest's Content-Length is the full manifest but the server "
        "closes the connection halfway. Fail (4 or 6) and delete nothing.",
    "truncated-noend":
        "the manifest holds the root block only and ends at a frame "
        "boundary without a Z frame. A naive standby would delete every "
        "subdirectory: it must reject (6) and delete nothing.",
    "wrong-version":
        "a future server that speaks versions 98-99 only: the hello answers "
        "an X frame (code 10) when the standby's offered range does not "
        "reach 98, as asyncrep does. Refuse with 10 before asking for "
        "anything else.",
    "bad-version":
        "hello announces version 99 (range 99-99) whatever the standby "
        "offered (the rest is served honestly). Refuse with 10 before "
        "asking for anything else.",
    "v1-only":
        "a version 1 server: it ignores the offered range and answers a "
        "version 1 hello; the rest is served honestly. The standby speaks "
        "version 1 with it and changes nothing (0).",
    "garbage":
        "the manifest is 4096 random bytes (fixed seed). Reject (6).",
    "hardlink-outside":
        "speaks the fidelity version; the root block lists 'evil', a hard "
        "link (type h) whose target is '../outside/sentinel'. A link target "
        "is a path of the tree: reject (6); nothing is linked.",
    "xattr-namespace":
        "speaks the fidelity version; doc.txt's entry is preceded by a Y "
        "frame setting 'system.evil', a namespace the protocol does not "
        "carry. Reject (6); nothing is set.",
    "idname-flood":
        "speaks the owner-names version; doc.txt's entry is preceded by "
        "8193 I frames, more users than one answer may name. Reject (6); "
        "nothing is written.",
    "idname-bad":
        "speaks the owner-names version; doc.txt's entry is preceded by an "
        "I frame whose name holds a ':'. Reject (6); nothing is written.",
    "stall":
        "raw TCP: accept connections and never read or write. The standby "
        "must give up after its stall timeout (4).",
    "stall-mid":
        "hello is answered; the manifest sends its headers and root block, "
        "then stops sending and holds the connection. Give up (4).",
    "reset":
        "raw TCP: accept and reset the connection at once (SO_LINGER 0). "
        "Fail with 4.",
    "endless-manifest":
        "the manifest is the root block and then E frames without end (it "
        "stops at 256 MiB, or when the standby hangs up). The standby must "
        "stop at max_stored_size (8) and leave nothing in its state dir.",
    "huge-file":
        "doc.txt is announced as changed with a size of 2^50 bytes, in the "
        "manifest and in its F frame (4 KiB of data follow). Refuse before "
        "writing: with max_file_size, a warning naming it and 3, and no "
        "request for it; without, the free-space check (7) names the path "
        "and both sizes. doc.txt unchanged, no temp file left.",
}


# --- frames ------------------------------------------------------------------
def frame(ftype, payload):
    return ftype.encode() + struct.pack(">I", len(payload)) + payload


def hello(version=VERSION, generation=None, server=b"fake", seq=0,
          vrange=None):
    # seq: the last released change sequence (core/wire.h); 0 = nothing
    # released, so the standby does a full compare. From version 2 on
    # the server's range (vmin, vmax) follows.
    gen = generation.encode()
    tail = b""
    if version >= 2:
        tail = struct.pack(">II", *(vrange or (version, version)))
    return frame("H", struct.pack(">II", version, ROLE_PRIMARY)
                 + bytes([len(gen)]) + gen + bytes([len(server)]) + server
                 + struct.pack(">Q", seq) + tail)


def error_frame(code, msg):
    return frame("X", struct.pack(">IH", code, len(msg)) + msg)


def idname_frame(kind, ident, name):
    # I (version V_NAMES): u8 kind, u32 id, u8 n + name.
    return frame("I", kind + struct.pack(">I", ident) + bytes([len(name)])
                 + name)


def dir_frame(path):
    return frame("P", struct.pack(">H", len(path)) + path)


def entry_payload(node, name):
    return (node.kind.encode() + struct.pack(">H", len(name)) + name
            + struct.pack(">QqIIII", node.size, node.mtime_sec,
                          node.mtime_nsec, node.mode, node.uid, node.gid)
            + struct.pack(">H", len(node.target)) + node.target)


def entry_frame(node):
    return frame("E", entry_payload(node, node.name))


def file_frame(node, path=None):
    return frame("F", entry_payload(node, node.path if path is None else path))


def data_frames(data):
    out = []
    for off in range(0, len(data), DATA_CHUNK):
        out.append(frame("D", data[off:off + DATA_CHUNK]))
    return b"".join(out)


def trailer_frame(size, digest):
    return frame("T", struct.pack(">Q", size) + digest)


def retry_frame(reason, path):
    return frame("R", struct.pack(">IH", reason, len(path)) + path)


def end_frame(count):
    return frame("Z", struct.pack(">Q", count))


def literal_delta(data):
    """A valid librsync delta that produces data from any basis."""
    return (struct.pack(">I", DELTA_MAGIC)
            + bytes([OP_LITERAL_N4]) + struct.pack(">I", len(data)) + data
            + bytes([OP_END]))


def sha256(data):
    return hashlib.sha256(data).digest()


# --- the tree ------------------------------------------------------------------
class Node:
    """One manifest entry: what lstat said, plus where the bytes come from."""

    def __init__(self, path, kind, st=None, target=b"", data=None):
        self.path = path                      # whole relative path (bytes)
        self.name = path.rsplit(b"/", 1)[-1]  # last component
        self.kind = kind                      # 'f', 'd' or 'l'
        self.target = target
        self._data = data
        self.disk = None
        if st is not None:
            self.size = st.st_size if kind == "f" else 0
            self.mtime_sec = st.st_mtime_ns // 10**9
            self.mtime_nsec = st.st_mtime_ns % 10**9
            self.mode = stat.S_IMODE(st.st_mode)
            self.uid, self.gid = st.st_uid, st.st_gid
        else:
            self.size = len(data) if data is not None else 0
            self.mtime_sec, self.mtime_nsec = 1700000000, 0
            self.mode = 0o644 if kind == "f" else 0o755
            self.uid, self.gid = os.getuid(), os.getgid()

    def data(self):
        if self._data is not None:
            return self._data
        with open(self.disk, "rb") as f:
            return f.read()


class Tree:
    """The served tree: directory blocks in manifest order, and every file."""

    def __init__(self, root):
        self.blocks = []        # [(dirpath, [Node sorted by name])]
        self.files = {}         # path -> Node, regular files only
        self._scan(os.fsencode(root))

    def _scan(self, root):
        # Depth-first, each directory's block before its subdirectories',
        # children sorted by the bytes of their names (PROTOCOL.md). Bounded
        # by the size of the test tree; symlinks are listed, never followed.
        stack = [b""]
        while stack:
            rel = stack.pop()
            full = os.path.join(root, rel) if rel else root
            nodes, subdirs = [], []
            for name in sorted(os.listdir(full)):
                if name.startswith(b".asyncrep-tmp."):
                    continue
                path = rel + b"/" + name if rel else name
                disk = os.path.join(root, path)
                st = os.lstat(disk)
                if stat.S_ISDIR(st.st_mode):
                    node = Node(path, "d", st)
                    subdirs.append(path)
                elif stat.S_ISLNK(st.st_mode):
                    node = Node(path, "l", st, target=os.readlink(disk))
                elif stat.S_ISREG(st.st_mode):
                    node = Node(path, "f", st)
                    node.disk = disk
                    self.files[path] = node
                else:
                    continue
                nodes.append(node)
            self.blocks.append((rel, nodes))
            stack.extend(reversed(subdirs))

    def node(self, path):
        for _, nodes in self.blocks:
            for n in nodes:
                if n.path == path:
                    return n
        return None

    def add_entry(self, dirpath, node):
        for d, nodes in self.blocks:
            if d == dirpath:
                nodes.append(node)
                nodes.sort(key=lambda n: n.name)
                return
        raise KeyError(dirpath)

    def insert_block(self, dirpath, nodes):
        """Put a block where a directory of that name would be in
        depth-first order among the root's subdirectories."""
        first = dirpath.split(b"/", 1)[0]
        at = len(self.blocks)
        for i, (d, _) in enumerate(self.blocks):
            if i > 0 and d.split(b"/", 1)[0] > first:
                at = i
                break
        self.blocks.insert(at, (dirpath, nodes))

    def manifest(self):
        out, count = [], 0
        for d, nodes in self.blocks:
            out.append(dir_frame(d))
            for n in nodes:
                out.append(getattr(n, "before", b""))
                out.append(entry_frame(n))
                count += 1
        return out, count


def builtin_tree():
    """A small default tree when --tree is not given."""
    tmp = tempfile.mkdtemp(prefix="fake-primary.")
    os.makedirs(os.path.join(tmp, "sub"))
    for rel, data in (("doc.txt", b"hello from the fake primary\n"),
                      ("sub/b.txt", b"bee\n"),
                      ("big.bin", bytes(range(256)) * 4096)):
        with open(os.path.join(tmp, rel), "wb") as f:
            f.write(data)
    return tmp


# --- the server ------------------------------------------------------------------
class Fake:
    """Everything a mode changes, computed once at start-up."""

    def __init__(self, args):
        self.mode = args.mode
        self.generation = secrets.token_hex(16)
        self.tree = Tree(args.tree or builtin_tree())
        self.outside = os.fsencode(args.outside)
        self.version = 99 if self.mode == "bad-version" else VERSION
        self.extra = {}            # path -> bytes served for injected files
        self.file_answers = {}     # path -> frames answering /v1/files
        self.delta_answers = {}    # path -> frames answering /v1/delta
        self.top_version = VERSION  # V_APPEND in the append modes
        self.append_answer = None  # the answer to /v1/append
        self.blocks_answer = None  # the answer to /v1/blocks
        self.lifetime = args.lifetime
        self.token = None
        if args.auth_token_file:
            with open(args.auth_token_file, "rb") as f:
                self.token = f.read().rstrip(b"\r\n")
        victim = os.fsencode(args.victim) if args.victim else None
        getattr(self, "setup_" + self.mode.replace("-", "_"),
                lambda v: None)(victim)

    # A file injected into the manifest, served whole by /v1/files, so a
    # standby that accepts the manifest really writes it where it points.
    def inject(self, dirpath, name, data=b"pwned\n"):
        path = dirpath + b"/" + name if dirpath else name
        node = Node(path, "f", data=data)
        self.extra[path] = node
        return node

    def victim(self, victim, default):
        path = victim or default
        node = self.tree.files.get(path)
        if node is None:
            raise SystemExit("fake-primary: the tree has no file %r" % path)
        # A new mtime, so the standby sees the file as changed.
        node.mtime_sec += 1000
        return node

    def setup_traversal_entry(self, victim):
        self.tree.add_entry(b"", self.inject(b"", b".."))

    def setup_traversal_dir(self, victim):
        self.tree.blocks.append((b"../escape", [self.inject(b"../escape",
                                                            b"pwned")]))

    def setup_traversal_file(self, victim):
        node = self.victim(victim, b"doc.txt")
        data = b"pwned\n"
        node.size = len(data)
        self.file_answers[node.path] = (
            file_frame(node, b"../../outside/pwned") + data_frames(data)
            + trailer_frame(len(data), sha256(data)))

    def setup_absolute(self, victim):
        self.tree.blocks.append((self.outside, [self.inject(self.outside,
                                                            b"pwned")]))

    def setup_hardlink_outside(self, victim):
        node = Node(b"evil", "h", target=b"../outside/sentinel")
        node.size = 9
        self.tree.add_entry(b"", node)

    def setup_xattr_namespace(self, victim):
        node = self.tree.node(b"doc.txt")
        name, value = b"system.evil", b"1"
        node.before = frame("Y", bytes([0]) + struct.pack(">H", 1)
                            + bytes([len(name)]) + name
                            + struct.pack(">I", len(value)) + value)

    def setup_idname_flood(self, victim):
        node = self.tree.node(b"doc.txt")
        node.before = b"".join(idname_frame(b"u", i, b"u%d" % i)
                               for i in range(1, 8194))

    def setup_idname_bad(self, victim):
        node = self.tree.node(b"doc.txt")
        node.before = idname_frame(b"u", 1000, b"a:b")

    def setup_oversize_name(self, victim):
        self.tree.add_entry(b"", self.inject(b"", b"n" * 300))

    def setup_oversize_data(self, victim):
        node = self.victim(victim, b"doc.txt")
        data = b"y" * (MAX_FRAME + 1)
        node.size = len(data)
        self.file_answers[node.path] = (
            file_frame(node) + frame("D", data)
            + trailer_frame(len(data), sha256(data)))

    def setup_short_file(self, victim):
        node = self.victim(victim, b"doc.txt")
        node.size = 10
        self.file_answers[node.path] = (
            file_frame(node) + frame("D", b"01234")
            + trailer_frame(10, sha256(b"0123456789")))

    def setup_bad_hash(self, victim):
        node = self.victim(victim, b"doc.txt")
        data = b"replaced by a hostile primary\n"
        node.size = len(data)
        self.file_answers[node.path] = (
            file_frame(node) + data_frames(data)
            + trailer_frame(len(data), sha256(b"not the bytes sent")))

    def setup_expand(self, victim):
        node = self.victim(victim, b"doc.txt")
        data = bytes(b"0123456789abcdef"[i % 16] for i in range(1000))
        node.size = 100
        self.file_answers[node.path] = (
            file_frame(node) + data_frames(data)
            + trailer_frame(100, sha256(data[:100])))

    def delta_victim(self, victim):
        node = self.victim(victim, b"big.bin")
        basis = node.data()
        # What the "new version" would be: the middle 4 KiB changed.
        mid = len(basis) // 2
        new = basis[:mid] + b"\xa5" * 4096 + basis[mid + 4096:]
        new = new[:len(basis)]
        # /v1/files answers honestly with that new version.
        node._data = new
        return node, basis, new

    def append_victim(self, victim):
        node = self.victim(victim, b"big.bin")
        base = node.data()
        node._data = base + b"\x5a" * 100
        node.size = len(node._data)
        self.top_version = V_APPEND
        return node, len(base)

    def setup_append_bad_block(self, victim):
        node, base = self.append_victim(victim)
        idx = base // 65536
        tail = node._data[base:(idx + 1) * 65536]
        self.append_answer = (
            file_frame(node) + frame("B", struct.pack(">Q", idx) +
                                     b"\x11" * 16)
            + frame("D", tail) + trailer_frame(node.size, b"\0" * 32)
            + end_frame(1))

    def setup_append_expand(self, victim):
        node, base = self.append_victim(victim)
        idx = base // 65536
        self.append_answer = (
            file_frame(node) + frame("B", struct.pack(">Q", idx) +
                                     b"\x11" * 16)
            + frame("D", b"\x5a" * 70000)
            + trailer_frame(node.size, b"\0" * 32) + end_frame(1))

    def blocks_victim(self, victim):
        node, basis, new = self.delta_victim(victim)
        self.top_version = V_BLOCKS
        idx = (len(basis) // 2) // 65536
        return node, idx, new[idx * 65536:(idx + 1) * 65536]

    def setup_blocks_bad_block(self, victim):
        node, idx, blk = self.blocks_victim(victim)
        self.blocks_answer = (
            file_frame(node) + frame("B", struct.pack(">Q", idx) +
                                     b"\x11" * 16)
            + frame("D", blk) + trailer_frame(node.size, b"\0" * 32)
            + end_frame(1))

    def setup_blocks_expand(self, victim):
        node, idx, blk = self.blocks_victim(victim)
        self.blocks_answer = (
            file_frame(node) + frame("B", struct.pack(">Q", idx) +
                                     b"\x11" * 16)
            + frame("D", blk + b"\x5a" * 5000)
            + trailer_frame(node.size, b"\0" * 32) + end_frame(1))

    def setup_blocks_skip(self, victim):
        node, _, _ = self.blocks_victim(victim)
        self.blocks_answer = (file_frame(node)
                              + trailer_frame(node.size, b"\0" * 32)
                              + end_frame(1))

    def setup_corrupt_delta(self, victim):
        node, _, new = self.delta_victim(victim)
        garbage = random.Random(14).randbytes(64 * 1024)
        if garbage[:4] == struct.pack(">I", DELTA_MAGIC):
            garbage = b"\0" + garbage[1:]
        self.delta_answers[node.path] = (
            file_frame(node) + data_frames(garbage)
            + trailer_frame(len(new), sha256(new)))

    def setup_delta_expand(self, victim):
        node, basis, _ = self.delta_victim(victim)
        node.size = max(len(basis) // 2, 1)
        lit = bytes(b"expand!-"[i % 8] for i in range(node.size + 4096))
        self.delta_answers[node.path] = (
            file_frame(node) + data_frames(literal_delta(lit))
            + trailer_frame(node.size, sha256(lit[:node.size])))

    def setup_delta_copy_past_eof(self, victim):
        node, _, new = self.delta_victim(victim)
        delta = (struct.pack(">I", DELTA_MAGIC) + bytes([OP_COPY_N8_N4])
                 + struct.pack(">QI", 1 << 40, 4096) + bytes([OP_END]))
        self.delta_answers[node.path] = (
            file_frame(node) + data_frames(delta)
            + trailer_frame(len(new), sha256(new)))

    def setup_delta_bomb(self, victim):
        node, basis, _ = self.delta_victim(victim)
        node.size = len(basis)
        copy = bytes([OP_COPY_N1_N4, 0]) + struct.pack(">I", len(basis))
        delta = struct.pack(">I", DELTA_MAGIC) + copy * 64 + bytes([OP_END])
        self.delta_answers[node.path] = (
            file_frame(node) + data_frames(delta)
            + trailer_frame(len(basis), sha256(basis)))

    def setup_huge_file(self, victim):
        node = self.victim(victim, b"doc.txt")
        node.size = 1 << 50
        self.file_answers[node.path] = (file_frame(node)
                                        + frame("D", b"x" * 4096))

    def setup_symlink_escape(self, victim):
        link = self.tree.node(b"link")
        if link is None:
            link = Node(b"link", "l", target=self.outside)
            self.tree.add_entry(b"", link)
        elif link.kind != "l":
            raise SystemExit("fake-primary: 'link' in the tree is not a symlink")
        self.tree.insert_block(b"link", [self.inject(b"link", b"pwned")])

    # --- bodies ---
    def manifest_body(self):
        """Returns (bytes to send, Content-Length to announce)."""
        frames, count = self.tree.manifest()
        root = b"".join(frames[:1 + len(self.tree.blocks[0][1])])
        whole = b"".join(frames) + end_frame(count)
        m = self.mode
        if m == "garbage":
            body = random.Random(4096).randbytes(4096)
            return body, len(body)
        if m == "oversize-frame":
            body = root + b"E" + struct.pack(">I", 1 << 31) + b"A" * 65536
            return body, len(body)
        if m == "truncated":
            half = entry_payload(Node(b"half-an-entry", "f", data=b"x"),
                                 b"half-an-entry")
            body = (root + b"E" + struct.pack(">I", len(half))
                    + half[:len(half) // 2])
            return body, len(body)
        if m == "truncated-close":
            return whole[:len(whole) // 2], len(whole)
        if m == "truncated-noend":
            return root, len(root)
        if m == "stall-mid":
            return root, len(whole)
        return whole, len(whole)

    def answer_files(self, reqs):
        out = []
        for path, _ in reqs:
            if path in self.file_answers:
                out.append(self.file_answers[path])
                continue
            node = self.tree.files.get(path) or self.extra.get(path)
            if node is None:
                out.append(retry_frame(RETRY_GONE, path))
                continue
            data = node.data()
            out.append(file_frame(node) + data_frames(data)
                       + trailer_frame(len(data), sha256(data)))
        out.append(end_frame(len(reqs)))
        return b"".join(out)

    def answer_delta(self, reqs):
        if len(reqs) != 1:
            return None
        path = reqs[0][0]
        if path in self.delta_answers:
            return self.delta_answers[path] + end_frame(1)
        node = self.tree.files.get(path) or self.extra.get(path)
        if node is None:
            return retry_frame(RETRY_GONE, path) + end_frame(1)
        data = node.data()
        return (file_frame(node) + data_frames(literal_delta(data))
                + trailer_frame(len(data), sha256(data)) + end_frame(1))


def parse_requests(body):
    """The N frames at the start of a request body; D frames (a signature)
    are skipped. Raises ValueError on anything malformed."""
    reqs, off = [], 0
    while off < len(body):
        if len(body) - off < 5:
            raise ValueError("short frame header")
        ftype = body[off:off + 1]
        (n,) = struct.unpack(">I", body[off + 1:off + 5])
        if n > MAX_FRAME or off + 5 + n > len(body):
            raise ValueError("bad frame length")
        p = body[off + 5:off + 5 + n]
        off += 5 + n
        if ftype == b"N":
            (plen,) = struct.unpack(">H", p[:2])
            if len(p) != 2 + plen + 8:
                raise ValueError("bad N frame")
            (basis,) = struct.unpack(">Q", p[2 + plen:])
            reqs.append((p[2:2 + plen], basis))
        elif ftype != b"D":
            raise ValueError("unexpected frame %r" % ftype)
    return reqs


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-primary"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def note(self, text):
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def reply(self, status, body, length=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) if length is None
                                               else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def read_body(self):
        """The request body, Content-Length or chunked, at most MAX_BODY."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts, total = [], 0
            while total <= MAX_BODY:
                line = self.rfile.readline(1024)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
                total += size
            raise ValueError("body too large")
        n = int(self.headers.get("Content-Length", "0"))
        if n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n)

    def authorized(self):
        """With --auth-token-file, every request needs the bearer token
        (PROTOCOL.md, Authentication); answers 401 and returns False."""
        token = self.server.fake.token
        if token is None:
            return True
        got = self.headers.get("Authorization", "").encode()
        if hmac.compare_digest(got, b"Bearer " + token):
            return True
        self.note("%s %s: 401" % (self.command, self.path))
        self.reply(401, b"")
        return False

    def hello_answer(self, fake):
        """What the hello answers, after the version negotiation."""
        if fake.mode == "v1-only":
            return hello(1, fake.generation)
        if fake.mode == "bad-version":
            return hello(fake.version, fake.generation)
        offered = self.headers.get("X-Asyncrep-Versions", "1")
        lo, _, hi = offered.partition("-")
        lo, hi = int(lo), int(hi or lo)
        mine = (98, 99) if fake.mode == "wrong-version" else \
            (1, fake.top_version)
        if fake.mode in ("hardlink-outside", "xattr-namespace"):
            mine = (1, V_FIDELITY)
        if fake.mode in ("idname-flood", "idname-bad"):
            mine = (1, V_NAMES)
        top = min(hi, mine[1])
        if top < max(lo, mine[0]):
            return error_frame(10, b"this server speaks protocol versions "
                               b"%d to %d" % mine)
        return hello(top, fake.generation, vrange=mine)

    def do_GET(self):
        fake = self.server.fake
        path = self.path.split("?", 1)[0]
        if not self.authorized():
            return
        if path == "/v1/hello":
            self.note("GET %s (versions %s)" % (path, self.headers.get(
                "X-Asyncrep-Versions", "none")))
        else:
            self.note("GET " + path)
        if path == "/v1/hello":
            self.reply(200, self.hello_answer(fake))
        elif path == "/v1/manifest" and fake.mode == "endless-manifest":
            self.endless_manifest(fake)
        elif path == "/v1/manifest":
            body, length = fake.manifest_body()
            self.reply(200, body, length)
            if fake.mode == "truncated-close":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif fake.mode == "stall-mid":
                # Hold the connection, sending nothing, until the end.
                deadline = time.monotonic() + fake.lifetime
                while time.monotonic() < deadline:
                    time.sleep(0.2)
                self.close_connection = True
        else:
            self.reply(404, b"")

    def endless_manifest(self, fake):
        """The root block, then E frames until 256 MiB or a hang-up."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        sent, i = 0, 0
        try:
            self.wfile.write(dir_frame(b""))
            while sent < (256 << 20):
                chunk = b"".join(entry_frame(Node(b"f%010d" % n, "f",
                                                  data=b""))
                                 for n in range(i, i + 1000))
                i += 1000
                self.wfile.write(chunk)
                sent += len(chunk)
            self.wfile.flush()
        except OSError:
            pass
        self.note("GET /v1/manifest: %d bytes of endless manifest sent"
                  % sent)

    def do_POST(self):
        fake = self.server.fake
        path = self.path.split("?", 1)[0]
        try:
            body = self.read_body()
        except ValueError as e:
            self.note("POST %s: bad body: %s" % (path, e))
            self.close_connection = True
            self.reply(400, b"")
            return
        if not self.authorized():
            return
        if path == "/v1/append":
            self.note("POST /v1/append")
            if fake.append_answer is None:
                self.reply(404, b"")
            else:
                self.reply(200, fake.append_answer)
            return
        if path == "/v1/blocks":
            self.note("POST /v1/blocks")
            if fake.blocks_answer is None:
                self.reply(404, b"")
            else:
                self.reply(200, fake.blocks_answer)
            return
        try:
            reqs = parse_requests(body)
        except ValueError as e:
            self.note("POST %s: bad body: %s" % (path, e))
            self.close_connection = True
            self.reply(400, b"")
            return
        self.note("POST %s %s" % (path, " ".join(
            os.fsdecode(p) for p, _ in reqs)))
        if path == "/v1/files" and 1 <= len(reqs) <= 1024:
            self.reply(200, fake.answer_files(reqs))
        elif path == "/v1/delta":
            body = fake.answer_delta(reqs)
            self.reply(400, b"") if body is None else self.reply(200, body)
        else:
            self.reply(404, b"")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# --- raw TCP modes (stall, reset) ----------------------------------------------
def raw_server(sock, mode, lifetime, ready):
    held = []
    sock.settimeout(0.2)
    deadline = time.monotonic() + lifetime
    ready()
    while time.monotonic() < deadline:
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            continue
        sys.stderr.write("accepted a connection\n")
        sys.stderr.flush()
        if mode == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
            conn.close()
        elif len(held) < 64:
            held.append(conn)      # never read, never written
        else:
            conn.close()
    for c in held:
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True, help="IP:PORT (loopback)")
    ap.add_argument("--mode", required=True, choices=sorted(MODES))
    ap.add_argument("--ready-file", help="written once listening")
    ap.add_argument("--tree", help="directory served (default: built in)")
    ap.add_argument("--outside", default="/etc",
                    help="directory the attacks aim at")
    ap.add_argument("--victim", help="file the transfer attacks target")
    ap.add_argument("--auth-token-file",
                    help="require this bearer token (trailing newline ignored)")
    ap.add_argument("--lifetime", type=float, default=120.0,
                    help="exit after this many seconds")
    ap.add_argument("--list-modes", action="store_true")
    if "--list-modes" in sys.argv:
        for m in sorted(MODES):
            print("%-20s %s" % (m, MODES[m]))
        return 0
    args = ap.parse_args()
    ip, _, port = args.listen.rpartition(":")
    if not ipaddress.ip_address(ip.strip("[]")).is_loopback:
        raise SystemExit("fake-primary: refusing to listen on non-loopback %s"
                         % ip)

    def ready():
        if args.ready_file:
            with open(args.ready_file + ".tmp", "w") as f:
                f.write("%d\n" % os.getpid())
            os.rename(args.ready_file + ".tmp", args.ready_file)

    # The hard stop: whatever happens, never outlive the test.
    t = threading.Timer(args.lifetime + 5, lambda: os._exit(0))
    t.daemon = True
    t.start()

    if args.mode in ("stall", "reset"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, int(port)))
        sock.listen(16)
        raw_server(sock, args.mode, args.lifetime, ready)
        return 0

    fake = Fake(args)
    srv = Server((ip, int(port)), Handler)
    srv.fake = fake
    ready()
    stop = threading.Timer(args.lifetime, srv.shutdown)
    stop.daemon = True
    stop.start()
    srv.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
