/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pre-flight of prepare: every check that a live update into a given next kernel
 * can work, each with its own result, run by prepare (which refuses on the first check
 * that refuses) and by CheckPrepare / "check-prepare" (which only reports). Nothing here
 * loads a kernel, freezes a VM or changes the update state. See docs/operations.md
 * "Pre-flight".
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/state.h"

typedef enum PreflightStatus {
        PREFLIGHT_PASS,
        PREFLIGHT_FAIL,
        PREFLIGHT_UNKNOWN,     /* the check could not be made (the detail says why) */
        PREFLIGHT_SKIPPED,     /* switched off by the configuration */
} PreflightStatus;

const char *preflight_status_to_string(PreflightStatus s);

#define PREFLIGHT_CHECKS_MAX 24

typedef struct PreflightCheck {
        char name[48];         /* "next-config:CONFIG_LIVEUPDATE"; next-kernel checks start with "next-" */
        PreflightStatus status;
        bool next_kernel;      /* a check of the next kernel: an operator's force skips it */
        bool refuses;          /* prepare refuses because of this check (status, force, NextKernelStrict=) */
        bool forced;           /* it would refuse, but the operator forced past it */
        int error;             /* positive errno for the refusal */
        char detail[400];
} PreflightCheck;

typedef struct Preflight {
        PreflightCheck checks[PREFLIGHT_CHECKS_MAX];
        size_t n;
        const PreflightCheck *refused_by;   /* the first check that refuses, NULL if none */
} Preflight;

/*
 * preflight_run() - run every check for a prepare of @kernel, @initrd (NULL for none) and
 * the command line @cmdline the next kernel boots with. @check_only: report only (the
 * previous update's LUO FINISH is not retried). @force: next-kernel checks do not refuse.
 */
void preflight_run(Manager *m, const char *kernel, const char *initrd, const char *cmdline, bool check_only,
                   bool force, Preflight *ret);

/* preflight_to_json() - {"checks":[{"check","result","detail","next_kernel","refuses","forced"}...], "refused_by"} */
json_object *preflight_to_json(const Preflight *p);
