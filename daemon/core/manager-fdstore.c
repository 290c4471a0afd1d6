/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Registry fds <-> the service manager's fd store; see manager-fdstore.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hash.h"
#include "core/manager-fdstore.h"
#include "core/progress.h"
#include "system/log.h"

typedef struct Pushed {
        char name[FDSTORE_NAME_MAX + 1];
        uint64_t hash;
        int fd;              /* the daemon's fd number when pushed: a change means a new file */
        bool seen;
        bool failed;         /* the push of this fd failed: not retried (nor logged) until it changes */
} Pushed;

struct FdStoreMirror {
        Manager *m;
        sd_event_source *post;
        Pushed *pushed;
        size_t n_pushed, n_alloc;
        /* Open-addressing index over pushed[] by name (slot = index + 1, 0 empty): a sync looks
         * up every session and item, and a linear search made it quadratic (1280 fds at 256 VMs,
         * after every dispatch that changed the registry). */
        uint32_t *slots;
        size_t n_slots;              /* a power of two, at least twice n_pushed + n_tombs */
        size_t n_tombs;              /* slots of removed entries (SLOT_TOMB): a probe goes past them */
        uint64_t generation;
        bool synced;
        bool synced_handoff;         /* the last sync's handoff (see fdstore_mirror_sync()) */
        bool include_state;
        bool subscribed;
};

bool manager_fdstore_adopt_session(Manager *m, ListenFds *l, RegVm *vm, RegSession *s) {
        char name[FDSTORE_NAME_MAX + 1];
        size_t with_fd = 0;
        int fd;

        if (s->fd >= 0 || fdstore_name_session(s->name, name, sizeof(name)) < 0)
                return false;
        fd = listen_fds_pop(l, name);
        if (fd < 0)
                return false;
        /* An fd store entry is only a name: where the kernel can say, check it is that session. */
        {
                char got[LUO_NAME_MAX + 1];
                int r = luo_session_get_name(m->luo, fd, got);
                if (r == 0 && strcmp(got, s->name) != 0) {
                        log_full(LOG_WARNING, 0, vm->id, s->name, NULL,
                                 "fd store entry %s is session \"%s\", not \"%s\": not adopted", name, got, s->name);
                        (void) close(fd);
                        return false;
                }
        }
        s->fd = fd;
        for (size_t k = 0; k < s->n_items; k++) {
                RegItem *it = &s->items[k];
                /* The session kept the item preserved whether or not we get our copy back. */
                it->lost = false;
                if (it->fd < 0 && fdstore_name_item(vm->id, it->label, name, sizeof(name)) >= 0) {
                        fd = listen_fds_pop(l, name);
                        if (fd >= 0) {
                                it->fd = fd;
                                with_fd++;
                        }
                }
        }
        log_full(LOG_NOTICE, 0, vm->id, s->name, NULL,
                 "recovered from the fd store with %zu item(s) (%zu with the daemon's fd)", s->n_items, with_fd);
        return true;
}

void manager_fdstore_drop_rest(ListenFds *l) {
        for (size_t i = 0; i < l->n; i++)
                if (l->fds[i] >= 0 && l->names && l->names[i] && strcmp(l->names[i], FDSTORE_VMM_SOCKET) != 0) {
                        log_debug("Dropping stale fd store entry %s", l->names[i]);
                        l->fds[i] = safe_close(l->fds[i]);
                        (void) fdstore_remove(l->names[i]);
                }
}

#define SLOT_TOMB UINT32_MAX

static void index_insert(FdStoreMirror *f, size_t idx) {
        size_t mask = f->n_slots - 1;

        for (size_t i = f->pushed[idx].hash & mask;; i = (i + 1) & mask)
                if (f->slots[i] == 0) {
                        f->slots[i] = (uint32_t) idx + 1;
                        return;
                }
}

/* Rebuild the index for pushed[] as it is now, large enough for @want entries. */
static void index_rebuild(FdStoreMirror *f, size_t want) {
        size_t n = 128;
        uint32_t *t;

        while (n < 2 * want)
                n *= 2;
        t = calloc(n, sizeof(uint32_t));
        if (!t) {
                free(f->slots);   /* pushed_find() searches instead */
                f->slots = NULL;
                f->n_slots = 0;
                return;
        }
        free(f->slots);
        f->slots = t;
        f->n_slots = n;
        f->n_tombs = 0;
        for (size_t i = 0; i < f->n_pushed; i++)
                index_insert(f, i);
}

static Pushed *pushed_find(FdStoreMirror *f, const char *name, uint64_t hash) {
        size_t mask = f->n_slots - 1;

        if (f->n_slots == 0) {   /* no index (out of memory): search */
                for (size_t i = 0; i < f->n_pushed; i++)
                        if (f->pushed[i].hash == hash && strcmp(f->pushed[i].name, name) == 0)
                                return &f->pushed[i];
                return NULL;
        }
        for (size_t i = hash & mask; f->slots[i] != 0; i = (i + 1) & mask) {
                Pushed *p;
                if (f->slots[i] == SLOT_TOMB)
                        continue;
                p = &f->pushed[f->slots[i] - 1];
                if (p->hash == hash && strcmp(p->name, name) == 0)
                        return p;
        }
        return NULL;
}

