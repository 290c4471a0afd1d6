/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The registry model and its JSON form; see registry.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hash.h"
#include "common/json-text.h"
#include "common/protocol.h"
#include "core/registry.h"

static const char *const kind_names[_REG_KIND_MAX] = {
        [REG_KIND_MEMFD] = "memfd",
        [REG_KIND_IOMMUFD] = "iommufd",
        [REG_KIND_VFIO] = "vfio",
};

const char *reg_kind_to_string(RegKind k) {
        return (unsigned) k < _REG_KIND_MAX ? kind_names[k] : "unknown";
}

int reg_kind_from_string(const char *s, RegKind *ret) {
        for (unsigned i = 0; i < _REG_KIND_MAX; i++)
                if (strcmp(s, kind_names[i]) == 0) {
                        *ret = i;
                        return 0;
                }
        return -EINVAL;
}

Registry *registry_new(void) {
        return calloc(1, sizeof(Registry));
}

static void session_clear(RegSession *s) {
        for (size_t i = 0; i < s->n_items; i++)
                s->items[i].fd = safe_close(s->items[i].fd);
        free(s->items);
        s->items = NULL;
        s->n_items = 0;
        s->fd = safe_close(s->fd);
}

static RegVm *vm_free(RegVm *vm) {
        if (!vm)
                return NULL;
        for (size_t i = 0; i < vm->n_sessions; i++)
                session_clear(&vm->sessions[i]);
        free(vm->sessions);
        free(vm);
        return NULL;
}

Registry *registry_free(Registry *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_vms; i++)
                vm_free(r->vms[i]);
        free(r->vms);
        free(r->by_id);
        json_object_put(r->update);
        json_object_put(r->timeline);
        free(r);
        return NULL;
}

/*
 * The index by id: every hello, the registry's load (a duplicate check per VM) and the
 * merge of the final update record look a VM up, and a walk over every VM made each of
 * those O(N) (at 256 VMs 4 % of the restore's instructions, and quadratic).
 */
static void index_put(RegVm **slots, size_t n_slots, RegVm *vm) {
        size_t i = (size_t) string_hash(vm->id) & (n_slots - 1);

        while (slots[i])
                i = (i + 1) & (n_slots - 1);
        slots[i] = vm;
}

/* A new index for @want VMs (at most half full); the old one stays on failure. */
static int index_rebuild(Registry *r, size_t want) {
        size_t n = 16;
        RegVm **slots;

        while (n < 2 * want)
                n *= 2;
        slots = calloc(n, sizeof(RegVm *));
        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_vms; i++)
                index_put(slots, n, r->vms[i]);
        free(r->by_id);
        r->by_id = slots;
        r->n_slots = n;
        return 0;
}

RegVm *registry_find_vm(const Registry *r, const char *id) {
        if (r->n_slots == 0)
                return NULL;
        for (size_t i = (size_t) string_hash(id) & (r->n_slots - 1); r->by_id[i]; i = (i + 1) & (r->n_slots - 1))
                if (strcmp(r->by_id[i]->id, id) == 0)
                        return r->by_id[i];
        return NULL;
}

int registry_add_vm(Registry *r, const char *id, uint32_t uid, RegVm **ret) {
        RegVm *vm, **t;
        int k;

        if (!proto_vm_id_is_valid(id))
                return -EINVAL;
        if (registry_find_vm(r, id))
                return -EEXIST;
        if (2 * (r->n_vms + 1) > r->n_slots) {
                k = index_rebuild(r, r->n_vms + 1);
                if (k < 0)
                        return k;
        }
        vm = calloc(1, sizeof(RegVm));
        if (!vm)
                return -ENOMEM;
        t = reallocarray(r->vms, r->n_vms + 1, sizeof(RegVm *));
        if (!t) {
                free(vm);
                return -ENOMEM;
        }
        r->vms = t;
        strcpy(vm->id, id);
        vm->uid = uid;
        r->vms[r->n_vms++] = vm;
        index_put(r->by_id, r->n_slots, vm);
        if (ret)
                *ret = vm;
        return 0;
}

