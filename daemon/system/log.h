/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Daemon logging: plain stderr lines when not under journald, structured journal
 * entries (VM=, LU_SESSION=, VFIO_BDF=) when stderr is connected to the journal.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

void log_setup(void);
void log_set_max_level(int level);
bool log_to_journal(void);

/*
 * log_full() - log one message at @level with optional structured fields; @vm, @session
 * and @bdf may be NULL. Returns -abs(@error) when @error != 0 so that callers can write
 * "return log_error_errno(r, ...)", else 0.
 */
int log_full(int level, int error, const char *vm, const char *session, const char *bdf,
             const char *fmt, ...) _printf_(6, 7);
/*
 * log_event() - log_full() with a MESSAGE_ID= (one of message-ids.h, NULL for none): the
 * events the journal catalog (daemon/catalog/lu-vfiod.catalog) explains.
 */
int log_event(int level, const char *message_id, int error, const char *vm, const char *session, const char *bdf,
              const char *fmt, ...) _printf_(7, 8);
int log_eventv(int level, const char *message_id, int error, const char *vm, const char *session, const char *bdf,
               const char *fmt, va_list ap) _printf_(7, 0);

#define log_debug(...)   log_full(LOG_DEBUG, 0, NULL, NULL, NULL, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, 0, NULL, NULL, NULL, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, 0, NULL, NULL, NULL, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, 0, NULL, NULL, NULL, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, 0, NULL, NULL, NULL, __VA_ARGS__)
#define log_error_errno(e, ...)   log_full(LOG_ERR, (e), NULL, NULL, NULL, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full(LOG_WARNING, (e), NULL, NULL, NULL, __VA_ARGS__)
#define log_vm(level, vm, ...)    log_full((level), 0, (vm), NULL, NULL, __VA_ARGS__)
