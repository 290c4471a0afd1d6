/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the registry reader (daemon/core/registry.c): one input is the content of
 * registry.json or of the state memfd read back after a restart or a kexec. It is read
 * both ways the daemon reads it (registry_parse() on the file's bytes, registry_read_fd()
 * on a memfd, which stops at the first NUL), and whatever is accepted must be a registry
 * the rest of the daemon can trust and must survive the write paths unchanged
 * (registry_serialize(), registry_write_memfd(), registry_rewrite_memfd()).
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "pci-addr.h"
#include "common/protocol.h"
#include "core/registry.h"

static int input_fd = -EBADF;

static Registry *read_via_memfd(const uint8_t *data, size_t size, int *ret) {
        Registry *reg = NULL;

        if (input_fd < 0) {
                input_fd = memfd_create("fuzz-registry", MFD_CLOEXEC);
                FUZZ_CHECK(input_fd >= 0, "memfd_create: %m");
        }
        FUZZ_CHECK(ftruncate(input_fd, 0) >= 0, "ftruncate: %m");
        FUZZ_CHECK(size == 0 || pwrite(input_fd, data, size, 0) == (ssize_t) size, "pwrite: %m");
        *ret = registry_read_fd(input_fd, &reg);
        return reg;
}

static char *serialize(const Registry *r) {
        char *s = NULL;
        size_t n;

        FUZZ_CHECK(registry_serialize(r, &s, &n) >= 0, "registry_serialize failed");
        FUZZ_CHECK(strlen(s) == n, "serialized length %zu != %zu", strlen(s), n);
        return s;
}

static bool only_whitespace(const char *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!strchr(" \t\r\n", p[i]) || p[i] == 0)
                        return false;
        return true;
}

/* A name taken from the file must be the whole JSON string, not the part before an escaped NUL. */
static void check_whole_string(json_object *o, const char *key, const char *read) {
        json_object *v = json_object_object_get(o, key);

        if (!json_object_is_type(v, json_type_string))
                return;
        FUZZ_CHECK((size_t) json_object_get_string_len(v) == strlen(read),
                   "%s \"%s\" read from a string with an embedded NUL", key, read);
}

