/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Daemon logging: stderr or the journal, see log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "system/log.h"

static int max_level = LOG_INFO;
static bool journal = false;

/* $JOURNAL_STREAM is "dev:ino" of the stream stderr is connected to when run by systemd. */
void log_setup(void) {
        const char *e = getenv("JOURNAL_STREAM");
        struct stat st;
        unsigned long long dev, ino;

        journal = false;
        if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) >= 0)
                journal = (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;

        e = getenv("LU_VFIOD_LOG_LEVEL");
        if (e) {
                if (strcmp(e, "debug") == 0)
                        max_level = LOG_DEBUG;
                else if (strcmp(e, "info") == 0)
                        max_level = LOG_INFO;
                else if (strcmp(e, "warning") == 0)
                        max_level = LOG_WARNING;
                else if (strcmp(e, "error") == 0)
                        max_level = LOG_ERR;
        }
}

void log_set_max_level(int level) {
        max_level = level;
}

bool log_to_journal(void) {
        return journal;
}

int log_full(int level, int error, const char *vm, const char *session, const char *bdf,
             const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_eventv(level, NULL, error, vm, session, bdf, fmt, ap);
        va_end(ap);
        return r;
}

int log_event(int level, const char *message_id, int error, const char *vm, const char *session, const char *bdf,
              const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_eventv(level, message_id, error, vm, session, bdf, fmt, ap);
        va_end(ap);
        return r;
}

/* @in with every byte below 0x20 and 0x7f written as \xNN, cut to fit @out. */
static void escape_controls(const char *in, char *out, size_t size) {
        size_t n = 0;

        for (; *in && n + 1 < size; in++) {
                unsigned char c = (unsigned char) *in;
                if (c >= 0x20 && c != 0x7f)
                        out[n++] = (char) c;
                else if (n + 5 < size)
                        n += (size_t) snprintf(out + n, size - n, "\\x%02x", c);
                else
                        break;
        }
        out[n] = 0;
}

int log_eventv(int level, const char *message_id, int error, const char *vm, const char *session, const char *bdf,
               const char *fmt, va_list ap) {
        char buf[2048];
        int saved = errno;

        if (level > max_level)
                return error == 0 ? 0 : -abs(error);

        errno = abs(error);
        (void) vsnprintf(buf, sizeof(buf), fmt, ap);

        if (journal) {
                char msg[2100], prio[16], vmf[64], sf[96], bf[48], ef[32], idf[48];
                struct iovec iov[8];
                size_t n = 0;

#define ADD(dst, ...) do { (void) snprintf(dst, sizeof(dst), __VA_ARGS__); \
                iov[n++] = (struct iovec) { .iov_base = dst, .iov_len = strlen(dst) }; } while (0)
                ADD(msg, "MESSAGE=%s", buf);
                ADD(prio, "PRIORITY=%i", level);
                iov[n++] = (struct iovec) { .iov_base = (char *) "SYSLOG_IDENTIFIER=lu-vfiod", .iov_len = 26 };
                if (vm)
                        ADD(vmf, "VM=%s", vm);
                if (session)
                        ADD(sf, "LU_SESSION=%s", session);
                if (bdf)
                        ADD(bf, "VFIO_BDF=%s", bdf);
                if (error)
                        ADD(ef, "ERRNO=%i", abs(error));
                if (message_id)
                        ADD(idf, "MESSAGE_ID=%s", message_id);
#undef ADD
                (void) sd_journal_sendv(iov, (int) n);
        } else {
                static const char *const names[] = { "EMERG", "ALERT", "CRIT", "ERROR", "WARNING",
                                                     "NOTICE", "INFO", "DEBUG" };
                char safe[sizeof(buf)];

                /* One message, one line: a control character (a VMM's client string or veto
                 * message may hold a newline) would let a peer print lines that look like ours. */
                escape_controls(buf, safe, sizeof(safe));
                fprintf(stderr, "lu-vfiod: %s: %s%s%s%s%s%s%s%s\n",
                        names[level & 7], vm ? "[" : "", vm ? vm : "", vm ? "] " : "", safe,
                        session ? " session=" : "", session ? session : "",
                        bdf ? " bdf=" : "", bdf ? bdf : "");
        }
        errno = saved;
        return error == 0 ? 0 : -abs(error);
}
