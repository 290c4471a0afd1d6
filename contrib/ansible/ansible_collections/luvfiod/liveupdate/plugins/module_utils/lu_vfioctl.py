# SPDX-License-Identifier: LGPL-2.1-or-later
"""Talking to lu-vfiod through ``lu-vfioctl --json`` (the only way the modules reach a host).

The host needs nothing but lu-vfioctl: every call is one ``lu-vfioctl --json --no-ask-password``
run, its output parsed line by line (progress events, then the result or an error object
``{"error", "message", "exit"}``). The JSON schema is docs/json.md's; a top-level ``"schema"``
newer than SCHEMA_SUPPORTED is refused rather than misread.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re

SCHEMA_SUPPORTED = 1

# lu-vfioctl's exit codes (lu-vfioctl(1))
EXIT_UNREACHABLE = 9

COMMON_ARGS = dict(
    lu_vfioctl=dict(type='str', default='lu-vfioctl'),
    bus_address=dict(type='str'),
)

_REFUSAL = re.compile(r'VM (\S+) refused (prepare|freeze): (.*)')


class LuVfioctlError(Exception):
    """A call that failed: ``code`` is lu-vfioctl's exit code, ``error`` the D-Bus error name."""

    def __init__(self, what, code, error, message, events=None):
        self.what, self.code, self.error, self.message = what, code, error, message
        self.events = events or []
        m = _REFUSAL.search(message or '')
        self.vm, self.refused, self.reason = (m.group(1), m.group(2), m.group(3)) if m else (None, None, None)
        super(LuVfioctlError, self).__init__('%s: %s' % (what, message))

    @property
    def unreachable(self):
        return self.code == EXIT_UNREACHABLE

    def as_dict(self):
        d = dict(command=self.what, exit=self.code, error=self.error, message=self.message)
        if self.vm:
            d.update(vm=self.vm, refused=self.refused, reason=self.reason)
        return d


class LuVfioctl:
    def __init__(self, module):
        self.module = module
        binary = module.params['lu_vfioctl']
        if os.sep not in binary:
            binary = module.get_bin_path(binary, required=True)
        self.binary = binary
        self.env = {}
        if module.params.get('bus_address'):
            self.env['DBUS_SYSTEM_BUS_ADDRESS'] = module.params['bus_address']

    def _check_schema(self, obj):
        if isinstance(obj, dict) and isinstance(obj.get('schema'), int) and obj['schema'] > SCHEMA_SUPPORTED:
            self.module.fail_json(msg='lu-vfioctl writes JSON schema %d; this collection knows schema %d: '
                                      'update the collection' % (obj['schema'], SCHEMA_SUPPORTED))

    def call(self, *args):
        """Runs one command; returns (result, progress events) or raises LuVfioctlError."""
        cmd = [self.binary, '--json', '--no-ask-password'] + [str(a) for a in args]
        rc, out, err = self.module.run_command(cmd, environ_update=self.env)
        objs = []
        for line in out.splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise LuVfioctlError(args[0], rc, None, 'lu-vfioctl wrote something that is not JSON: %r' % line[:200])
            self._check_schema(obj)
            objs.append(obj)
        events = [o for o in objs if isinstance(o, dict) and o.get('event') == 'progress']
        rest = [o for o in objs if not (isinstance(o, dict) and o.get('event') == 'progress')]
        result = rest[-1] if rest else None
        if rc != 0:
            if isinstance(result, dict) and 'error' in result:
                raise LuVfioctlError(args[0], result.get('exit', rc), result.get('error'), result.get('message'), events)
            raise LuVfioctlError(args[0], rc, None, (err or '').strip() or 'exit status %d' % rc, events)
        return result, events

    # ---- the commands (docs/json.md; list was a bare array before schema 1)
    def status(self):
        return self.call('status')[0]

    def vms(self):
        r = self.call('list')[0]
        return r.get('vms', []) if isinstance(r, dict) else (r or [])

    def devices(self, vm):
        r = self.call('show', vm)[0]
        return r.get('devices', []) if isinstance(r, dict) else []

    def last_update(self):
        r = self.call('last-update')[0]
        return with_blackout(r if isinstance(r, dict) else {})


def with_blackout(timeline):
    """Adds each VM's blackout_ms: from its freeze acknowledgement (vCPUs paused) to its restore."""
    for v in (timeline.get('vms') or {}).values():
        if isinstance(v, dict) and 't_freeze_ack_us' in v and 't_restored_us' in v:
            v['blackout_ms'] = round((v['t_restored_us'] - v['t_freeze_ack_us']) / 1000.0, 3)
    return timeline


def readiness(status, vms):
    """What stands in the way of a live update, as the daemon sees it (the kernel checks are prepare's)."""
    problems = []
    if status.get('state') != 'idle':
        problems.append('an update is in progress (state %s)' % status.get('state'))
    if status.get('abi') in (None, '', 'none'):
        problems.append('the running kernel has no Live Update Orchestrator')
    for vm in vms:
        if not vm.get('connected'):
            problems.append('VM %s has no connected VMM' % vm.get('id'))
        for d in vm.get('devices', []):
            if d.get('state') != 'preserved':
                problems.append('VM %s item %s is %s, not preserved' % (vm.get('id'), d.get('label'), d.get('state')))
    return dict(ready=not problems, problems=problems)


def at_target(status, timeline, kernel):
    """True when this boot came in by a completed live update to ``kernel``."""
    if not kernel or not status.get('boot_incoming'):
        return False
    return timeline.get('result') == 'done' and timeline.get('kernel') == os.path.realpath(kernel)