/* The registry the manager and restore.c work with: see registry.h and docs/protocol.md §7. */
static void check_registry(const Registry *r, json_object *in) {
        json_object *in_vms = json_object_object_get(in, "vms");

        FUZZ_CHECK(json_object_get_uint64(json_object_object_get(in, "generation")) == r->generation,
                   "generation %s read as %llu", json_object_to_json_string(json_object_object_get(in, "generation")),
                   (unsigned long long) r->generation);
        FUZZ_CHECK(!r->update || json_object_is_type(r->update, json_type_object), "update not an object");
        FUZZ_CHECK(!r->timeline || json_object_is_type(r->timeline, json_type_object), "timeline not an object");
        FUZZ_CHECK(r->n_vms == json_object_array_length(in_vms), "VM count changed");

        for (size_t i = 0; i < r->n_vms; i++) {
                const RegVm *vm = r->vms[i];
                json_object *in_ss = json_object_object_get(json_object_array_get_idx(in_vms, i), "sessions");
                char prefix[REG_SESSION_NAME_MAX + 8];

                FUZZ_CHECK(proto_vm_id_is_valid(vm->id), "VM id \"%s\" accepted", vm->id);
                check_whole_string(json_object_array_get_idx(in_vms, i), "id", vm->id);
                for (size_t j = 0; j < i; j++)
                        FUZZ_CHECK(strcmp(r->vms[j]->id, vm->id) != 0, "VM %s twice", vm->id);
                FUZZ_CHECK(vm->n_sessions == json_object_array_length(in_ss), "session count changed");
                (void) snprintf(prefix, sizeof(prefix), "luvf:%s:", vm->id);

                for (size_t j = 0; j < vm->n_sessions; j++) {
                        const RegSession *s = &vm->sessions[j];
                        json_object *in_s = json_object_array_get_idx(in_ss, j);
                        json_object *in_items = json_object_object_get(in_s, "items");
                        const char *num = s->name + strlen(prefix);
                        unsigned long long n;
                        char *end;

                        FUZZ_CHECK(strncmp(s->name, prefix, strlen(prefix)) == 0 && *num &&
                                   strspn(num, "0123456789") == strlen(num), "session name \"%s\" in VM %s", s->name, vm->id);
                        for (size_t k = 0; k < j; k++)
                                FUZZ_CHECK(strcmp(vm->sessions[k].name, s->name) != 0, "session %s twice", s->name);
                        /* reg_vm_add_session() names the next session luvf:<vm>:<next_session>. */
                        errno = 0;
                        n = strtoull(num, &end, 10);
                        FUZZ_CHECK(errno == 0 && n < vm->next_session,
                                   "session %s accepted with next_session %u: a new session would reuse the name",
                                   s->name, vm->next_session);
                        FUZZ_CHECK(json_object_get_uint64(json_object_object_get(in_s, "next_token")) == s->next_token,
                                   "next_token %s read as %llu",
                                   json_object_to_json_string(json_object_object_get(in_s, "next_token")),
                                   (unsigned long long) s->next_token);
                        FUZZ_CHECK(s->n_items == json_object_array_length(in_items), "item count changed");
                        FUZZ_CHECK(s->fd < 0, "session fd set by the reader");
                        check_whole_string(in_s, "name", s->name);

                        for (size_t k = 0; k < s->n_items; k++) {
                                const RegItem *it = &s->items[k];
                                PciAddr a;
                                char canon[PCI_ADDR_STRING_MAX];

                                FUZZ_CHECK(proto_label_is_valid(it->label), "label \"%s\" accepted", it->label);
                                FUZZ_CHECK((unsigned) it->kind < _REG_KIND_MAX, "kind %d", (int) it->kind);
                                FUZZ_CHECK(it->token >= 1 && it->token < s->next_token, "token %llu, next %llu",
                                           (unsigned long long) it->token, (unsigned long long) s->next_token);
                                FUZZ_CHECK(it->fd < 0, "item fd set by the reader");
                                check_whole_string(json_object_array_get_idx(in_items, k), "label", it->label);
                                check_whole_string(json_object_array_get_idx(in_items, k), "pci", it->pci);
                                FUZZ_CHECK(json_object_get_uint64(json_object_object_get(json_object_array_get_idx(in_items, k),
                                           "token")) == it->token,
                                           "token of %s changed by the reader", it->label);
                                for (size_t l = 0; l < k; l++)
                                        FUZZ_CHECK(s->items[l].token != it->token, "token %llu twice in %s",
                                                   (unsigned long long) it->token, s->name);
                                FUZZ_CHECK(reg_vm_find_item(vm, it->label, NULL) == it, "label %s twice in VM %s", it->label, vm->id);
                                /*
                                 * restore.c builds /sys/bus/pci/devices/<pci>/driver from a VFIO
                                 * item's address and waits for it; other kinds have none.
                                 */
                                if (it->kind == REG_KIND_VFIO)
                                        FUZZ_CHECK(pci_addr_parse(it->pci, &a) >= 0 &&
                                                   strcmp(pci_addr_to_string(&a, canon), it->pci) == 0,
                                                   "VFIO item %s accepted with PCI address \"%s\"", it->label, it->pci);
                                else
                                        FUZZ_CHECK(it->pci[0] == 0,
                                                   "%s item %s accepted with PCI address \"%s\"",
                                                   reg_kind_to_string(it->kind), it->label, it->pci);
                        }
                }
        }
}

/*
 * The update record and the timeline are kept as JSON. restore_record_vm() (restore.c) adds
 * timestamps to update.vms.<vm> and manager_timeline() (manager.c) adds durations to a copy of
 * every timeline.vms.<vm>: json-c aborts (assert) when such a member is not an object.
 */
static bool record_is_usable(json_object *rec) {
        json_object *vms;

        if (!rec || !json_object_object_get_ex(rec, "vms", &vms) || !json_object_is_type(vms, json_type_object))
                return true;
        json_object_object_foreach(vms, k, v) {
                (void) k;
                if (!json_object_is_type(v, json_type_object))
                        return false;
        }
        return true;
}

static void add_ms(json_object *t, const char *name, const char *from, const char *to) {
        json_object *a, *b;

        if (json_object_object_get_ex(t, from, &a) && json_object_object_get_ex(t, to, &b) &&
            json_object_is_type(a, json_type_int) && json_object_is_type(b, json_type_int))
                json_object_object_add(t, name, json_object_new_double(
                        (double) (json_object_get_int64(b) - json_object_get_int64(a)) / 1000.0));
}

