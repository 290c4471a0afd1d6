/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The connection layer of every socket front end: SOCK_SEQPACKET listeners (bound or passed
 * by the service manager), connections with their peer credentials, SCM_RIGHTS reception
 * (MSG_CMSG_CLOEXEC), limits (connections in all and per uid, message size, fds per message,
 * outstanding requests, unread replies), framing and JSON decoding. What is spoken on a
 * socket is a ConnProtocol: the VMM protocol (vmm-server.h) and the control socket
 * (operator.h) each bring their own, and never call each other.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "common/protocol.h"
#include "core/manager.h"

typedef struct Server Server;
typedef struct Conn Conn;

/*
 * What a listening socket speaks: called by the connection layer, never by each other.
 * ->admit (NULL: everyone the limits allow) decides on the peer's SO_PEERCRED before the
 * connection exists, returning 0 or a negative errno with the refusal (sent to the peer) in @e;
 * ->connected and ->disconnected (may be NULL) bracket the connection's life; ->dispatch gets
 * each well-formed request, with the fds that came with it (it takes those it keeps, setting
 * them to -EBADF; the rest are closed after it returns).
 */
typedef struct ConnProtocol {
        const char *name;
        mode_t socket_mode;     /* of a socket bound by server_listen() */
        int (*admit)(Server *s, const struct ucred *peer, ProtoError *e);
        void (*connected)(Conn *c);
        void (*disconnected)(Conn *c);
        void (*dispatch)(Conn *c, const ProtoRequest *req, int *fds, size_t n_fds);
} ConnProtocol;

int server_new(sd_event *e, Manager *m, Config *config, Server **ret);
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);
Config *server_config(Server *s);

/*
 * server_adopt() - listen on @fd, a listening SOCK_SEQPACKET Unix socket passed by the
 * service manager (socket activation), for @proto. Takes ownership of @fd; the path is the
 * socket unit's and is never unlinked. -ENOTSOCK if @fd is not such a socket (then closed).
 */
int server_adopt(Server *s, const ConnProtocol *proto, int fd);

/* server_listen() - bind @path (replacing a stale socket) with @proto's socket mode, for @proto. */
int server_listen(Server *s, const ConnProtocol *proto, const char *path);

/* Helpers for protocols. Replies take ownership of @result and @fd. */
void conn_reply_ok(Conn *c, uint64_t id, json_object *result, int fd);
void conn_reply_error(Conn *c, bool has_id, uint64_t id, const ProtoError *e);
/* conn_send_event() - push @event with @fields (taken); the seq used, or -EPIPE if the peer is gone. */
int64_t conn_send_event(Conn *c, const char *event, json_object *fields);
/* conn_send_event_head() - the same with an event's text up to its seq (proto_event_head());
 * a NULL @head (its text could not be made) ends the connection, as a failed send does. */
int64_t conn_send_event_head(Conn *c, const char *head, size_t len);
/* conn_new_call() - a Call answered later on this connection; NULL (and reply sent) when over the limit. */
Call *conn_new_call(Conn *c, uint64_t id);
Manager *conn_manager(Conn *c);
Config *conn_config(Conn *c);
uid_t conn_uid(Conn *c);
gid_t conn_gid(Conn *c);
pid_t conn_pid(Conn *c);
/* The protocol's own state of the connection (NULL at first). */
void *conn_get_userdata(Conn *c);
void conn_set_userdata(Conn *c, void *userdata);
