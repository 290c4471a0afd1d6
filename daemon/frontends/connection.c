/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SEQPACKET listeners and connections, shared by every protocol; see connection.h. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "system/log.h"
#include <systemd/sd-daemon.h>

#include "frontends/connection.h"

/* Unsent messages a slow client may accumulate before it is disconnected. */
#define OUTQ_MAX 1024

/* Most fds one message carries: a multi-label reclaim reply. */
#define OUT_FDS_MAX PROTO_RECLAIM_LABELS_MAX

typedef struct OutMsg {
        char *data;
        size_t len;
        int fds[OUT_FDS_MAX];
        size_t n_fds;
        struct OutMsg *next;
} OutMsg;

typedef struct ConnCall {
        Call call;
        Conn *conn;
        struct ConnCall *next, *prev;
} ConnCall;

struct Conn {
        Server *server;
        const ConnProtocol *proto;
        void *userdata;         /* the protocol's: the VMM protocol's RegVm after hello */
        int fd;
        sd_event_source *io;
        uid_t uid;
        gid_t gid;
        pid_t pid;
        bool dead;
        bool in_dispatch;
        uint64_t next_seq;
        unsigned pending;
        OutMsg *out_head, *out_tail;
        size_t n_out;
        ConnCall *calls;
        Conn *next, *prev;
};

/* A listening socket and the protocol spoken on its connections. */
typedef struct Listener {
        Server *server;
        const ConnProtocol *proto;
        int fd;
        sd_event_source *io;
        char *path;             /* bound by server_listen(), unlinked at the end; NULL if adopted */
} Listener;

#define SERVER_LISTENERS_MAX 4

struct Server {
        sd_event *event;
        Manager *manager;
        Config *config;
        Listener listeners[SERVER_LISTENERS_MAX];
        size_t n_listeners;
        Conn *conns;
        size_t n_conns;
        char *rxbuf;
        size_t rxsize;
};

Manager *conn_manager(Conn *c) {
        return c->server->manager;
}

Config *conn_config(Conn *c) {
        return c->server->config;
}

uid_t conn_uid(Conn *c) {
        return c->uid;
}

gid_t conn_gid(Conn *c) {
        return c->gid;
}

pid_t conn_pid(Conn *c) {
        return c->pid;
}

void *conn_get_userdata(Conn *c) {
        return c->userdata;
}

void conn_set_userdata(Conn *c, void *userdata) {
        c->userdata = userdata;
}

static void close_fds(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                fds[i] = safe_close(fds[i]);
}

static void conn_free(Conn *c) {
        Server *s = c->server;

        if (c->proto->disconnected)
                c->proto->disconnected(c);
        /* Calls still owned by the manager are answered into the void. */
        for (ConnCall *cc = c->calls; cc; cc = cc->next) {
                cc->conn = NULL;
                cc->call.gone = true;
        }
        while (c->out_head) {
                OutMsg *o = c->out_head;
                c->out_head = o->next;
                close_fds(o->fds, o->n_fds);
                free(o->data);
                free(o);
        }
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;
        free(c);
}

/*
 * Connections are edge-triggered: a level-triggered epoll reports every readable connection
 * again at each sd-event iteration, and sd-event dispatches one source per iteration, so a
 * burst from N VMMs (N freeze acks, N reconnects) cost O(N²) in the kernel's ep_send_events.
 * The price: a handler that stops before EAGAIN must re-arm (conn_update_events() always
 * re-registers an EPOLLET source, and the kernel then reports it again if still ready).
 */
#define CONN_EVENTS_IN  (EPOLLIN | EPOLLET)

static void conn_kill(Conn *c);

static int conn_update_events(Conn *c) {
        int r = sd_event_source_set_io_events(c->io, CONN_EVENTS_IN | (c->out_head ? EPOLLOUT : 0));

        /* An edge not re-armed is never reported again: the client would hang. Drop it instead. */
        if (r < 0)
                conn_kill(c);
        return r;
}

static int send_one(Conn *c, const char *data, size_t len, const int *fds, size_t n_fds) {
        char cbuf[CMSG_SPACE(sizeof(int) * OUT_FDS_MAX)] = {};
        struct iovec iov = { .iov_base = (void *) data, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t k;

        assert(n_fds <= OUT_FDS_MAX);
        if (n_fds > 0) {
                struct cmsghdr *cm;
                mh.msg_control = cbuf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
        }
        k = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0)
                return -errno;
        return 0;
}

