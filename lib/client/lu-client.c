/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* liblu-vfio-client: blocking client of the lu-vfiod VMM protocol; see lu-client.h. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "linux/liveupdate.h"
#include "lu/liveupdate-v4.h"
#include "lu-client.h"

#define ACK_MESSAGE_MAX 256   /* the daemon's limit (docs/protocol.md, ack) */

#define RX_MAX (64 * 1024)
#define EVQ_MAX 256

typedef struct QueuedEvent {
        json_object *obj;
        struct QueuedEvent *next;
} QueuedEvent;

struct LuClient {
        int fd;
        uint64_t next_id;
        bool incoming;
        char abi[16];
        char state[16];
        char last_error[320];
        json_object *items;          /* from the hello reply */
        QueuedEvent *evq_head, *evq_tail;
        size_t evq_len;
        char *rx;
        unsigned version;            /* the protocol version both speak (hello reply) */
        /* fds that came with the hello reply (lu_client_connect_reclaim()), until reclaimed */
        size_t n_stash;
        int stash_fd[LU_CLIENT_RECLAIM_MAX];
        char stash_label[LU_CLIENT_RECLAIM_MAX][65];
        char stash_pci[LU_CLIENT_RECLAIM_MAX][LU_CLIENT_PCI_MAX];
};

static const struct {
        const char *code;
        int error;
} code_errno[] = {
        { "label-exists", EEXIST }, { "label-unknown", ENOENT }, { "vm-busy", EBUSY },
        { "permission-denied", EPERM }, { "version-unsupported", EPROTONOSUPPORT },
        { "timeout", ETIMEDOUT }, { "limit-reached", ENOSPC }, { "invalid-state", EBUSY },
};

int lu_client_get_fd(const LuClient *c) {
        return c->fd;
}

bool lu_client_incoming(const LuClient *c) {
        return c->incoming;
}

const char *lu_client_abi(const LuClient *c) {
        return c->abi;
}

/* Field @key of item @label in the hello reply, NULL if no such item or field. */
static const char *item_field(const LuClient *c, const char *label, const char *key) {
        for (size_t i = 0; c->items && label && i < json_object_array_length(c->items); i++) {
                json_object *it = json_object_array_get_idx(c->items, i), *v;
                const char *l = json_object_get_string(json_object_object_get(it, "label"));
                if (l && strcmp(l, label) == 0)
                        return json_object_object_get_ex(it, key, &v) && json_object_is_type(v, json_type_string) ?
                               json_object_get_string(v) : NULL;
        }
        return NULL;
}

const char *lu_client_item_state(const LuClient *c, const char *label) {
        return item_field(c, label, "state");
}

const char *lu_client_item_session(const LuClient *c, const char *label) {
        return item_field(c, label, "session");
}

const char *lu_client_daemon_state(const LuClient *c) {
        return c->state;
}

const char *lu_client_last_error(const LuClient *c) {
        return c->last_error;
}

LuClient *lu_client_free(LuClient *c) {
        if (!c)
                return NULL;
        while (c->evq_head) {
                QueuedEvent *q = c->evq_head;
                c->evq_head = q->next;
                json_object_put(q->obj);
                free(q);
        }
        for (size_t i = 0; i < c->n_stash; i++)
                if (c->stash_fd[i] >= 0)
                        close(c->stash_fd[i]);
        if (c->fd >= 0)
                close(c->fd);
        json_object_put(c->items);
        free(c->rx);
        free(c);
        return NULL;
}

