/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for registry.c: model operations, JSON round trip, validation, atomic file save. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/registry.h"

static int failures;
#define CHECK(x) do { if (!(x)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); failures++; } } while (0)

static int bad(const char *json) {
        Registry *r = NULL;
        int k = registry_parse(json, strlen(json), &r);
        registry_free(r);
        return k == -EBADMSG;
}

int main(void) {
        _cleanup_(registry_freep) Registry *r = registry_new(), *r2 = NULL, *r3 = NULL;
        char dir[] = "/tmp/test-registry.XXXXXX";
        _cleanup_free_ char *a = NULL, *b = NULL;
        RegVm *vm;
        RegSession *s, *s2;
        RegItem *it;
        size_t na, nb;
        int fd;

        CHECK(r && registry_add_vm(r, "vm1", 1000, &vm) == 0);
        CHECK(registry_add_vm(r, "vm1", 1000, NULL) == -EEXIST);
        CHECK(registry_add_vm(r, "bad/id", 1000, NULL) == -EINVAL);
        s = reg_vm_add_session(vm, false);
        CHECK(s && strcmp(s->name, "luvf:vm1:0") == 0);
        it = reg_session_add_item(s, "ram0", REG_KIND_MEMFD, NULL);
        CHECK(it && it->token == 1);
        it = reg_session_add_item(s, "dev0", REG_KIND_VFIO, "0000:00:04.0");
        CHECK(it && it->token == 2);
        it->fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        s2 = reg_vm_add_session(vm, true);
        CHECK(s2 && strcmp(s2->name, "luvf:vm1:1") == 0);
        CHECK(reg_vm_count_items(vm) == 2);
        CHECK(reg_vm_find_item(vm, "dev0", &s) && s == &vm->sessions[0]);
        CHECK(reg_vm_delegated_session(vm) == &vm->sessions[1]);
        r->update = json_object_new_object();
        json_object_object_add(r->update, "state", json_object_new_string("prepared"));

        CHECK(registry_serialize(r, &a, &na) == 0);
        CHECK(registry_parse(a, na, &r2) == 0);
        CHECK(registry_serialize(r2, &b, &nb) == 0);
        CHECK(na == nb && memcmp(a, b, na) == 0);
        vm = registry_find_vm(r2, "vm1");
        CHECK(vm && vm->uid == 1000 && vm->n_sessions == 2 && vm->next_session == 2);
        it = reg_vm_find_item(vm, "dev0", NULL);
        CHECK(it && it->token == 2 && strcmp(it->pci, "0000:00:04.0") == 0 && it->kind == REG_KIND_VFIO && it->fd < 0);
        CHECK(vm->sessions[0].next_token == 3 && vm->sessions[1].delegated);
        /* registry_serialize() writes the model directly: it must be the text json-c makes of
         * registry_to_json(), byte for byte, whatever the strings hold (serialize-direct). */
        {
                _cleanup_(registry_freep) Registry *d = registry_new();
                _cleanup_free_ char *t = NULL;
                static const char *const odd[] = { "q\"uote", "back\\slash", "sl/ash", "tab\tnl\n", "\x01ctl\x1f",
                                                   "del\x7f", "utf8-\xc3\xa9", "" };
                RegVm *dv;
                RegSession *ds;
                json_object *ref;
                size_t tn;

                CHECK(d && registry_add_vm(d, "vm-odd", 4294967295u, &dv) == 0);
                ds = dv ? reg_vm_add_session(dv, false) : NULL;
                for (size_t i = 0; ds && i < sizeof(odd) / sizeof(odd[0]); i++) {
                        RegItem *x = reg_session_add_item(ds, "x", i % 2 ? REG_KIND_MEMFD : REG_KIND_VFIO, i % 2 ? NULL : "0000:00:04.0");
                        if (x)   /* labels are validated on the way in: put the odd ones in directly */
                                snprintf(x->label, sizeof(x->label), "%s", odd[i]);
                }
                CHECK(dv && reg_vm_add_session(dv, true));
                CHECK(d && registry_add_vm(d, "vm-empty", 0, NULL) == 0);
                d->generation = UINT64_MAX;
                d->update = json_object_new_object();
                json_object_object_add(d->update, "kernel", json_object_new_string("/boot/vm\"linuz/\x02"));
                json_object_object_add(d->update, "vms", json_object_new_object());
                d->timeline = json_object_new_array();
                CHECK(registry_serialize(d, &t, &tn) == 0);
                ref = registry_to_json(d);
                CHECK(ref && t && strcmp(t, json_object_to_json_string_ext(ref, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) == 0);
                CHECK(t && strlen(t) == tn);
                json_object_put(ref);
                free(t);
                t = NULL;
                /* and the one above, with an update record and no timeline */
                ref = registry_to_json(r);
                CHECK(registry_serialize(r, &t, &tn) == 0);
                CHECK(ref && t && strcmp(t, json_object_to_json_string_ext(ref, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) == 0);
                json_object_put(ref);
        }
        /* Tokens keep increasing after an unpreserve: never reused within a session. */
        reg_session_remove_item(&vm->sessions[0], reg_vm_find_item(vm, "ram0", NULL));
        it = reg_session_add_item(&vm->sessions[0], "ram1", REG_KIND_MEMFD, NULL);
        CHECK(it && it->token == 3);

        CHECK(bad("{}"));
        CHECK(bad("not json"));
        CHECK(bad("{\"version\":2,\"generation\":0,\"vms\":[]}"));
        CHECK(!bad("{\"version\":1,\"generation\":0,\"vms\":[]}"));
        CHECK(bad("{\"version\":1,\"generation\":0,\"vms\":[{\"id\":\"a/b\",\"uid\":0,\"next_session\":0,\"sessions\":[]}]}"));
        /* a session name that is not this VM's */
        CHECK(bad("{\"version\":1,\"generation\":0,\"vms\":[{\"id\":\"a\",\"uid\":0,\"next_session\":1,\"sessions\":"
                  "[{\"name\":\"luvf:b:0\",\"next_token\":1,\"items\":[]}]}]}"));
        /* duplicate labels in a VM, duplicate tokens, token >= next_token */
        CHECK(bad("{\"version\":1,\"generation\":0,\"vms\":[{\"id\":\"a\",\"uid\":0,\"next_session\":1,\"sessions\":"
                  "[{\"name\":\"luvf:a:0\",\"next_token\":3,\"items\":[{\"label\":\"x\",\"token\":1,\"kind\":\"memfd\"},"
                  "{\"label\":\"x\",\"token\":2,\"kind\":\"memfd\"}]}]}]}"));
        CHECK(bad("{\"version\":1,\"generation\":0,\"vms\":[{\"id\":\"a\",\"uid\":0,\"next_session\":1,\"sessions\":"
                  "[{\"name\":\"luvf:a:0\",\"next_token\":3,\"items\":[{\"label\":\"x\",\"token\":1,\"kind\":\"memfd\"},"
                  "{\"label\":\"y\",\"token\":1,\"kind\":\"memfd\"}]}]}]}"));
        CHECK(bad("{\"version\":1,\"generation\":0,\"vms\":[{\"id\":\"a\",\"uid\":0,\"next_session\":1,\"sessions\":"
                  "[{\"name\":\"luvf:a:0\",\"next_token\":1,\"items\":[{\"label\":\"x\",\"token\":1,\"kind\":\"memfd\"}]}]}]}"));
        CHECK(bad("{\"version\":1,\"generation\":0,\"vms\":[{\"id\":\"a\",\"uid\":0,\"next_session\":1,\"sessions\":"
                  "[{\"name\":\"luvf:a:0\",\"next_token\":2,\"items\":[{\"label\":\"x\",\"token\":1,\"kind\":\"sock\"}]}]}]}"));

        /* records whose vms members are not objects (consumers add to them) */
        CHECK(bad("{\"version\":1,\"generation\":3,\"vms\":[],\"update\":null,\"timeline\":{\"id\":1,\"vms\":{\"vm-1\":5}}}"));
        CHECK(bad("{\"version\":1,\"generation\":3,\"vms\":[],\"update\":{\"vms\":{\"vm-1\":null}}}"));
        CHECK(!bad("{\"version\":1,\"generation\":3,\"vms\":[],\"update\":{\"vms\":{\"vm-1\":{}}}}"));
        /* PCI addresses: canonical, only for vfio, required for vfio */
#define ONE_ITEM(item) "{\"version\":1,\"generation\":0,\"vms\":[{\"id\":\"a\",\"uid\":0,\"next_session\":1,\"sessions\":" \
                "[{\"name\":\"luvf:a:0\",\"next_token\":2,\"items\":[" item "]}]}]}"
        CHECK(!bad(ONE_ITEM("{\"label\":\"d\",\"token\":1,\"kind\":\"vfio\",\"pci\":\"0000:01:00.0\"}")));
        CHECK(bad(ONE_ITEM("{\"label\":\"d\",\"token\":1,\"kind\":\"vfio\",\"pci\":\"../../../../tmp\"}")));
        CHECK(bad(ONE_ITEM("{\"label\":\"d\",\"token\":1,\"kind\":\"vfio\",\"pci\":\"0:0:4.0\"}")));
        CHECK(bad(ONE_ITEM("{\"label\":\"d\",\"token\":1,\"kind\":\"vfio\",\"pci\":null}")));
        CHECK(bad(ONE_ITEM("{\"label\":\"d\",\"token\":1,\"kind\":\"memfd\",\"pci\":\"0000:01:00.0\"}")));
        /* a session number at or above next_session would be reused */
        CHECK(bad("{\"version\":1,\"generation\":0,\"vms\":[{\"id\":\"a\",\"uid\":0,\"next_session\":0,\"sessions\":"
                  "[{\"name\":\"luvf:a:0\",\"next_token\":1,\"items\":[]}]}]}"));
        /* next_token 0 would hand out token 0, which the reader refuses (registry-next-token) */
        CHECK(bad("{\"version\":1,\"generation\":0,\"vms\":[{\"id\":\"a\",\"uid\":0,\"next_session\":1,\"sessions\":"
                  "[{\"name\":\"luvf:a:0\",\"next_token\":0,\"items\":[]}]}]}"));
        /* session numbers do not wrap: the add is refused and the registry stays readable (registry-session-wrap) */
        {
                Registry *w = NULL, *w2 = NULL;
                _cleanup_free_ char *t = NULL;
                size_t tn;
                const char *j = "{\"version\":1,\"generation\":0,\"vms\":[{\"id\":\"a\",\"uid\":0,"
                                "\"next_session\":4294967295,\"sessions\":[{\"name\":\"luvf:a:4294967294\","
                                "\"next_token\":1,\"items\":[]}]}]}";
                CHECK(registry_parse(j, strlen(j), &w) == 0);
                errno = 0;
                CHECK(w && reg_vm_add_session(w->vms[0], false) == NULL && errno == ENOSPC);
                CHECK(w && w->vms[0]->n_sessions == 1);
                CHECK(w && registry_serialize(w, &t, &tn) == 0 && registry_parse(t, tn, &w2) == 0);
                registry_free(w);
                registry_free(w2);
        }
        /* values above 2^63 read back exactly */
        {
                Registry *big = NULL;
                const char *j = "{\"version\":1,\"generation\":18446744073709551615,\"vms\":[{\"id\":\"a\",\"uid\":0,"
                                "\"next_session\":1,\"sessions\":[{\"name\":\"luvf:a:0\",\"next_token\":18446744073709551614,"
                                "\"items\":[{\"label\":\"x\",\"token\":9223372036854775809,\"kind\":\"memfd\"}]}]}]}";
                CHECK(registry_parse(j, strlen(j), &big) == 0);
                CHECK(big && big->generation == UINT64_MAX && big->vms[0]->sessions[0].items[0].token == 9223372036854775809ULL);
                CHECK(big && reg_session_add_item(&big->vms[0]->sessions[0], "y", REG_KIND_MEMFD, NULL) == NULL);
                registry_free(big);
        }

        /* file and memfd round trips */
        CHECK(mkdtemp(dir) != NULL);
        CHECK(registry_load_file(dir, &r3) == -ENOENT);
        CHECK(registry_save_file(r, dir) == 0 && r->generation == 1);
        CHECK(registry_save_file(r, dir) == 0 && r->generation == 2);
        CHECK(registry_load_file(dir, &r3) == 0 && r3->generation == 2 && r3->n_vms == 1);
        CHECK(r3->update && strcmp(json_object_get_string(json_object_object_get(r3->update, "state")), "prepared") == 0);
        /* registry_save_both(): the mirror and the memfd hold one text (restore.c relies on
         * registry_file_equals_fd() to skip parsing the mirror again) */
        {
                int mfd = -EBADF;
                CHECK(registry_write_memfd(r, 1 << 16, &mfd) == 0);
                CHECK(registry_file_equals_fd(dir, mfd) == 1);   /* the same text as the file (generation 2) */
                r->generation++;
                CHECK(registry_rewrite_memfd(r, mfd) == 0);
                CHECK(registry_file_equals_fd(dir, mfd) == 0);   /* generation 3 in the memfd only */
                size_t len = 0;
                Registry *rd = NULL;
                json_object *u, *vv, *x;

                CHECK(registry_save_both(r, dir, mfd, &len) == 0 && len > 0);
                CHECK(registry_file_equals_fd(dir, mfd) == 1);
                /* the final record after it (do_kexec()), read back into the update (restore_start()) */
                CHECK(registry_read_fd(mfd, &rd) == 0 && registry_merge_final(rd, mfd) == -ENOENT);   /* none yet */
                registry_free(rd);
                rd = NULL;
                u = r->update;
                json_object_object_add(u, "id", json_object_new_uint64(9));
                json_object_object_add(u, "t_frozen_us", json_object_new_uint64(1764680000000001ULL));
                json_object_object_add(u, "t_reboot_us", json_object_new_uint64(18446744073709551615ULL));
                vv = json_object_new_object();
                x = json_object_new_object();
                json_object_object_add(x, "t_prepare_ack_us", json_object_new_uint64(5));
                json_object_object_add(x, "t_freeze_ack_us", json_object_new_uint64(6));
                json_object_object_add(vv, "vm1", x);
                json_object_object_add(vv, "vm\"2", json_object_new_object());   /* no ack: left out */
                json_object_object_add(u, "vms", vv);
                CHECK(registry_write_final(mfd, len + 1, u) == 0);
                CHECK(registry_file_equals_fd(dir, mfd) == 1);   /* readers up to the NUL see the same text */
                CHECK(registry_read_fd(mfd, &rd) == 0 && rd->update);
                /* the registry as written at commit: no id yet; then the same update id in both */
                CHECK(rd && registry_merge_final(rd, mfd) == -ENOENT);
                if (rd && rd->update) {
                        json_object_object_add(rd->update, "id", json_object_new_uint64(8));
                        CHECK(registry_merge_final(rd, mfd) == -ENOENT);   /* another update's */
                        json_object_object_add(rd->update, "id", json_object_new_uint64(9));
                        json_object_object_add(rd->update, "vms", json_object_new_object());
                        CHECK(registry_merge_final(rd, mfd) == 0);
                        CHECK(json_object_get_uint64(json_object_object_get(rd->update, "t_reboot_us")) == 18446744073709551615ULL);
                        CHECK(json_object_get_uint64(json_object_object_get(rd->update, "t_frozen_us")) == 1764680000000001ULL);
                        x = json_object_object_get(json_object_object_get(rd->update, "vms"), "vm1");
                        CHECK(x && json_object_get_uint64(json_object_object_get(x, "t_freeze_ack_us")) == 6);
                        CHECK(!json_object_object_get(json_object_object_get(rd->update, "vms"), "vm\"2"));
                }
                registry_free(rd);
                {
                        struct stat st;
                        CHECK(fstat(mfd, &st) == 0 && registry_write_final(mfd, (size_t) st.st_size - 8, u) == -ENOSPC);
                }
                json_object_object_del(u, "id");
                json_object_object_del(u, "t_frozen_us");
                json_object_object_del(u, "t_reboot_us");
                json_object_object_del(u, "vms");
                r->generation++;
                CHECK(registry_rewrite_memfd(r, mfd) == 0);      /* a later text, shorter or longer */
                CHECK(registry_file_equals_fd(dir, mfd) == 0);
                safe_close(mfd);
        }
        {
                char p[128];
                snprintf(p, sizeof(p), "%s/.registry.json.tmp", dir);
                CHECK(access(p, F_OK) < 0);
                snprintf(p, sizeof(p), "%s/registry.json", dir);
                unlink(p);
                rmdir(dir);
        }
        registry_free(r3);
        r3 = NULL;
        CHECK(registry_write_memfd(r, 1 << 16, &fd) == 0);
        CHECK(lseek(fd, 0, SEEK_END) == 1 << 16);   /* position moved; reader must not depend on it */
        CHECK(registry_read_fd(fd, &r3) == 0 && r3->n_vms == 1);
        registry_free(r3);
        r3 = NULL;
        /* a shorter rewrite in place must not leave the old tail readable */
        registry_remove_vm(r, registry_find_vm(r, "vm1"));
        CHECK(registry_rewrite_memfd(r, fd) == 0);
        CHECK(registry_read_fd(fd, &r3) == 0 && r3->n_vms == 0);
        CHECK(ftruncate(fd, 8) == 0 && registry_rewrite_memfd(r, fd) == -ENOSPC);
        close(fd);

        {
                /* the index by id: through growth, removals in any order, and ids that differ by little */
                _cleanup_(registry_freep) Registry *big = registry_new();
                char id[32];
                bool ok = big != NULL;

                for (int i = 0; ok && i < 1000; i++) {
                        snprintf(id, sizeof(id), "vm-%d", i);
                        ok = registry_add_vm(big, id, 0, NULL) == 0 && registry_add_vm(big, id, 0, NULL) == -EEXIST;
                }
                CHECK(ok && big->n_vms == 1000);
                for (int i = 0; ok && i < 1000; i += 3) {
                        snprintf(id, sizeof(id), "vm-%d", i);
                        vm = registry_find_vm(big, id);
                        ok = vm && strcmp(vm->id, id) == 0;
                        if (ok)
                                registry_remove_vm(big, vm);
                }
                CHECK(ok && big->n_vms == 666);
                for (int i = 0; ok && i < 1000; i++) {
                        snprintf(id, sizeof(id), "vm-%d", i);
                        vm = registry_find_vm(big, id);
                        ok = i % 3 == 0 ? vm == NULL : vm != NULL && strcmp(vm->id, id) == 0;
                }
                CHECK(ok);
                CHECK(registry_add_vm(big, "vm-0", 0, NULL) == 0 && registry_find_vm(big, "vm-0") != NULL);
                CHECK(registry_find_vm(big, "vm-") == NULL && registry_find_vm(big, "") == NULL);
                {
                        _cleanup_(registry_freep) Registry *empty = registry_new();
                        CHECK(empty && registry_find_vm(empty, "x") == NULL);
                }
        }

        if (failures)
                fprintf(stderr, "%d failures\n", failures);
        return failures ? 1 : 0;
}
