/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The randomized soak's runner: a sequence of luo-emu machines, each drawn from the seed.
 *
 *   soak-runner LUO_EMU SOAK_DRIVER LU_VFIOD FAKE_SYSTEMD
 *
 * Environment: SOAK_SEED (default 1), SOAK_CYCLES (update cycles in all, default 20),
 * SOAK_CYCLES_PER_RUN (default 6), SOAK_RUN (replay that one run only), SOAK_ABI (force
 * "upstream" or "v4"; default: alternate), SOAK_MAX_VMS (default 64), SOAK_DIR (work
 * directory; default $E2E_DIR), SOAK_FAULTS=0 (no --fail options), SOAK_SECONDS (stop starting
 * machines after that long: the long run), SOAK_KEEP_GOING=1 (go on after a failed machine, count it).
 *
 * luo-emu's --fail options are fixed for a machine's life, so each run (one luo-emu machine,
 * several boots) draws its own: the ABI, how many VFIO devices, whether the daemon runs under
 * fake-systemd with its fd store, a --bind-delay, and 0-2 kernel faults at a random call
 * (SKIP) of a random boot. The driver is told the same (SOAK_FAILS) so that its checker knows
 * which kernel failures may be seen. Prints the run's options and, at the end, the figures of
 * every run summed; exits non-zero at the first failing run, naming SOAK_SEED and SOAK_RUN.
 */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "soak-rng.h"

#define N_STATS 64

static char stat_name[N_STATS][32];
static long stat_sum[N_STATS];
static int n_stats;

static void stats_add(const char *path) {
        char name[64];
        long v;
        FILE *f = fopen(path, "re");

        if (!f)
                return;
        while (fscanf(f, "stat %63s %ld\n", name, &v) == 2) {
                int i;
                for (i = 0; i < n_stats && strcmp(stat_name[i], name) != 0; i++)
                        ;
                if (i == n_stats) {
                        if (n_stats == N_STATS)
                                break;
                        snprintf(stat_name[n_stats++], sizeof(stat_name[0]), "%.31s", name);
                }
                stat_sum[i] += v;
        }
        fclose(f);
}

static long stat_get(const char *name) {
        for (int i = 0; i < n_stats; i++)
                if (strcmp(stat_name[i], name) == 0)
                        return stat_sum[i];
        return 0;
}

/* The --fail options of one machine: kinds whose effects the driver's checker knows. */
static void draw_faults(SoakRng *r, int boots, char *buf, size_t size) {
        static const struct { const char *what, *err; int min_boot; } kinds[] = {
                { "preserve", "ENOMEM", 0 },        { "create-session", "ENOMEM", 0 },
                { "freeze", "EINVAL", 0 },          { "retrieve-fd", "ENODEV", 1 },
                { "retrieve-session", "EIO", 1 },   { "finish", "EBUSY", 1 },
                { "open", "EIO", 0 },
        };
        int n = soak_chance(r, 55) ? soak_range(r, 1, 2) : 0;
        size_t len = 0;

        buf[0] = 0;
        for (int i = 0; i < n; i++) {
                int k = soak_range(r, 0, (int) (sizeof(kinds) / sizeof(kinds[0])) - 1);
                /* boot 0 or 1 (2 for the faults of a boot after a kexec): most machines reach them */
                int boot = soak_range(r, kinds[k].min_boot, kinds[k].min_boot + (boots > 2 ? 1 : 0));
                int skip = strcmp(kinds[k].what, "open") == 0 ? 0 : soak_range(r, 0, 3);
                len += (size_t) snprintf(buf + len, size - len, "%s--fail=%s:%s:1:%d@%d", len ? " " : "", kinds[k].what,
                                         kinds[k].err, skip, boot);
        }
}

