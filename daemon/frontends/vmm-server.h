/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SOCK_SEQPACKET servers: listening sockets, connections, peer credentials,
 * SCM_RIGHTS reception (MSG_CMSG_CLOEXEC), limits, framing and the VMM-side method
 * dispatch. The operator socket (operator.c) shares the connection machinery and only
 * brings its own dispatch.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "common/protocol.h"
#include "core/manager.h"

typedef enum ConnRole {
        CONN_VMM,
        CONN_OPERATOR,
} ConnRole;

typedef struct Server Server;
typedef struct Conn Conn;

int server_new(sd_event *e, Manager *m, Config *config, Server **ret);
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);

/*
 * server_adopt() - listen on @fd, a listening SOCK_SEQPACKET Unix socket passed by the
 * service manager (socket activation). Takes ownership of @fd; the path is the socket
 * unit's and is never unlinked. -ENOTSOCK if @fd is not such a socket (then closed).
 */
int server_adopt(Server *s, ConnRole role, int fd);

/* server_listen() - bind @path (replacing a stale socket), mode 0666 for VMMs and 0600 for operators. */
int server_listen(Server *s, ConnRole role, const char *path);

/* Helpers for dispatchers. Replies take ownership of @result and @fd. */
void conn_reply_ok(Conn *c, uint64_t id, json_object *result, int fd);
void conn_reply_error(Conn *c, bool has_id, uint64_t id, const ProtoError *e);
int64_t conn_send_event(Conn *c, const char *event, json_object *fields);
/* conn_new_call() - a Call answered later on this connection; NULL (and reply sent) when over the limit. */
Call *conn_new_call(Conn *c, uint64_t id);
Manager *conn_manager(Conn *c);
uid_t conn_uid(Conn *c);

/* operator.c */
void operator_dispatch(Conn *c, const ProtoRequest *req, int *fds, size_t n_fds);
void operator_connected(Conn *c);
void operator_disconnected(Conn *c);
