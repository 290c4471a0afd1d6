/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The randomized soak's driver, run as luo-emu's COMMAND (pid 1 of the emulated machine):
 *
 *   soak-driver LU_VFIOD FAKE_SYSTEMD
 *
 * Environment (set by soak-runner): E2E_DIR (work directory, recreated at boot 0), SOAK_SEED,
 * SOAK_RUN, SOAK_CYCLES (update cycles of this machine), SOAK_VFIO (devices luo-emu emulates),
 * SOAK_ABI, SOAK_STORE (1: the daemon runs under fake-systemd with the fd store), SOAK_FAILS
 * (the --fail options luo-emu was given, so that the checker knows which kernel failures may
 * happen), SOAK_MAX_VMS, SOAK_CROWD (that many more VMM connections, see crowd_main()).
 *
 * Every boot draws its actions from (seed, run, boot): VMs join (1-6 items each: memfds of
 * random sizes with a pattern per item and generation, emulated VFIO devices bound to an
 * iommufd with MSI-X on or not bound, or a delegated VM preserving its memfds into its own
 * session) and leave, guests rewrite their memory, then an update cycle: plain, vetoed,
 * cancelled (preparing, prepared, freezing), a VMM SIGSTOPped past the deadline, a VMM
 * SIGKILLed while it holds an acknowledgement, the daemon SIGKILLed at a phase (restarted by
 * fake-systemd with its fd store, or by the driver without), a failed reboot (luo-emu's
 * freeze fault). A committed update kexecs: the machine reboots and this program runs again;
 * what must cross the reboot (the model) is in E2E_DIR/model.
 *
 * Each VM is one VMM process (an "agent", forked, built on liblu-vfio-client), driven by the
 * driver over a socketpair with one-line commands. After every step the checker compares the
 * daemon's view (operator "list" and "status" on the control socket) with the model, which
 * says what docs/protocol.md promises: every item preserved, reclaimable after the kexec and
 * byte for byte what the guest last wrote; `lost` only after a daemon restart without the fd
 * store; `failed` only with the errno of an injected retrieve fault; a kernel-error only where
 * an injected fault allows it; every VMM told `resume` after an abandoned update; the daemon's
 * fd count at its baseline (fresh daemon + one per connection, session and item) and its RSS
 * bounded. A failure prints the seed, run, boot and step; SOAK_SEED=N SOAK_RUN=R replays it.
 */
#include <inttypes.h>
#include <sys/eventfd.h>
#include <sys/resource.h>

#include "../adversarial/adv-common.h"
#include "fd-kind.h"
#include "lu-client.h"
#include "pci-addr.h"
#include "soak-rng.h"
#include "vfio-dev.h"

#define MAX_VMS 64
#define MAX_ITEMS 6
#define MAX_DEVS 16

/* ---- the model ----------------------------------------------------------------------- */

typedef struct Item {
        char label[8];
        char kind;             /* 'm' memfd, 'v' VFIO device */
        uint32_t size;         /* memfd bytes */
        int dev;               /* VFIO: /dev/vfio/devices/vfio<dev> */
        int bound;             /* VFIO: bound to an iommufd (MSI-X on) when handed over */
        uint32_t gen;          /* memfd: pattern generation the guest wrote last */
        char st;               /* 'n' not preserved, 'p' preserved (the daemon or the VM's session holds it),
                                  'x' a device that came across an update: the guest keeps it unpreserved */
        char pci[20];
} Item;

typedef struct Vm {
        char id[24];
        int delegated;
        int incoming;          /* came across the last kexec: must be reclaimed */
        int orphan;            /* its VMM died in this boot: only the daemon holds its items */
        int n_items;
        Item items[MAX_ITEMS];
        /* runtime, not saved */
        pid_t pid;
        int cmd;
        int told_prepare;      /* was sent prepare in the update now running */
        int synced;            /* its VMM connected (a sync) since it was spawned: the daemon lists it connected */
        int session_lost_boot; /* 1 + the boot in which a RETRIEVE_SESSION fault failed its items */
} Vm;

static Vm vms[MAX_VMS];
static int n_vms;
static int next_vm_id;
static int dev_owner[MAX_DEVS];  /* VM index + 1 owning the device, 0 free (rebuilt from the model) */
/* Devices of a session the kernel failed to hand over (RETRIEVE_SESSION fault): that session
 * stays in the kernel, pinning them, until the next kexec; not handed to another VM in this boot. */
static bool dev_pinned[MAX_DEVS];

/* Counters, kept across boots in the model and summed by the runner. */
#define STATS(X) X(cycles) X(kexecs) X(failed_reboots) X(cancels) X(vetoes) X(timeouts) X(daemon_kills) \
        X(daemon_kills_store) X(vmm_kills) X(vmm_stops) X(vms_updated) X(items_verified) X(bytes_verified) \
        X(items_lost) X(joins) X(leaves) X(mutations) X(fault_preserve) X(fault_create_session) \
        X(fault_freeze) X(fault_retrieve_fd) X(fault_retrieve_session) X(fault_finish) X(fault_open) \
        X(unbound_refused) X(memfds_copied) X(steps)
#define X_DECL(n) long n;
static struct { STATS(X_DECL) } st;

static long step;
static int cycles_wanted;
static uint64_t seed;
static int run_no, n_vfio, max_vms;
static bool abi_v4;
static int fresh_fds = -1;
static long fresh_rss_kb = -1;
static bool kernel_stuck;    /* v4 after an unfinishable session: no more updates in this boot */
static SoakRng rng;

#define STEP(fmt, ...) do { step++; st.steps++; say("step %ld: " fmt, step, ##__VA_ARGS__); } while (0)

static void model_save(void) {
        char p[400], t[400];
        FILE *f;

        snprintf(t, sizeof(t), "%s/model.tmp", work_dir);
        snprintf(p, sizeof(p), "%s/model", work_dir);
        f = fopen(t, "we");
        if (!f)
                bail("write %s: %m", t);
        fprintf(f, "step %ld next_vm %d fresh_fds %d fresh_rss %ld\n", step, next_vm_id, fresh_fds, fresh_rss_kb);
#define X_SAVE(n) fprintf(f, "stat %s %ld\n", #n, st.n);
        STATS(X_SAVE)
        for (int i = 0; i < n_vms; i++) {
                Vm *v = &vms[i];
                fprintf(f, "vm %s %d %d %d %d\n", v->id, v->delegated, v->incoming, v->orphan, v->n_items);
                for (int j = 0; j < v->n_items; j++) {
                        Item *it = &v->items[j];
                        fprintf(f, "it %s %c %u %d %d %u %c %s\n", it->label, it->kind, it->size, it->dev, it->bound,
                                it->gen, it->st, it->pci[0] ? it->pci : "-");
                }
        }
        if (fclose(f) != 0 || rename(t, p) < 0)
                bail("write %s: %m", p);
        /* the stats alone, for the runner */
        snprintf(p, sizeof(p), "%s/stats", work_dir);
        f = fopen(p, "we");
        if (!f)
                bail("write %s: %m", p);
        STATS(X_SAVE)
        fclose(f);
}

static void model_load(void) {
        char p[400], line[512], name[64];
        FILE *f;
        long v;

        snprintf(p, sizeof(p), "%s/model", work_dir);
        f = fopen(p, "re");
        if (!f)
                bail("no model in %s: %m", p);
        n_vms = 0;
        while (fgets(line, sizeof(line), f)) {
                if (sscanf(line, "step %ld next_vm %d fresh_fds %d fresh_rss %ld", &step, &next_vm_id, &fresh_fds, &fresh_rss_kb) == 4)
                        continue;
                if (sscanf(line, "stat %63s %ld", name, &v) == 2) {
#define X_LOAD(n) if (strcmp(name, #n) == 0) st.n = v;
                        STATS(X_LOAD)
                        continue;
                }
                if (strncmp(line, "vm ", 3) == 0) {
                        Vm *m = &vms[n_vms++];
                        *m = (Vm) { .cmd = -1 };
                        if (sscanf(line, "vm %23s %d %d %d %d", m->id, &m->delegated, &m->incoming, &m->orphan, &m->n_items) != 5)
                                bail("bad model line %s", line);
                        m->n_items = 0;
                        continue;
                }
                if (strncmp(line, "it ", 3) == 0 && n_vms > 0) {
                        Vm *m = &vms[n_vms - 1];
                        Item *it = &m->items[m->n_items++];
                        if (sscanf(line, "it %7s %c %u %d %d %u %c %19s", it->label, &it->kind, &it->size, &it->dev, &it->bound,
                                   &it->gen, &it->st, it->pci) != 8)
                                bail("bad model line %s", line);
                        if (strcmp(it->pci, "-") == 0)
                                it->pci[0] = 0;
                }
        }
        fclose(f);
        memset(dev_owner, 0, sizeof(dev_owner));
        for (int i = 0; i < n_vms; i++)
                for (int j = 0; j < vms[i].n_items; j++)
                        if (vms[i].items[j].kind == 'v')
                                dev_owner[vms[i].items[j].dev] = i + 1;
}

/* ---- kernel faults the runner gave luo-emu --------------------------------------------- */

typedef struct Fault {
        char what[24];
        int err, count, skip, boot;   /* boot -1: any */
        int seen;                     /* failures observed (and explained) so far */
} Fault;

static Fault faults[8];
static int n_faults;

static int errno_of(const char *s) {
        static const struct { const char *n; int e; } t[] = { { "ENOMEM", ENOMEM }, { "EIO", EIO }, { "ENODEV", ENODEV },
                                                             { "EINVAL", EINVAL }, { "EBUSY", EBUSY } };
        for (size_t i = 0; i < ELEMS(t); i++)
                if (strcmp(s, t[i].n) == 0)
                        return t[i].e;
        return atoi(s);
}

