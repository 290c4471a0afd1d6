#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The documentation is a VMM author's and an operator's whole contract: check it against the
code, both ways, so that a name in one and not the other fails the suite.

  check-docs.py SOURCE_ROOT [LU_VFIOD]

Checks (TAP output), each in both directions:
  * error codes: daemon/common/protocol.c's table <-> docs/protocol.md §3 (and the Rust crate's ErrorCode)
  * methods: daemon/frontends/vmm-server.c and daemon/frontends/operator.c <-> docs/protocol.md §5 headings and §6 table
  * request fields per method: what the code reads or allows <-> the request examples and
    parameter column of docs/protocol.md
  * reply, event, timeline and registry fields: the keys the daemon writes <-> docs/protocol.md
  * configuration keys per section: daemon/common/config.c <-> docs/configuration.md tables (parsed as
    tables: a row cut off from its table by a blank line counts as missing) <-> conf/lu-vfiod.conf
  * lu-vfioctl --json fields: tools/lu-vfioctl.c <-> docs/json.md
and, with LU_VFIOD and as root, runs the control-socket script of docs/operations.md against it.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

root = os.path.abspath(sys.argv[1])
daemon = sys.argv[2] if len(sys.argv) > 2 else None
n = 0
failed = 0


def read(path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return f.read()


def check(ok, what, detail=""):
    global n, failed
    n += 1
    print(f"{'ok' if ok else 'not ok'} {n} - {what}")
    if not ok:
        failed += 1
        for line in str(detail).splitlines():
            print(f"# {line}")


def both_ways(code, docs, what, code_name, doc_name):
    code, docs = set(code), set(docs)
    check(bool(code), f"{what}: found in {code_name}")
    check(bool(docs), f"{what}: found in {doc_name}")
    check(not code - docs, f"every {what} of {code_name} is in {doc_name}", f"missing: {sorted(code - docs)}")
    check(not docs - code, f"every {what} of {doc_name} is in {code_name}", f"not in the code: {sorted(docs - code)}")


def section(text, heading_re):
    """The text of the markdown section whose heading matches, up to the next heading of its level or above."""
    m = re.search(heading_re, text, re.M)
    if not m:
        return ""
    level = len(re.match(r"#+", m.group(0)).group(0))
    rest = text[m.end():]
    e = re.search(r"^#{1,%d} " % level, rest, re.M)
    return rest[: e.start()] if e else rest


def tables(text):
    """Markdown tables of text: lists of rows (lists of cells), header and separator dropped.
    A table is a header row, a |---| row, and the rows right below it; anything else that
    looks like a row is returned as a stray."""
    out, strays, lines, i = [], [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|\s*:?-{3,}", lines[i + 1].strip()):
            rows, i = [], i + 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            out.append(rows)
            continue
        if line.startswith("|"):
            strays.append(line)
        i += 1
    return out, strays


def first_col_names(rows):
    names = []
    for r in rows:
        names += re.findall(r"`([^`]+)`", r[0])[:1]
    return names


def json_objects(text, start_re):
    """Every JSON object in text that starts where start_re matches, parsed (None if not JSON)."""
    for m in re.finditer(start_re, text):
        depth, j = 0, m.start()
        while j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
            if depth == 0:
                break
        try:
            yield m, json.loads(text[m.start():j])
        except ValueError:
            yield m, None


def c_blocks(src, start_re):
    """method name -> the code of its branch (from its strcmp to the next one)."""
    ms = list(re.finditer(start_re, src))
    return {m.group(1): src[m.end(): ms[i + 1].start() if i + 1 < len(ms) else len(src)] for i, m in enumerate(ms)}


proto = read("docs/protocol.md")

# ---- error codes
codes = set(re.findall(r'\[PROTO_E_\w+\]\s*=\s*"([a-z-]+)"', read("daemon/common/protocol.c")))
t, _ = tables(section(proto, r"^## 3\. Error codes"))
both_ways(codes, first_col_names(t[0]) if t else [], "error code", "daemon/common/protocol.c", "docs/protocol.md §3")
rust_codes = set(re.findall(r'\(ErrorCode::\w+, "([a-z-]+)"\)', read("lib/client/rust/src/error.rs")))
both_ways(codes, rust_codes, "error code", "daemon/common/protocol.c", "the Rust crate's ErrorCode")

# ---- methods
vmm_src, op_src = read("daemon/frontends/vmm-server.c"), read("daemon/frontends/operator.c")
vmm_blocks = c_blocks(vmm_src, r'strcmp\(method, "([a-z-]+)"\) == 0\)')
op_blocks = c_blocks(op_src, r'strcmp\(method, "([a-z-]+)"\) == 0\)')
vmm_doc = section(proto, r"^## 5\. VMM socket")
both_ways(vmm_blocks, re.findall(r"^### 5\.\w+ `([a-z-]+)`", vmm_doc, re.M), "VMM socket method",
          "daemon/frontends/vmm-server.c", "docs/protocol.md §5")
op_doc = section(proto, r"^## 6\. Control socket")
t, _ = tables(op_doc)
op_rows = {first_col_names([r])[0]: r for r in (t[0] if t else []) if first_col_names([r])}
both_ways(op_blocks, op_rows, "control socket method", "daemon/frontends/operator.c", "docs/protocol.md §6")


# ---- request fields
def code_fields(block):
    f = set()
    for args in re.findall(r"FIELDS\(([^)]*)\)", block):
        f |= set(re.findall(r'"([a-z_]+)"', args))
    f |= set(re.findall(r'proto_get_\w+\(req, "([a-z_]+)"', block))
    f |= set(re.findall(r'json_object_object_get_ex\(req->obj, "([a-z_]+)"', block))
    return f


def doc_fields(text, method):
    f = set()
    for m, o in json_objects(text, r'\{"id":\s*\d+,\s*"method":\s*"%s"' % re.escape(method)):
        check(o is not None, f"docs/protocol.md: the {method} request example at offset {m.start()} is JSON")
        if o:
            f |= set(o) - {"id", "method"}
    return f


for name, block in sorted(vmm_blocks.items()):
    both_ways(code_fields(block) | {"_"}, doc_fields(proto, name) | {"_"}, f"field of the {name} request",
              "daemon/frontends/vmm-server.c", "docs/protocol.md")
for name, block in sorted(op_blocks.items()):
    params = set()
    if name in op_rows and op_rows[name][1] != "—":
        params = set(re.findall(r"`([a-z_]+)`", op_rows[name][1]))
    both_ways(code_fields(block) | {"_"}, params | doc_fields(proto, name) | {"_"}, f"field of the control {name} request",
              "daemon/frontends/operator.c", "docs/protocol.md §6")

# ---- reply, event, timeline and registry fields
# every daemon source by its file name (they are unique across daemon/'s folders)
daemon_c = {}
for d, _, fs in sorted(os.walk(os.path.join(root, "daemon"))):
    for f in sorted(fs):
        if f.endswith(".c"):
            daemon_c[f] = read(os.path.relpath(os.path.join(d, f), root))
written = set()
for f in ["vmm-server.c", "operator.c", "manager.c", "restore.c", "registry.c", "protocol.c"]:
    s = daemon_c[f]
    written |= set(re.findall(r'json_object_object_add\(\s*[^,]+,\s*"([a-z_]+)"', s))
    written |= set(re.findall(r'(?:update_set|update_set_time|restore_record_vm)\(m, (?:[^,]+, )?"([a-z_]+)"', s))
    written |= set(re.findall(r'add_ms\(\w+, "([a-z_]+)"', s))
named = set(re.findall(r'"([a-z_]+)"\s*:', proto)) | set(re.findall(r"`([a-z_]+)`", proto))
check(written, "reply fields found in the daemon")
check(not written - named, "every field the daemon writes (replies, events, timeline, registry) is named in docs/protocol.md",
      f"missing: {sorted(written - named)}")
literals = set()
for s in daemon_c.values():
    literals |= set(re.findall(r'"([a-z_]+)"', s))
doc_keys = set(re.findall(r'"([a-z_]+)"\s*:', proto))
check(not doc_keys - literals, "every field of a JSON example in docs/protocol.md exists in the daemon",
      f"not in the code: {sorted(doc_keys - literals)}")

# ---- configuration keys
conf_c = read("daemon/common/config.c")
code_keys = set(re.findall(r'(?:U32|SEC)\("(\w+)", "(\w+)"', conf_c))
code_keys |= set(re.findall(r'strcmp\(section, "(\w+)"\) == 0 && strcmp\(key, "(\w+)"\) == 0', conf_c))
cfg = read("docs/configuration.md")
doc_keys, strays = set(), []
for sec in sorted({s for s, _ in code_keys} | set(re.findall(r"^## \[(\w+)\]", cfg, re.M))):
    t, st = tables(section(cfg, r"^## \[%s\]" % sec))
    strays += st
    for rows in t:
        if rows and re.match(r"^`[A-Z]", rows[0][0]):
            doc_keys |= {(sec, k) for k in first_col_names(rows)}
check(not strays, "docs/configuration.md: every key row belongs to a table (no blank line inside a table)",
      "\n".join(strays))
both_ways({f"[{s}] {k}" for s, k in code_keys}, {f"[{s}] {k}" for s, k in doc_keys}, "configuration key",
          "daemon/common/config.c", "docs/configuration.md")
shipped, sec = set(), None
for line in read("conf/lu-vfiod.conf").splitlines():
    m = re.match(r"^\[(\w+)\]", line)
    if m:
        sec = m.group(1)
    m = re.match(r"^#?([A-Z]\w*)=", line)
    if m and sec:
        shipped.add(f"[{sec}] {m.group(1)}")
both_ways({f"[{s}] {k}" for s, k in code_keys}, shipped, "configuration key", "daemon/common/config.c", "conf/lu-vfiod.conf")

# ---- the daemon's command line: --help <-> docs/configuration.md "Command line options"
if daemon:
    h = subprocess.run([daemon, "--help"], capture_output=True, text=True, timeout=30)
    help_opts = set(re.findall(r"^\s+(--[a-z-]+)", h.stdout, re.M)) - {"--version", "--help"}
    help_opts = {o for o in help_opts if not o.startswith("--test-")}   # test hooks, not for operators
    t, _ = tables(section(cfg, r"^## Command line options"))
    doc_opts = {re.sub(r"=.*", "", o) for o in first_col_names(t[0])} if t else set()
    both_ways(help_opts, doc_opts, "option", "lu-vfiod --help", "docs/configuration.md")
    m = re.search(r"--config=PATH\s+.*\(default ([^)]+)\)", h.stdout)
    check(m and f"`{m.group(1)}`" in cfg, "the default configuration path lu-vfiod --help prints is in docs/configuration.md",
          m.group(1) if m else h.stdout)

# ---- lu-vfioctl --json fields
ctl = read("tools/lu-vfioctl.c")
emitted = set(re.findall(r'json_object_object_add\(\s*\w+,\s*"([a-z_]+)"', ctl))
emitted |= set(re.findall(r'\\"([a-z_]+)\\":', ctl))
jd = read("docs/json.md")
t, st = tables(jd)
fields = set()
for rows in t:
    fields |= set(first_col_names(rows))
check(not st, "docs/json.md: every field row belongs to a table", "\n".join(st))
check(not emitted - fields, "every field lu-vfioctl --json prints is documented in docs/json.md",
      f"missing: {sorted(emitted - fields)}")
passed_through = set()
for s in list(daemon_c.values()) + [ctl]:
    passed_through |= set(re.findall(r'"([a-z_]+)"', s)) | set(re.findall(r'\\"([a-z_]+)\\"', s))
check(not fields - passed_through, "every field docs/json.md documents is one lu-vfioctl or the daemon emits",
      f"not in the code: {sorted(fields - passed_through)}")
raw = [l.strip() for l in ctl.splitlines() if re.search(r'printf\("\{', l) and '\\"schema\\"' not in l]
check(not raw, "every JSON object lu-vfioctl prints by hand carries the schema", "\n".join(raw))
check(re.search(r"#define JSON_SCHEMA_VERSION 1\b", ctl) and '"schema": 1' in jd,
      "the schema version in tools/lu-vfioctl.c is the one docs/json.md documents")

# ---- the control-socket recipe of docs/operations.md, run against the daemon
ops = read("docs/operations.md")
m = re.search(r"^## A host without a system bus\n.*?```python\n(.*?)```", ops, re.M | re.S)
check(m is not None, "docs/operations.md has the control-socket script")
if m and daemon and os.geteuid() == 0:
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "control.sock")
        script = os.path.join(tmp, "luvf-ctl")
        with open(script, "w") as f:
            f.write(m.group(1).replace("/run/lu-vfiod/control.sock", sock))
        with open(os.path.join(tmp, "empty.conf"), "w") as f:
            f.write("[Service]\nDBus=no\n")
        d = subprocess.Popen([daemon, f"--config={tmp}/empty.conf", f"--vmm-socket={tmp}/vmm.sock",
                              f"--control-socket={sock}", f"--state-dir={tmp}/state"],
                             stderr=subprocess.DEVNULL)
        for _ in range(400):
            if os.path.exists(sock) or d.poll() is not None:
                break
            time.sleep(0.05)
        st = subprocess.run([sys.executable, script, "status"], capture_output=True, text=True, timeout=30)
        ok = st.returncode == 0 and json.loads(st.stdout or "null") and json.loads(st.stdout).get("state") == "idle"
        check(ok, "the documented script: status answers state idle", st.stdout + st.stderr)
        st = subprocess.run([sys.executable, script, "cancel"], capture_output=True, text=True, timeout=30)
        check(st.returncode == 1 and '"invalid-state"' in st.stdout, "the documented script: cancel while idle is invalid-state, exit 1",
              st.stdout + st.stderr)
        d.terminate()
        d.wait(timeout=30)
else:
    n += 1
    print(f"ok {n} # SKIP running the control-socket script needs root and the daemon binary")

print(f"1..{n}")
sys.exit(1 if failed else 0)