static void conn_kill(Conn *c) {
        /* Makes the io handler see EPOLLHUP, which frees the connection in a safe place. */
        c->dead = true;
        (void) shutdown(c->fd, SHUT_RDWR);
}

/* Takes ownership of @data and of the @n_fds fds in @fds (at most OUT_FDS_MAX). */
static void conn_send_fds(Conn *c, char *data, int *fds, size_t n_fds) {
        OutMsg *o;
        int r;

        if (!data || n_fds > OUT_FDS_MAX) {
                free(data);
                close_fds(fds, n_fds);
                conn_kill(c);
                return;
        }
        if (c->dead) {
                free(data);
                close_fds(fds, n_fds);
                return;
        }
        if (!c->out_head) {
                r = send_one(c, data, strlen(data), fds, n_fds);
                if (r >= 0) {
                        free(data);
                        close_fds(fds, n_fds);
                        return;
                }
                if (r != -EAGAIN) {
                        free(data);
                        close_fds(fds, n_fds);
                        conn_kill(c);
                        return;
                }
        }
        if (c->n_out >= OUTQ_MAX) {
                log_warning("Client (pid %d) does not read its messages; disconnecting", (int) c->pid);
                free(data);
                close_fds(fds, n_fds);
                conn_kill(c);
                return;
        }
        o = calloc(1, sizeof(OutMsg));
        if (!o) {
                free(data);
                close_fds(fds, n_fds);
                conn_kill(c);
                return;
        }
        o->data = data;
        o->len = strlen(data);
        for (size_t i = 0; i < n_fds; i++) {
                o->fds[i] = fds[i];
                fds[i] = -EBADF;
        }
        o->n_fds = n_fds;
        if (c->out_tail)
                c->out_tail->next = o;
        else
                c->out_head = o;
        c->out_tail = o;
        c->n_out++;
        (void) conn_update_events(c);
}

/* Takes ownership of @data and @fd. */
static void conn_send(Conn *c, char *data, int fd) {
        int fds[1] = { fd };

        conn_send_fds(c, data, fds, fd >= 0 ? 1 : 0);
}

static void conn_flush(Conn *c) {
        while (c->out_head) {
                OutMsg *o = c->out_head;
                int r = send_one(c, o->data, o->len, o->fds, o->n_fds);
                if (r == -EAGAIN)
                        break;
                if (r < 0) {
                        c->dead = true;
                        break;
                }
                c->out_head = o->next;
                if (!c->out_head)
                        c->out_tail = NULL;
                c->n_out--;
                close_fds(o->fds, o->n_fds);
                free(o->data);
                free(o);
        }
        (void) conn_update_events(c);
}

/* A connection that died outside its own handler is freed from a deferred check. */
static void conn_maybe_free(Conn *c) {
        if (c->dead && !c->in_dispatch)
                conn_free(c);
}

void conn_reply_ok(Conn *c, uint64_t id, json_object *result, int fd) {
        conn_send(c, proto_reply_ok(id, result), fd);
}

void conn_reply_error(Conn *c, bool has_id, uint64_t id, const ProtoError *e) {
        conn_send(c, proto_reply_error(has_id, id, e), -EBADF);
}

int64_t conn_send_event(Conn *c, const char *event, json_object *fields) {
        uint64_t seq = ++c->next_seq;

        conn_send(c, proto_event(event, seq, fields), -EBADF);
        return c->dead ? -EPIPE : (int64_t) seq;
}

int64_t conn_send_event_head(Conn *c, const char *head, size_t len) {
        uint64_t seq = ++c->next_seq;

        conn_send(c, head ? proto_event_finish(head, len, seq) : NULL, -EBADF);
        return c->dead ? -EPIPE : (int64_t) seq;
}


static void conn_call_complete(Call *call, json_object *result, int *fds, size_t n_fds, const ProtoError *err) {
        ConnCall *cc = (ConnCall *) call;
        Conn *c = cc->conn;

        if (c) {
                if (err)
                        conn_reply_error(c, true, call->id, err);
                else {
                        conn_send_fds(c, proto_reply_ok(call->id, result), fds, n_fds);
                        result = NULL;
                }
                if (cc->prev)
                        cc->prev->next = cc->next;
                else
                        c->calls = cc->next;
                if (cc->next)
                        cc->next->prev = cc->prev;
                c->pending--;
        }
        json_object_put(result);
        close_fds(fds, n_fds);   /* no-op for what conn_send_fds() took */
        free(cc);
}