/* The slot that holds pushed[@idx]; the index must exist. */
static size_t index_slot_of(FdStoreMirror *f, size_t idx) {
        size_t mask = f->n_slots - 1, i = f->pushed[idx].hash & mask;

        while (f->slots[i] != (uint32_t) idx + 1)
                i = (i + 1) & mask;
        return i;
}

/*
 * Forget @p was pushed, in O(1): the last entry takes its place in pushed[] and its slot is
 * pointed there, @p's slot becomes a tombstone. (A rebuild of the whole index per removal made
 * the restore quadratic with the store: one removal per finished session.)
 */
static void pushed_remove(FdStoreMirror *f, Pushed *p) {
        size_t idx = (size_t) (p - f->pushed), last = f->n_pushed - 1;

        if (f->n_slots == 0) {
                *p = f->pushed[last];
                f->n_pushed--;
                return;
        }
        f->slots[index_slot_of(f, idx)] = SLOT_TOMB;
        f->n_tombs++;
        if (idx != last) {
                f->slots[index_slot_of(f, last)] = (uint32_t) idx + 1;
                *p = f->pushed[last];
        }
        f->n_pushed--;
}

/* Make @name stand for @fd in the store; marks it seen. */
static void mirror_one(FdStoreMirror *f, const char *name, int fd) {
        uint64_t hash = string_hash(name);
        Pushed *p = pushed_find(f, name, hash);
        int r;

        if (p && p->fd == fd) {
                p->seen = true;
                return;
        }
        if (p && !p->failed)
                (void) fdstore_remove(name);
        r = fdstore_push(name, fd);
        if (r < 0) {
                /* Once per fd: every sync retrying every failed push (a sync follows every
                 * dispatch that changed the registry) logged 177,000 lines in one restore. */
                log_warning_errno(r, "Cannot store %s in the fd store (a daemon restart would lose it): %m", name);
        }
        if (!p) {
                if (f->n_pushed == f->n_alloc) {
                        size_t n = f->n_alloc ? f->n_alloc * 2 : 64;
                        Pushed *t = reallocarray(f->pushed, n, sizeof(Pushed));
                        if (!t) {
                                (void) fdstore_remove(name);
                                return;
                        }
                        f->pushed = t;
                        f->n_alloc = n;
                }
                p = &f->pushed[f->n_pushed++];
                (void) snprintf(p->name, sizeof(p->name), "%s", name);
                p->hash = hash;
                if (2 * (f->n_pushed + f->n_tombs) > f->n_slots)
                        index_rebuild(f, f->n_pushed);   /* inserts @p too */
                else
                        index_insert(f, f->n_pushed - 1);
        }
        p->fd = fd;
        p->seen = true;
        p->failed = r < 0;
}

void fdstore_mirror_sync(FdStoreMirror *f) {
        Manager *m = f->m;
        char name[FDSTORE_NAME_MAX + 1];
        size_t j = 0;
        bool handoff;

        if (!m->reg)
                return;
        /* KexecMode=systemd, frozen: systemd holds the store through its kexec. It needs the
         * session fds, which keep the sessions alive once we are stopped; the files in them are
         * the kernel's to carry, and systemd >= 261 would try to preserve each memfd or device
         * fd it finds in a store a second time (EBUSY, a warning per fd). So only sessions. */
        handoff = f->include_state && m->state == UPDATE_FROZEN;
        for (size_t i = 0; i < f->n_pushed; i++)
                f->pushed[i].seen = false;
        for (size_t i = 0; i < m->reg->n_vms; i++) {
                RegVm *vm = m->reg->vms[i];
                for (size_t k = 0; k < vm->n_sessions; k++) {
                        RegSession *s = &vm->sessions[k];
                        if (s->fd < 0 || fdstore_name_session(s->name, name, sizeof(name)) < 0)
                                continue;
                        mirror_one(f, name, s->fd);
                        /* Not an item that came across the update: the session (stored) hands it
                         * out again to a restarted daemon (a successful RETRIEVE_FD may be
                         * repeated), and at 256 VMs its 1024 pushes and removes were a third of
                         * the restore (docs/performance.md). */
                        for (size_t n = 0; n < s->n_items; n++)
                                if (!handoff && s->items[n].fd >= 0 && !s->items[n].incoming &&
                                    fdstore_name_item(vm->id, s->items[n].label, name, sizeof(name)) >= 0)
                                        mirror_one(f, name, s->items[n].fd);
                }
        }
        if (handoff && m->state_session_fd >= 0 && fdstore_name_session(REG_STATE_SESSION, name, sizeof(name)) >= 0)
                mirror_one(f, name, m->state_session_fd);
        /* After the kexec: the incoming state session and registry, so that a restarted daemon can
         * continue the restore (the session cannot be retrieved twice); the registry alone (a copy
         * of the mirror's) when the kernel failed to hand us the session. */
        if (m->boot_incoming && m->state == UPDATE_RESTORING && m->incoming_memfd >= 0 &&
            fdstore_name_session(REG_STATE_SESSION, name, sizeof(name)) >= 0) {
                if (m->state_session_fd >= 0)
                        mirror_one(f, name, m->state_session_fd);
                mirror_one(f, FDSTORE_STATE, m->incoming_memfd);
        }
        for (size_t i = 0; i < f->n_pushed; i++) {
                if (!f->pushed[i].seen) {
                        if (!f->pushed[i].failed)
                                (void) fdstore_remove(f->pushed[i].name);
                        continue;
                }
                f->pushed[j++] = f->pushed[i];
        }
        if (j != f->n_pushed) {
                f->n_pushed = j;
                index_rebuild(f, j);
        }
        f->generation = m->reg->generation;
        f->synced = true;
        f->synced_handoff = handoff;
}

