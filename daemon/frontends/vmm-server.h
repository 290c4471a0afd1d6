/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VMM protocol (docs/protocol.md §5): hello, preserve, unpreserve, list, session, ack,
 * reclaim, wait-bound, restored, forget, translated onto manager_* and restore's entry points,
 * and the events the core pushes to a VM's VMM, on the connections of connection.h.
 */
#pragma once

#include "core/manager.h"
#include "frontends/connection.h"

/* The VMM protocol (docs/protocol.md §5). */
extern const ConnProtocol vmm_protocol;
/* vmm_protocol_attach() - let @m push events to the VMMs connected with vmm_protocol. */
void vmm_protocol_attach(Manager *m);