Call *conn_new_call(Conn *c, uint64_t id) {
        ConnCall *cc;
        ProtoError e = {};

        if (c->pending >= c->server->config->max_pending_requests) {
                proto_error_set(&e, PROTO_E_LIMIT, EBUSY, "too many outstanding requests (MaxPendingRequests=%u)",
                                c->server->config->max_pending_requests);
                conn_reply_error(c, true, id, &e);
                return NULL;
        }
        cc = calloc(1, sizeof(ConnCall));
        if (!cc) {
                proto_error_set(&e, PROTO_E_INTERNAL, ENOMEM, "out of memory");
                conn_reply_error(c, true, id, &e);
                return NULL;
        }
        cc->call.complete = conn_call_complete;
        cc->call.id = id;
        cc->conn = c;
        cc->next = c->calls;
        if (c->calls)
                c->calls->prev = cc;
        c->calls = cc;
        c->pending++;
        return &cc->call;
}

/* ---------------------------------------------------------------- I/O */

/* Returns true if a message (or EOF) was consumed, false when nothing was waiting. */
static bool conn_receive(Conn *c) {
        Server *s = c->server;
        size_t max_fds = s->config->max_fds_per_message;
        _cleanup_free_ char *cbuf = NULL;
        struct iovec iov = { .iov_base = s->rxbuf, .iov_len = s->rxsize };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        int fds[256];
        size_t n_fds = 0;
        ProtoRequest req;
        ProtoError e = {};
        ssize_t n;

        cbuf = calloc(1, CMSG_SPACE(sizeof(int) * max_fds));
        if (!cbuf) {
                c->dead = true;
                return false;
        }
        mh.msg_control = cbuf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * max_fds);
        do
                n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);   /* edge-triggered: only EAGAIN may end the batch */
        if (n < 0) {
                if (errno != EAGAIN)
                        c->dead = true;
                return false;
        }
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < k; i++) {
                                int fd;
                                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                                if (n_fds < ELEMENTSOF(fds))
                                        fds[n_fds++] = fd;
                                else
                                        safe_close(fd);
                        }
                }
        if (n == 0 && n_fds == 0) {
                c->dead = true;       /* orderly EOF (SEQPACKET has no empty messages we accept) */
                return true;
        }
        if (mh.msg_flags & MSG_CTRUNC) {
                close_fds(fds, n_fds);
                proto_error_set(&e, PROTO_E_TOO_MANY_FDS, EMFILE, "more than %zu fds in one message; all were closed", max_fds);
                /* Still try to answer with the request's id. */
                if (!(mh.msg_flags & MSG_TRUNC) && proto_request_parse(s->rxbuf, n, s->config->max_json_depth, &req, &(ProtoError) {}) >= 0) {
                        conn_reply_error(c, true, req.id, &e);
                        proto_request_done(&req);
                } else
                        conn_reply_error(c, false, 0, &e);
                return true;
        }
        if (mh.msg_flags & MSG_TRUNC) {
                close_fds(fds, n_fds);
                proto_error_set(&e, PROTO_E_MESSAGE_TOO_LARGE, EMSGSIZE, "message longer than %zu bytes", s->rxsize);
                conn_reply_error(c, false, 0, &e);
                return true;
        }
        if (proto_request_parse(s->rxbuf, n, s->config->max_json_depth, &req, &e) < 0) {
                close_fds(fds, n_fds);
                conn_reply_error(c, req.has_id, req.id, &e);
                return true;
        }
        if (c->pending >= s->config->max_pending_requests) {
                close_fds(fds, n_fds);
                proto_error_set(&e, PROTO_E_LIMIT, EBUSY, "too many outstanding requests");
                conn_reply_error(c, true, req.id, &e);
                proto_request_done(&req);
                return true;
        }
        c->proto->dispatch(c, &req, fds, n_fds);
        close_fds(fds, n_fds);   /* whatever the dispatcher did not take */
        proto_request_done(&req);
        return true;
}

static int on_conn_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Conn *c = userdata;

        c->in_dispatch = true;
        if (revents & EPOLLOUT)
                conn_flush(c);
        if (revents & EPOLLIN) {
                /* A bounded batch per wakeup keeps one chatty client from starving others. */
                int i;
                for (i = 0; i < 16 && !c->dead; i++)
                        if (!conn_receive(c))
                                break;
                if (i == 16 && !c->dead)
                        (void) conn_update_events(c);   /* more may be waiting: re-arm the edge */
        } else if (revents & (EPOLLHUP | EPOLLERR))
                c->dead = true;
        c->in_dispatch = false;
        conn_maybe_free(c);
        return 0;
}

