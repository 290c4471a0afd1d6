/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The string hash of the daemon's in-memory indexes (the registry's VMs by id, the fd
 * store mirror's entries by name): FNV-1a, 64 bits. Unkeyed on purpose: both tables are
 * bounded by the configured VM limit and sized to twice their content, so ids chosen to
 * collide can at worst make a lookup walk that bounded table, as the old linear search did.
 */
#pragma once

#include <stdint.h>

/* Returns the FNV-1a hash of the NUL-terminated string s. */
static inline uint64_t string_hash(const char *s) {
        uint64_t h = 0xcbf29ce484222325ULL;

        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * 0x100000001b3ULL;
        return h;
}
