#!/usr/bin/python
# SPDX-License-Identifier: LGPL-2.1-or-later
"""lu_vfiod_update: drive one host's live update (prepare, commit and wait, cancel) with lu-vfioctl --json."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: lu_vfiod_update
short_description: Prepare, commit or cancel a kernel live update on a host running lu-vfiod
description:
  - C(state=prepared) runs the daemon's pre-flight, loads the kernel and waits until every VMM
    acknowledged. A refused pre-flight or a VMM that refuses fails the task naming the VM and its reason.
  - C(state=committed) prepares first when needed, then freezes every VM and kexecs; it waits for the
    host to come back and for every VM to be restored, up to I(wait_timeout), and fails naming the VMs
    that were not. A VMM that refuses the freeze fails the task; the daemon has then resumed every VM and
    the module makes sure no update is left pending.
  - C(state=cancelled) cancels an update that has not reached the reboot.
  - Idempotent. A host whose boot came in by a completed live update to I(kernel) is at the target;
    C(prepared) and C(committed) change nothing there. Check mode reports what would change and
    changes nothing.
options:
  state:
    description: Where the host's update should be.
    type: str
    choices: [prepared, committed, cancelled]
    required: true
  kernel:
    description: Kernel image (a path on the host). Required for C(prepared) and C(committed).
    type: path
  initrd:
    description: Initrd for the new kernel.
    type: path
  cmdline:
    description: Command line of the new kernel; default the running kernel's.
    type: str
  prepare_timeout:
    description: Seconds the VMMs have to acknowledge prepare (default the daemon's PrepareTimeoutSec).
    type: float
  freeze_timeout:
    description: Seconds the VMMs have to acknowledge the freeze (default the daemon's FreezeTimeoutSec).
    type: float
  force:
    description: Commit even when VMMs miss the freeze deadline (a refusal still stops the update).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait after the kexec for the daemon to answer again and every VM to be restored.
    type: float
    default: 600
  poll_interval:
    description: Seconds between two looks at the host while waiting.
    type: float
    default: 0.5
  lu_vfioctl:
    description: lu-vfioctl to run (a name on PATH or a path).
    type: str
    default: lu-vfioctl
  bus_address:
    description: D-Bus address of the host's system bus (C(DBUS_SYSTEM_BUS_ADDRESS)); default the system bus.
    type: str
author: lu-vfiod maintainers
'''

EXAMPLES = r'''
- luvfiod.liveupdate.lu_vfiod_update:
    state: committed
    kernel: /boot/vmlinuz-6.18.1
    initrd: /boot/initrd.img-6.18.1
    freeze_timeout: 5
    wait_timeout: 300
  register: update
'''

RETURN = r'''
update_id: {description: the daemon's id of the update, returned: when an update ran, type: int}
at_target: {description: the host already came in by a live update to I(kernel), returned: always, type: bool}
timeline: {description: the update's timeline (lu-vfioctl last-update) with blackout_ms per VM, returned: committed, type: dict}
events: {description: the daemon's progress events of this run, returned: always, type: list}
unrestored: {description: VMs not restored when the wait ended, returned: on a restore timeout, type: list}
lu_vfioctl: {description: "the failed call: command, exit, error, message, and vm/refused/reason for a VMM refusal", returned: failure, type: dict}
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.luvfiod.liveupdate.plugins.module_utils.lu_vfioctl import (
    COMMON_ARGS, LuVfioctl, LuVfioctlError, at_target)

PENDING = ('preparing', 'prepared', 'freezing')


class Update:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.ctl = LuVfioctl(module)
        self.events = []
        self.result = dict(changed=False, events=self.events)

    def fail(self, msg, err=None, **kw):
        self.result.update(kw)
        if err is not None:
            self.result['lu_vfioctl'] = err.as_dict()
            self.events.extend(err.events)
        self.module.fail_json(msg=msg, **self.result)

    def look(self):
        try:
            return self.ctl.status(), self.ctl.last_update()
        except LuVfioctlError as e:
            self.fail('cannot read the state of lu-vfiod: %s' % e.message, e)

    def kernel_of(self, status):
        return (status.get('update') or {}).get('kernel')

    def cancel_pending(self):
        """After a failure: no update is left half-way (a refusal has normally ended it already)."""
        try:
            if self.ctl.status().get('state') in PENDING:
                self.ctl.call('cancel')
                return True
        except LuVfioctlError:
            pass
        return False

    def prepare(self):
        args = ['prepare']
        if self.p['initrd']:
            args.append('--initrd=%s' % self.p['initrd'])
        if self.p['cmdline']:
            args.append('--cmdline=%s' % self.p['cmdline'])
        if self.p['prepare_timeout']:
            args.append('--timeout=%g' % self.p['prepare_timeout'])
        args.append(self.p['kernel'])
        try:
            r, ev = self.ctl.call(*args)
        except LuVfioctlError as e:
            cancelled = self.cancel_pending()
            if e.vm:
                msg = 'VM %s refused prepare: %s' % (e.vm, e.reason)
            else:
                msg = 'prepare refused: %s' % e.message
            self.fail(msg + ('; the update was cancelled' if cancelled else ''), e)
        self.events.extend(ev)
        self.result['changed'] = True
        self.result['update_id'] = r.get('update')

    def commit(self, update_id):
        args = ['commit']
        if self.p['freeze_timeout']:
            args.append('--timeout=%g' % self.p['freeze_timeout'])
        if self.p['force']:
            args.append('--force')
        try:
            _, ev = self.ctl.call(*args)
            self.events.extend(ev)
        except LuVfioctlError as e:
            # Losing the daemon in the middle of a commit is what a kexec looks like from here (the
            # "rebooting" event may or may not have made it out first); the wait tells a reboot from
            # a daemon that died: the new boot's timeline is this update's.
            if not e.unreachable:
                cancelled = self.cancel_pending()
                state = self.ctl_state()
                if e.vm:
                    msg = 'VM %s refused the freeze: %s; the update was abandoned, every VM resumed (daemon state %s)' % (
                        e.vm, e.reason, state)
                else:
                    msg = 'commit failed: %s%s (daemon state %s)' % (
                        e.message, '; the update was cancelled' if cancelled else '', state)
                self.fail(msg, e, update_id=update_id)
            self.events.extend(e.events)
        self.result['changed'] = True
        self.wait_restored(update_id)

    def ctl_state(self):
        try:
            return self.ctl.status().get('state')
        except LuVfioctlError as e:
            return 'unknown (%s)' % e.message

    def wait_restored(self, update_id):
        deadline = time.monotonic() + self.p['wait_timeout']
        status, last, seen = None, {}, None
        while True:
            try:
                status = self.ctl.status()
                last = self.ctl.last_update()
                seen = status
            except LuVfioctlError as e:
                if not e.unreachable:
                    self.fail('waiting for the host: %s' % e.message, e, update_id=update_id)
                status = None
            if status and last.get('id') == update_id and last.get('result') in ('failed', 'cancelled', 'abandoned'):
                # no kexec after all (or the new boot gave up on the update)
                self.fail('update %s %s: %s (daemon state %s, %s boot)' % (
                    update_id, last.get('result'), last.get('message'), status.get('state'),
                    'the new' if status.get('boot_incoming') else 'still the old'), update_id=update_id, timeline=last)
            if status and status.get('boot_incoming') and status.get('state') == 'idle' and last.get('id') == update_id:
                break
            if time.monotonic() >= deadline:
                self.timed_out(update_id, seen)
            time.sleep(self.p['poll_interval'])
        self.result['timeline'] = last

    def timed_out(self, update_id, seen):
        wait = '%g s' % self.p['wait_timeout']
        if seen is None or not seen.get('boot_incoming'):
            self.fail('the host did not come back with lu-vfiod in the new boot within %s' % wait, update_id=update_id)
        try:
            unrestored = [v['id'] for v in self.ctl.vms() if v.get('incoming') and not v.get('restored')]
        except LuVfioctlError as e:
            self.fail('restore not complete within %s, and lu-vfiod cannot be read: %s' % (wait, e.message), e)
        self.fail('restore not complete within %s (state %s): VMs not restored: %s' % (
            wait, seen.get('state'), ', '.join(unrestored) or 'none (the daemon is still finishing)'),
            update_id=update_id, unrestored=unrestored)

    def run(self):
        state, kernel = self.p['state'], self.p['kernel']
        if state != 'cancelled':
            if not kernel:
                self.fail('state=%s needs kernel' % state)
            if not os.path.exists(kernel):
                self.fail('kernel %s: no such file on this host' % kernel)
        status, last = self.look()
        cur = status.get('state')
        self.result['at_target'] = done = at_target(status, last, kernel)

        if state == 'cancelled':
            if cur in PENDING:
                self.result['changed'] = True
                if not self.module.check_mode:
                    try:
                        self.ctl.call('cancel')
                    except LuVfioctlError as e:
                        self.fail('cancel failed: %s' % e.message, e)
            elif cur != 'idle':
                self.fail('cannot cancel: the update is past the reboot (state %s)' % cur)
            return self.result

        if done:
            return self.result
        if cur == 'prepared' and self.kernel_of(status) != os.path.realpath(kernel):
            self.fail('prepared for another kernel (%s); cancel it first' % self.kernel_of(status))
        if cur not in ('idle', 'prepared'):
            self.fail('an update is in progress (state %s)' % cur)
        if self.module.check_mode:
            self.result['changed'] = cur == 'idle' or state == 'committed'
            return self.result
        if cur == 'idle':
            self.prepare()
        else:
            self.result['update_id'] = status.get('update_id')
        if state == 'committed':
            self.commit(self.result['update_id'])
        return self.result


def main():
    spec = dict(
        state=dict(type='str', required=True, choices=['prepared', 'committed', 'cancelled']),
        kernel=dict(type='path'),
        initrd=dict(type='path'),
        cmdline=dict(type='str'),
        prepare_timeout=dict(type='float'),
        freeze_timeout=dict(type='float'),
        force=dict(type='bool', default=False),
        wait_timeout=dict(type='float', default=600),
        poll_interval=dict(type='float', default=0.5),
    )
    spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[('state', 'prepared', ['kernel']), ('state', 'committed', ['kernel'])])
    for k in ('prepare_timeout', 'freeze_timeout', 'wait_timeout', 'poll_interval'):
        v = module.params[k]
        if v is not None and not (0 < v <= 7 * 86400):
            module.fail_json(msg='%s must be a number of seconds in (0, 604800], not %s' % (k, v))
    module.exit_json(**Update(module).run())


if __name__ == '__main__':
    main()