void fdstore_mirror_push_vm(FdStoreMirror *f, RegVm *vm) {
        char name[FDSTORE_NAME_MAX + 1];

        if (!f)
                return;
        for (size_t k = 0; k < vm->n_sessions; k++)
                if (vm->sessions[k].fd >= 0 && fdstore_name_session(vm->sessions[k].name, name, sizeof(name)) >= 0)
                        mirror_one(f, name, vm->sessions[k].fd);
}

#define FLUSH_TIMEOUT_USEC (5 * 1000 * 1000)
void fdstore_mirror_flush(FdStoreMirror *f) {
        int r;

        if (!f)
                return;
        fdstore_mirror_sync(f);
        r = fdstore_barrier(FLUSH_TIMEOUT_USEC);
        if (r < 0)
                log_warning_errno(r, "The service manager did not confirm the fd store removals (barrier): %m");
}

/* After every dispatch; the registry's generation moves on every save, so most turns cost nothing. */
static int on_post(sd_event_source *s, void *userdata) {
        FdStoreMirror *f = userdata;

        if (f->synced && f->m->reg && f->generation == f->m->reg->generation && !f->m->dirty)
                return 0;
        fdstore_mirror_sync(f);
        return 0;
}

/* "frozen" comes right before the kexec call, with no dispatch in between: sync now, unless
 * nothing changed since the last sync (a whole sync was 9 % of the freeze path at 256 VMs). */
static void on_progress(void *userdata, const char *state, const char *vm, const char *detail) {
        FdStoreMirror *f = userdata;
        Manager *m = f->m;

        if (strcmp(state, "frozen") != 0)
                return;
        if (f->synced && m->reg && f->generation == m->reg->generation && !m->dirty &&
            f->synced_handoff == (f->include_state && m->state == UPDATE_FROZEN))
                return;
        fdstore_mirror_sync(f);
}

void fdstore_mirror_drop_session(FdStoreMirror *f, const char *session) {
        char name[FDSTORE_NAME_MAX + 1];
        Pushed *p;

        if (fdstore_name_session(session, name, sizeof(name)) < 0)
                return;
        (void) fdstore_remove(name);
        if (!f)
                return;
        p = pushed_find(f, name, string_hash(name));
        if (p)
                pushed_remove(f, p);
}

void fdstore_mirror_drop_vm_items(FdStoreMirror *f, RegVm *vm) {
        char name[FDSTORE_NAME_MAX + 1];

        if (!f)
                return;
        for (size_t k = 0; k < vm->n_sessions; k++)
                for (size_t n = 0; n < vm->sessions[k].n_items; n++) {
                        Pushed *p;
                        if (fdstore_name_item(vm->id, vm->sessions[k].items[n].label, name, sizeof(name)) < 0)
                                continue;
                        p = pushed_find(f, name, string_hash(name));
                        if (!p)
                                continue;
                        if (!p->failed)
                                (void) fdstore_remove(name);
                        pushed_remove(f, p);
                }
}

void fdstore_mirror_include_state(FdStoreMirror *f, bool include) {
        if (f)
                f->include_state = include;
}

int fdstore_mirror_new(Manager *m, FdStoreMirror **ret) {
        _cleanup_(fdstore_mirror_freep) FdStoreMirror *f = NULL;
        int r;

        *ret = NULL;
        if (!fdstore_enabled())
                return 0;
        f = calloc(1, sizeof(FdStoreMirror));
        if (!f)
                return -ENOMEM;
        f->m = m;
        r = sd_event_add_post(m->event, &f->post, on_post, f);
        if (r < 0)
                return r;
        r = manager_subscribe(m, on_progress, f);
        if (r < 0)
                return r;
        f->subscribed = true;
        fdstore_mirror_sync(f);
        *ret = TAKE_PTR(f);
        return 1;
}

FdStoreMirror *fdstore_mirror_free(FdStoreMirror *f) {
        if (!f)
                return NULL;
        /* Leaving the store as it is: a clean stop keeps the sessions for the next start. */
        f->post = sd_event_source_disable_unref(f->post);
        if (f->subscribed)
                manager_unsubscribe(f->m, f);
        free(f->pushed);
        free(f->slots);
        free(f);
        return NULL;
}