void registry_remove_vm(Registry *r, RegVm *vm) {
        for (size_t i = 0; i < r->n_vms; i++)
                if (r->vms[i] == vm) {
                        memmove(r->vms + i, r->vms + i + 1, (r->n_vms - i - 1) * sizeof(RegVm *));
                        r->n_vms--;
                        /* Linear probing cannot just clear a slot; removals are rare (forget). */
                        memset(r->by_id, 0, r->n_slots * sizeof(RegVm *));
                        for (size_t j = 0; j < r->n_vms; j++)
                                index_put(r->by_id, r->n_slots, r->vms[j]);
                        vm_free(vm);
                        return;
                }
}

RegSession *reg_vm_add_session(RegVm *vm, bool delegated) {
        RegSession *t, *s;

        /* Session numbers never wrap: a reused name would make the next save unreadable. */
        if (vm->next_session == UINT32_MAX) {
                errno = ENOSPC;
                return NULL;
        }
        t = reallocarray(vm->sessions, vm->n_sessions + 1, sizeof(RegSession));
        if (!t) {
                errno = ENOMEM;
                return NULL;
        }
        vm->sessions = t;
        s = &vm->sessions[vm->n_sessions++];
        *s = (RegSession) { .delegated = delegated, .next_token = 1, .fd = -EBADF };
        (void) snprintf(s->name, sizeof(s->name), "luvf:%s:%u", vm->id, vm->next_session++);
        return s;
}

void reg_vm_remove_session(RegVm *vm, RegSession *s) {
        size_t i = s - vm->sessions;

        if (i >= vm->n_sessions)
                return;
        session_clear(s);
        memmove(vm->sessions + i, vm->sessions + i + 1, (vm->n_sessions - i - 1) * sizeof(RegSession));
        vm->n_sessions--;
}

RegItem *reg_vm_find_item(const RegVm *vm, const char *label, RegSession **ret_session) {
        for (size_t i = 0; i < vm->n_sessions; i++)
                for (size_t j = 0; j < vm->sessions[i].n_items; j++)
                        if (strcmp(vm->sessions[i].items[j].label, label) == 0) {
                                if (ret_session)
                                        *ret_session = &vm->sessions[i];
                                return &vm->sessions[i].items[j];
                        }
        return NULL;
}

size_t reg_vm_count_items(const RegVm *vm) {
        size_t n = 0;
        for (size_t i = 0; i < vm->n_sessions; i++)
                n += vm->sessions[i].n_items;
        return n;
}

RegSession *reg_vm_delegated_session(const RegVm *vm) {
        for (size_t i = 0; i < vm->n_sessions; i++)
                if (vm->sessions[i].delegated)
                        return &vm->sessions[i];
        return NULL;
}

RegItem *reg_session_add_item(RegSession *s, const char *label, RegKind kind, const char *pci) {
        RegItem *t;
        RegItem *it;

        /* next_token may be at most UINT64_MAX-1 when read back: the session is full. */
        if (s->next_token >= UINT64_MAX - 1)
                return NULL;
        t = reallocarray(s->items, s->n_items + 1, sizeof(RegItem));
        if (!t)
                return NULL;
        s->items = t;
        it = &s->items[s->n_items++];
        *it = (RegItem) { .kind = kind, .fd = -EBADF, .token = s->next_token++ };
        (void) snprintf(it->label, sizeof(it->label), "%s", label);
        (void) snprintf(it->pci, sizeof(it->pci), "%s", pci ?: "");
        return it;
}

void reg_session_remove_item(RegSession *s, RegItem *it) {
        size_t i = it - s->items;

        if (i >= s->n_items)
                return;
        it->fd = safe_close(it->fd);
        memmove(s->items + i, s->items + i + 1, (s->n_items - i - 1) * sizeof(RegItem));
        s->n_items--;
}