static int send_msg(LuClient *c, json_object *o, int fd) {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { .iov_base = (void *) s, .iov_len = strlen(s) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (fd >= 0) {
                struct cmsghdr *cm;
                memset(cbuf, 0, sizeof(cbuf));
                mh.msg_control = cbuf;
                mh.msg_controllen = sizeof(cbuf);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        }
        for (;;) {
                if (sendmsg(c->fd, &mh, MSG_NOSIGNAL) >= 0)
                        return 0;
                if (errno != EINTR)
                        return -errno;
        }
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_object *parse_len(const char *buf, size_t n) {
        json_tokener *tok = json_tokener_new();
        json_object *o;

        if (!tok || n > INT32_MAX) {
                json_tokener_free(tok);
                return NULL;
        }
        o = json_tokener_parse_ex(tok, buf, (int) n);
        json_tokener_free(tok);
        return o;
}

static void close_all(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0) {
                        close(fds[i]);
                        fds[i] = -1;
                }
}

/*
 * Receive one message; the first @max_fds attached fds go to @fds (*ret_n_fds of them),
 * extra ones are closed.
 */
static int recv_msg_fds(LuClient *c, int timeout_ms, json_object **ret, int *fds, size_t max_fds, size_t *ret_n_fds) {
        char cbuf[CMSG_SPACE(sizeof(int) * LU_CLIENT_RECLAIM_MAX)];
        struct iovec iov = { .iov_base = c->rx, .iov_len = RX_MAX };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        json_object *o;
        ssize_t n;
        size_t n_fds = 0;

        if (timeout_ms >= 0) {
                struct pollfd p = { .fd = c->fd, .events = POLLIN };
                int k = poll(&p, 1, timeout_ms);
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -ETIMEDOUT;
        }
        do
                n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < k; i++) {
                                int x;
                                memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                                if (n_fds < max_fds)
                                        fds[n_fds++] = x;
                                else
                                        close(x);
                        }
                }
        if (n == 0) {
                close_all(fds, n_fds);
                return -ECONNRESET;
        }
        o = parse_len(c->rx, (size_t) n);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                close_all(fds, n_fds);
                return -EBADMSG;
        }
        *ret = o;
        *ret_n_fds = n_fds;
        return 0;
}

/* Receive one message; *ret_fd gets an attached fd (extra ones are closed). */
static int recv_msg(LuClient *c, int timeout_ms, json_object **ret, int *ret_fd) {
        int fd = -1;
        size_t n = 0;
        int r;

        r = recv_msg_fds(c, timeout_ms, ret, &fd, 1, &n);
        if (r < 0)
                return r;
        if (ret_fd)
                *ret_fd = n > 0 ? fd : -1;
        else if (n > 0)
                close(fd);
        return 0;
}

static void queue_event(LuClient *c, json_object *o) {
        QueuedEvent *q;

        if (c->evq_len >= EVQ_MAX) {
                json_object_put(o);   /* a VMM that never reads events loses the oldest news */
                return;
        }
        q = calloc(1, sizeof(QueuedEvent));
        if (!q) {
                json_object_put(o);
                return;
        }
        q->obj = o;
        if (c->evq_tail)
                c->evq_tail->next = q;
        else
                c->evq_head = q;
        c->evq_tail = q;
        c->evq_len++;
}

static int reply_error(LuClient *c, json_object *err) {
        json_object *code = json_object_object_get(err, "code");
        json_object *eno = json_object_object_get(err, "errno");
        json_object *msg = json_object_object_get(err, "message");
        int e = eno ? json_object_get_int(eno) : 0;

        snprintf(c->last_error, sizeof(c->last_error), "%s: %s", code ? json_object_get_string(code) : "error",
                 msg ? json_object_get_string(msg) : "");
        if (e <= 0 || e > 4095) {
                e = EIO;
                for (size_t i = 0; code && i < sizeof(code_errno) / sizeof(code_errno[0]); i++)
                        if (strcmp(json_object_get_string(code), code_errno[i].code) == 0)
                                e = code_errno[i].error;
        }
        return -e;
}

/* A reply nothing waits for: the refusal of a quiet ack (protocol version 2). Kept for lu_client_last_error(). */
static void note_stray_reply(LuClient *c, json_object *o) {
        json_object *v;

        if (json_object_object_get_ex(o, "error", &v))
                (void) reply_error(c, v);
}

/*
 * Send a request (taking ownership of @req) and wait for its reply; events that arrive
 * meanwhile are queued. On success *ret_result (may be NULL) is the "result" object and
 * the reply's first @max_fds fds are in @ret_fds (*ret_n_fds of them; extra ones closed).
 */
