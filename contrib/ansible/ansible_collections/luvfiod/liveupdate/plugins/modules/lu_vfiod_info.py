#!/usr/bin/python
# SPDX-License-Identifier: LGPL-2.1-or-later
"""lu_vfiod_info: facts about one host's lu-vfiod, read with lu-vfioctl --json."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: lu_vfiod_info
short_description: Live update facts of a host running lu-vfiod
description:
  - Reads the daemon state, kernel ABI, VMs and their preserved items, the pre-flight readiness and the
    last update's timeline through C(lu-vfioctl --json). Changes nothing; supports check mode.
  - Sets the fact C(lu_vfiod) and returns the same dictionary as C(lu_vfiod).
options:
  kernel:
    description: Kernel image the fleet is moving to; sets C(at_target) when this boot came in by a
      completed live update to it.
    type: path
  devices:
    description: Also list each VM's preserved items (one C(lu-vfioctl show) per VM).
    type: bool
    default: true
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
- luvfiod.liveupdate.lu_vfiod_info:
    kernel: /boot/vmlinuz-6.18.1
  register: lu
- ansible.builtin.debug:
    msg: "{{ lu.lu_vfiod.readiness.problems }}"
'''

RETURN = r'''
lu_vfiod:
  description: The host's live update facts.
  returned: success
  type: dict
  contains:
    status: {description: "lu-vfioctl status: state, abi, vms, connected, update_id, boot_incoming, update", type: dict}
    vms: {description: "lu-vfioctl list, each VM with its devices (lu-vfioctl show)", type: list}
    readiness: {description: "ready (bool) and problems (list of sentences)", type: dict}
    last_update: {description: "the last update's timeline, with blackout_ms per VM", type: dict}
    at_target: {description: "this boot came in by a completed live update to I(kernel)", type: bool}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.luvfiod.liveupdate.plugins.module_utils.lu_vfioctl import (
    COMMON_ARGS, LuVfioctl, LuVfioctlError, at_target, readiness)


def main():
    spec = dict(kernel=dict(type='path'), devices=dict(type='bool', default=True))
    spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    ctl = LuVfioctl(module)
    try:
        status = ctl.status()
        vms = ctl.vms()
        if module.params['devices']:
            for vm in vms:
                vm['devices'] = ctl.devices(vm['id'])
        last = ctl.last_update()
    except LuVfioctlError as e:
        module.fail_json(msg='lu-vfiod on this host: %s' % e, lu_vfioctl=e.as_dict())
    facts = dict(status=status, vms=vms, readiness=readiness(status, vms), last_update=last,
                 at_target=at_target(status, last, module.params['kernel']))
    module.exit_json(changed=False, lu_vfiod=facts, ansible_facts=dict(lu_vfiod=facts))


if __name__ == '__main__':
    main()