json_object *registry_to_json(const Registry *r) {
        json_object *o = json_object_new_object(), *vms = json_object_new_array();

        json_object_object_add(o, "version", json_object_new_int(REGISTRY_VERSION));
        json_object_object_add(o, "generation", json_object_new_uint64(r->generation));
        for (size_t i = 0; i < r->n_vms; i++) {
                const RegVm *vm = r->vms[i];
                json_object *v = json_object_new_object(), *ss = json_object_new_array();

                json_object_object_add(v, "id", json_object_new_string(vm->id));
                json_object_object_add(v, "uid", json_object_new_int64(vm->uid));
                json_object_object_add(v, "next_session", json_object_new_int64(vm->next_session));
                for (size_t j = 0; j < vm->n_sessions; j++) {
                        const RegSession *s = &vm->sessions[j];
                        json_object *so = json_object_new_object(), *items = json_object_new_array();

                        json_object_object_add(so, "name", json_object_new_string(s->name));
                        json_object_object_add(so, "delegated", json_object_new_boolean(s->delegated));
                        json_object_object_add(so, "next_token", json_object_new_uint64(s->next_token));
                        for (size_t k = 0; k < s->n_items; k++) {
                                const RegItem *it = &s->items[k];
                                json_object *io = json_object_new_object();
                                json_object_object_add(io, "label", json_object_new_string(it->label));
                                json_object_object_add(io, "token", json_object_new_uint64(it->token));
                                json_object_object_add(io, "kind", json_object_new_string(reg_kind_to_string(it->kind)));
                                json_object_object_add(io, "pci", it->pci[0] ? json_object_new_string(it->pci) : NULL);
                                json_object_array_add(items, io);
                        }
                        json_object_object_add(so, "items", items);
                        json_object_array_add(ss, so);
                }
                json_object_object_add(v, "sessions", ss);
                json_object_array_add(vms, v);
        }
        json_object_object_add(o, "vms", vms);
        json_object_object_add(o, "update", r->update ? json_object_get(r->update) : NULL);
        json_object_object_add(o, "timeline", r->timeline ? json_object_get(r->timeline) : NULL);
        return o;
}

static json_object *get(json_object *o, const char *key, json_type type) {
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
                return NULL;
        return v;
}

static int get_u64(json_object *o, const char *key, uint64_t max, uint64_t *ret) {
        json_object *v = get(o, key, json_type_int);
        uint64_t u;
        int64_t n;

        if (!v)
                return -EBADMSG;
        n = json_object_get_int64(v);
        if (n < 0)
                return -EBADMSG;
        /* get_int64 saturates at INT64_MAX; json-c keeps larger values as uint64 */
        u = n == INT64_MAX ? json_object_get_uint64(v) : (uint64_t) n;
        if (u > max)
                return -EBADMSG;
        *ret = u;
        return 0;
}

/* The canonical "%04x:%02x:%02x.%x" form of a PCI address, and nothing else. */
static bool pci_is_canonical(const char *s) {
        unsigned dom, bus, dev, fn;
        char again[REG_PCI_MAX];
        int end = 0;

        if (strspn(s, "0123456789abcdef:.") != strlen(s))
                return false;
        if (sscanf(s, "%x:%x:%x.%x%n", &dom, &bus, &dev, &fn, &end) != 4 || s[end] != 0)
                return false;
        if (bus > 0xff || dev > 0x1f || fn > 7)
                return false;
        (void) snprintf(again, sizeof(again), "%04x:%02x:%02x.%x", dom, bus, dev, fn);
        return strcmp(again, s) == 0;
}

/* update/timeline records: "vms", if present, must map VM ids to objects (consumers add to them). */
static bool record_is_valid(json_object *rec) {
        json_object *vms;

        if (!json_object_object_get_ex(rec, "vms", &vms) || json_object_is_type(vms, json_type_null))
                return true;
        if (!json_object_is_type(vms, json_type_object))
                return false;
        json_object_object_foreach(vms, k, v) {
                (void) k;
                if (!json_object_is_type(v, json_type_object))
                        return false;
        }
        return true;
}

static int copy_str(json_object *o, const char *key, char *buf, size_t size) {
        json_object *v = get(o, key, json_type_string);
        if (!v || (size_t) json_object_get_string_len(v) >= size ||
            strlen(json_object_get_string(v)) != (size_t) json_object_get_string_len(v))   /* embedded NUL */
                return -EBADMSG;
        strcpy(buf, json_object_get_string(v));
        return 0;
}