static int call_fds(LuClient *c, const char *method, json_object *req, int send_fd, json_object **ret_result,
                    int *ret_fds, size_t max_fds, size_t *ret_n_fds) {
        uint64_t id = ++c->next_id;
        int r;

        if (!req)
                req = json_object_new_object();
        if (!req)
                return -ENOMEM;
        json_object_object_add(req, "id", json_object_new_uint64(id));
        json_object_object_add(req, "method", json_object_new_string(method));
        r = send_msg(c, req, send_fd);
        json_object_put(req);
        if (r < 0)
                return r;
        c->last_error[0] = 0;
        for (;;) {
                json_object *o, *idv, *v;
                int fds[LU_CLIENT_RECLAIM_MAX];
                size_t n_fds = 0;

                r = recv_msg_fds(c, -1, &o, fds, max_fds < LU_CLIENT_RECLAIM_MAX ? max_fds : LU_CLIENT_RECLAIM_MAX, &n_fds);
                if (r < 0)
                        return r;
                if (json_object_object_get_ex(o, "event", NULL)) {
                        close_all(fds, n_fds);
                        queue_event(c, o);
                        continue;
                }
                if (!json_object_object_get_ex(o, "id", &idv) || !json_object_is_type(idv, json_type_int) ||
                    json_object_get_uint64(idv) != id) {
                        /* A reply to nothing we asked (or an id-less protocol error): note it, keep waiting. */
                        if (json_object_object_get_ex(o, "error", &v) && !json_object_is_type(idv, json_type_int)) {
                                r = reply_error(c, v);
                                json_object_put(o);
                                close_all(fds, n_fds);
                                return r;
                        }
                        note_stray_reply(c, o);
                        json_object_put(o);
                        close_all(fds, n_fds);
                        continue;
                }
                if (json_object_object_get_ex(o, "error", &v)) {
                        r = reply_error(c, v);
                        json_object_put(o);
                        close_all(fds, n_fds);
                        return r;
                }
                if (ret_result) {
                        *ret_result = json_object_object_get(o, "result") ? json_object_get(json_object_object_get(o, "result")) : NULL;
                }
                json_object_put(o);
                for (size_t i = 0; i < n_fds; i++)
                        ret_fds[i] = fds[i];
                if (ret_n_fds)
                        *ret_n_fds = n_fds;
                return 0;
        }
}

static int call(LuClient *c, const char *method, json_object *req, int send_fd, json_object **ret_result, int *ret_fd) {
        int fd = -1;
        size_t n = 0;
        int r;

        r = call_fds(c, method, req, send_fd, ret_result, &fd, ret_fd ? 1 : 0, &n);
        if (r >= 0 && ret_fd)
                *ret_fd = n > 0 ? fd : -1;
        return r;
}

static const char *get_str(json_object *o, const char *key) {
        json_object *v;
        if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
                return json_object_get_string(v);
        return NULL;
}

/* Keep the fds that came with the hello reply, by label, for lu_client_reclaim*(). */
static int stash_hello_fds(LuClient *c, json_object *res, int *fds, size_t n_fds) {
        json_object *arr;
        size_t n;

        if (!json_object_object_get_ex(res, "reclaimed", &arr) || !json_object_is_type(arr, json_type_array))
                n = 0;
        else
                n = json_object_array_length(arr);
        if (n != n_fds) {
                close_all(fds, n_fds);
                return -EBADMSG;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *it = json_object_array_get_idx(arr, i);
                const char *label = get_str(it, "label");

                if (!label || strlen(label) >= sizeof(c->stash_label[0])) {
                        close_all(fds + i, n_fds - i);
                        return -EBADMSG;
                }
                strcpy(c->stash_label[c->n_stash], label);
                snprintf(c->stash_pci[c->n_stash], LU_CLIENT_PCI_MAX, "%s", get_str(it, "pci") ?: "");
                c->stash_fd[c->n_stash++] = fds[i];
        }
        return 0;
}