static void faults_parse(const char *s) {
        char buf[1024], *save = NULL;

        snprintf(buf, sizeof(buf), "%s", s ? s : "");
        for (char *tok = strtok_r(buf, " ", &save); tok && n_faults < (int) ELEMS(faults); tok = strtok_r(NULL, " ", &save)) {
                Fault *f = &faults[n_faults];
                char what[24], en[16];
                const char *at = strchr(tok, '@');

                if (strncmp(tok, "--fail=", 7) != 0)
                        continue;
                *f = (Fault) { .count = 1, .boot = at ? atoi(at + 1) : -1 };
                if (sscanf(tok + 7, "%23[^:]:%15[^:@]:%d:%d", what, en, &f->count, &f->skip) < 2)
                        bail("bad fault %s", tok);
                snprintf(f->what, sizeof(f->what), "%s", what);
                f->err = errno_of(en);
                n_faults++;
        }
}

/* An observed kernel failure of kind @what with @err: explained by an injected fault (counted), or a FAIL. */
static bool fault_explains(const char *what, int err, const char *where) {
        for (int i = 0; i < n_faults; i++) {
                Fault *f = &faults[i];
                if (strcmp(f->what, what) == 0 && f->err == err && (f->boot < 0 || f->boot == adv_boot) && f->seen < f->count) {
                        f->seen++;
                        say("  injected %s:%s fault landed: %s", what, strerror(err), where);
                        if (strcmp(what, "preserve") == 0) st.fault_preserve++;
                        else if (strcmp(what, "create-session") == 0) st.fault_create_session++;
                        else if (strcmp(what, "freeze") == 0) st.fault_freeze++;
                        else if (strcmp(what, "retrieve-fd") == 0) st.fault_retrieve_fd++;
                        else if (strcmp(what, "retrieve-session") == 0) st.fault_retrieve_session++;
                        else if (strcmp(what, "finish") == 0) st.fault_finish++;
                        else if (strcmp(what, "open") == 0) st.fault_open++;
                        return true;
                }
        }
        CHECK(false, "a kernel failure no injected fault explains: %s errno %d (%s) at %s", what, err, strerror(err), where);
        return false;
}

static bool fault_pending(const char *what) {
        for (int i = 0; i < n_faults; i++)
                if (strcmp(faults[i].what, what) == 0 && (faults[i].boot < 0 || faults[i].boot == adv_boot))
                        return true;
        return false;
}

/* ---- memory patterns ----------------------------------------------------------------- */

static uint64_t pattern_key(const char *vm, const char *label, uint32_t gen) {
        uint64_t h = 1469598103934665603ULL ^ seed ^ ((uint64_t) run_no << 40);
        for (const char *p = vm; *p; p++)
                h = (h ^ (unsigned char) *p) * 1099511628211ULL;
        h = (h ^ '/') * 1099511628211ULL;
        for (const char *p = label; *p; p++)
                h = (h ^ (unsigned char) *p) * 1099511628211ULL;
        return soak_mix(h ^ ((uint64_t) gen << 32));
}

static void pattern_fill(uint64_t key, uint64_t *buf, size_t words) {
        for (size_t i = 0; i < words; i++)
                buf[i] = soak_mix(key + i);
}

/* ---- the agent: one VMM process per VM ------------------------------------------------- */

typedef struct Agent {
        Vm vm;                       /* the driver's model of this VM at fork time */
        int cmd;
        LuClient *c;
        int fd[MAX_ITEMS];           /* the guest's own copy of each item (-1: none) */
        int iommufd[MAX_ITEMS];
        int efd[MAX_ITEMS][2];
        int session;                 /* delegated: the VM's session fd */
        bool delegated_preserved[MAX_ITEMS];
        bool held_by_daemon[MAX_ITEMS];  /* custodian: known held on this connection */
        bool states_stale;               /* the item states of hello no longer hold (the VM was restored) */
        char hold;                   /* 'p'/'f': do not ack that event until "release" */
        bool veto, skip_irq;
        LuEvent held;
        bool have_held;
        int n_prepare, n_freeze, n_resume, n_ready, n_eof;
        char resume_reason[32];
        char out[8192];
        size_t out_len;
} Agent;