static size_t conns_of_uid(Server *s, uid_t uid) {
        size_t n = 0;
        for (Conn *c = s->conns; c; c = c->next)
                n += c->uid == uid;
        return n;
}

static void refuse(int fd, ProtoErrorCode code, int error, const char *msg) {
        ProtoError e = {};
        char *data;

        proto_error_set(&e, code, error, "%s", msg);
        data = proto_reply_error(false, 0, &e);
        if (data)
                (void) send(fd, data, strlen(data), MSG_NOSIGNAL | MSG_DONTWAIT);
        free(data);
        safe_close(fd);
}

static int on_listen_io(sd_event_source *src, int lfd, uint32_t revents, void *userdata) {
        Listener *l = userdata;
        Server *s = l->server;

        for (int i = 0; i < 64; i++) {
                struct ucred cred;
                socklen_t len = sizeof(cred);
                ProtoError e = {};
                Conn *c;
                int fd, r;

                fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0)
                        return 0;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                        safe_close(fd);
                        continue;
                }
                if (l->proto->admit && l->proto->admit(s, &cred, &e) < 0) {
                        refuse(fd, e.code, e.error, e.message);
                        continue;
                }
                /* Root is trusted and runs the VMMs of many hosts: only the total bounds it. */
                if (s->n_conns >= s->config->max_connections ||
                    (cred.uid != 0 && conns_of_uid(s, cred.uid) >= s->config->max_connections_per_uid)) {
                        log_warning("Refusing connection from uid %u: connection limit", (unsigned) cred.uid);
                        refuse(fd, PROTO_E_LIMIT, EMFILE, "too many connections");
                        continue;
                }
                c = calloc(1, sizeof(Conn));
                if (!c) {
                        safe_close(fd);
                        continue;
                }
                c->server = s;
                c->proto = l->proto;
                c->fd = fd;
                c->uid = cred.uid;
                c->gid = cred.gid;
                c->pid = cred.pid;
                r = sd_event_add_io(s->event, &c->io, fd, CONN_EVENTS_IN, on_conn_io, c);
                if (r < 0) {
                        safe_close(fd);
                        free(c);
                        continue;
                }
                c->next = s->conns;
                if (s->conns)
                        s->conns->prev = c;
                s->conns = c;
                s->n_conns++;
                if (l->proto->connected)
                        l->proto->connected(c);
        }
        return 0;
}

int server_new(sd_event *e, Manager *m, Config *config, Server **ret) {
        Server *s = calloc(1, sizeof(Server));

        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->manager = m;
        s->config = config;
        s->rxsize = config->max_message_size;
        s->rxbuf = malloc(s->rxsize);
        if (!s->rxbuf) {
                server_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        while (s->conns)
                conn_free(s->conns);
        for (size_t i = 0; i < s->n_listeners; i++) {
                Listener *l = &s->listeners[i];
                sd_event_source_disable_unref(l->io);
                safe_close(l->fd);
                if (l->path)
                        (void) unlink(l->path);
                free(l->path);
        }
        sd_event_unref(s->event);
        free(s->rxbuf);
        free(s);
        return NULL;
}

Config *server_config(Server *s) {
        return s->config;
}

/* Starts accepting on @fd (taking it, also on failure) for @proto, with @path to unlink at the end. */
static int server_add_listener(Server *s, const ConnProtocol *proto, int fd_in, const char *path) {
        _cleanup_close_ int fd = fd_in;
        Listener *l;
        int r;

        if (s->n_listeners >= SERVER_LISTENERS_MAX)
                return -ENOBUFS;
        l = &s->listeners[s->n_listeners];
        *l = (Listener) { .server = s, .proto = proto, .fd = -EBADF };
        r = sd_event_add_io(s->event, &l->io, fd, EPOLLIN, on_listen_io, l);
        if (r < 0)
                return r;
        if (path) {
                l->path = strdup(path);
                if (!l->path) {
                        l->io = sd_event_source_disable_unref(l->io);
                        return -ENOMEM;
                }
        }
        l->fd = TAKE_FD(fd);
        s->n_listeners++;
        return 0;
}

int server_adopt(Server *s, const ConnProtocol *proto, int fd_in) {
        _cleanup_close_ int fd = fd_in;
        int r;

        r = sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOTSOCK;
        r = fcntl(fd, F_GETFL);
        if (r < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0)
                return -errno;
        return server_add_listener(s, proto, TAKE_FD(fd), NULL);
}

int server_listen(Server *s, const ConnProtocol *proto, const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        if (chmod(path, proto->socket_mode) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        return server_add_listener(s, proto, TAKE_FD(fd), path);
}