/* manager_timeline()'s computation, step by step, on its own deep copy. */
static void check_timeline(json_object *timeline) {
        json_object *t = NULL, *vms;
        char *text;

        FUZZ_CHECK(json_object_deep_copy(timeline, &t, NULL) >= 0 && t, "timeline cannot be copied");
        add_ms(t, "prepare_ms", "t_prepare_us", "t_prepared_us");
        add_ms(t, "total_ms", "t_prepare_us", "t_end_us");
        if (json_object_object_get_ex(t, "vms", &vms) && json_object_is_type(vms, json_type_object)) {
                json_object *start = json_object_object_get(t, "t_daemon_start_us");
                json_object_object_foreach(vms, k, v) {
                        (void) k;
                        if (start) {
                                json_object_object_add(v, "t_daemon_start_us", json_object_get(start));
                                add_ms(v, "reclaimed_ms", "t_daemon_start_us", "t_reclaimed_us");
                                json_object_object_del(v, "t_daemon_start_us");
                        }
                }
        }
        text = strdup(json_object_to_json_string_ext(t, JSON_C_TO_STRING_PLAIN));
        FUZZ_CHECK(text, "out of memory");
        free(text);
        json_object_put(t);
}

/* What was accepted must come back identical through every write path. */
static void check_round_trip(const Registry *r) {
        _cleanup_free_ char *s1 = serialize(r), *s2 = NULL, *s3 = NULL, *s4 = NULL;
        _cleanup_(registry_freep) Registry *r2 = NULL, *r3 = NULL, *r4 = NULL;
        _cleanup_close_ int fd = -EBADF;
        int k;

        k = registry_parse(s1, strlen(s1), &r2);
        FUZZ_CHECK(k >= 0, "own output refused (%s): %s", strerror(-k), s1);
        s2 = serialize(r2);
        FUZZ_CHECK(strcmp(s1, s2) == 0, "round trip changed the registry:\n%s\n---\n%s", s1, s2);

        /*
         * The daemon's next step on any VM may be a new session; its next save must stay
         * readable (registry-session-wrap: session numbers must not wrap, the add is refused).
         */
        if (r2->n_vms > 0) {
                _cleanup_(registry_freep) Registry *r5 = NULL;
                _cleanup_free_ char *s5 = NULL;

                for (size_t i = 0; i < r2->n_vms; i++) {
                        uint32_t before = r2->vms[i]->next_session;
                        RegSession *ns = reg_vm_add_session(r2->vms[i], false);
                        FUZZ_CHECK(ns || (errno == ENOSPC && before == UINT32_MAX),
                                   "new session refused (%s) with next_session %u", strerror(errno), before);
                }
                s5 = serialize(r2);
                k = registry_parse(s5, strlen(s5), &r5);
                FUZZ_CHECK(k >= 0, "after a new session the daemon's own registry is refused (%s)", strerror(-k));
        }

        k = registry_write_memfd(r, 0, &fd);
        FUZZ_CHECK(k >= 0, "registry_write_memfd: %s", strerror(-k));
        k = registry_read_fd(fd, &r3);
        FUZZ_CHECK(k >= 0, "memfd written by registry_write_memfd refused: %s", strerror(-k));
        s3 = serialize(r3);
        FUZZ_CHECK(strcmp(s1, s3) == 0, "memfd round trip changed the registry");

        /* In place, over the same content: must fit and read back the same. */
        k = registry_rewrite_memfd(r3, fd);
        FUZZ_CHECK(k >= 0, "registry_rewrite_memfd: %s", strerror(-k));
        k = registry_read_fd(fd, &r4);
        FUZZ_CHECK(k >= 0, "rewritten memfd refused: %s", strerror(-k));
        s4 = serialize(r4);
        FUZZ_CHECK(strcmp(s1, s4) == 0, "rewrite changed the registry");

        /* A new item (what preserve does) must keep it readable too (registry-next-token). */
        if (r3->n_vms > 0) {
                _cleanup_(registry_freep) Registry *r6 = NULL;
                _cleanup_free_ char *s6 = NULL;

                for (size_t i = 0; i < r3->n_vms; i++) {
                        RegVm *vm = r3->vms[i];
                        size_t n = vm->n_sessions;

                        for (size_t j = 0; j < n; j++) {
                                char label[32];
                                unsigned u = 0;

                                /* The daemon preserves into its own sessions only: delegated ones belong to the VMM. */
                                if (vm->sessions[j].delegated)
                                        continue;

                                do
                                        (void) snprintf(label, sizeof(label), "fuzz-new-%u", u++);
                                while (reg_vm_find_item(vm, label, NULL));
                                /* NULL: out of memory, or the session is full (next_token at its maximum). */
                                (void) reg_session_add_item(&vm->sessions[j], label, REG_KIND_MEMFD, NULL);
                        }
                }
                s6 = serialize(r3);
                k = registry_parse(s6, strlen(s6), &r6);
                FUZZ_CHECK(k >= 0, "after a new item the daemon's own registry is refused (%s)", strerror(-k));
        }
}