static void out(Agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(Agent *a, const char *fmt, ...) {
        va_list ap;
        int n;
        va_start(ap, fmt);
        n = vsnprintf(a->out + a->out_len, sizeof(a->out) - a->out_len, fmt, ap);
        va_end(ap);
        if (n > 0 && a->out_len + (size_t) n < sizeof(a->out) - 1) {
                a->out_len += (size_t) n;
                a->out[a->out_len++] = '\n';
                a->out[a->out_len] = 0;
        }
}

static int memfd_write_gen(Agent *a, Item *it, int fd) {
        static uint64_t buf[256 * 1024 / 8];
        pattern_fill(pattern_key(a->vm.id, it->label, it->gen), buf, it->size / 8);
        return pwrite(fd, buf, it->size, 0) == (ssize_t) it->size ? 0 : -EIO;
}

/* Bytes of @fd that differ from the pattern of @it (0: identical), -1 if unreadable. */
static long memfd_compare(Agent *a, Item *it, int fd) {
        static uint64_t want[256 * 1024 / 8], got[256 * 1024 / 8];
        struct stat s;
        long bad = 0;

        if (fstat(fd, &s) < 0 || s.st_size != (off_t) it->size)
                return -1;
        pattern_fill(pattern_key(a->vm.id, it->label, it->gen), want, it->size / 8);
        if (pread(fd, got, it->size, 0) != (ssize_t) it->size)
                return -1;
        for (size_t i = 0; i < it->size / 8; i++)
                bad += want[i] != got[i];
        return bad * 8;
}

/* A new memfd with the contents of @fd (the size of @it); negative errno on failure. */
static int memfd_copy(int fd, const Item *it) {
        static uint64_t buf[256 * 1024 / 8];
        int n = memfd_create(it->label, MFD_CLOEXEC);

        if (n < 0)
                return -errno;
        if (ftruncate(n, it->size) < 0 || pread(fd, buf, it->size, 0) != (ssize_t) it->size ||
            pwrite(n, buf, it->size, 0) != (ssize_t) it->size) {
                close(n);
                return -EIO;
        }
        return n;
}

/* The step of item_create()/device_bind() that failed last, for the BAD line. */
static const char *create_step = "";

/* Bind a VFIO device fd to a new iommufd, attach an IOAS, turn MSI-X on (a running guest). */
static int device_bind(Agent *a, int j) {
        uint32_t ioas;
        int r;

        create_step = "open /dev/iommu";
        a->iommufd[j] = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        if (a->iommufd[j] < 0)
                return -errno;
        create_step = "VFIO_DEVICE_BIND_IOMMUFD";
        r = vfio_device_bind_iommufd(a->fd[j], a->iommufd[j], NULL);
        if (r < 0)
                return r;
        create_step = "IOMMU_IOAS_ALLOC";
        r = iommufd_ioas_alloc(a->iommufd[j], &ioas);
        if (r < 0)
                return r;
        create_step = "VFIO_DEVICE_ATTACH_IOMMUFD_PT";
        r = vfio_device_attach_pt(a->fd[j], ioas, NULL);
        if (r < 0)
                return r;
        create_step = "eventfd";
        for (int k = 0; k < 2; k++)
                if ((a->efd[j][k] = eventfd(0, EFD_CLOEXEC)) < 0)
                        return -errno;
        create_step = "VFIO_DEVICE_SET_IRQS";
        return vfio_device_set_irqs_eventfd(a->fd[j], VFIO_PCI_MSIX_IRQ_INDEX, a->efd[j], 2);
}

static void item_close(Agent *a, int j) {
        if (a->fd[j] >= 0)
                close(a->fd[j]);
        if (a->iommufd[j] >= 0)
                close(a->iommufd[j]);
        for (int k = 0; k < 2; k++)
                if (a->efd[j][k] >= 0)
                        close(a->efd[j][k]);
        a->fd[j] = a->iommufd[j] = a->efd[j][0] = a->efd[j][1] = -1;
}

/* The guest's item j, created fresh (memfd with its pattern, or the device opened and maybe bound). */
static int item_create(Agent *a, int j) {
        Item *it = &a->vm.items[j];
        char path[64];
        FdInfo info;
        int r;

        item_close(a, j);
        create_step = it->kind == 'm' ? "memfd" : "open";
        if (it->kind == 'm') {
                a->fd[j] = memfd_create(it->label, MFD_CLOEXEC);
                if (a->fd[j] < 0 || ftruncate(a->fd[j], it->size) < 0)
                        return -errno;
                return memfd_write_gen(a, it, a->fd[j]);
        }
        snprintf(path, sizeof(path), "/dev/vfio/devices/vfio%d", it->dev);
        /* after a kexec with --bind-delay the device appears (bound to vfio-pci) a little later */
        for (double end = now_s() + 5; (a->fd[j] = open(path, O_RDWR | O_CLOEXEC)) < 0 && errno == ENOENT && now_s() < end;)
                usleep(10000);
        if (a->fd[j] < 0)
                return -errno;
        create_step = "classify";
        r = fd_classify(a->fd[j], &info);
        if (r < 0)
                return r;
        if (info.has_pci)
                pci_addr_to_string(&info.pci, it->pci);
        out(a, "pci %s %s", it->label, it->pci);
        return it->bound ? device_bind(a, j) : 0;
}

static void agent_handle_event(Agent *a, const LuEvent *ev) {
        switch (ev->type) {
        case LU_EVENT_PREPARE:
                a->n_prepare++;
                if (a->hold == 'p') {
                        a->held = *ev;
                        a->have_held = true;
                        a->hold = 0;
                        return;
                }
                (void) lu_client_ack(a->c, ev, !a->veto, a->veto ? "soak veto" : NULL);
                a->veto = false;
                break;
        case LU_EVENT_FREEZE:
                a->n_freeze++;
                if (!a->skip_irq)
                        for (int j = 0; j < a->vm.n_items; j++)
                                if (a->vm.items[j].kind == 'v' && a->fd[j] >= 0 && a->iommufd[j] >= 0)
                                        (void) vfio_device_disable_irqs(a->fd[j]);
                if (a->hold == 'f') {
                        a->held = *ev;
                        a->have_held = true;
                        a->hold = 0;
                        return;
                }
                (void) lu_client_ack(a->c, ev, true, NULL);
                break;
        case LU_EVENT_RESUME:
                a->n_resume++;
                snprintf(a->resume_reason, sizeof(a->resume_reason), "%s", ev->reason);
                break;
        case LU_EVENT_RESTORE_READY:
                a->n_ready++;
                break;
        default:
                break;
        }
}

static void agent_drain(Agent *a) {
        LuEvent ev;
        int r;

        while (a->c && (r = lu_client_next_event(a->c, 0, &ev)) != -ETIMEDOUT) {
                if (r < 0) {
                        a->c = lu_client_free(a->c);
                        a->n_eof++;
                        a->have_held = false;
                        return;
                }
                agent_handle_event(a, &ev);
        }
}

static int agent_connect(Agent *a) {
        double end = now_s() + 20;
        int r;

        if (a->c)
                return 0;
        for (;;) {
                r = lu_client_connect(vmm_sock, a->vm.id, &a->c);
                if (r >= 0)
                        break;
                /* the daemon is restarting, or has not yet seen this VM's old connection go */
                if ((r != -ECONNREFUSED && r != -ENOENT && r != -EBUSY && r != -ECONNRESET) || now_s() > end) {
                        out(a, "BAD connect: %s", strerror(-r));
                        return r;
                }
                usleep(10000);
        }
        for (int j = 0; j < MAX_ITEMS; j++)
                a->held_by_daemon[j] = false;
        a->states_stale = false;
        agent_drain(a);
        return 0;
}

/* After the kexec: take everything back, compare it, bind devices again, report restored. */
static void agent_reclaim(Agent *a) {
        /* custodian: the session each item came in (hello), and the sessions holding a VFIO device
         * whose retrieve failed for good: those cannot finish and are closed at restored (§5.8) */
        char session[MAX_ITEMS][64] = {}, closed[MAX_ITEMS][64] = {};
        bool any_failed = false, reclaimed[MAX_ITEMS] = {};
        int n_closed = 0, r;

        if (a->vm.delegated) {
                bool incoming = false;
                r = lu_client_session_get(a->c, &a->session, &incoming);
                if (r < 0) {
                        /* the kernel failed the retrieve of the VM's session: its files are gone
                         * (reported like a failed item); the VM is restored without them */
                        out(a, "failed-session %d %s", -r, lu_client_last_error(a->c));
                        a->session = -1;
                        any_failed = true;
                        for (int j = 0; j < a->vm.n_items; j++)
                                a->vm.items[j].gen++;   /* the guest starts new memory (the driver's model too) */
                } else if (!incoming)
                        out(a, "BAD delegated session not incoming after the kexec");
        }
        for (int j = 0; j < a->vm.n_items; j++) {
                Item *it = &a->vm.items[j];
                char pci[LU_CLIENT_PCI_MAX] = "";
                int fd = -1;

                if (it->st != 'p' || (a->vm.delegated && a->session < 0))
                        continue;
                if (!a->vm.delegated && lu_client_item_session(a->c, it->label))
                        snprintf(session[j], sizeof(session[j]), "%s", lu_client_item_session(a->c, it->label));
                if (a->vm.delegated)
                        r = lu_client_session_retrieve(a->c, a->session, (uint64_t) j + 1, &fd);
                else
                        r = lu_client_reclaim(a->c, it->label, &fd, pci);
                if (r < 0) {
                        out(a, "failed %s %d %s", it->label, -r, a->vm.delegated ? "" : lu_client_last_error(a->c));
                        any_failed = true;
                        it->gen++;      /* the guest starts new memory (the driver's model too) */
                        if (!a->vm.delegated && it->kind == 'v' && r != -ETIMEDOUT && session[j][0])
                                memcpy(closed[n_closed++], session[j], sizeof(closed[0]));
                        continue;
                }
                item_close(a, j);
                a->fd[j] = fd;
                reclaimed[j] = true;
                if (it->kind == 'm') {
                        long bad = memfd_compare(a, it, fd);
                        if (bad != 0)
                                out(a, "BAD %s: %ld of %u bytes differ from generation %u", it->label, bad, it->size, it->gen);
                        else
                                out(a, "verified %s %u", it->label, it->size);
                } else {
                        FdInfo info;
                        char got[PCI_ADDR_STRING_MAX] = "";
                        if (fd_classify(fd, &info) < 0 || !fd_kind_is_vfio_device(info.kind) || !info.has_pci)
                                out(a, "BAD %s: reclaimed fd is not a VFIO device", it->label);
                        else {
                                pci_addr_to_string(&info.pci, got);
                                if (strcmp(got, it->pci) != 0 || (!a->vm.delegated && strcmp(pci, it->pci) != 0))
                                        out(a, "BAD %s: device %s/%s, expected %s", it->label, got, pci, it->pci);
                                else if ((r = device_bind(a, j)) < 0)
                                        out(a, "BAD %s: bind after reclaim: %s", it->label, strerror(-r));
                                else
                                        out(a, "verified %s 0", it->label);
                        }
                }
        }
        for (int tries = 0;; tries++) {
                r = lu_client_restored(a->c);
                if (r != -EBUSY || tries >= 5)
                        break;
                out(a, "kerr finish %d %s", EBUSY, lu_client_last_error(a->c));
        }
        if (r < 0)
                out(a, "BAD restored: %s (%s)", strerror(-r), lu_client_last_error(a->c));
        else {
                /* docs/protocol.md §5.8: the memfds reclaimed from a session closed unfinished stay
                 * the kernel's until the next live update (preserving them again is EBUSY): the
                 * guest's memory moves into new memfds, checked against what it held */
                for (int j = 0; j < a->vm.n_items; j++) {
                        Item *it = &a->vm.items[j];
                        bool in_closed = false;
                        for (int k = 0; k < n_closed && !in_closed; k++)
                                in_closed = session[j][0] && strcmp(session[j], closed[k]) == 0;
                        if (it->kind == 'm' && reclaimed[j] && in_closed) {
                                int fd = memfd_copy(a->fd[j], it);
                                long bad = fd < 0 ? -1 : memfd_compare(a, it, fd);
                                if (bad != 0) {
                                        out(a, "BAD %s: copy out of the unfinished session %s: %s", it->label, session[j],
                                            fd < 0 ? strerror(-fd) : "differs from the guest's memory");
                                        if (fd >= 0)
                                                close(fd);
                                        continue;
                                }
                                close(a->fd[j]);
                                a->fd[j] = fd;
                                out(a, "copied %s %u %s", it->label, it->size, session[j]);
                        }
                }
                out(a, "restored%s", any_failed ? " with failures" : "");
        }
        if (a->vm.delegated && a->session >= 0) {
                close(a->session);
                a->session = -1;
        }
        /* the VM is an ordinary VM again: its items are handed over again below */
        a->states_stale = true;
        for (int j = 0; j < a->vm.n_items; j++) {
                a->vm.items[j].st = 'n';
                a->delegated_preserved[j] = false;
                a->held_by_daemon[j] = false;
                /* A retrieved device fd is not a kind the daemon preserves (vfio-retrieved, not a
                 * cdev fd) and the device cannot be bound through a second open while the guest
                 * uses it: a device comes across one update; the guest keeps it, unpreserved. */
                if (a->vm.items[j].kind == 'v')
                        a->vm.items[j].st = 'x';
        }
        (void) any_failed;
}

/* Two session fds of the same LUO session (the kernel names a session fd "[luo_session] <name>"). */
static bool same_session(int a, int b) {
        char pa[64], pb[64], ta[128] = "", tb[128] = "";
        snprintf(pa, sizeof(pa), "/proc/self/fd/%d", a);
        snprintf(pb, sizeof(pb), "/proc/self/fd/%d", b);
        return readlink(pa, ta, sizeof(ta) - 1) > 0 && readlink(pb, tb, sizeof(tb) - 1) > 0 && strcmp(ta, tb) == 0;
}

/* Hand over everything the daemon does not hold (never held, or `lost`). */
static void agent_preserve(Agent *a) {
        int r;

        if (a->vm.delegated) {
                bool incoming;
                int fd;
                if ((r = lu_client_session_get(a->c, &fd, &incoming)) < 0) {
                        out(a, "kerr session-get %d %s", -r, lu_client_last_error(a->c));
                        return;
                }
                /* Reconnected to a restarted daemon: if it names another session than ours, it
                 * does not hold ours any more, and what we preserved must go into the new one. */
                if (a->session >= 0 && !same_session(a->session, fd)) {
                        out(a, "delegated-session-replaced");
                        for (int j = 0; j < a->vm.n_items; j++)
                                a->delegated_preserved[j] = false;
                }
                if (a->session >= 0)
                        close(a->session);
                a->session = fd;
        }
        for (int j = 0; j < a->vm.n_items; j++) {
                Item *it = &a->vm.items[j];
                const char *state = a->vm.delegated || a->held_by_daemon[j] || a->states_stale ? NULL :
                                    lu_client_item_state(a->c, it->label);

                if (it->st == 'x')
                        continue;
                if (a->vm.delegated ? a->delegated_preserved[j] : a->held_by_daemon[j] || (state && strcmp(state, "lost") != 0)) {
                        a->held_by_daemon[j] = true;
                        continue;
                }
                if (state && strcmp(state, "lost") == 0)
                        out(a, "lost %s", it->label);
                if (a->fd[j] < 0) {
                        if (a->vm.orphan) {
                                out(a, "orphan %s", it->label);
                                continue;
                        }
                        if ((r = item_create(a, j)) < 0) {
                                out(a, "BAD create %s: %s: %s", it->label, create_step, strerror(-r));
                                continue;
                        }
                }
                for (int tries = 0; tries < 3; tries++) {
                        if (a->vm.delegated)
                                r = lu_client_session_preserve(a->c, a->session, a->fd[j], (uint64_t) j + 1);
                        else
                                r = lu_client_preserve(a->c, it->label, a->fd[j], NULL);
                        if (r >= 0)
                                break;
                        if (it->kind == 'v' && !it->bound && !abi_v4 &&
                            (r == -ENOENT || strstr(lu_client_last_error(a->c), "not bound"))) {
                                /* the upstream kernel preserves bound devices only (spec §4.1), which the
                                 * daemon checks first (wrong-fd-kind "... not bound to an iommufd"): bind, retry */
                                out(a, "unbound-refused %s", it->label);
                                it->bound = 1;
                                if ((r = device_bind(a, j)) < 0)
                                        break;
                                continue;
                        }
                        if (!a->vm.delegated && strncmp(lu_client_last_error(a->c), "kernel-error", 12) != 0) {
                                out(a, "BAD preserve %s: %s", it->label, lu_client_last_error(a->c));
                                break;
                        }
                        out(a, "kerr %s %s %d %s", strstr(lu_client_last_error(a->c), "CREATE_SESSION") ? "create-session" : "preserve",
                            it->label, -r, a->vm.delegated ? "(own session)" : lu_client_last_error(a->c));
                }
                if (r >= 0) {
                        it->st = 'p';
                        a->delegated_preserved[j] = true;
                        a->held_by_daemon[j] = true;
                        out(a, "preserved %s", it->label);
                } else
                        out(a, "unpreserved %s %d", it->label, -r);
        }
}

static void agent_cmd(Agent *a, char *line) {
        char arg[64] = "";
        int n = 0;

        a->out_len = 0;
        a->out[0] = 0;
        agent_drain(a);      /* notice a daemon that went away before acting */
        (void) sscanf(line, "%*s %63s %d", arg, &n);
        if (strncmp(line, "sync", 4) == 0) {
                if (agent_connect(a) >= 0) {
                        if (lu_client_incoming(a->c) && !a->states_stale) {
                                out(a, "incoming");
                                agent_reclaim(a);
                        }
                        agent_preserve(a);
                }
        } else if (strncmp(line, "hold", 4) == 0)
                a->hold = arg[0] == '-' ? 0 : arg[0];
        else if (strncmp(line, "veto", 4) == 0)
                a->veto = true;
        else if (strncmp(line, "noveto", 6) == 0)
                a->veto = false;
        else if (strncmp(line, "skipirq", 7) == 0)
                a->skip_irq = n != 0;
        else if (strncmp(line, "release", 7) == 0) {
                if (a->have_held && a->c)
                        (void) lu_client_ack(a->c, &a->held, true, NULL);
                a->have_held = false;
        } else if (strncmp(line, "mutate", 6) == 0) {
                for (int j = 0; j < a->vm.n_items; j++)
                        if (strcmp(a->vm.items[j].label, arg) == 0 && a->fd[j] >= 0) {
                                a->vm.items[j].gen = (uint32_t) n;
                                out(a, memfd_write_gen(a, &a->vm.items[j], a->fd[j]) < 0 ? "BAD write %s" : "mutated %s", arg);
                        }
        } else if (strncmp(line, "forget", 6) == 0) {
                /* a VMM that replaced a killed one may not have connected yet (no sync since) */
                int r = a->c || agent_connect(a) >= 0 ? lu_client_forget(a->c) : -ENOTCONN;
                if (r < 0)
                        out(a, "BAD forget: %s (%s)", strerror(-r), a->c ? lu_client_last_error(a->c) : "");
        } else if (strncmp(line, "quit", 4) == 0)
                _exit(0);
        agent_drain(a);
        out(a, "events prepare=%d freeze=%d resume=%d ready=%d eof=%d reason=%s connected=%d", a->n_prepare, a->n_freeze,
            a->n_resume, a->n_ready, a->n_eof, a->resume_reason[0] ? a->resume_reason : "-", a->c != NULL);
        (void) send(a->cmd, a->out, a->out_len, MSG_NOSIGNAL);
}

static void agent_main(Vm *vm, int cmd) {
        static Agent a;
        char line[256];

        a = (Agent) { .vm = *vm, .cmd = cmd, .session = -1 };
        for (int j = 0; j < MAX_ITEMS; j++)
                a.fd[j] = a.iommufd[j] = a.efd[j][0] = a.efd[j][1] = -1;
        signal(SIGPIPE, SIG_IGN);
        for (;;) {
                struct pollfd p[2] = { { .fd = cmd, .events = POLLIN }, { .fd = a.c ? lu_client_get_fd(a.c) : -1, .events = POLLIN } };
                ssize_t n;

                if (poll(p, 2, -1) < 0)
                        continue;
                if (p[1].revents)
                        agent_drain(&a);
                if (p[0].revents) {
                        n = recv(cmd, line, sizeof(line) - 1, 0);
                        if (n <= 0)
                                _exit(0);    /* the driver went away */
                        line[n] = 0;
                        agent_cmd(&a, line);
                }
        }
}

/* ---- the driver's side of an agent ----------------------------------------------------- */

static void agent_spawn(Vm *v) {
        int sp[2];
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                bail("socketpair: %m");
        pid = fork();
        if (pid < 0)
                bail("fork: %m");
        if (pid == 0) {
                /* Nothing of the driver's: an inherited control connection (a VMM replaced in the
                 * middle of an update inherits the pending prepare's) would keep it open in the
                 * daemon after the driver closed it, one fd over the baseline (SOAK_SEED=4000 SOAK_RUN=496). */
                if ((sp[1] > 3 && close_range(3, (unsigned) sp[1] - 1, 0) < 0) || close_range((unsigned) sp[1] + 1, ~0U, 0) < 0)
                        _exit(1);
                agent_main(v, sp[1]);
        }
        close(sp[1]);
        v->pid = pid;
        v->cmd = sp[0];
        v->told_prepare = 0;
        v->synced = 0;   /* an agent connects at its first sync */
}

typedef struct Events {
        int prepare, freeze, resume, connected;
        char reason[32];
} Events;

/* Send @cmd to VM @v's agent, wait for its report (NULL: the agent is gone). */
static const char *agent_call(Vm *v, const char *cmd, double timeout) {
        static char buf[8192];
        struct pollfd p = { .fd = v->cmd, .events = POLLIN };
        ssize_t n;

        if (v->cmd < 0 || send(v->cmd, cmd, strlen(cmd), MSG_NOSIGNAL) < 0)
                return NULL;
        if (poll(&p, 1, (int) (timeout * 1000)) <= 0) {
                CHECK(false, "VMM %s did not answer \"%s\" within %.0f s", v->id, cmd, timeout);
                return NULL;
        }
        n = recv(v->cmd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
                return NULL;
        buf[n] = 0;
        return buf;
}

static Events parse_events(const char *rep) {
        Events e = {};
        const char *l = rep ? strstr(rep, "events ") : NULL;
        int ready, eof;
        if (l)
                (void) sscanf(l, "events prepare=%d freeze=%d resume=%d ready=%d eof=%d reason=%31s connected=%d", &e.prepare,
                              &e.freeze, &e.resume, &ready, &eof, e.reason, &e.connected);
        return e;
}

static Item *vm_item(Vm *v, const char *label) {
        for (int j = 0; j < v->n_items; j++)
                if (strcmp(v->items[j].label, label) == 0)
                        return &v->items[j];
        return NULL;
}

/* Apply an agent's report to the model and check what it says. */
static void apply_report(Vm *v, const char *rep) {
        char line[512];
        const char *p = rep;
        bool session_fault_counted = false;

        while (p && *p) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t) (nl - p) : strlen(p);
                char label[64], what[32];
                int err = 0;
                unsigned u;
                Item *it;

                snprintf(line, sizeof(line), "%.*s", (int) len, p);
                p = nl ? nl + 1 : NULL;
                if (strncmp(line, "BAD", 3) == 0)
                        CHECK(false, "VMM %s: %s", v->id, line);
                else if (sscanf(line, "preserved %63s", label) == 1 && (it = vm_item(v, label)))
                        it->st = 'p';
                else if (sscanf(line, "pci %63s %19s", label, what) == 2 && (it = vm_item(v, label)))
                        snprintf(it->pci, sizeof(it->pci), "%.19s", what);
                else if (sscanf(line, "unbound-refused %63s", label) == 1 && (it = vm_item(v, label))) {
                        CHECK(!abi_v4, "VM %s: unbound device %s refused on the upstream ABI only", v->id, label);
                        it->bound = 1;
                        st.unbound_refused++;
                } else if (sscanf(line, "kerr %31s %63s %d", what, label, &err) == 3) {
                        if (strcmp(what, "finish") == 0)
                                (void) fault_explains("finish", EBUSY, v->id);
                        else {
                                char where[128];
                                snprintf(where, sizeof(where), "VM %s %s %s", v->id, strcmp(what, "session-get") ? "preserve" : "session", label);
                                (void) fault_explains(what, err, where);
                        }
                } else if (sscanf(line, "kerr session-get %d", &err) == 1) {
                        (void) fault_explains(fault_pending("create-session") ? "create-session" : "retrieve-session", err, v->id);
                } else if (sscanf(line, "failed-session %d", &err) == 1) {
                        bool ok = false;
                        for (int i = 0; i < n_faults && !ok; i++)
                                ok = strcmp(faults[i].what, "retrieve-session") == 0 && faults[i].err == err &&
                                     (faults[i].boot < 0 || faults[i].boot == adv_boot);
                        CHECK(ok, "VM %s: its delegated session failed with errno %d (%s): an injected retrieve fault explains it",
                              v->id, err, line);
                        if (ok)
                                (void) fault_explains("retrieve-session", err, v->id);
                        for (int j = 0; j < v->n_items; j++) {
                                v->items[j].gen++;
                                st.items_lost++;
                        }
                } else if (sscanf(line, "failed %63s %d", label, &err) == 2 && (it = vm_item(v, label)) &&
                           err == EINVAL && v->session_lost_boot == adv_boot + 1) {
                        /* docs/operations.md: the session the kernel failed to hand over was dropped
                         * when the VM was restored (closed, held by the kernel, EINVAL); a daemon
                         * restarted later in the boot offers its items again as failed, never
                         * their old contents. Already counted as lost. */
                        CHECK(true, "VM %s item %s, whose session failed earlier in this boot, offered again as failed (EINVAL), not with old contents",
                              v->id, label);
                } else if (sscanf(line, "failed %63s %d", label, &err) == 2 && (it = vm_item(v, label))) {
                        /* a retrieve the kernel failed: only with an injected retrieve fault of that errno */
                        bool ok = false;
                        for (int i = 0; i < n_faults && !ok; i++)
                                ok = (strcmp(faults[i].what, "retrieve-fd") == 0 || strcmp(faults[i].what, "retrieve-session") == 0) &&
                                     faults[i].err == err && (faults[i].boot < 0 || faults[i].boot == adv_boot);
                        CHECK(ok, "VM %s item %s failed with errno %d (%s): an injected retrieve fault explains it", v->id, label, err, line);
                        /* one failed RETRIEVE_SESSION fails every item of the session: counted once */
                        if (ok && (err == ENODEV || !session_fault_counted))
                                (void) fault_explains(err == ENODEV ? "retrieve-fd" : "retrieve-session", err, v->id);
                        session_fault_counted |= err != ENODEV;
                        /* The session is gone for this boot: its retrieve failed, or a device the
                         * kernel failed to hand over (ENODEV) made it unfinishable and `restored`
                         * closed it (docs/operations.md, "A failed VFIO device ..."). Either way a
                         * daemon restarted later in the boot is refused it (EINVAL) and offers its
                         * other items again as failed. */
                        if (ok && (err != ENODEV || it->kind == 'v'))
                                v->session_lost_boot = adv_boot + 1;
                        if (ok && err != ENODEV && it->kind == 'v' && it->dev >= 0)
                                dev_pinned[it->dev] = true;
                        if (it->kind == 'v' && abi_v4)
                                kernel_stuck = true;
                        it->gen++;          /* the guest's memory is gone: it starts a new one */
                        st.items_lost++;
                } else if (sscanf(line, "copied %63s %u", label, &u) == 2) {
                        st.memfds_copied++;
                        st.bytes_verified += u;
                } else if (sscanf(line, "verified %63s %u", label, &u) == 2) {
                        st.items_verified++;
                        st.bytes_verified += u;
                } else if (strncmp(line, "restored", 8) == 0) {
                        st.vms_updated++;
                        v->incoming = 0;
                        for (int j = 0; j < v->n_items; j++)
                                v->items[j].st = v->items[j].kind == 'v' ? 'x' : 'n';
                } else if (sscanf(line, "lost %63s", label) == 1) {
                        st.items_lost++;
                        if ((it = vm_item(v, label)))
                                it->st = 'n';
                } else if (strcmp(line, "delegated-session-replaced") == 0) {
                        st.items_lost += v->n_items;
                } else if (sscanf(line, "orphan %63s", label) == 1 && (it = vm_item(v, label)))
                        it->st = 'n';
        }
}

