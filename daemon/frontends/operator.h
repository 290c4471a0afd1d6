/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The operator control socket (/run/lu-vfiod/control.sock, root only): status, list,
 * prepare, commit, cancel, timeline, release. A thin translation onto manager_*, on the
 * connections of the shared connection layer.
 */
#pragma once

#include "frontends/connection.h"

/* The control socket's protocol (docs/protocol.md §6): root only. */
extern const ConnProtocol operator_protocol;
