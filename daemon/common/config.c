/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Strict parser for lu-vfiod.conf; see config.h and conf/lu-vfiod.conf. */
#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel-image.h"
#include "macro.h"

#include "common/config.h"

/* true if @s equals one of up to four words (NULL-padded). */
static bool streq_any5(const char *s, const char *a, const char *b, const char *c, const char *d) {
        return strcmp(s, a) == 0 || strcmp(s, b) == 0 || (c && strcmp(s, c) == 0) || (d && strcmp(s, d) == 0);
}

void config_init_defaults(Config *c) {
        *c = (Config) {
                .max_message_size = 65536,
                .max_fds_per_message = 16,
                .max_items_per_vm = 1024,
                .max_vms = 1024,
                .max_connections = 1024,
                .max_connections_per_uid = CONFIG_DEFAULT_MAX_CONNECTIONS_PER_UID,
                .max_json_depth = 8,
                .max_pending_requests = 32,
                .prepare_timeout_ms = 30000,
                .freeze_timeout_ms = 10000,
                .freeze_policy = FREEZE_POLICY_ABORT,
                .check_cmdline = true,
                .bind_timeout_ms = 30000,
                .reclaim_grace_ms = 300000,
                .unclaimed_policy = UNCLAIMED_KEEP,
                .kexec_mode = KEXEC_MODE_DIRECT,
                .dbus = true,
                .polkit = true,
        };
}

void config_done(Config *c) {
        free(c->allow_uids);
        free(c->allow_gids);
        free(c->claims);
        free(c->vmm_socket);
        free(c->control_socket);
        free(c->state_dir);
        free(c->next_kernel_versions);
        c->vmm_socket = c->control_socket = c->state_dir = c->next_kernel_versions = NULL;
        c->allow_uids = c->allow_gids = NULL;
        c->claims = NULL;
        c->n_allow_uids = c->n_allow_gids = c->n_claims = 0;
}

typedef struct Ctx {
        const char *name;
        unsigned line;
        const char *key;
        char *errbuf;
        size_t errlen;
} Ctx;

_printf_(2, 3)
static int fail(Ctx *x, const char *fmt, ...) {
        char msg[256];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (x->errbuf)
                (void) snprintf(x->errbuf, x->errlen, "%s:%u: %s: %s", x->name, x->line, x->key ? x->key : "", msg);
        return -EINVAL;
}

static int parse_u32(Ctx *x, const char *v, uint32_t min, uint32_t max, uint32_t *ret) {
        char *end;
        unsigned long long n;

        if (!*v || *v == '-' || *v == '+')
                return fail(x, "expected an integer in %u..%u, got \"%s\"", min, max, v);
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno || *end || n < min || n > max)
                return fail(x, "expected an integer in %u..%u, got \"%s\"", min, max, v);
        *ret = (uint32_t) n;
        return 0;
}

/* Seconds with an optional fraction, to milliseconds; 0 is refused (a deadline of nothing). */
static int parse_sec(Ctx *x, const char *v, uint64_t *ret_ms) {
        char *end;
        double d;

        errno = 0;
        d = strtod(v, &end);
        if (!*v || errno || *end || !isfinite(d) || d < 0.001 || d > 86400.0 * 7)
                return fail(x, "expected seconds between 0.001 and 604800, got \"%s\"", v);
        *ret_ms = (uint64_t) llround(d * 1000.0);
        return 0;
}

static int parse_bool(Ctx *x, const char *v, bool *ret) {
        if (streq_any5(v, "yes", "true", "on", "1"))
                *ret = true;
        else if (streq_any5(v, "no", "false", "off", "0"))
                *ret = false;
        else
                return fail(x, "expected a boolean (yes/no), got \"%s\"", v);
        return 0;
}

static int parse_user(Ctx *x, const char *v, uint32_t *ret) {
        struct passwd *pw;
        uint32_t u;

        if (*v >= '0' && *v <= '9')
                return parse_u32(x, v, 0, UINT32_MAX - 1, ret);
        pw = getpwnam(v);
        if (!pw)
                return fail(x, "unknown user \"%s\"", v);
        u = pw->pw_uid;
        *ret = u;
        return 0;
}

static int parse_group(Ctx *x, const char *v, uint32_t *ret) {
        struct group *gr;

        if (*v >= '0' && *v <= '9')
                return parse_u32(x, v, 0, UINT32_MAX - 1, ret);
        gr = getgrnam(v);
        if (!gr)
                return fail(x, "unknown group \"%s\"", v);
        *ret = gr->gr_gid;
        return 0;
}