/* @text (@size bytes) was accepted as @r; @daemon_path: these are the bytes the daemon would parse. */
static void check_accepted(const char *text, size_t size, const Registry *r, bool daemon_path) {
        json_tokener *tok = json_tokener_new_ex(16);
        json_object *in;
        size_t end;

        /* An independent decoding of the accepted bytes, to compare the values with. */
        FUZZ_CHECK(tok, "out of memory");
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        in = json_tokener_parse_ex(tok, text, (int) size);
        FUZZ_CHECK(in, "accepted input does not decode");
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        /* Only whitespace may follow the object (json-c strict mode); a NUL ends the input for json-c. */
        if (daemon_path)
                FUZZ_CHECK(only_whitespace(text + end, size - end),
                           "registry accepted with %zu bytes of trailing data after the JSON object", size - end);
        check_registry(r, in);
        json_object_put(in);
        FUZZ_CHECK(record_is_usable(r->update) && record_is_usable(r->timeline),
                   "update or timeline accepted with a \"vms\" member that is not an object");
        if (r->timeline && record_is_usable(r->timeline))
                check_timeline(r->timeline);
        check_round_trip(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(registry_freep) Registry *reg = NULL, *via_fd = NULL, *prefix = NULL;
        const char *text = (const char *) data;
        size_t len = strnlen(text, size);
        int k, k_fd, k_prefix;

        /* The API: a buffer and its length. */
        k = registry_parse(text, size, &reg);
        FUZZ_CHECK(k >= 0 || k == -EBADMSG, "registry_parse: unexpected %s", strerror(-k));
        FUZZ_CHECK(k >= 0 || !reg, "registry left behind on failure");
        if (k >= 0)
                check_accepted(text, size, reg, len == size);

        /* The daemon's paths (file and memfd) see the bytes up to the first NUL. */
        via_fd = read_via_memfd(data, size, &k_fd);
        k_prefix = len == size ? k : registry_parse(text, len, &prefix);
        FUZZ_CHECK(k_fd == k_prefix, "memfd reader %d, parse of the same bytes %d", k_fd, k_prefix);
        if (k_fd >= 0) {
                _cleanup_free_ char *a = serialize(via_fd), *b = serialize(prefix ?: reg);
                FUZZ_CHECK(strcmp(a, b) == 0, "memfd reader and parser disagree");
        }
        if (prefix)
                check_accepted(text, len, prefix, true);

        /* After a kexec: the bytes behind the registry's NUL may hold the commit's final record
         * (registry_write_final()); merged into an accepted registry, which must stay one. */
        if (k_fd >= 0 && via_fd->update) {
                _cleanup_free_ char *before = serialize(via_fd), *after = NULL;
                json_object *vms, *old_vms = NULL;

                /* the VM records the update had before the merge (keys may hold any bytes) */
                if (json_object_object_get_ex(via_fd->update, "vms", &vms) && json_object_is_type(vms, json_type_object)) {
                        old_vms = json_object_new_object();
                        FUZZ_CHECK(old_vms, "out of memory");
                        json_object_object_foreach(vms, id0, rec0) {
                                (void) rec0;
                                json_object_object_add(old_vms, id0, NULL);
                        }
                }
                k = registry_merge_final(via_fd, input_fd);
                FUZZ_CHECK(k == 0 || k == -ENOENT || k == -ENOMEM, "registry_merge_final: unexpected %s", strerror(-k));
                after = serialize(via_fd);
                FUZZ_CHECK(k == 0 || strcmp(before, after) == 0, "a refused final record changed the registry");
                if (json_object_object_get_ex(via_fd->update, "vms", &vms) && json_object_is_type(vms, json_type_object)) {
                        json_object_object_foreach(vms, id, rec) {
                                (void) rec;
                                FUZZ_CHECK(registry_find_vm(via_fd, id) || (old_vms && json_object_object_get_ex(old_vms, id, NULL)),
                                           "the final record added a record for a VM the registry does not hold");
                        }
                }
                json_object_put(old_vms);
        }
        return 0;
}