static int session_from_json(json_object *so, RegVm *vm, uint64_t next_session) {
        json_object *items = get(so, "items", json_type_array), *d;
        char name[REG_SESSION_NAME_MAX + 1];
        RegSession *s;
        uint64_t nt;

        if (!items || copy_str(so, "name", name, sizeof(name)) < 0 || get_u64(so, "next_token", UINT64_MAX - 1, &nt) < 0 || nt == 0)
                return -EBADMSG;   /* token 0 is never allocated, so next_token starts at 1 */
        /* The name must be one of ours for this VM: luvf:<vm>:<n>. */
        size_t pl = strlen(vm->id) + 5;
        if (strncmp(name, "luvf:", 5) != 0 || strncmp(name + 5, vm->id, strlen(vm->id)) != 0 ||
            name[pl] != ':' || !name[pl + 1] || strspn(name + pl + 1, "0123456789") != strlen(name + pl + 1) ||
            strlen(name + pl + 1) > 10)
                return -EBADMSG;
        /* Its number must be below next_session, or the next new session would reuse the name. */
        if (strtoull(name + pl + 1, NULL, 10) >= next_session)
                return -EBADMSG;
        for (size_t i = 0; i < vm->n_sessions; i++)
                if (strcmp(vm->sessions[i].name, name) == 0)
                        return -EBADMSG;
        d = get(so, "delegated", json_type_boolean);
        s = reg_vm_add_session(vm, d && json_object_get_boolean(d));
        if (!s)
                return -ENOMEM;
        vm->next_session--;   /* add_session bumped it; the stored value is restored by the caller */
        strcpy(s->name, name);
        for (size_t k = 0; k < json_object_array_length(items); k++) {
                json_object *io = json_object_array_get_idx(items, k), *pci;
                char label[REG_LABEL_MAX + 1], kind[16];
                RegKind kd;
                uint64_t tok;
                RegItem *it;

                if (copy_str(io, "label", label, sizeof(label)) < 0 || !proto_label_is_valid(label) ||
                    copy_str(io, "kind", kind, sizeof(kind)) < 0 || reg_kind_from_string(kind, &kd) < 0 ||
                    get_u64(io, "token", UINT64_MAX - 1, &tok) < 0 || tok == 0 || tok >= nt)
                        return -EBADMSG;
                if (reg_vm_find_item(vm, label, NULL))
                        return -EBADMSG;
                for (size_t j = 0; j < s->n_items; j++)
                        if (s->items[j].token == tok)
                                return -EBADMSG;
                pci = get(io, "pci", json_type_string);
                if (kd == REG_KIND_VFIO ? !pci || json_object_get_string_len(pci) >= REG_PCI_MAX ||
                                          !pci_is_canonical(json_object_get_string(pci))
                                        : json_object_object_get(io, "pci") != NULL)
                        return -EBADMSG;
                it = reg_session_add_item(s, label, kd, pci ? json_object_get_string(pci) : NULL);
                if (!it)
                        return -ENOMEM;
                it->token = tok;
        }
        s->next_token = nt;
        return 0;
}

int registry_from_json(json_object *o, Registry **ret) {
        _cleanup_(registry_freep) Registry *r = registry_new();
        json_object *vms, *v;
        uint64_t ver;
        int k;

        if (!r)
                return -ENOMEM;
        if (!o || !json_object_is_type(o, json_type_object) || get_u64(o, "version", 1000, &ver) < 0 ||
            ver != REGISTRY_VERSION || get_u64(o, "generation", UINT64_MAX, &r->generation) < 0)
                return -EBADMSG;
        vms = get(o, "vms", json_type_array);
        if (!vms)
                return -EBADMSG;
        for (size_t i = 0; i < json_object_array_length(vms); i++) {
                json_object *vo = json_object_array_get_idx(vms, i), *ss;
                char id[REG_VM_ID_MAX + 1];
                uint64_t uid, ns;
                RegVm *vm;

                if (copy_str(vo, "id", id, sizeof(id)) < 0 || get_u64(vo, "uid", UINT32_MAX, &uid) < 0 ||
                    get_u64(vo, "next_session", UINT32_MAX, &ns) < 0 || !(ss = get(vo, "sessions", json_type_array)))
                        return -EBADMSG;
                k = registry_add_vm(r, id, (uint32_t) uid, &vm);
                if (k < 0)
                        return k == -ENOMEM ? k : -EBADMSG;
                for (size_t j = 0; j < json_object_array_length(ss); j++) {
                        k = session_from_json(json_object_array_get_idx(ss, j), vm, ns);
                        if (k < 0)
                                return k;
                }
                vm->next_session = (uint32_t) ns;
        }
        if ((v = get(o, "update", json_type_object))) {
                if (!record_is_valid(v))
                        return -EBADMSG;
                r->update = json_object_get(v);
        }
        if ((v = get(o, "timeline", json_type_object))) {
                if (!record_is_valid(v))
                        return -EBADMSG;
                r->timeline = json_object_get(v);
        }
        *ret = TAKE_PTR(r);
        return 0;
}

