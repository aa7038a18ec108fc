#!/usr/bin/env python3
"""Serve one SFTP session on a loopback TCP port, for sshfs -o directport.

  sftp-serve.py IP PORTFILE
      binds IP on a free port, writes the port to PORTFILE, accepts one
      connection and runs the system's sftp-server on it; exits with it.
"""
import os
import socket
import subprocess
import sys

SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/lib/sftp-server",
                "/usr/libexec/sftp-server")


def main():
    ip, portfile = sys.argv[1], sys.argv[2]
    server = next((p for p in SFTP_SERVERS if os.access(p, os.X_OK)), None)
    if server is None:
        sys.exit("no sftp-server")
    s = socket.socket()
    s.bind((ip, 0))
    s.listen(1)
    s.settimeout(30)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.rename(tmp, portfile)
    conn, _ = s.accept()
    s.close()
    conn.settimeout(None)
    rc = subprocess.call([server], stdin=conn.fileno(), stdout=conn.fileno())
    sys.exit(rc)


if __name__ == "__main__":
    main()