static void vm_sync(Vm *v) {
        const char *rep = agent_call(v, "sync", 60);
        if (!rep) {
                CHECK(false, "VMM %s gone during sync", v->id);
                return;
        }
        apply_report(v, rep);
        v->synced = parse_events(rep).connected;
}

static Events vm_events(Vm *v) {
        return parse_events(agent_call(v, "events", 20));
}

static void agent_kill(Vm *v, int sig) {
        kill(v->pid, sig);
        if (sig == SIGKILL) {
                (void) wait_pid(v->pid, 10);
                close(v->cmd);
                v->cmd = -1;
                v->pid = -1;
        }
}

/* ---- the crowd: many more VMM connections, one process --------------------------------- */

/*
 * SOAK_CROWD=N: N VMs ("crowd-<i>") that hold nothing, each on its own connection, all served
 * by one child process that acknowledges every prepare and freeze, and reconnects whatever the
 * daemon closed (a daemon restart). The soak's own VMs must update as if they were alone.
 */
static int crowd_n;
static pid_t crowd_pid = -1;

static int crowd_connect(int i) {
        char hello[128];
        json_object *r;
        int fd = connect_sock(vmm_sock);

        if (fd < 0)
                return fd;
        snprintf(hello, sizeof(hello), "{\"id\":1,\"method\":\"hello\",\"version\":1,\"vm\":\"crowd-%d\"}", i);
        r = request(fd, hello, NULL, 0, 10);
        if (!result_of(r)) {
                json_object_put(r);
                close(fd);
                return -EPROTO;
        }
        json_object_put(r);
        return fd;
}