static int append_id(uint32_t **a, size_t *n, uint32_t v) {
        uint32_t *t = reallocarray(*a, *n + 1, sizeof(uint32_t));
        if (!t)
                return -ENOMEM;
        t[(*n)++] = v;
        *a = t;
        return 0;
}

/* Space-separated list; an empty value resets the list (systemd convention). */
static int parse_id_list(Ctx *x, char *v, bool group, uint32_t **a, size_t *n) {
        char *save = NULL;

        if (!*v) {
                free(*a);
                *a = NULL;
                *n = 0;
                return 0;
        }
        for (char *w = strtok_r(v, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
                uint32_t id;
                int r = group ? parse_group(x, w, &id) : parse_user(x, w, &id);
                if (r < 0)
                        return r;
                if (append_id(a, n, id) < 0)
                        return fail(x, "out of memory");
        }
        return 0;
}

/* VMClaim=<user|@group> <glob> */
static int parse_claim(Ctx *x, Config *c, char *v) {
        char *sp, *pat;
        ClaimRule rule = {};
        ClaimRule *t;
        int r;

        sp = strpbrk(v, " \t");
        if (!sp)
                return fail(x, "expected \"<user|@group> <vm-id-glob>\", got \"%s\"", v);
        *sp = 0;
        pat = sp + 1;
        pat += strspn(pat, " \t");
        if (!*pat || strlen(pat) >= sizeof(rule.pattern) || strpbrk(pat, " \t"))
                return fail(x, "bad VM id pattern \"%s\"", pat);
        for (const char *p = pat; *p; p++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-*?[]!", *p))
                        return fail(x, "bad character '%c' in VM id pattern", *p);
        if (v[0] == '@') {
                rule.is_group = true;
                r = parse_group(x, v + 1, &rule.id);
        } else
                r = parse_user(x, v, &rule.id);
        if (r < 0)
                return r;
        strcpy(rule.pattern, pat);
        t = reallocarray(c->claims, c->n_claims + 1, sizeof(ClaimRule));
        if (!t)
                return fail(x, "out of memory");
        t[c->n_claims++] = rule;
        c->claims = t;
        return 0;
}

static int parse_enum2(Ctx *x, const char *v, const char *a, const char *b, int *ret) {
        if (strcmp(v, a) == 0)
                *ret = 0;
        else if (strcmp(v, b) == 0)
                *ret = 1;
        else
                return fail(x, "expected \"%s\" or \"%s\", got \"%s\"", a, b, v);
        return 0;
}

/* An absolute, normalized-enough path of at most @max bytes (108 - 1 for socket paths). */
static int parse_path(Ctx *x, const char *v, size_t max, char **ret) {
        char *p;

        if (v[0] != '/')
                return fail(x, "expected an absolute path, got \"%s\"", v);
        if (strlen(v) > max)
                return fail(x, "path longer than %zu bytes", max);
        if (strpbrk(v, " \t") || strstr(v, "/../") || strstr(v, "//"))
                return fail(x, "path must not contain blanks, \"//\" or \"/../\"");
        p = strdup(v);
        if (!p)
                return fail(x, "out of memory");
        free(*ret);
        *ret = p;
        return 0;
}

static int assign(Ctx *x, Config *c, const char *section, const char *key, char *v) {
        int r, e = 0;

#define U32(sec, name, field, lo, hi) \
        if (strcmp(section, sec) == 0 && strcmp(key, name) == 0) return parse_u32(x, v, lo, hi, &c->field)
#define SEC(sec, name, field) \
        if (strcmp(section, sec) == 0 && strcmp(key, name) == 0) return parse_sec(x, v, &c->field)

        U32("Limits", "MaxMessageSize", max_message_size, 1024, 16 * 1024 * 1024);
        U32("Limits", "MaxFdsPerMessage", max_fds_per_message, 1, 253);
        U32("Limits", "MaxItemsPerVM", max_items_per_vm, 1, 65536);
        U32("Limits", "MaxVMs", max_vms, 1, 65536);
        U32("Limits", "MaxConnections", max_connections, 1, 65536);
        U32("Limits", "MaxConnectionsPerUser", max_connections_per_uid, 1, 65536);
        U32("Limits", "MaxJSONDepth", max_json_depth, 2, 64);
        U32("Limits", "MaxPendingRequests", max_pending_requests, 1, 4096);
        SEC("Update", "PrepareTimeoutSec", prepare_timeout_ms);
        SEC("Update", "FreezeTimeoutSec", freeze_timeout_ms);
        SEC("Restore", "BindTimeoutSec", bind_timeout_ms);
        SEC("Restore", "ReclaimGraceSec", reclaim_grace_ms);
#undef U32
#undef SEC
        if (strcmp(section, "Update") == 0 && strcmp(key, "FreezeTimeoutPolicy") == 0) {
                r = parse_enum2(x, v, "abort", "force", &e);
                if (r >= 0)
                        c->freeze_policy = e ? FREEZE_POLICY_FORCE : FREEZE_POLICY_ABORT;
                return r;
        }
        if (strcmp(section, "Update") == 0 && strcmp(key, "CheckCommandLine") == 0)
                return parse_bool(x, v, &c->check_cmdline);
        if (strcmp(section, "Restore") == 0 && strcmp(key, "BindDevices") == 0)
                return parse_bool(x, v, &c->bind_devices);
        if (strcmp(section, "Update") == 0 && strcmp(key, "NextKernelVersions") == 0) {
                char *t;
                if (!kernel_versions_policy_valid(v))
                        return fail(x, "expected \"any\", \"running-series\" or versions and ranges (7.1, 7.1.8..7.1.20, 7.2..), got \"%s\"", v);
                t = strdup(v);
                if (!t)
                        return fail(x, "out of memory");
                free(c->next_kernel_versions);
                c->next_kernel_versions = t;
                return 0;
        }
        if (strcmp(section, "Update") == 0 && strcmp(key, "NextKernelStrict") == 0)
                return parse_bool(x, v, &c->next_kernel_strict);
        if (strcmp(section, "Restore") == 0 && strcmp(key, "UnclaimedPolicy") == 0) {
                r = parse_enum2(x, v, "keep", "release", &e);
                if (r >= 0)
                        c->unclaimed_policy = e ? UNCLAIMED_RELEASE : UNCLAIMED_KEEP;
                return r;
        }
        if (strcmp(section, "Access") == 0 && strcmp(key, "AllowUsers") == 0)
                return parse_id_list(x, v, false, &c->allow_uids, &c->n_allow_uids);
        if (strcmp(section, "Access") == 0 && strcmp(key, "AllowGroups") == 0)
                return parse_id_list(x, v, true, &c->allow_gids, &c->n_allow_gids);
        if (strcmp(section, "Access") == 0 && strcmp(key, "VMClaim") == 0)
                return parse_claim(x, c, v);
        if (strcmp(section, "Access") == 0 && strcmp(key, "Polkit") == 0)
                return parse_bool(x, v, &c->polkit);
        if (strcmp(section, "Access") == 0 && strcmp(key, "OperatorGroup") == 0) {
                if (!*v) {
                        c->has_operator_gid = false;
                        return 0;
                }
                r = parse_group(x, v, &c->operator_gid);
                if (r >= 0)
                        c->has_operator_gid = true;
                return r;
        }
        if (strcmp(section, "Service") == 0 && strcmp(key, "VMMSocket") == 0)
                return parse_path(x, v, 107, &c->vmm_socket);
        if (strcmp(section, "Service") == 0 && strcmp(key, "ControlSocket") == 0)
                return parse_path(x, v, 107, &c->control_socket);
        if (strcmp(section, "Service") == 0 && strcmp(key, "StateDirectory") == 0)
                return parse_path(x, v, PATH_MAX - 64, &c->state_dir);
        if (strcmp(section, "Service") == 0 && strcmp(key, "KexecMode") == 0) {
                r = parse_enum2(x, v, "direct", "systemd", &e);
                if (r >= 0)
                        c->kexec_mode = e ? KEXEC_MODE_SYSTEMD : KEXEC_MODE_DIRECT;
                return r;
        }
        if (strcmp(section, "Service") == 0 && strcmp(key, "DBus") == 0)
                return parse_bool(x, v, &c->dbus);
        return fail(x, "unknown key in section [%s]", section);
}

static char *strip(char *s) {
        char *e;

        s += strspn(s, " \t\r");
        e = s + strlen(s);
        while (e > s && strchr(" \t\r\n", e[-1]))
                *--e = 0;
        return s;
}

int config_parse_string(Config *c, const char *name, const char *text, char *errbuf, size_t errlen) {
        _cleanup_free_ char *copy = strdup(text);
        char section[32] = "";
        Ctx x = { .name = name, .errbuf = errbuf, .errlen = errlen };
        char *save = NULL, *line, *p;

        if (!copy)
                return -ENOMEM;
        /* strtok_r would skip empty lines and break line numbers: walk by hand. */
        for (p = copy, x.line = 1; p; x.line++) {
                char *nl = strchr(p, '\n'), *eq, *key, *val;
                int r;

                if (nl)
                        *nl = 0;
                line = strip(p);
                p = nl ? nl + 1 : NULL;
                x.key = NULL;
                if (!*line || *line == '#' || *line == ';')
                        continue;
                if (*line == '[') {
                        size_t n = strlen(line);
                        x.key = line;
                        if (line[n - 1] != ']')
                                return fail(&x, "malformed section header");
                        line[n - 1] = 0;
                        if (!streq_any5(line + 1, "Limits", "Access", "Update", "Restore") &&
                            strcmp(line + 1, "Service") != 0)
                                return fail(&x, "unknown section");
                        snprintf(section, sizeof(section), "%s", line + 1);
                        continue;
                }
                eq = strchr(line, '=');
                if (!eq) {
                        x.key = line;
                        return fail(&x, "expected key=value");
                }
                *eq = 0;
                key = strip(line);
                val = strip(eq + 1);
                x.key = key;
                if (!*section)
                        return fail(&x, "key outside of a section");
                r = assign(&x, c, section, key, val);
                if (r < 0)
                        return r;
        }
        (void) save;
        if (c->max_connections_per_uid > c->max_connections) {
                /* The default follows a smaller MaxConnections; a value set larger is a mistake. */
                if (c->max_connections_per_uid != CONFIG_DEFAULT_MAX_CONNECTIONS_PER_UID) {
                        x.line = 0;
                        x.key = "MaxConnectionsPerUser";
                        return fail(&x, "larger than MaxConnections");
                }
                c->max_connections_per_uid = c->max_connections;
        }
        return 0;
}

int config_parse_file(Config *c, const char *path, bool missing_ok, char *errbuf, size_t errlen) {
        _cleanup_free_ char *buf = NULL;
        FILE *f;
        size_t n = 0, cap = 0;
        int r;

        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                if (r == -ENOENT && missing_ok)
                        return 0;
                if (errbuf)
                        (void) snprintf(errbuf, errlen, "%s: %s", path, strerror(-r));
                return r;
        }
        for (;;) {
                if (n + 4096 + 1 > cap) {
                        char *t;
                        if (cap > 1024 * 1024) {
                                fclose(f);
                                (void) snprintf(errbuf, errlen, "%s: file too large", path);
                                return -EFBIG;
                        }
                        cap = cap ? cap * 2 : 8192;
                        t = realloc(buf, cap);
                        if (!t) {
                                fclose(f);
                                return -ENOMEM;
                        }
                        buf = t;
                }
                size_t k = fread(buf + n, 1, cap - n - 1, f);
                n += k;
                if (k == 0)
                        break;
        }
        r = ferror(f) ? -EIO : 0;
        fclose(f);
        if (r < 0)
                return r;
        buf[n] = 0;
        if (strlen(buf) != n) {
                (void) snprintf(errbuf, errlen, "%s: contains a NUL byte", path);
                return -EINVAL;
        }
        return config_parse_string(c, path, buf, errbuf, errlen);
}

static bool id_in(const uint32_t *a, size_t n, uint32_t v) {
        for (size_t i = 0; i < n; i++)
                if (a[i] == v)
                        return true;
        return false;
}

static bool gid_matches(uid_t uid, gid_t gid, uint32_t want) {
        struct passwd *pw;
        gid_t groups[64];
        int n = ELEMENTSOF(groups);

        if (gid == want)
                return true;
        pw = getpwuid(uid);
        if (!pw || getgrouplist(pw->pw_name, gid, groups, &n) < 0)
                return false;
        for (int i = 0; i < n; i++)
                if (groups[i] == want)
                        return true;
        return false;
}

bool config_may_connect(const Config *c, uid_t uid, gid_t gid) {
        if (uid == 0)
                return true;
        if (c->n_allow_uids == 0 && c->n_allow_gids == 0)
                return true;
        if (id_in(c->allow_uids, c->n_allow_uids, uid))
                return true;
        for (size_t i = 0; i < c->n_allow_gids; i++)
                if (gid_matches(uid, gid, c->allow_gids[i]))
                        return true;
        return false;
}

bool config_may_claim(const Config *c, uid_t uid, gid_t gid, const char *vm_id) {
        if (uid == 0 || c->n_claims == 0)
                return true;
        for (size_t i = 0; i < c->n_claims; i++) {
                const ClaimRule *r = &c->claims[i];
                bool who = r->is_group ? gid_matches(uid, gid, r->id) : r->id == uid;
                if (who && fnmatch(r->pattern, vm_id, 0) == 0)
                        return true;
        }
        return false;
}
