/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a preserved memfd carries across a kexec (spec §1.7, §1.9), upstream ABI, two
 * boots: contents (including writes made after PRESERVE_FD and a hole at the end),
 * size, the file position as it was at the reboot (freeze time, not preserve time),
 * O_RDWR, the seals (Linux 7.1.8 records them at preserve, MEMFD_LUO_ALL_SEALS, and adds
 * them to the new file); and what it does not: FD_CLOEXEC is set on the retrieved fd (as
 * on every retrieved fd), the memfd name is gone, it is a new unlinked file. While
 * preserved the size is frozen: ftruncate/fallocate/write past the end -> EPERM;
 * preserving allocates the holes.
 *
 * Kernel reading (mm/memfd_luo.c): preserve pins the memfd's own folios, so data
 * written after PRESERVE_FD and before the reboot is what arrives; freeze re-records
 * f_pos; retrieve creates a new memfd named "" (MFD_ALLOW_SEALING, then the recorded
 * seals) and installs it O_CLOEXEC. Inode numbers are not compared across the boots:
 * on a real kernel the new boot's shmem counts them afresh. The size
 * freeze is SHMEM_F_MAPPING_FROZEN, checked in shmem_setattr() for any size change
 * (so ftruncate to the same size still succeeds), shmem_fallocate() and
 * shmem_write_begin() (a write that would extend the file).
 */
#include <linux/falloc.h>

#include "luo-raw.h"

#define DATA_LEN   10000
#define FILE_SIZE  20000     /* DATA_LEN bytes of pattern, then a hole */
#define POS        4321
#define LATE       "late"
#define SEALS      (F_SEAL_SHRINK | F_SEAL_GROW)

static uint8_t pattern(size_t i) {
        return (uint8_t) (i * 7 + 3);
}