static void crowd_main(int ready_fd) {
        static struct pollfd p[4096];
        int id = 100, n_up = 0;

        for (int i = 0; i < crowd_n; i++)
                p[i] = (struct pollfd) { .fd = -1, .events = POLLIN };
        for (;;) {
                /* (re)connect what is closed; say once when all are up */
                for (int i = 0; i < crowd_n; i++)
                        if (p[i].fd < 0 && (p[i].fd = crowd_connect(i)) < 0)
                                p[i].fd = -1;
                n_up = 0;
                for (int i = 0; i < crowd_n; i++)
                        n_up += p[i].fd >= 0;
                if (n_up == crowd_n && ready_fd >= 0) {
                        (void) write(ready_fd, "1", 1);
                        close(ready_fd);
                        ready_fd = -1;
                }
                if (poll(p, (nfds_t) crowd_n, n_up == crowd_n ? 1000 : 50) < 0)
                        continue;
                for (int i = 0; i < crowd_n; i++) {
                        json_object *o, *ev, *seq;
                        if (p[i].fd < 0 || !p[i].revents)
                                continue;
                        o = recv_any(p[i].fd, 0);
                        if (!o) {
                                close(p[i].fd);     /* EOF: the daemon went away */
                                p[i].fd = -1;
                                continue;
                        }
                        if (json_object_object_get_ex(o, "event", &ev) && json_object_object_get_ex(o, "seq", &seq) &&
                            (strcmp(json_object_get_string(ev), "prepare") == 0 || strcmp(json_object_get_string(ev), "freeze") == 0)) {
                                char ack[128];
                                snprintf(ack, sizeof(ack), "{\"id\":%d,\"method\":\"ack\",\"seq\":%" PRId64 ",\"ok\":true}", id++,
                                         json_object_get_int64(seq));
                                (void) send_str(p[i].fd, ack);
                        }
                        json_object_put(o);
                }
        }
}

static void crowd_start(void) {
        int pp[2];
        char c;

        if (crowd_n <= 0)
                return;
        if (pipe2(pp, O_CLOEXEC) < 0)
                bail("pipe: %m");
        crowd_pid = fork();
        if (crowd_pid < 0)
                bail("fork: %m");
        if (crowd_pid == 0) {
                close(pp[0]);
                if (ctl_fd >= 0)
                        close(ctl_fd);
                for (int i = 0; i < n_vms; i++)
                        if (vms[i].cmd >= 0)
                                close(vms[i].cmd);
                crowd_main(pp[1]);
        }
        close(pp[1]);
        {
                struct pollfd p = { .fd = pp[0], .events = POLLIN };
                if (poll(&p, 1, 120000) <= 0 || read(pp[0], &c, 1) != 1)
                        bail("the crowd of %d VMM connections did not connect", crowd_n);
        }
        close(pp[0]);
        say("%d more VMM connections are up (the crowd, one process)", crowd_n);
}

/* The daemon counts @want VMM connections (the crowd reconnects after a daemon restart). */
static void wait_connected(int want) {
        json_object *r = NULL, *c;
        int n = -1;
        for (double end = now_s() + 60; now_s() < end; usleep(20000)) {
                json_object_put(r);
                r = ctl("{\"id\":3,\"method\":\"status\"}", 5);
                n = json_object_object_get_ex(result_of(r), "connected", &c) ? json_object_get_int(c) : -1;
                if (n == want)
                        break;
        }
        json_object_put(r);
        CHECK(n == want, "the daemon counts %d VMM connections (%d)", want, n);
}

/* ---- the checker --------------------------------------------------------------------- */