static int connect_hello(const char *path, const char *vm_id, bool reclaim, LuClient **ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        json_object *req, *res = NULL, *v;
        int fds[LU_CLIENT_RECLAIM_MAX];
        size_t n_fds = 0;
        LuClient *c;
        int r;

        if (!vm_id || !ret)
                return -EINVAL;
        if (!path)
                path = LU_CLIENT_DEFAULT_SOCKET;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        c = calloc(1, sizeof(LuClient));
        if (!c)
                return -ENOMEM;
        c->rx = malloc(RX_MAX);
        c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (!c->rx || c->fd < 0) {
                r = c->rx ? -errno : -ENOMEM;
                lu_client_free(c);
                return r;
        }
        if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                r = -errno;
                lu_client_free(c);
                return r;
        }
        for (;;) {
                req = json_object_new_object();
                json_object_object_add(req, "version", json_object_new_int(LU_CLIENT_PROTOCOL_VERSION));
                json_object_object_add(req, "vm", json_object_new_string(vm_id));
                json_object_object_add(req, "client", json_object_new_string("liblu-vfio-client"));
                if (reclaim)
                        json_object_object_add(req, "reclaim", json_object_new_boolean(true));
                r = call_fds(c, "hello", req, -1, &res, fds, LU_CLIENT_RECLAIM_MAX, &n_fds);
                /* a daemon that speaks only version 1 refuses the field: say hello without it */
                if (r == -EINVAL && reclaim && strncmp(c->last_error, "invalid-params", 14) == 0) {
                        reclaim = false;
                        continue;
                }
                break;
        }
        if (r < 0) {
                lu_client_free(c);
                return r;
        }
        c->version = json_object_object_get_ex(res, "version", &v) ? (unsigned) json_object_get_int(v) : 1;
        r = stash_hello_fds(c, res, fds, n_fds);
        if (r < 0) {
                json_object_put(res);
                lu_client_free(c);
                return r;
        }
        c->incoming = json_object_object_get_ex(res, "incoming", &v) && json_object_get_boolean(v);
        snprintf(c->abi, sizeof(c->abi), "%s", get_str(res, "abi") ?: "none");
        snprintf(c->state, sizeof(c->state), "%s", get_str(res, "state") ?: "unknown");
        if (json_object_object_get_ex(res, "items", &v) && json_object_is_type(v, json_type_array))
                c->items = json_object_get(v);
        json_object_put(res);
        *ret = c;
        return 0;
}

int lu_client_connect(const char *path, const char *vm_id, LuClient **ret) {
        return connect_hello(path, vm_id, false, ret);
}

int lu_client_connect_reclaim(const char *path, const char *vm_id, LuClient **ret) {
        return connect_hello(path, vm_id, true, ret);
}

/* Index of @label's fd from the hello reply, or -1. */
static int stash_find(const LuClient *c, const char *label) {
        for (size_t i = 0; label && i < c->n_stash; i++)
                if (c->stash_fd[i] >= 0 && strcmp(c->stash_label[i], label) == 0)
                        return (int) i;
        return -1;
}

int lu_client_preserve(LuClient *c, const char *label, int fd, uint64_t *ret_token) {
        json_object *req = json_object_new_object(), *res = NULL, *v;
        int r;

        if (!label || fd < 0) {
                json_object_put(req);
                return -EINVAL;
        }
        json_object_object_add(req, "label", json_object_new_string(label));
        r = call(c, "preserve", req, fd, &res, NULL);
        if (r >= 0 && ret_token)
                *ret_token = json_object_object_get_ex(res, "token", &v) ? json_object_get_uint64(v) : 0;
        json_object_put(res);
        return r;
}

int lu_client_unpreserve(LuClient *c, const char *label) {
        json_object *req = json_object_new_object();

        json_object_object_add(req, "label", json_object_new_string(label ?: ""));
        return call(c, "unpreserve", req, -1, NULL, NULL);
}

static void event_from_json(json_object *o, LuEvent *ev) {
        json_object *v;
        const char *name = get_str(o, "event") ?: "";

        memset(ev, 0, sizeof(*ev));
        snprintf(ev->name, sizeof(ev->name), "%s", name);
        ev->type = strcmp(name, "prepare") == 0 ? LU_EVENT_PREPARE :
                   strcmp(name, "freeze") == 0 ? LU_EVENT_FREEZE :
                   strcmp(name, "resume") == 0 ? LU_EVENT_RESUME :
                   strcmp(name, "restore-ready") == 0 ? LU_EVENT_RESTORE_READY : LU_EVENT_OTHER;
        if (json_object_object_get_ex(o, "seq", &v))
                ev->seq = json_object_get_uint64(v);
        if (json_object_object_get_ex(o, "update", &v))
                ev->update = json_object_get_uint64(v);
        if (json_object_object_get_ex(o, "deadline_ms", &v))
                ev->deadline_ms = json_object_get_uint64(v);
        snprintf(ev->reason, sizeof(ev->reason), "%s", get_str(o, "reason") ?: "");
        snprintf(ev->message, sizeof(ev->message), "%s", get_str(o, "message") ?: "");
}

