/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The soak's random numbers: splitmix64, seeded from (seed, run, boot) so that a run replays
 * exactly from SOAK_SEED and the run number, whatever happened in other runs. Shared by the
 * runner (which draws luo-emu's options) and the driver (which draws the actions).
 */
#pragma once
#include <stdint.h>

typedef struct SoakRng {
        uint64_t s;
} SoakRng;

static inline uint64_t soak_mix(uint64_t z) {
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static inline uint64_t soak_next(SoakRng *r) {
        r->s += 0x9e3779b97f4a7c15ULL;
        return soak_mix(r->s);
}

/* Uniform in [lo, hi] (hi >= lo). */
static inline int soak_range(SoakRng *r, int lo, int hi) {
        return lo + (int) (soak_next(r) % (uint64_t) (hi - lo + 1));
}

/* True with probability @pct percent. */
static inline int soak_chance(SoakRng *r, int pct) {
        return soak_range(r, 0, 99) < pct;
}

static inline SoakRng soak_rng(uint64_t seed, uint64_t run, uint64_t boot) {
        return (SoakRng) { soak_mix(seed * 0x100000001b3ULL ^ soak_mix(run + 1) ^ soak_mix((boot + 7) << 20)) };
}
