#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The daemon's layout is its architecture (docs/architecture.md); this keeps it so.

  check-layering.py SOURCE_ROOT

Reads every #include "..." in daemon/ and checks:
  * every daemon header is included by its folder-qualified path ("core/manager.h"), so the
    dependency is visible where it is made; a name without a folder must be a lib/ or uapi/
    header;
  * dependencies point one way between folders: common/ and system/ (glue) use neither core/
    nor frontends/; core/ does not use frontends/; frontends/ are used by main.c alone, and no
    front end uses another;
  * no circle between files: a file's "unit" is its name without .c/.h, and unit A depends on
    B when A.c or A.h includes B.h; the graph must have no cycle (calls follow the includes:
    with -Werror=implicit-function-declaration a file cannot call what it does not include).
Prints each violation and exits 1 if there is one.
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
daemon = os.path.join(root, "daemon")
# which folders a folder's files may include (besides their own folder and lib/)
ALLOWED = {
    "common": set(),
    "system": {"common"},
    "core": {"common", "system"},
    "frontends": {"common", "system", "core"},
    "": {"common", "system", "core", "frontends"},  # main.c wires everything
}
lib_headers = set()
for d in ("lib", "lib/client", "uapi", "uapi/linux"):
    p = os.path.join(root, d)
    if os.path.isdir(p):
        lib_headers |= {f for f in os.listdir(p) if f.endswith(".h")}

errors = []
deps = {}  # unit -> set(unit)
for d, _, files in os.walk(daemon):
    for f in sorted(files):
        if not f.endswith((".c", ".h")):
            continue
        rel = os.path.relpath(os.path.join(d, f), daemon)
        folder = os.path.dirname(rel)
        unit = rel.rsplit(".", 1)[0]
        if os.path.basename(unit).startswith("test-"):
            unit_deps = set()  # unit tests may use what they test; they are leaves
        else:
            unit_deps = deps.setdefault(unit, set())
        with open(os.path.join(d, f), encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if not m:
                    continue
                inc = m.group(1)
                where = f"daemon/{rel}:{n}"
                if "/" not in inc:
                    if inc not in lib_headers:
                        errors.append(f"{where}: \"{inc}\" is not a lib/ or uapi/ header; include daemon headers as \"folder/name.h\"")
                    continue
                target = os.path.join(daemon, inc)
                if not os.path.exists(target):
                    errors.append(f"{where}: \"{inc}\" does not exist under daemon/")
                    continue
                tfolder = os.path.dirname(inc)
                if tfolder != folder and tfolder not in ALLOWED.get(folder, set()):
                    errors.append(f"{where}: {folder or 'daemon'}/ must not depend on {tfolder}/ (\"{inc}\")")
                if tfolder == "frontends" and folder == "frontends" and inc.rsplit(".", 1)[0] != unit \
                        and not inc.startswith("frontends/connection."):
                    errors.append(f"{where}: one front end uses another (\"{inc}\"); share through frontends/connection.h or core/")
                tunit = inc.rsplit(".", 1)[0]
                if tunit != unit and not os.path.basename(unit).startswith("test-"):
                    unit_deps.add(tunit)

# A function a header declares is defined in that header's own .c: a declaration in another
# unit's header hides a dependency from the include graph (as operator_dispatch() in
# vmm-server.h once hid vmm-server.c -> operator.c -> vmm-server.c).
decl_re = re.compile(r'^(?!typedef|static|extern|#|\s|/|\*|\})[A-Za-z][\w \*]*?\b([a-z_][a-z0-9_]*)\([^;{]*\)[^;{]*;', re.M)
def_re = re.compile(r'^(?!static|#|\s)[A-Za-z][\w \*]*?\b([a-z_][a-z0-9_]*)\([^;{]*\)\s*\{', re.M)
declared, defined = {}, {}
for d, _, files in os.walk(daemon):
    for f in sorted(files):
        rel = os.path.relpath(os.path.join(d, f), daemon)
        with open(os.path.join(d, f), encoding="utf-8") as fh:
            text = fh.read()
        unit = rel.rsplit(".", 1)[0]
        if f.endswith(".h"):
            for name in decl_re.findall(text):
                declared.setdefault(name, unit)
        elif f.endswith(".c"):
            for name in def_re.findall(text):
                defined.setdefault(name, unit)
for name, unit in sorted(declared.items()):
    if name in defined and defined[name] != unit:
        errors.append(f"daemon/{unit}.h declares {name}(), which daemon/{defined[name]}.c defines: declare it in daemon/{defined[name]}.h")

# cycles (iterative DFS, reports each cycle once by its smallest rotation)
seen_cycles = set()
state = {}
def visit(u, stack):
    state[u] = 1
    stack.append(u)
    for v in sorted(deps.get(u, ())):
        if state.get(v) == 1:
            cyc = stack[stack.index(v):]
            k = min(range(len(cyc)), key=lambda i: cyc[i])
            key = tuple(cyc[k:] + cyc[:k])
            if key not in seen_cycles:
                seen_cycles.add(key)
                errors.append("circle: " + " -> ".join(key + (key[0],)))
        elif state.get(v) is None:
            visit(v, stack)
    stack.pop()
    state[u] = 2
for u in sorted(deps):
    if state.get(u) is None:
        visit(u, [])

for e in errors:
    print(e)
units = len(deps)
edges = sum(len(v) for v in deps.values())
if errors:
    print(f"check-layering: {len(errors)} problem(s) in {units} units, {edges} dependencies")
    sys.exit(1)
print(f"check-layering: {units} units, {edges} dependencies, no circle, every dependency points front end -> core -> system/common -> lib")