static void boot0(void) {
        static uint8_t buf[DATA_LEN];
        struct stat st;
        int dev, s, m;

        dev = raw_open_dev();
        s = raw_create(dev, "memfd");
        if (dev < 0 || s < 0)
                raw_bail("open/create");

        m = memfd_create("luo-conf-memfd-name", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (m < 0)
                raw_bail("memfd_create");
        for (size_t i = 0; i < DATA_LEN; i++)
                buf[i] = pattern(i);
        if (write(m, buf, DATA_LEN) != DATA_LEN || ftruncate(m, FILE_SIZE) < 0 || lseek(m, 17, SEEK_SET) != 17)
                raw_bail("fill memfd");
        if (fstat(m, &st) < 0)
                raw_bail("fstat");

        harness_check(st.st_blocks * 512 < FILE_SIZE, "before PRESERVE_FD the tail is a hole (st_blocks %lld)",
                      (long long) st.st_blocks);
        CHECK_ERRNO(raw_preserve(s, m, 42), 0, "PRESERVE_FD of a 20000-byte memfd with a hole");

        /* Seals are preserved (7.1.8). */
        {
                int sealed = memfd_create("luo-conf-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
                if (sealed < 0 || write(sealed, "sealed", 6) != 6)
                        raw_bail("sealed memfd");
                CHECK_ERRNO(fcntl(sealed, F_ADD_SEALS, SEALS), 0, "seal a second memfd (GROW|SHRINK)");
                CHECK_ERRNO(raw_preserve(s, sealed, 43), 0, "PRESERVE_FD of a sealed memfd");
                close(sealed);
        }

        CHECK_ERRNO(ftruncate(m, FILE_SIZE + 4096), EPERM, "ftruncate (grow) of a preserved memfd -> EPERM");
        CHECK_ERRNO(ftruncate(m, 100), EPERM, "ftruncate (shrink) of a preserved memfd -> EPERM");
        CHECK_ERRNO(fallocate(m, 0, FILE_SIZE, 4096), EPERM, "fallocate beyond the end of a preserved memfd -> EPERM");
        CHECK_ERRNO(fallocate(m, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096), EPERM,
                    "punching a hole in a preserved memfd -> EPERM");
        harness_check(fstat(m, &st) == 0 && st.st_size == FILE_SIZE, "the size is unchanged (%lld)", (long long) st.st_size);
        /* memfd_pin_folios() allocates a folio for every index up to i_size. */
        harness_check(st.st_blocks * 512 >= FILE_SIZE, "preserving allocated the hole (st_blocks %lld)",
                      (long long) st.st_blocks);

        /* The other size-change paths, on a memfd of its own (a wrong answer grows it). */
        {
                int g = raw_memfd("luo-conf-grow", "grow");
                CHECK_ERRNO(raw_preserve(s, g, 44), 0, "PRESERVE_FD of a second memfd");
                CHECK_ERRNO(ftruncate(g, 4), 0, "ftruncate to the same size is not a size change -> 0");
                CHECK_ERRNO(pwrite(g, "x", 1, 4), EPERM, "a write past the end of a preserved memfd -> EPERM");
                close(g);
        }

        /* Writes inside the size are allowed and travel; the position is taken at the reboot. */
        CHECK_ERRNO(pwrite(m, LATE, 4, 0), 0, "writing inside a preserved memfd works");
        if (lseek(m, POS, SEEK_SET) != POS)
                raw_bail("lseek");

        raw_kexec_or_bail();
}

static void boot1(void) {
        static uint8_t buf[FILE_SIZE + 1];
        char link[PATH_MAX] = "", p[64];
        struct stat st;
        int dev, s, r, fl;
        bool same = true;
        ssize_t n;

        dev = raw_open_dev();
        s = raw_retrieve(dev, "memfd");
        CHECK_ERRNO(s, 0, "RETRIEVE_SESSION memfd");
        if (s < 0)
                raw_bail("no session");
        r = raw_retrieve_fd(s, 42);
        CHECK_ERRNO(r, 0, "RETRIEVE_FD token 42");
        if (r < 0)
                raw_bail("no memfd");

        harness_check(fstat(r, &st) == 0 && st.st_size == FILE_SIZE, "size survived (%lld)", (long long) st.st_size);
        harness_check(lseek(r, 0, SEEK_CUR) == POS, "file position at the reboot survived (%lld, want %d)",
                      (long long) lseek(r, 0, SEEK_CUR), POS);
        n = pread(r, buf, sizeof(buf), 0);
        harness_check(n == FILE_SIZE, "whole file readable (%zd)", n);
        for (size_t i = 4; i < FILE_SIZE && n == FILE_SIZE; i++)
                if (buf[i] != (i < DATA_LEN ? pattern(i) : 0))
                        same = false;
        harness_check(n == FILE_SIZE && same, "contents survived, the hole reads as zeros");
        harness_check(n >= 4 && memcmp(buf, LATE, 4) == 0, "data written after PRESERVE_FD survived");

        fl = fcntl(r, F_GETFL);
        harness_check(fl >= 0 && (fl & O_ACCMODE) == O_RDWR, "retrieved memfd is O_RDWR");
        /* glibc defines O_LARGEFILE as 0 on x86-64; the kernel flag is 0100000. */
        harness_check(fl >= 0 && (fl & 0100000), "retrieved memfd is O_LARGEFILE (flags %#o)", fl);
        harness_check(raw_is_cloexec(r), "retrieved fd is O_CLOEXEC");
        harness_check(S_ISREG(st.st_mode) && st.st_nlink == 0, "retrieved memfd is a new unlinked file (nlink %llu)",
                      (unsigned long long) st.st_nlink);
        harness_check(fcntl(r, F_GET_SEALS) == 0, "a memfd preserved without seals comes back without seals (%d)",
                      fcntl(r, F_GET_SEALS));
        snprintf(p, sizeof(p), "/proc/self/fd/%d", r);
        n = readlink(p, link, sizeof(link) - 1);
        if (n > 0)
                link[n] = 0;
        harness_check(n > 0 && !strstr(link, "luo-conf-memfd-name"), "the memfd name is not preserved (%s)", link);

        {
                int sealed = raw_retrieve_fd(s, 43), seals;
                CHECK_ERRNO(sealed, 0, "RETRIEVE_FD of the sealed memfd");
                seals = sealed >= 0 ? fcntl(sealed, F_GET_SEALS) : -1;
                harness_check(sealed >= 0 && raw_memfd_is(sealed, "sealed"), "its contents survived");
                harness_check(seals >= 0 && (seals & SEALS) == SEALS,
                              "its GROW/SHRINK seals were preserved (F_GET_SEALS %d)", seals);
                if (sealed >= 0)
                        close(sealed);
        }

        CHECK_ERRNO(raw_finish(s), 0, "FINISH");
        close(s);
        harness_check(pread(r, buf, 4, 0) == 4 && memcmp(buf, LATE, 4) == 0,
                      "a retrieved memfd stays usable after FINISH and close of the session");
        CHECK_ERRNO(ftruncate(r, 8192), 0, "after FINISH the memfd can be resized");
        close(r);
}

int main(void) {
        raw_init();
        if (harness_boot() == 0)
                boot0();
        boot1();
        return harness_done();
}
