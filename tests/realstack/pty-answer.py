#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs a command on a new pseudo terminal (its controlling terminal) and answers its prompts the
# way a person at that terminal would: for each --expect REGEX --send TEXT pair, in order, waits
# until the terminal's output matches REGEX, then types TEXT and a newline. The realstack tests
# use it to answer polkit's text authentication agent (pkttyagent), which reads the password
# from its controlling terminal with echo off, so the answer must come after the prompt.
# With --secret, each answer also waits until the terminal's echo is off: a password prompt
# turns it off with TCSAFLUSH, which would discard an answer typed in between.
#   pty-answer.py [--timeout S] [--secret] [--expect REGEX --send TEXT]... -- CMD...
# Copies everything the terminal printed to stdout and exits with CMD's exit status; 124 if a
# prompt did not come or CMD did not end within the timeout (then CMD's session is hung up).
import argparse, os, pty, re, select, signal, sys, termios, time

ap = argparse.ArgumentParser()
ap.add_argument("--timeout", type=float, default=60.0)
ap.add_argument("--secret", action="store_true")
ap.add_argument("--expect", action="append", default=[])
ap.add_argument("--send", action="append", default=[])
ap.add_argument("cmd", nargs=argparse.REMAINDER)
args = ap.parse_args()
cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
if not cmd or len(args.expect) != len(args.send):
    sys.exit("pty-answer.py: usage: [--timeout S] [--expect REGEX --send TEXT]... -- CMD...")

pid, master = pty.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    except OSError as e:
        sys.stderr.write(f"pty-answer.py: cannot run {cmd[0]}: {e.strerror}\n")
    os._exit(127)

deadline = time.monotonic() + args.timeout
seen = b""
pending = list(zip(args.expect, args.send))
status = None
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        break
    r, _, _ = select.select([master], [], [], min(left, 0.2))
    if r:
        try:
            data = os.read(master, 4096)
        except OSError:        # EIO: every process of the terminal's session closed it
            data = b""
        if not data:
            break
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        seen += data
        while pending and re.search(pending[0][0].encode(), seen):
            # the master reports the terminal's (the slave's) settings
            while args.secret and termios.tcgetattr(master)[3] & termios.ECHO and time.monotonic() < deadline:
                time.sleep(0.02)
            os.write(master, pending[0][1].encode() + b"\n")
            seen = b""
            pending.pop(0)
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        # what CMD printed last is still in the terminal
        while select.select([master], [], [], 0.1)[0]:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            sys.stdout.buffer.write(data)
        sys.stdout.flush()
        break

if status is None and time.monotonic() < deadline:
    # the terminal closed: CMD is ending
    _, status = os.waitpid(pid, 0)
os.close(master)            # hangs up whatever is left in CMD's session (a background agent)
if status is None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    if pending:
        sys.stderr.write(f"pty-answer.py: no prompt matching {pending[0][0]!r} within {args.timeout:g} s\n")
    else:
        sys.stderr.write(f"pty-answer.py: {cmd[0]} did not end within {args.timeout:g} s\n")
    sys.exit(124)
sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
