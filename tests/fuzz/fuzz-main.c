/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Corpus replayer: runs a fuzz target's LLVMFuzzerTestOneInput() on files, so that every
 * seed and every past crash is a regression test in builds without libFuzzer (gcc, the
 * default). Arguments are files or directories; a directory contributes its regular
 * files in name order, not its subdirectories (corpus/<target>/crashes/ holds open bugs,
 * replayed only on request).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "macro.h"

static int read_file(const char *path, uint8_t **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t n = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        /* Exactly the file's bytes, in a buffer of that size, so ASan sees any overread. */
        buf = malloc(st.st_size > 0 ? (size_t) st.st_size : 1);
        if (!buf)
                return -ENOMEM;
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = n;
        return 0;
}

static int run_file(const char *path) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n = 0;
        int r;

        r = read_file(path, &buf, &n);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return r;
        }
        fprintf(stderr, "replaying %s (%zu bytes)\n", path, n);
        (void) LLVMFuzzerTestOneInput(buf, n);
        return 0;
}

static int run_dir(const char *dir, unsigned *count) {
        struct dirent **list = NULL;
        int n, r = 0;

        /* alphasort: a stable order, so a failure reproduces with the same predecessors. */
        n = scandir(dir, &list, NULL, alphasort);
        if (n < 0) {
                fprintf(stderr, "%s: %s\n", dir, strerror(errno));
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                struct stat st;

                if (list[i]->d_name[0] != '.' && asprintf(&path, "%s/%s", dir, list[i]->d_name) >= 0 &&
                    stat(path, &st) >= 0 && S_ISREG(st.st_mode)) {
                        if (run_file(path) < 0)
                                r = -EIO;
                        else
                                (*count)++;
                }
                free(list[i]);
        }
        free(list);
        return r;
}

int main(int argc, char *argv[]) {
        unsigned count = 0;
        int r = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct stat st;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        r = -ENOENT;
                } else if (S_ISDIR(st.st_mode)) {
                        if (run_dir(argv[i], &count) < 0)
                                r = -EIO;
                } else if (run_file(argv[i]) < 0)
                        r = -EIO;
                else
                        count++;
        }
        /* An empty corpus would make the test pass without testing anything. */
        if (count == 0) {
                fprintf(stderr, "no inputs replayed\n");
                return 1;
        }
        fprintf(stderr, "%u inputs replayed without a failure\n", count);
        return r < 0 ? 1 : 0;
}