static long daemon_rss_kb(void) {
        char p[64], line[256];
        long kb = -1;
        FILE *f;

        snprintf(p, sizeof(p), "/proc/%d/status", (int) (daemon_fds_pid > 0 ? daemon_fds_pid : daemon_pid));
        f = fopen(p, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld", &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

static json_object *list_vm(json_object *list, const char *id) {
        json_object *a, *o, *x;
        if (!json_object_object_get_ex(result_of(list), "vms", &a))
                return NULL;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                o = json_object_array_get_idx(a, i);
                if (json_object_object_get_ex(o, "id", &x) && strcmp(json_object_get_string(x), id) == 0)
                        return o;
        }
        return NULL;
}

/*
 * Idle, nothing in flight: the daemon's view equals the model. Every VM with preserved items
 * is listed with exactly those labels, each `preserved`; the fds are the fresh daemon's plus
 * one per VMM connection, session and item; state idle; RSS bounded.
 */
static void check_idle(const char *what) {
        json_object *r = ctl("{\"id\":40,\"method\":\"list\"}", 10);
        int n_sessions = 0, n_items = 0, n_conn = 0, bad = 0;
        const char *state = status_state();

        CHECK(strcmp(state, "idle") == 0, "%s: state idle (%s)", what, state);
        if (!result_of(r)) {
                CHECK(false, "%s: operator list answered (%s)", what, r ? json_object_to_json_string(r) : "no reply");
                json_object_put(r);
                return;
        }
        for (int i = 0; i < n_vms; i++) {
                Vm *v = &vms[i];
                json_object *lv = list_vm(r, v->id), *sessions, *conn;
                /* A VMM that replaced a killed one (C_KILL_HOLDER) connects at its first sync: until
                 * then, after an update that did not kexec (failed reboot or prepare), it is not connected. */
                bool vmm_connected = v->cmd >= 0 && v->synced;
                int want = 0, have = 0;

                n_conn += vmm_connected;
                for (int j = 0; j < v->n_items; j++)
                        want += v->items[j].st == 'p';
                if (!lv) {
                        if (want > 0 || v->delegated) {
                                CHECK(false, "%s: VM %s (%d items preserved) missing from the operator list", what, v->id, want);
                                bad++;
                        }
                        continue;
                }
                if (json_object_object_get_ex(lv, "connected", &conn) && json_object_get_boolean(conn) != vmm_connected) {
                        CHECK(false, "%s: VM %s connected=%d, its VMM is %s", what, v->id, json_object_get_boolean(conn),
                              vmm_connected ? "connected" : v->cmd >= 0 ? "running, not yet connected" : "gone");
                        bad++;
                }
                if (!json_object_object_get_ex(lv, "sessions", &sessions))
                        continue;
                for (size_t k = 0; k < json_object_array_length(sessions); k++) {
                        json_object *se = json_object_array_get_idx(sessions, k), *items, *del;
                        n_sessions++;
                        if (json_object_object_get_ex(se, "delegated", &del) && json_object_get_boolean(del))
                                continue;
                        if (!json_object_object_get_ex(se, "items", &items))
                                continue;
                        for (size_t m = 0; m < json_object_array_length(items); m++) {
                                json_object *io = json_object_array_get_idx(items, m), *l, *ist;
                                const char *label = json_object_object_get_ex(io, "label", &l) ? json_object_get_string(l) : "?";
                                const char *istate = json_object_object_get_ex(io, "state", &ist) ? json_object_get_string(ist) : "?";
                                Item *it = vm_item(v, label);
                                n_items++;
                                have++;
                                if (!it || it->st != 'p' || strcmp(istate, "preserved") != 0) {
                                        CHECK(false, "%s: VM %s item %s is %s in the daemon, %s in the model", what, v->id, label,
                                              istate, it ? (it->st == 'p' ? "preserved" : "not preserved") : "unknown");
                                        bad++;
                                }
                        }
                }
                if (!v->delegated && have != want) {
                        CHECK(false, "%s: VM %s holds %d items in the daemon, %d in the model", what, v->id, have, want);
                        bad++;
                }
        }
        json_object_put(r);
        if (!bad)
                say("ok: %s: the daemon holds what the model says (%d VMs, %d sessions, %d items, %d VMMs connected)", what, n_vms,
                    n_sessions, n_items, n_conn);
        if (crowd_n > 0) {
                wait_connected(n_conn + crowd_n);
                n_conn += crowd_n;
        }
        if (fresh_fds >= 0) {
                char w[200];
                snprintf(w, sizeof(w), "%s: fds of a fresh daemon + connections + sessions + items", what);
                if (!expect_fds(fresh_fds + n_conn + n_sessions + n_items, w)) {
                        json_object *l = ctl("{\"id\":41,\"method\":\"list\"}", 10);
                        say("  operator list: %s", l ? json_object_to_json_string(l) : "none");
                        json_object_put(l);
                }
        }
        if (fresh_rss_kb > 0) {
                long rss = daemon_rss_kb();
#if defined(__SANITIZE_ADDRESS__)
                /* ASan's quarantine keeps freed memory by design: only the plain build bounds RSS */
                say("%s: daemon RSS %ld KiB (fresh %ld KiB; not bounded under ASan)", what, rss, fresh_rss_kb);
#else
                /* malloc keeps freed memory: bounded, not equal (64 VMs' worth is well under this) */
                CHECK(rss > 0 && rss < fresh_rss_kb + 32 * 1024, "%s: daemon RSS %ld KiB (fresh %ld KiB)", what, rss, fresh_rss_kb);
#endif
        }
}

/* ---- the daemon ---------------------------------------------------------------------- */

/* Start the daemon; an injected open fault makes it run without LUO: restart it once the device opens. */
static void soak_daemon_start(void) {
        json_object *r, *abi;
        daemon_start();
        r = ctl("{\"id\":2,\"method\":\"status\"}", 5);
        if (json_object_object_get_ex(result_of(r), "abi", &abi) && strcmp(json_object_get_string(abi), "none") == 0) {
                (void) fault_explains("open", EIO, "the daemon's open of /dev/liveupdate");
                kill(daemon_pid, SIGTERM);
                CHECK(wait_pid(daemon_pid, 30) == 0, "a daemon without LUO exits 0 on SIGTERM");
                if (use_store)
                        unlink(fake_log);   /* the new fake-systemd's START lines, not the old ones */
                daemon_start();
        }
        json_object_put(r);
}

/* SIGKILL the daemon; fake-systemd restarts it with its fd store, or the driver starts it anew. */
static void daemon_kill_restart(void) {
        st.daemon_kills++;
        if (use_store) {
                st.daemon_kills_store++;
                kill(daemon_fds_pid, SIGKILL);
                wait_daemon_up(++generation);
        } else {
                kill(daemon_pid, SIGKILL);
                CHECK(wait_pid(daemon_pid, 10) == 128 + SIGKILL, "daemon killed");
                soak_daemon_start();
        }
}

/* ---- the world between updates --------------------------------------------------------- */

static void vm_new(void) {
        Vm *v = &vms[n_vms];
        int n_mem = soak_range(&rng, 1, 4), n_dev = 0;

        *v = (Vm) { .cmd = -1, .pid = -1 };
        snprintf(v->id, sizeof(v->id), "vm-%d", next_vm_id++);
        v->delegated = soak_chance(&rng, 20);
        for (int j = 0; j < n_mem; j++) {
                Item *it = &v->items[v->n_items++];
                *it = (Item) { .kind = 'm', .st = 'n', .dev = -1 };
                snprintf(it->label, sizeof(it->label), "m%d", j);
                it->size = (uint32_t) (soak_chance(&rng, 80) ? soak_range(&rng, 1, 16) : soak_range(&rng, 17, 64)) * 4096;
        }
        if (!v->delegated)
                for (int d = 0; d < n_vfio && n_dev < 2; d++)
                        if (!dev_owner[d] && !dev_pinned[d] && soak_chance(&rng, 25)) {
                                Item *it = &v->items[v->n_items++];
                                *it = (Item) { .kind = 'v', .st = 'n', .dev = d, .bound = soak_chance(&rng, 70) };
                                snprintf(it->label, sizeof(it->label), "d%d", n_dev++);
                                dev_owner[d] = n_vms + 1;
                        }
        n_vms++;
        st.joins++;
        agent_spawn(v);
        if (soak_chance(&rng, 30))
                (void) agent_call(v, "skipirq 1", 10);
}

static void vm_remove(int i) {
        Vm *v = &vms[i];
        const char *rep = agent_call(v, "forget", 20);
        if (rep)
                apply_report(v, rep);
        (void) agent_call(v, "quit", 5);
        (void) wait_pid(v->pid, 10);
        close(v->cmd);
        for (int j = 0; j < v->n_items; j++)
                if (v->items[j].kind == 'v')
                        dev_owner[v->items[j].dev] = 0;
        st.leaves++;
        vms[i] = vms[--n_vms];
        for (int d = 0; d < MAX_DEVS; d++)
                if (dev_owner[d] == n_vms + 1)
                        dev_owner[d] = i + 1;
}

/* VMs leave and join towards a size drawn for this cycle; guests rewrite memory; all hand over. */
static void churn(void) {
        int target = soak_chance(&rng, 85) ? soak_range(&rng, 1, max_vms < 8 ? max_vms : 8) : soak_range(&rng, 1, max_vms);

        STEP("churn towards %d VMs (now %d)", target, n_vms);
        for (int i = n_vms - 1; i >= 0; i--)
                if (n_vms > target || vms[i].orphan || soak_chance(&rng, 10))
                        vm_remove(i);
        while (n_vms < target)
                vm_new();
        for (int i = 0; i < n_vms; i++) {
                Vm *v = &vms[i];
                vm_sync(v);
                for (int j = 0; j < v->n_items; j++)
                        if (v->items[j].kind == 'm' && soak_chance(&rng, 20)) {
                                char c[64];
                                snprintf(c, sizeof(c), "mutate %s %u", v->items[j].label, v->items[j].gen + 1);
                                const char *rep = agent_call(v, c, 10);
                                if (rep && strstr(rep, "mutated")) {
                                        v->items[j].gen++;
                                        st.mutations++;
                                }
                        }
        }
}

/* ---- update cycles ------------------------------------------------------------------- */

static int ctl_async(const char *json) {
        int fd = connect_sock(ctl_sock);
        if (fd < 0)
                bail("control socket: %s", strerror(-fd));
        if (send_str(fd, json) < 0)
                bail("send %s", json);
        return fd;
}

static int prepare_async(int timeout_ms) {
        char kernel[300], req[600];
        write_kernel(kernel, sizeof(kernel));
        snprintf(req, sizeof(req), "{\"id\":10,\"method\":\"prepare\",\"kernel\":\"%s\",\"timeout_ms\":%d}", kernel, timeout_ms);
        return ctl_async(req);
}

static bool wait_state(const char *want, double timeout) {
        for (double end = now_s() + timeout; now_s() < end; usleep(5000))
                if (strcmp(status_state(), want) == 0)
                        return true;
        return false;
}

static int custodian_items_preserved(void) {
        int n = 0;
        for (int i = 0; i < n_vms; i++)
                for (int j = 0; j < vms[i].n_items; j++)
                        n += vms[i].items[j].st == 'p';
        return n;
}

/* After an abandoned update: every VMM that was told prepare is told resume (@reason), and no other. */
static void check_resumed(const Events *before, const char *reason, const char *what) {
        for (int i = 0; i < n_vms; i++) {
                Vm *v = &vms[i];
                Events e = {};
                if (v->cmd < 0)
                        continue;
                for (double end = now_s() + 10; now_s() < end; usleep(20000)) {
                        e = vm_events(v);
                        if (!v->told_prepare || e.resume > before[i].resume)
                                break;
                }
                if (v->told_prepare)
                        CHECK(e.resume == before[i].resume + 1 && (!reason || strcmp(e.reason, reason) == 0),
                              "%s: VMM %s told resume once (%d -> %d, reason %s)", what, v->id, before[i].resume, e.resume, e.reason);
                else
                        CHECK(e.resume == before[i].resume, "%s: VMM %s, not in the update, not told resume", what, v->id);
                v->told_prepare = 0;
        }
}

enum { C_PLAIN, C_VETO, C_CANCEL_PREPARING, C_CANCEL_PREPARED, C_CANCEL_FREEZING, C_STOP_PREPARE, C_KILL_HOLDER,
       C_DAEMON_IDLE, C_DAEMON_PREPARING, C_DAEMON_PREPARED, C_DAEMON_FREEZING, _C_MAX };
static const char *const cycle_names[] = { "plain", "veto", "cancel-preparing", "cancel-prepared", "cancel-freezing",
                                           "vmm-stopped-past-deadline", "vmm-killed-holding-ack", "daemon-kill-idle",
                                           "daemon-kill-preparing", "daemon-kill-prepared", "daemon-kill-freezing" };

static int draw_cycle(void) {
        static const int weight[_C_MAX] = { 40, 6, 5, 5, 5, 3, 6, 6, 6, 6, 6 };
        int total = 0, x;
        for (int i = 0; i < _C_MAX; i++)
                total += weight[i];
        x = soak_range(&rng, 0, total - 1);
        for (int i = 0; i < _C_MAX; i++)
                if ((x -= weight[i]) < 0)
                        return i;
        return C_PLAIN;
}

/* A VM whose VMM runs, at random; -1 if none. */
static int pick_vm(void) {
        int n = 0, k;
        for (int i = 0; i < n_vms; i++)
                n += vms[i].cmd >= 0;
        if (n == 0)
                return -1;
        k = soak_range(&rng, 0, n - 1);
        for (int i = 0; i < n_vms; i++)
                if (vms[i].cmd >= 0 && k-- == 0)
                        return i;
        return -1;
}

static void snapshot_events(Events *e) {
        for (int i = 0; i < n_vms; i++)
                e[i] = vms[i].cmd >= 0 ? vm_events(&vms[i]) : (Events) {};
}

static void mark_told_prepare(void) {
        for (int i = 0; i < n_vms; i++)
                vms[i].told_prepare = vms[i].cmd >= 0;
}

/* The VMM of @i died: the daemon's copies are all that is left of its items; a new VMM takes the VM. */
static void vmm_replace(int i) {
        Vm *v = &vms[i];
        agent_kill(v, SIGKILL);
        st.vmm_kills++;
        v->orphan = 1;
        agent_spawn(v);
}

static void after_daemon_kill(Events *before, const char *what) {
        /* every VMM reconnects; with the fd store nothing is lost, without it the VMMs hand over again */
        for (int i = 0; i < n_vms; i++)
                vm_sync(&vms[i]);
        check_resumed(before, "failed", what);
        CHECK(system("test \"$(cat /sys/kernel/kexec_loaded)\" = 0") == 0, "%s: no kernel image left loaded", what);
}

/* prepare answered @r: ok, or an error an injected fault explains (the update is then failed). */
static bool prepare_ok(json_object *r, const char *what) {
        json_object *e, *en;
        if (result_of(r))
                return true;
        if (err_code(r) && strcmp(err_code(r), "kernel-error") == 0 && json_object_object_get_ex(r, "error", &e) &&
            json_object_object_get_ex(e, "errno", &en)) {
                const char *msg = json_object_get_string(json_object_object_get(e, "message"));
                (void) fault_explains(strstr(msg, "CREATE_SESSION") ? "create-session" : "preserve", json_object_get_int(en), "prepare");
                return false;
        }
        if (kernel_stuck && err_code(r) && strcmp(err_code(r), "precondition-failed") == 0) {
                say("prepare refused while the v4 kernel keeps an unfinishable session (documented): %s",
                    json_object_to_json_string(r));
                return false;
        }
        CHECK(false, "%s: prepare answered %s", what, r ? json_object_to_json_string(r) : "nothing");
        return false;
}

/* One update cycle. Returns true if the machine is about to kexec (never returns then). */
static void cycle(void) {
        Events before[MAX_VMS];
        int kind = draw_cycle(), h = -1, c;
        json_object *r;

        if (kind != C_PLAIN && kind != C_VETO && kind != C_DAEMON_IDLE && kind != C_DAEMON_PREPARED &&
            kind != C_CANCEL_PREPARED && (h = pick_vm()) < 0)
                kind = C_PLAIN;
        if (kind == C_VETO && (h = pick_vm()) < 0)
                kind = C_PLAIN;
        st.cycles++;
        STEP("cycle %ld: %s%s%s", st.cycles, cycle_names[kind], h >= 0 ? " with " : "", h >= 0 ? vms[h].id : "");
        check_idle("before the update");
        snapshot_events(before);

        if (kind == C_DAEMON_IDLE) {
                STEP("SIGKILL the daemon while idle (%s)", use_store ? "fd store" : "no fd store");
                daemon_kill_restart();
                after_daemon_kill(before, "daemon killed while idle");
                check_idle("after the daemon restart");
                return;
        }
        if (kind == C_VETO)
                (void) agent_call(&vms[h], "veto", 10);
        if (kind == C_CANCEL_PREPARING || kind == C_DAEMON_PREPARING || kind == C_KILL_HOLDER)
                (void) agent_call(&vms[h], "hold p", 10);
        if (kind == C_CANCEL_FREEZING || kind == C_DAEMON_FREEZING)
                (void) agent_call(&vms[h], "hold f", 10);
        if (kind == C_STOP_PREPARE) {
                kill(vms[h].pid, SIGSTOP);
                st.vmm_stops++;
        }

        STEP("prepare");
        /* every control connection gets the update's progress events (two per VM): one that is
         * not read meanwhile would pass the unread limit with a crowd and be disconnected */
        if (ctl_fd >= 0)
                close(ctl_fd);
        ctl_fd = -1;
        c = prepare_async(kind == C_STOP_PREPARE ? 1500 : 20000);
        mark_told_prepare();
        if (kind == C_CANCEL_PREPARING || kind == C_DAEMON_PREPARING || kind == C_KILL_HOLDER) {
                if (!wait_state("preparing", 10) || (h >= 0 && vms[h].cmd >= 0 && vm_events(&vms[h]).prepare <= before[h].prepare)) {
                        /* an injected fault may fail prepare before any VMM was asked */
                        r = recv_reply(c, 1, NULL);
                        if (r && !result_of(r) && !prepare_ok(r, cycle_names[kind])) {
                                json_object_put(r);
                                close(c);
                                (void) agent_call(&vms[h], "hold -", 10);
                                check_resumed(before, NULL, "failed prepare");
                                check_idle("after the failed prepare");
                                return;
                        }
                        json_object_put(r);
                        CHECK(false, "preparing while %s holds its ack", vms[h].id);
                }
                usleep(soak_range(&rng, 0, 20) * 1000);
                if (kind == C_CANCEL_PREPARING) {
                        STEP("cancel in preparing");
                        r = ctl("{\"id\":31,\"method\":\"cancel\"}", 10);
                        CHECK(result_of(r) != NULL, "cancel in preparing accepted");
                        json_object_put(r);
                        r = recv_reply(c, 10, NULL);
                        CHECK(err_code(r) && strcmp(err_code(r), "cancelled") == 0, "pending prepare answered cancelled (%s)",
                              r ? json_object_to_json_string(r) : "nothing");
                        json_object_put(r);
                        close(c);
                        (void) agent_call(&vms[h], "release", 10);
                        st.cancels++;
                        check_resumed(before, "cancelled", "cancel in preparing");
                        check_idle("after the cancel");
                        return;
                }
                if (kind == C_DAEMON_PREPARING) {
                        STEP("SIGKILL the daemon in preparing");
                        close(c);
                        daemon_kill_restart();
                        after_daemon_kill(before, "daemon killed in preparing");
                        check_idle("after the daemon restart");
                        return;
                }
                /* C_KILL_HOLDER: a VMM that dies holding its ack no longer counts; the update goes on */
                STEP("SIGKILL VMM %s holding its prepare ack", vms[h].id);
                vmm_replace(h);
                vms[h].told_prepare = 0;
                before[h] = (Events) {};
        }
        r = recv_reply(c, 30, NULL);
        if (kind == C_STOP_PREPARE && err_code(r) && strcmp(err_code(r), "kernel-error") == 0) {
                (void) prepare_ok(r, cycle_names[kind]);   /* a fault failed it before the deadline */
                json_object_put(r);
                close(c);
                kill(vms[h].pid, SIGCONT);
                check_resumed(before, NULL, "failed prepare");
                check_idle("after the failed prepare");
                return;
        }
        if (kind == C_STOP_PREPARE) {
                CHECK(err_code(r) && strcmp(err_code(r), "timeout") == 0, "prepare with VMM %s stopped: timeout (%s)", vms[h].id,
                      r ? json_object_to_json_string(r) : "nothing");
                json_object_put(r);
                close(c);
                kill(vms[h].pid, SIGCONT);
                st.timeouts++;
                check_resumed(before, "failed", "prepare timeout");
                check_idle("after the prepare timeout");
                return;
        }
        if (kind == C_VETO && err_code(r) && strcmp(err_code(r), "kernel-error") == 0) {
                /* an injected fault failed prepare before the VMM could veto */
                (void) prepare_ok(r, cycle_names[kind]);
                json_object_put(r);
                close(c);
                (void) agent_call(&vms[h], "noveto", 10);
                check_resumed(before, NULL, "failed prepare");
                check_idle("after the failed prepare");
                return;
        }
        if (kind == C_VETO) {
                CHECK(r && strstr(json_object_to_json_string(r), "soak veto") && !result_of(r), "prepare vetoed by %s names the veto (%s)",
                      vms[h].id, r ? json_object_to_json_string(r) : "nothing");
                json_object_put(r);
                close(c);
                st.vetoes++;
                check_resumed(before, "failed", "veto");
                check_idle("after the veto");
                return;
        }
        if (!prepare_ok(r, cycle_names[kind])) {
                json_object_put(r);
                close(c);
                if (kind == C_CANCEL_FREEZING || kind == C_DAEMON_FREEZING)
                        (void) agent_call(&vms[h], "hold -", 10);
                check_resumed(before, NULL, "failed prepare");
                check_idle("after the failed prepare");
                return;
        }
        json_object_put(r);
        STEP("prepared");
        if (kind == C_CANCEL_PREPARED) {
                STEP("cancel in prepared");
                r = ctl("{\"id\":32,\"method\":\"cancel\"}", 10);
                CHECK(result_of(r) != NULL, "cancel in prepared accepted");
                json_object_put(r);
                close(c);
                st.cancels++;
                check_resumed(before, "cancelled", "cancel in prepared");
                check_idle("after the cancel");
                return;
        }
        if (kind == C_DAEMON_PREPARED) {
                STEP("SIGKILL the daemon in prepared");
                close(c);
                daemon_kill_restart();
                after_daemon_kill(before, "daemon killed in prepared");
                check_idle("after the daemon restart");
                return;
        }
        /* commit: the model first says what must come across */
        for (int i = 0; i < n_vms; i++) {
                int any = 0;
                for (int j = 0; j < vms[i].n_items; j++)
                        any |= vms[i].items[j].st == 'p';
                vms[i].incoming = any;
        }
        st.kexecs++;
        model_save();
        STEP("commit (%d items preserved)", custodian_items_preserved());
        if (send_str(c, "{\"id\":11,\"method\":\"commit\",\"timeout_ms\":20000}") < 0)
                bail("send commit");
        if (kind == C_CANCEL_FREEZING || kind == C_DAEMON_FREEZING) {
                if (!wait_state("freezing", 10))
                        CHECK(false, "freezing while %s holds its freeze ack", vms[h].id);
                if (kind == C_CANCEL_FREEZING) {
                        STEP("cancel in freezing");
                        r = ctl("{\"id\":34,\"method\":\"cancel\"}", 10);
                        CHECK(result_of(r) != NULL, "cancel in freezing accepted");
                        json_object_put(r);
                        r = recv_reply(c, 10, NULL);
                        CHECK(err_code(r) && strcmp(err_code(r), "cancelled") == 0, "pending commit answered cancelled");
                        json_object_put(r);
                        close(c);
                        (void) agent_call(&vms[h], "release", 10);
                        st.cancels++;
                        st.kexecs--;
                        check_resumed(before, "cancelled", "cancel in freezing");
                        check_idle("after the cancel");
                        return;
                }
                STEP("SIGKILL the daemon in freezing");
                close(c);
                st.kexecs--;
                daemon_kill_restart();
                after_daemon_kill(before, "daemon killed in freezing");
                check_idle("after the daemon restart");
                return;
        }
        /* the machine reboots now, unless the kernel refuses the freeze */
        r = recv_reply(c, 30, NULL);
        close(c);
        {
                json_object *e, *en;
                if (err_code(r) && strcmp(err_code(r), "kernel-error") == 0 && json_object_object_get_ex(r, "error", &e) &&
                    json_object_object_get_ex(e, "errno", &en)) {
                        STEP("the reboot failed: %s", json_object_to_json_string(r));
                        (void) fault_explains("freeze", json_object_get_int(en), "reboot(LINUX_REBOOT_CMD_KEXEC)");
                        st.failed_reboots++;
                        st.kexecs--;
                        for (int i = 0; i < n_vms; i++)
                                vms[i].incoming = 0;
                        json_object_put(r);
                        check_resumed(before, "failed", "failed reboot");
                        check_idle("after the failed reboot");
                        return;
                }
        }
        bail("commit returned instead of rebooting: %s", r ? json_object_to_json_string(r) : "no reply (timeout)");
}

/* ---- a boot -------------------------------------------------------------------------- */

static void boot_restore(void) {
        int n_incoming = 0, kill_at = -1;

        for (int i = 0; i < n_vms; i++) {
                vms[i].cmd = -1;
                vms[i].orphan = 0;    /* a new boot: every VMM is new anyway */
                n_incoming += vms[i].incoming;
        }
        STEP("restore after the kexec: %d VMs incoming", n_incoming);
        {
                const char *s = status_state();
                CHECK(strcmp(s, n_incoming ? "restoring" : "idle") == 0, "daemon %s after the kexec (%s)",
                      n_incoming ? "restoring" : "idle", s);
        }
        /* with the fd store the daemon may die during the restore: it adopts what it held */
        if (use_store && n_vms > 0 && soak_chance(&rng, 15))
                kill_at = soak_range(&rng, 0, n_vms - 1);
        for (int i = 0; i < n_vms; i++) {
                if (i == kill_at) {
                        STEP("SIGKILL the daemon during the restore (%d of %d VMs back)", i, n_vms);
                        daemon_kill_restart();
                }
                agent_spawn(&vms[i]);
                vm_sync(&vms[i]);
                CHECK(!vms[i].incoming, "VM %s reclaimed, compared and restored", vms[i].id);
        }
        if (kill_at >= 0)
                for (int i = 0; i < kill_at; i++)
                        vm_sync(&vms[i]);    /* the VMMs back before the kill reconnect */
        if (!wait_state("idle", 20))
                CHECK(false, "daemon back to idle after the restore (%s)", status_state());
        if (n_incoming) {
                json_object *r = ctl("{\"id\":20,\"method\":\"timeline\"}", 5), *t = json_object_object_get(result_of(r), "timeline"), *v;
                const char *res = t && json_object_object_get_ex(t, "result", &v) ? json_object_get_string(v) : "none";
                CHECK(strcmp(res, "done") == 0, "timeline of the update: done (%s)", res);
                json_object_put(r);
        }
        check_idle("after the restore");
}

static void run_end(void) {
        STEP("end of run: every VM leaves");
        if (crowd_pid > 0) {
                kill(crowd_pid, SIGKILL);
                (void) wait_pid(crowd_pid, 10);
                crowd_pid = -1;
        }
        while (n_vms > 0)
                vm_remove(n_vms - 1);
        (void) status_state();
        expect_fds(fresh_fds, "every VM gone: the fds of a fresh daemon");
        model_save();
}

int main(int argc, char **argv) {
        const char *b = getenv("LUO_EMU_BOOT");
        struct rlimit rl = { 65536, 65536 };

        setvbuf(stdout, NULL, _IOLBF, 0);
        /* fds the test harness leaked to us would reach the first daemon but not the ones
         * fake-systemd restarts, and make their fd baselines differ */
        (void) close_range(3, ~0U, 0);
        if (argc != 3) {
                fprintf(stderr, "usage: soak-driver LU_VFIOD FAKE_SYSTEMD (under luo-emu, environment from soak-runner)\n");
                return 2;
        }
        adv_prefix = "soak";
        fds_skip_timerfd = true;
        daemon_bin = argv[1];
        fake_bin = argv[2];
        fake_max_restarts = 1000;
        work_dir = getenv("E2E_DIR");
        if (!b || !work_dir || !getenv("SOAK_SEED"))
                bail("run under luo-emu by soak-runner (E2E_DIR, SOAK_SEED, ... set)");
        adv_boot = atoi(b);
        seed = strtoull(getenv("SOAK_SEED"), NULL, 0);
        run_no = atoi(getenv("SOAK_RUN") ?: "0");
        cycles_wanted = atoi(getenv("SOAK_CYCLES") ?: "10");
        n_vfio = atoi(getenv("SOAK_VFIO") ?: "0");
        max_vms = atoi(getenv("SOAK_MAX_VMS") ?: "64");
        crowd_n = atoi(getenv("SOAK_CROWD") ?: "0");
        if (crowd_n < 0 || crowd_n > 4000)
                bail("SOAK_CROWD: 0-4000");
        if (max_vms < 1 || max_vms > MAX_VMS)
                max_vms = MAX_VMS;
        if (n_vfio > MAX_DEVS)
                n_vfio = MAX_DEVS;
        abi_v4 = strcmp(getenv("SOAK_ABI") ?: "upstream", "v4") == 0;
        use_store = strcmp(getenv("SOAK_STORE") ?: "0", "1") == 0;
        faults_parse(getenv("SOAK_FAILS"));
        {
                static char name[64];
                snprintf(name, sizeof(name), "seed %" PRIu64 " run %d", seed, run_no);
                adv_name = name;
        }
        rng = soak_rng(seed, (uint64_t) run_no, (uint64_t) adv_boot);
        (void) setrlimit(RLIMIT_NOFILE, &rl);
        snprintf(vmm_sock, sizeof(vmm_sock), "%s/vmm.sock", work_dir);
        snprintf(ctl_sock, sizeof(ctl_sock), "%s/control.sock", work_dir);
        snprintf(state_dir, sizeof(state_dir), "%s/state", work_dir);
        snprintf(conf_path, sizeof(conf_path), "%s/lu-vfiod.conf", work_dir);
        signal(SIGPIPE, SIG_IGN);
        if (!getenv("LU_VFIOD_LOG_LEVEL"))
                setenv("LU_VFIOD_LOG_LEVEL", "warning", 1);
        if (adv_boot == 0) {
                char cmd[600];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", work_dir, work_dir);
                if (system(cmd) != 0)
                        bail("cannot create %s", work_dir);
                write_text(conf_path,
                           "[Service]\nDBus=no\n"
                           "[Limits]\nMaxConnections=8192\nMaxConnectionsPerUser=8192\nMaxVMs=8192\n"
                           "[Update]\nPrepareTimeoutSec=20\nFreezeTimeoutSec=20\n"
                           "[Restore]\nBindTimeoutSec=10\n");
                say("abi %s, %d VFIO devices, %s, faults: %s", abi_v4 ? "v4" : "upstream", n_vfio,
                    use_store ? "fd store" : "no fd store", getenv("SOAK_FAILS") ?: "none");
        } else
                model_load();
        soak_daemon_start();
        if (adv_boot == 0) {
                (void) status_state();
                fresh_fds = count_open_fds_settled();
                fresh_rss_kb = daemon_rss_kb();
                say("a fresh daemon holds %d fds, RSS %ld KiB", fresh_fds, fresh_rss_kb);
                if (getenv("SOAK_SHOW_FDS"))
                        say_open_fds();
                crowd_start();
        } else {
                crowd_start();
                boot_restore();
        }
        while (st.cycles < cycles_wanted && !kernel_stuck && failures == 0) {
                churn();
                model_save();
                if (failures)
                        break;
                cycle();
                model_save();
        }
        if (failures == 0)
                run_end();
        for (int i = 0; i < n_vms; i++)
                if (vms[i].pid > 0)
                        kill(vms[i].pid, SIGKILL);
        if (crowd_pid > 0)
                kill(crowd_pid, SIGKILL);
        if (failures)
                say("FAILED at step %ld: replay with SOAK_SEED=%" PRIu64 " SOAK_RUN=%d", step, seed, run_no);
        return finish_run();
}
