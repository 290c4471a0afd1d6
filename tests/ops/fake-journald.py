#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# A stand-in for systemd-journald's native socket, for tests: receives sd_journal_send()
# datagrams on SOCKET and appends each entry as one JSON object per line to OUT.
#   fake-journald.py SOCKET OUT
import json, os, signal, socket, struct, sys

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s.bind(path)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))


def parse(data):
    """The native protocol: KEY=VALUE\\n, or KEY\\n<le64 size><VALUE>\\n for binary values."""
    entry, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (size,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            v = data[nl + 9:nl + 9 + size]
            i = nl + 9 + size + 1
        entry[k.decode()] = v.decode(errors="replace")
    return entry


with open(out, "a") as f:
    while True:
        data, anc, _, _ = s.recvmsg(1 << 20, socket.CMSG_SPACE(4 * 4))
        for level, typ, payload in anc:
            # Large entries come as a sealed memfd.
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fd = struct.unpack("i", payload[:4])[0]
                data = os.pread(fd, 1 << 24, 0)
                os.close(fd)
        f.write(json.dumps(parse(data)) + "\n")
        f.flush()
