/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * polkit's text authentication agent for lu-vfioctl, as systemctl and busctl do it: when a
 * person runs an authorized command at a terminal, polkit can only ask for a password if an
 * agent is registered for the caller, and an ssh login or a console has none. So lu-vfioctl
 * starts pkttyagent for its own process (pkttyagent's default subject is its parent) and waits
 * until it is registered before it calls the daemon.
 */
#pragma once

#include <sys/types.h>

/*
 * Starts pkttyagent if standard input is a terminal (with --fallback in a login session, so that
 * an agent the session already has wins; polkitd ignores a fallback agent outside a session), the caller is not root (the daemon never asks polkit about root) and pkttyagent is
 * installed; waits up to 10 s for its registration. Returns the agent's pid (> 0), 0 if no agent
 * was needed or none could be had (the call then goes on without one: polkit refuses if it needed
 * a password), or a negative errno if starting it failed.
 */
int polkit_agent_open(pid_t *ret_pid);

/* Stops an agent polkit_agent_open() started (pid <= 0: nothing to do) and reaps it. */
void polkit_agent_close(pid_t pid);