/*
 * The text json-c makes of registry_to_json() (JSON_C_TO_STRING_PLAIN, no slash escape), but
 * written directly from the model: building the json-c tree, printing it and freeing it was
 * half of the freeze path's instructions at 256 VMs (docs/performance.md). The update record
 * and the timeline are json-c objects already and printed by json-c. test-registry checks
 * that both texts are identical.
 */
int registry_serialize(const Registry *r, char **ret, size_t *ret_len) {
        JsonText o = {};

        json_text_lit(&o, "{\"version\":");
        json_text_u64(&o, REGISTRY_VERSION);
        json_text_lit(&o, ",\"generation\":");
        json_text_u64(&o, r->generation);
        json_text_lit(&o, ",\"vms\":[");
        for (size_t i = 0; i < r->n_vms; i++) {
                const RegVm *vm = r->vms[i];

                if (i)
                        json_text_lit(&o, ",");
                json_text_lit(&o, "{\"id\":");
                json_text_string(&o, vm->id);
                json_text_lit(&o, ",\"uid\":");
                json_text_u64(&o, vm->uid);
                json_text_lit(&o, ",\"next_session\":");
                json_text_u64(&o, vm->next_session);
                json_text_lit(&o, ",\"sessions\":[");
                for (size_t j = 0; j < vm->n_sessions; j++) {
                        const RegSession *s = &vm->sessions[j];

                        if (j)
                                json_text_lit(&o, ",");
                        json_text_lit(&o, "{\"name\":");
                        json_text_string(&o, s->name);
                        if (s->delegated)
                                json_text_lit(&o, ",\"delegated\":true,\"next_token\":");
                        else
                                json_text_lit(&o, ",\"delegated\":false,\"next_token\":");
                        json_text_u64(&o, s->next_token);
                        json_text_lit(&o, ",\"items\":[");
                        for (size_t k = 0; k < s->n_items; k++) {
                                const RegItem *it = &s->items[k];

                                if (k)
                                        json_text_lit(&o, ",");
                                json_text_lit(&o, "{\"label\":");
                                json_text_string(&o, it->label);
                                json_text_lit(&o, ",\"token\":");
                                json_text_u64(&o, it->token);
                                json_text_lit(&o, ",\"kind\":");
                                json_text_string(&o, reg_kind_to_string(it->kind));
                                json_text_lit(&o, ",\"pci\":");
                                if (it->pci[0])
                                        json_text_string(&o, it->pci);
                                else
                                        json_text_lit(&o, "null");
                                json_text_lit(&o, "}");
                        }
                        json_text_lit(&o, "]}");
                }
                json_text_lit(&o, "]}");
        }
        json_text_lit(&o, "],\"update\":");
        json_text_value(&o, r->update);
        json_text_lit(&o, ",\"timeline\":");
        json_text_value(&o, r->timeline);
        json_text_lit(&o, "}");
        *ret = json_text_finish(&o, ret_len);
        return *ret ? 0 : -ENOMEM;
}