int lu_client_next_event(LuClient *c, int timeout_ms, LuEvent *ret) {
        int64_t end = timeout_ms > 0 ? now_ms() + timeout_ms : 0;

        for (;;) {
                json_object *o;
                int r, left;

                if (c->evq_head) {
                        QueuedEvent *q = c->evq_head;
                        c->evq_head = q->next;
                        if (!c->evq_head)
                                c->evq_tail = NULL;
                        c->evq_len--;
                        event_from_json(q->obj, ret);
                        json_object_put(q->obj);
                        free(q);
                        return 0;
                }
                left = timeout_ms < 0 ? -1 : timeout_ms == 0 ? 0 : (int) (end - now_ms() > 0 ? end - now_ms() : 0);
                r = recv_msg(c, left, &o, NULL);
                if (r < 0)
                        return r;
                if (json_object_object_get_ex(o, "event", NULL))
                        queue_event(c, o);
                else {
                        note_stray_reply(c, o);   /* nothing waits for it */
                        json_object_put(o);
                }
        }
}

int lu_client_ack(LuClient *c, const LuEvent *ev, bool ok, const char *message) {
        json_object *req = json_object_new_object();
        int r;

        json_object_object_add(req, "seq", json_object_new_uint64(ev->seq));
        json_object_object_add(req, "ok", json_object_new_boolean(ok));
        if (message) {
                char text[ACK_MESSAGE_MAX + 1];
                size_t n = strlen(message);

                if (n > ACK_MESSAGE_MAX) {
                        n = ACK_MESSAGE_MAX;
                        while (n > 0 && ((unsigned char) message[n] & 0xc0) == 0x80)
                                n--;   /* message[n] continues a character: cut before it */
                }
                memcpy(text, message, n);
                text[n] = 0;
                for (size_t i = 0; i < n; i++)
                        if ((unsigned char) text[i] < 0x20 || text[i] == 0x7f)
                                text[i] = ' ';
                json_object_object_add(req, "message", json_object_new_string(text));
        }
        if (ok && c->version >= 2) {
                /* Quiet: the daemon answers only a refusal, which nothing needs to act on (a
                 * resume follows); one datagram per event instead of a round trip. */
                json_object_object_add(req, "id", json_object_new_uint64(++c->next_id));
                json_object_object_add(req, "method", json_object_new_string("ack"));
                json_object_object_add(req, "quiet", json_object_new_boolean(true));
                r = send_msg(c, req, -1);
                json_object_put(req);
                return r;
        }
        return call(c, "ack", req, -1, NULL, NULL);
}

int lu_client_reclaim(LuClient *c, const char *label, int *ret_fd, char pci[LU_CLIENT_PCI_MAX]) {
        json_object *req, *res = NULL;
        int fd = -1, r, k = stash_find(c, label);

        if (k >= 0) {   /* it came with the hello reply */
                if (pci)
                        snprintf(pci, LU_CLIENT_PCI_MAX, "%s", c->stash_pci[k]);
                *ret_fd = c->stash_fd[k];
                c->stash_fd[k] = -1;
                return 0;
        }
        req = json_object_new_object();
        json_object_object_add(req, "label", json_object_new_string(label ?: ""));
        r = call(c, "reclaim", req, -1, &res, &fd);
        if (r >= 0 && fd < 0)
                r = -EBADMSG;
        if (r >= 0) {
                if (pci)
                        snprintf(pci, LU_CLIENT_PCI_MAX, "%s", get_str(res, "pci") ?: "");
                *ret_fd = fd;
        } else if (fd >= 0)
                close(fd);
        json_object_put(res);
        return r;
}

