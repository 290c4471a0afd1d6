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
#include <signal.h>
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

/* What every machine of the run shares. */
typedef struct Soak {
        char **argv;                 /* LUO_EMU SOAK_DRIVER LU_VFIOD FAKE_SYSTEMD */
        const char *dir, *force_abi, *max_vms;
        uint64_t seed;
        int per_run, jobs;
        bool no_faults;
} Soak;

/* One machine being run: a slot of SOAK_JOBS, with a work directory of its own. */
typedef struct Slot {
        pid_t pid;
        int run;
        char wdir[512];
} Slot;

/* Draws machine RUN from the seed and starts it in SLOT; the child's pid, or -errno. */
static pid_t machine_start(const Soak *k, int run, Slot *slot, int slot_no) {
        SoakRng r = soak_rng(k->seed, (uint64_t) run, 1000);
        const char *abi = k->force_abi ? k->force_abi : run % 2 ? "v4" : "upstream";
        int n_cycles = k->per_run, vfio = soak_range(&r, 0, 8), bind_delay = soak_chance(&r, 30) ? soak_range(&r, 20, 400) : 0;
        bool store = soak_chance(&r, 50);
        char fails[512], copy[512], env_seed[64], a_abi[32], a_vfio[32], a_bind[32];
        char *args[16], *save = NULL;
        int n = 0;
        pid_t pid;

        draw_faults(&r, n_cycles + 1, fails, sizeof(fails));
        if (k->no_faults)
                fails[0] = 0;
        /* one machine at a time keeps the historical place of the work files */
        if (k->jobs > 1)
                snprintf(slot->wdir, sizeof(slot->wdir), "%s/run-j%d", k->dir, slot_no);
        else
                snprintf(slot->wdir, sizeof(slot->wdir), "%s/run", k->dir);
        snprintf(env_seed, sizeof(env_seed), "%" PRIu64, k->seed);
        snprintf(a_abi, sizeof(a_abi), "--abi=%s", abi);
        snprintf(a_vfio, sizeof(a_vfio), "--vfio=%d", vfio);
        snprintf(a_bind, sizeof(a_bind), "--bind-delay=%d", bind_delay);
        args[n++] = k->argv[1];
        args[n++] = a_abi;
        args[n++] = a_vfio;
        if (bind_delay)
                args[n++] = a_bind;
        snprintf(copy, sizeof(copy), "%s", fails);      /* the --fail arguments point into it */
        for (char *tok = strtok_r(copy, " ", &save); tok && n < 12; tok = strtok_r(NULL, " ", &save))
                args[n++] = tok;
        args[n++] = (char *) "--";
        args[n++] = k->argv[2];
        args[n++] = k->argv[3];
        args[n++] = k->argv[4];
        args[n] = NULL;
        printf("soak: run %d: luo-emu %s %s%s%s %s%s(%s)%s%s\n", run, a_abi, a_vfio, bind_delay ? " " : "", bind_delay ? a_bind : "",
               fails, fails[0] ? " " : "", store ? "fd store" : "no fd store", k->jobs > 1 ? " in " : "", k->jobs > 1 ? slot->wdir : "");
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                char c[16], rn[16];
                snprintf(c, sizeof(c), "%d", n_cycles);
                snprintf(rn, sizeof(rn), "%d", run);
                setenv("E2E_DIR", slot->wdir, 1);
                setenv("SOAK_SEED", env_seed, 1);
                setenv("SOAK_RUN", rn, 1);
                setenv("SOAK_CYCLES", c, 1);
                setenv("SOAK_VFIO", a_vfio + 7, 1);
                setenv("SOAK_ABI", abi, 1);
                setenv("SOAK_STORE", store ? "1" : "0", 1);
                setenv("SOAK_FAILS", fails, 1);
                setenv("SOAK_MAX_VMS", k->max_vms, 1);
                execv(k->argv[1], args);
                perror("exec luo-emu");
                _exit(127);
        }
        slot->pid = pid;
        slot->run = run;
        return pid;
}