int registry_parse(const char *buf, size_t len, Registry **ret) {
        json_tokener *tok = json_tokener_new_ex(16);
        json_object *o;
        int r;

        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = len <= INT32_MAX ? json_tokener_parse_ex(tok, buf, (int) len) : NULL;
        json_tokener_free(tok);
        if (!o)
                return -EBADMSG;
        r = registry_from_json(o, ret);
        json_object_put(o);
        return r;
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static int save_buffer(const char *dir, const char *buf, size_t n, bool durable) {
        _cleanup_free_ char *tmp = NULL, *path = NULL;
        _cleanup_close_ int fd = -EBADF, dfd = -EBADF;
        int k;

        if (asprintf(&tmp, "%s/.%s.tmp", dir, REGISTRY_FILE) < 0 || asprintf(&path, "%s/%s", dir, REGISTRY_FILE) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        k = write_all(fd, buf, n);
        if (k >= 0 && durable && fsync(fd) < 0)
                k = -errno;
        if (k < 0) {
                (void) unlink(tmp);
                return k;
        }
        if (rename(tmp, path) < 0) {
                k = -errno;
                (void) unlink(tmp);
                return k;
        }
        /* Make the rename itself durable. */
        if (durable) {
                dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0)
                        (void) fsync(dfd);
        }
        return 0;
}

int registry_save_file(Registry *r, const char *dir) {
        _cleanup_free_ char *buf = NULL;
        size_t n;
        int k;

        r->generation++;
        k = registry_serialize(r, &buf, &n);
        if (k < 0)
                return k;
        return save_buffer(dir, buf, n, true);
}

static int read_all_fd(int fd, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, cap = 0;

        for (;;) {
                ssize_t k;
                if (n + 1 >= cap) {
                        char *t;
                        if (cap >= 256 * 1024 * 1024)
                                return -EFBIG;
                        cap = cap ? cap * 2 : 65536;
                        t = realloc(buf, cap);
                        if (!t)
                                return -ENOMEM;
                        buf = t;
                }
                k = pread(fd, buf + n, cap - n - 1, (off_t) n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = 0;
        *ret_len = n;
        *ret = TAKE_PTR(buf);
        return 0;
}

int registry_file_equals_fd(const char *dir, int fd) {
        _cleanup_free_ char *path = NULL, *a = NULL, *b = NULL;
        _cleanup_close_ int ffd = -EBADF;
        size_t na, nb;
        int k;

        if (asprintf(&path, "%s/%s", dir, REGISTRY_FILE) < 0)
                return -ENOMEM;
        ffd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (ffd < 0)
                return -errno;
        k = read_all_fd(ffd, &a, &na);
        if (k >= 0)
                k = read_all_fd(fd, &b, &nb);
        if (k < 0)
                return k;
        /* Both as their readers see them: up to the first NUL (the memfd has room to spare). */
        na = strlen(a);
        nb = strlen(b);
        return na == nb && memcmp(a, b, na) == 0;
}

int registry_load_file(const char *dir, Registry **ret) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t n;
        int k;

        if (asprintf(&path, "%s/%s", dir, REGISTRY_FILE) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        k = read_all_fd(fd, &buf, &n);
        if (k < 0)
                return k;
        return registry_parse(buf, strlen(buf), ret);
}

static int pwrite_all(int fd, const char *p, size_t n, off_t off) {
        while (n > 0) {
                ssize_t k = pwrite(fd, p, n, off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                off += k;
                n -= (size_t) k;
        }
        return 0;
}

int registry_rewrite_memfd(const Registry *r, int fd) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n;
        int k;

        if (fstat(fd, &st) < 0)
                return -errno;
        k = registry_serialize(r, &buf, &n);
        if (k < 0)
                return k;
        if ((off_t) n + 1 > st.st_size)
                return -ENOSPC;
        /* Include the terminating NUL: the reader stops there, whatever was written before. */
        return pwrite_all(fd, buf, n + 1, 0);
}

int registry_save_both(Registry *r, const char *dir, int memfd, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n;
        int k;

        r->generation++;
        k = registry_serialize(r, &buf, &n);
        if (k < 0)
                return k;
        if (fstat(memfd, &st) < 0)
                return -errno;
        if ((off_t) n + 1 > st.st_size)
                return -ENOSPC;
        k = pwrite_all(memfd, buf, n + 1, 0);
        if (k < 0)
                return k;
        k = save_buffer(dir, buf, n, false);
        if (k < 0)
                return k;
        if (ret_len)
                *ret_len = n;
        return 0;
}

/* The update record's entries set after the commit's write (besides each VM's t_freeze_ack_us). */
static const char *const final_keys[] = { "t_frozen_us", "t_reboot_us" };

int registry_write_final(int memfd, size_t offset, json_object *update) {
        static const char *const keys[] = { "id", "t_frozen_us", "t_reboot_us" };
        _cleanup_free_ char *text = NULL;
        json_object *v, *vms, *ack;
        struct stat st;
        JsonText o = {};
        size_t n;
        bool first = true;
        int k;

        if (!update || !json_object_object_get_ex(update, "id", &v))
                return -EINVAL;
        json_text_add(&o, REG_FINAL_MAGIC, strlen(REG_FINAL_MAGIC));
        json_text_lit(&o, "{");
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                if (!json_object_object_get_ex(update, keys[i], &v) || !json_object_is_type(v, json_type_int))
                        continue;
                if (!first)
                        json_text_lit(&o, ",");
                first = false;
                json_text_string(&o, keys[i]);
                json_text_lit(&o, ":");
                json_text_value(&o, v);
        }
        json_text_lit(&o, ",\"vms\":{");
        first = true;
        if (json_object_object_get_ex(update, "vms", &vms) && json_object_is_type(vms, json_type_object)) {
                json_object_object_foreach(vms, id, rec) {
                        if (!rec || !json_object_is_type(rec, json_type_object) ||
                            !json_object_object_get_ex(rec, "t_freeze_ack_us", &ack) || !json_object_is_type(ack, json_type_int))
                                continue;
                        if (!first)
                                json_text_lit(&o, ",");
                        first = false;
                        json_text_string(&o, id);
                        json_text_lit(&o, ":{\"t_freeze_ack_us\":");
                        json_text_value(&o, ack);
                        json_text_lit(&o, "}");
                }
        }
        json_text_lit(&o, "}}");
        text = json_text_finish(&o, &n);
        if (!text)
                return -ENOMEM;
        k = fstat(memfd, &st) < 0 ? -errno : 0;
        if (k >= 0 && (off_t) (offset + n + 1) > st.st_size)
                k = -ENOSPC;
        if (k >= 0)
                k = pwrite_all(memfd, text, n + 1, (off_t) offset);   /* with its NUL */
        return k;
}

int registry_merge_final(Registry *r, int memfd) {
        _cleanup_free_ char *buf = NULL;
        json_object *fin, *id, *in_id, *v, *vms, *in_vms, *ack;
        size_t n, start;
        int k;

        if (!r->update || !json_object_object_get_ex(r->update, "id", &in_id))
                return -ENOENT;
        k = read_all_fd(memfd, &buf, &n);
        if (k < 0)
                return k;
        start = strlen(buf) + 1;
        if (start >= n || strncmp(buf + start, REG_FINAL_MAGIC, strlen(REG_FINAL_MAGIC)) != 0)
                return -ENOENT;
        start += strlen(REG_FINAL_MAGIC);
        fin = json_tokener_parse(buf + start);   /* up to its NUL: read_all_fd() ends the buffer with one too */
        if (!fin || !json_object_is_type(fin, json_type_object) || !json_object_object_get_ex(fin, "id", &id) ||
            !json_object_is_type(id, json_type_int) || !json_object_is_type(in_id, json_type_int) ||
            json_object_get_uint64(id) != json_object_get_uint64(in_id)) {
                json_object_put(fin);
                return -ENOENT;   /* not written, or of another update: the registry alone is the record */
        }
        /* Outside input like the rest of the memfd: only the entries registry_write_final() writes. */
        for (size_t i = 0; i < ELEMENTSOF(final_keys); i++)
                if (json_object_object_get_ex(fin, final_keys[i], &v) && json_object_is_type(v, json_type_int))
                        json_object_object_add(r->update, final_keys[i], json_object_get(v));
        if (json_object_object_get_ex(fin, "vms", &vms) && json_object_is_type(vms, json_type_object) &&
            json_object_object_get_ex(r->update, "vms", &in_vms) && json_object_is_type(in_vms, json_type_object)) {
                json_object_object_foreach(vms, vm, rec) {
                        if (!rec || !json_object_is_type(rec, json_type_object) ||
                            !json_object_object_get_ex(rec, "t_freeze_ack_us", &ack) || !json_object_is_type(ack, json_type_int) ||
                            !registry_find_vm(r, vm))   /* a VM the registry does not hold gets no record */
                                continue;
                        if (!json_object_object_get_ex(in_vms, vm, &v) || !v || !json_object_is_type(v, json_type_object)) {
                                v = json_object_new_object();
                                if (!v)
                                        break;
                                json_object_object_add(in_vms, vm, v);
                        }
                        json_object_object_add(v, "t_freeze_ack_us", json_object_get(ack));
                }
        }
        json_object_put(fin);
        return 0;
}

int registry_write_memfd(const Registry *r, size_t size, int *ret_fd) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t n;
        int k;

        k = registry_serialize(r, &buf, &n);
        if (k < 0)
                return k;
        fd = memfd_create("lu-vfiod-registry", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (ftruncate(fd, (off_t) MAX(size, n + 1)) < 0)
                return -errno;
        k = pwrite_all(fd, buf, n + 1, 0);
        if (k < 0)
                return k;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int registry_read_fd(int fd, Registry **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t n;
        int k;

        k = read_all_fd(fd, &buf, &n);
        if (k < 0)
                return k;
        return registry_parse(buf, strlen(buf), ret);
}
