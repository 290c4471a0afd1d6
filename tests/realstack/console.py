#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# The realstack machine's console: a pseudo terminal whose slave boot.sh bind-mounts on the
# machine's /dev/console (systemd writes its status lines only to a terminal), copied to LOG.
# Runs on the host, outside the emulated machine, so one console outlives every emulated boot.
#   console.py LOG PTSFILE    writes the slave's path to PTSFILE, then copies until killed
import os, sys, tty

log_path, pts_file = sys.argv[1], sys.argv[2]
master, slave = os.openpty()
tty.setraw(slave)               # no \n -> \r\n, no echo: the log gets what was written
name = os.ttyname(slave)
with open(pts_file + ".tmp", "w") as f:
    f.write(name + "\n")
os.rename(pts_file + ".tmp", pts_file)
# Keeping `slave` open means no hang-up between boots, when nobody else has it open.
with open(log_path, "ab", buffering=0) as log:
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        log.write(data)