int lu_client_reclaim_many(LuClient *c, const char *const *labels, size_t n, int *ret_fds, char (*pcis)[LU_CLIENT_PCI_MAX]) {
        json_object *req, *arr, *res = NULL, *items;
        int fds[LU_CLIENT_RECLAIM_MAX];
        size_t n_fds = 0;
        int r;

        if (!c || !labels || !ret_fds || n < 1 || n > LU_CLIENT_RECLAIM_MAX)
                return -EINVAL;
        {
                /* All of them came with the hello reply (each label once): no round trip. */
                int idx[LU_CLIENT_RECLAIM_MAX];
                size_t found = 0;

                for (size_t i = 0; i < n; i++) {
                        idx[i] = stash_find(c, labels[i]);
                        for (size_t j = 0; idx[i] >= 0 && j < i; j++)
                                if (idx[j] == idx[i])
                                        idx[i] = -1;
                        found += idx[i] >= 0;
                }
                if (found == n) {
                        for (size_t i = 0; i < n; i++) {
                                ret_fds[i] = c->stash_fd[idx[i]];
                                c->stash_fd[idx[i]] = -1;
                                if (pcis)
                                        snprintf(pcis[i], LU_CLIENT_PCI_MAX, "%s", c->stash_pci[idx[i]]);
                        }
                        return 0;
                }
        }
        req = json_object_new_object();
        arr = json_object_new_array();
        if (!req || !arr) {
                json_object_put(req);
                json_object_put(arr);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                json_object_array_add(arr, json_object_new_string(labels[i] ?: ""));
        json_object_object_add(req, "labels", arr);
        r = call_fds(c, "reclaim", req, -1, &res, fds, n, &n_fds);
        if (r < 0)
                return r;
        items = json_object_object_get(res, "items");
        if (n_fds != n || !json_object_is_type(items, json_type_array) || json_object_array_length(items) != n) {
                close_all(fds, n_fds);
                json_object_put(res);
                return -EBADMSG;
        }
        for (size_t i = 0; i < n; i++) {
                ret_fds[i] = fds[i];
                if (pcis)
                        snprintf(pcis[i], LU_CLIENT_PCI_MAX, "%s", get_str(json_object_array_get_idx(items, i), "pci") ?: "");
        }
        json_object_put(res);
        return 0;
}

int lu_client_restored(LuClient *c) {
        return call(c, "restored", NULL, -1, NULL, NULL);
}

int lu_client_forget(LuClient *c) {
        return call(c, "forget", NULL, -1, NULL, NULL);
}

int lu_client_session_get(LuClient *c, int *ret_fd, bool *ret_incoming) {
        json_object *res = NULL, *v;
        int fd = -1, r;

        r = call(c, "session", NULL, -1, &res, &fd);
        if (r >= 0 && fd < 0)
                r = -EBADMSG;
        if (r >= 0) {
                *ret_fd = fd;
                if (ret_incoming)
                        *ret_incoming = json_object_object_get_ex(res, "incoming", &v) && json_object_get_boolean(v);
        } else if (fd >= 0)
                close(fd);
        json_object_put(res);
        return r;
}

int lu_client_wait_bound(LuClient *c, const char *pci, unsigned timeout_ms) {
        json_object *req = json_object_new_object();

        json_object_object_add(req, "pci", json_object_new_string(pci ?: ""));
        if (timeout_ms)
                json_object_object_add(req, "timeout_ms", json_object_new_int64(timeout_ms));
        return call(c, "wait-bound", req, -1, NULL, NULL);
}

int lu_client_session_preserve(LuClient *c, int session_fd, int fd, uint64_t token) {
        /* Upstream and v4 share layout and number for this one (0xBA40). */
        struct liveupdate_session_preserve_fd a = { .size = sizeof(a), .fd = fd, .token = token };

        (void) c;
        return ioctl(session_fd, LIVEUPDATE_SESSION_PRESERVE_FD, &a) < 0 ? -errno : 0;
}

int lu_client_session_retrieve(LuClient *c, int session_fd, uint64_t token, int *ret_fd) {
        struct liveupdate_session_retrieve_fd a = { .size = sizeof(a), .fd = -1, .token = token };
        unsigned long cmd = strcmp(c->abi, "v4") == 0 ? LUO_V4_SESSION_RESTORE_FD : LIVEUPDATE_SESSION_RETRIEVE_FD;

        if (ioctl(session_fd, cmd, &a) < 0)
                return -errno;
        if (a.fd < 0)
                return -EIO;
        *ret_fd = a.fd;
        return 0;
}