int main(int argc, char **argv) {
        Soak k = {
                .argv = argv,
                .dir = getenv("SOAK_DIR") ?: getenv("E2E_DIR"),
                .seed = strtoull(getenv("SOAK_SEED") ?: "1", NULL, 0),
                .per_run = atoi(getenv("SOAK_CYCLES_PER_RUN") ?: "6"),
                .jobs = atoi(getenv("SOAK_JOBS") ?: "1"),
                .force_abi = getenv("SOAK_ABI"),
                .max_vms = getenv("SOAK_MAX_VMS") ?: "64",
                .no_faults = strcmp(getenv("SOAK_FAULTS") ?: "1", "0") == 0,
        };
        int cycles = atoi(getenv("SOAK_CYCLES") ?: "20");
        int only = getenv("SOAK_RUN") ? atoi(getenv("SOAK_RUN")) : -1;
        int seconds = atoi(getenv("SOAK_SECONDS") ?: "0"), failed_runs = 0;
        bool keep_going = strcmp(getenv("SOAK_KEEP_GOING") ?: "0", "1") == 0, stop = false;
        struct timespec t0, t1;
        Slot slots[16] = {};
        int runs = 0, active = 0, next_run, rc = 0;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc != 5 || !k.dir) {
                fprintf(stderr, "usage: soak-runner LUO_EMU SOAK_DRIVER LU_VFIOD FAKE_SYSTEMD (SOAK_DIR or E2E_DIR set)\n");
                return 2;
        }
        if (k.per_run < 1)
                k.per_run = 1;
        if (k.jobs < 1 || k.jobs > (int) (sizeof(slots) / sizeof(slots[0])) || only >= 0)
                k.jobs = k.jobs < 1 || only >= 0 ? 1 : (int) (sizeof(slots) / sizeof(slots[0]));
        clock_gettime(CLOCK_MONOTONIC, &t0);
        printf("soak: SOAK_SEED=%" PRIu64 ", %d cycles, %d per machine, %d machine(s) at a time\n", k.seed, cycles, k.per_run, k.jobs);
        next_run = only >= 0 ? only : 0;
        for (;;) {
                /* Start machines while a slot is free; the cycles of the running ones count as done. */
                while (!stop && active < k.jobs) {
                        if (only >= 0 ? next_run != only : stat_get("cycles") + (long) active * k.per_run >= cycles)
                                break;
                        clock_gettime(CLOCK_MONOTONIC, &t1);
                        if (seconds > 0 && t1.tv_sec - t0.tv_sec >= seconds) {
                                printf("soak: SOAK_SECONDS=%d reached\n", seconds);
                                stop = true;
                                break;
                        }
                        int s = 0;
                        while (slots[s].pid > 0)
                                s++;
                        if (machine_start(&k, next_run, &slots[s], s) < 0) {
                                perror("soak: fork");
                                rc = 1;
                                stop = true;
                                break;
                        }
                        next_run++;
                        active++;
                }
                if (active == 0)
                        break;
                int status, s;
                pid_t pid = waitpid(-1, &status, 0);
                if (pid < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("soak: waitpid");
                        return 1;
                }
                for (s = 0; s < k.jobs && slots[s].pid != pid; s++)
                        ;
                if (s == k.jobs)
                        continue;
                slots[s].pid = 0;
                active--;
                runs++;
                long cycles_before = stat_get("cycles");
                char stats[600];
                snprintf(stats, sizeof(stats), "%s/stats", slots[s].wdir);
                stats_add(stats);
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        printf("soak: run %d FAILED (status %d): replay with SOAK_SEED=%" PRIu64 " SOAK_RUN=%d (work files in %s)\n",
                               slots[s].run, status, k.seed, slots[s].run, slots[s].wdir);
                        failed_runs++;
                        if (!keep_going) {
                                /* the others' work files stay for a look; their machines end here */
                                for (int i = 0; i < k.jobs; i++)
                                        if (slots[i].pid > 0)
                                                (void) kill(slots[i].pid, SIGTERM);
                                stop = true;
                        }
                }
                if (stat_get("cycles") == cycles_before && keep_going) {
                        printf("soak: run %d made no progress, stopping\n", slots[s].run);
                        stop = true;
                }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("soak: %s: seed %" PRIu64 ", %d machines (%d failed), %.1f s:", failed_runs || rc ? "FAILED" : "PASSED", k.seed, runs,
               failed_runs, (double) (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
        for (int i = 0; i < n_stats; i++)
                printf(" %s=%ld", stat_name[i], stat_sum[i]);
        printf("\n");
        return failed_runs || rc ? 1 : 0;
}
