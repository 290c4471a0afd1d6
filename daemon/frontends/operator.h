/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The operator control socket (/run/lu-vfiod/control.sock, root only): status, list,
 * prepare, commit, cancel, timeline, release. A thin translation onto manager_*; the
 * entry points are declared in vmm-server.h next to the connection helpers they use.
 */
#pragma once

#include "frontends/vmm-server.h"
