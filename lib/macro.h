/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Small helpers shared by every part of lu-vfiod: cleanup attributes in the style of
 * systemd, ownership transfer, array sizes. Header-only on purpose.
 */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f)      __attribute__((cleanup(f)))
#define _cleanup_free_    _cleanup_(freep)
#define _cleanup_close_   _cleanup_(closep)
#define _unused_          __attribute__((unused))
#define _pure_            __attribute__((pure))
#define _warn_unused_result_ __attribute__((warn_unused_result))
#define _printf_(a, b)    __attribute__((format(printf, a, b)))
#define _likely_(x)       (__builtin_expect(!!(x), 1))
#define _unlikely_(x)     (__builtin_expect(!!(x), 0))

#define ELEMENTSOF(x)     (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b)         ((a) < (b) ? (a) : (b))
#define MAX(a, b)         ((a) > (b) ? (a) : (b))

static inline void freep(void *p) {
        free(*(void **) p);
}

/* Closes an fd and keeps errno intact, so it is safe in error paths. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd) {
        *fd = safe_close(*fd);
}

/* Hand ownership out of a _cleanup_ variable: returns the value, leaves a null one. */
#define TAKE_GENERIC(var, type, nullvalue)                      \
        ({                                                      \
                type *_pvar_ = &(var);                          \
                type _var_ = *_pvar_;                           \
                *_pvar_ = (nullvalue);                          \
                _var_;                                          \
        })
#define TAKE_PTR(p)  TAKE_GENERIC(p, __typeof__(p), NULL)
#define TAKE_FD(fd)  TAKE_GENERIC(fd, int, -EBADF)

/* Defines fooP(Foo **p) calling foo_free(*p), for _cleanup_(foo_freep). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                 \
        static inline void func##p(type *p) {                   \
                if (*p)                                         \
                        *p = func(*p);                          \
        }

/* Negative errno from the last failed libc call, never 0 (guards against a libc that forgot errno). */
/* strscpy() - copy @src into @dst of @size (> 0) bytes, cut to fit, always NUL-terminated; returns @dst.
 * snprintf("%s") does the same at ten times the instructions (a copy per acknowledgement adds up). */
static inline char *strscpy(char *dst, size_t size, const char *src) {
        size_t n = strnlen(src, size - 1);

        memcpy(dst, src, n);
        dst[n] = 0;
        return dst;
}

static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

#define RET_NERRNO(expr)                                        \
        ({                                                      \
                __typeof__(expr) _r_ = (expr);                  \
                _r_ < 0 ? negative_errno() : _r_;               \
        })