int main(int argc, char **argv) {
        const char *dir = getenv("SOAK_DIR") ?: getenv("E2E_DIR");
        uint64_t seed = strtoull(getenv("SOAK_SEED") ?: "1", NULL, 0);
        int cycles = atoi(getenv("SOAK_CYCLES") ?: "20"), per_run = atoi(getenv("SOAK_CYCLES_PER_RUN") ?: "6");
        int only = getenv("SOAK_RUN") ? atoi(getenv("SOAK_RUN")) : -1;
        const char *force_abi = getenv("SOAK_ABI"), *max_vms = getenv("SOAK_MAX_VMS") ?: "64";
        bool no_faults = strcmp(getenv("SOAK_FAULTS") ?: "1", "0") == 0;
        int seconds = atoi(getenv("SOAK_SECONDS") ?: "0"), failed_runs = 0;
        bool keep_going = strcmp(getenv("SOAK_KEEP_GOING") ?: "0", "1") == 0;
        struct timespec t0, t1;
        int runs = 0;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc != 5 || !dir) {
                fprintf(stderr, "usage: soak-runner LUO_EMU SOAK_DRIVER LU_VFIOD FAKE_SYSTEMD (SOAK_DIR or E2E_DIR set)\n");
                return 2;
        }
        if (per_run < 1)
                per_run = 1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        printf("soak: SOAK_SEED=%" PRIu64 ", %d cycles, %d per machine\n", seed, cycles, per_run);
        for (int run = only >= 0 ? only : 0; only >= 0 ? run == only : stat_get("cycles") < cycles; run++) {
                clock_gettime(CLOCK_MONOTONIC, &t1);
                if (seconds > 0 && t1.tv_sec - t0.tv_sec >= seconds) {
                        printf("soak: SOAK_SECONDS=%d reached\n", seconds);
                        break;
                }
                SoakRng r = soak_rng(seed, (uint64_t) run, 1000);
                const char *abi = force_abi ? force_abi : run % 2 ? "v4" : "upstream";
                int n_cycles = per_run, vfio = soak_range(&r, 0, 8), bind_delay = soak_chance(&r, 30) ? soak_range(&r, 20, 400) : 0;
                bool store = soak_chance(&r, 50);
                char fails[512], wdir[512], env_seed[64], a_abi[32], a_vfio[32], a_bind[32], stats[600];
                char *args[16];
                int n = 0, status;
                pid_t pid;

                draw_faults(&r, n_cycles + 1, fails, sizeof(fails));
                if (no_faults)
                        fails[0] = 0;
                snprintf(wdir, sizeof(wdir), "%s/run", dir);
                snprintf(env_seed, sizeof(env_seed), "%" PRIu64, seed);
                snprintf(a_abi, sizeof(a_abi), "--abi=%s", abi);
                snprintf(a_vfio, sizeof(a_vfio), "--vfio=%d", vfio);
                snprintf(a_bind, sizeof(a_bind), "--bind-delay=%d", bind_delay);
                args[n++] = argv[1];
                args[n++] = a_abi;
                args[n++] = a_vfio;
                if (bind_delay)
                        args[n++] = a_bind;
                {
                        static char copy[sizeof(fails)];   /* the --fail arguments point into it */
                        char *save = NULL;
                        snprintf(copy, sizeof(copy), "%s", fails);
                        for (char *tok = strtok_r(copy, " ", &save); tok && n < 12; tok = strtok_r(NULL, " ", &save))
                                args[n++] = tok;
                }
                args[n++] = (char *) "--";
                args[n++] = argv[2];
                args[n++] = argv[3];
                args[n++] = argv[4];
                args[n] = NULL;
                printf("soak: run %d: luo-emu %s %s%s%s %s%s(%s)\n", run, a_abi, a_vfio, bind_delay ? " " : "", bind_delay ? a_bind : "",
                       fails, fails[0] ? " " : "", store ? "fd store" : "no fd store");
                pid = fork();
                if (pid < 0)
                        return 1;
                if (pid == 0) {
                        char c[16], rn[16];
                        snprintf(c, sizeof(c), "%d", n_cycles);
                        snprintf(rn, sizeof(rn), "%d", run);
                        setenv("E2E_DIR", wdir, 1);
                        setenv("SOAK_SEED", env_seed, 1);
                        setenv("SOAK_RUN", rn, 1);
                        setenv("SOAK_CYCLES", c, 1);
                        setenv("SOAK_VFIO", a_vfio + 7, 1);
                        setenv("SOAK_ABI", abi, 1);
                        setenv("SOAK_STORE", store ? "1" : "0", 1);
                        setenv("SOAK_FAILS", fails, 1);
                        setenv("SOAK_MAX_VMS", max_vms, 1);
                        execv(argv[1], args);
                        perror("exec luo-emu");
                        _exit(127);
                }
                long cycles_before = stat_get("cycles");
                if (waitpid(pid, &status, 0) < 0)
                        return 1;
                runs++;
                snprintf(stats, sizeof(stats), "%s/stats", wdir);
                stats_add(stats);
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        printf("soak: run %d FAILED (status %d): replay with SOAK_SEED=%" PRIu64 " SOAK_RUN=%d (work files in %s)\n",
                               run, status, seed, run, wdir);
                        if (!keep_going)
                                return 1;
                        failed_runs++;
                }
                if (stat_get("cycles") == cycles_before && keep_going) {
                        printf("soak: run %d made no progress, stopping\n", run);
                        break;
                }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("soak: %s: seed %" PRIu64 ", %d machines (%d failed), %.1f s:", failed_runs ? "FAILED" : "PASSED", seed, runs, failed_runs,
               (double) (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
        for (int i = 0; i < n_stats; i++)
                printf(" %s=%ld", stat_name[i], stat_sum[i]);
        printf("\n");
        return failed_runs ? 1 : 0;
}
