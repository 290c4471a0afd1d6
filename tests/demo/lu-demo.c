/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lu-demo: one live update of guest memory and a VFIO device, done through lib/ only.
 *
 *     luo-emu --vfio=1 -- lu-demo
 *
 * First boot: preserve an 8 MiB memfd with a known pattern and the vfio0 device (bound,
 * MSI-X on, then every interrupt switched off as LUO requires), load a kernel and kexec
 * while holding the session fd. Second boot: retrieve both, check every byte, find the
 * device's PCI address, bind it again and finish. Which boot this is comes from LUO
 * itself: the "lu-demo" session is incoming only after a live update.
 * Exit status 0 only if everything checked out.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd-kind.h"
#include "kexec.h"
#include "luo.h"
#include "pci-addr.h"
#include "vfio-dev.h"

#define SESSION_NAME  "lu-demo"
#define TOKEN_MEMORY  1
#define TOKEN_DEVICE  2
#define MEMORY_SIZE   (8u << 20)
#define PAGE          4096u
#define SEED          UINT64_C(0x4c55444d454d4f31)   /* "LUDMEMO1" */
#define MSIX_VECTORS  2u

static int boot = -1;

_printf_(1, 2) static void step(const char *fmt, ...) {
        va_list ap;

        printf("[boot %d] ", boot);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
}

/* Prints the failed step with the errno text and ends the demo. */
_printf_(2, 3) __attribute__((noreturn)) static void die(int r, const char *fmt, ...) {
        va_list ap;

        printf("[boot %d] FAILED: ", boot);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf(": %s\n", strerror(r < 0 ? -r : r));
        exit(1);
}

/* Word w of page p holds the page counter in the high half, the word index in the low half, mixed with the seed. */
static uint64_t pattern(size_t page, size_t word) {
        return SEED ^ ((uint64_t) page << 32 | (uint64_t) word);
}

static void memory_fill(uint64_t *mem) {
        for (size_t p = 0; p < MEMORY_SIZE / PAGE; p++)
                for (size_t w = 0; w < PAGE / sizeof(uint64_t); w++)
                        mem[p * (PAGE / sizeof(uint64_t)) + w] = pattern(p, w);
}

/* Returns the number of wrong 8-byte words. */
static size_t memory_verify(const uint64_t *mem) {
        size_t bad = 0;

        for (size_t p = 0; p < MEMORY_SIZE / PAGE; p++)
                for (size_t w = 0; w < PAGE / sizeof(uint64_t); w++)
                        bad += mem[p * (PAGE / sizeof(uint64_t)) + w] != pattern(p, w);
        return bad;
}

static int write_fake_kernel(char *path) {
        static char image[4096];
        int fd;

        /* The bzImage setup header magic the kexec loader looks for. */
        memcpy(image + 0x202, "HdrS", 4);
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, image, sizeof(image)) != (ssize_t) sizeof(image)) {
                int r = -errno;
                close(fd);
                return r ?: -EIO;
        }
        return close(fd) < 0 ? -errno : 0;
}

static int first_boot(Luo *l) {
        char kernel[] = "/tmp/lu-demo-kernel-XXXXXX";
        char addr[PCI_ADDR_STRING_MAX];
        int session, memfd, dev, iommufd, efd[MSIX_VECTORS], r;
        uint32_t devid, ioas, pt;
        struct vfio_irq_info irq;
        char *cmdline = NULL;
        uint64_t *mem;
        FdInfo info;

        r = luo_session_create(l, SESSION_NAME, &session);
        if (r < 0)
                die(r, "create session \"%s\"", SESSION_NAME);
        step("created session \"%s\" (fd %d)", SESSION_NAME, session);

        memfd = memfd_create("guest-ram", MFD_CLOEXEC);
        if (memfd < 0 || ftruncate(memfd, MEMORY_SIZE) < 0)
                die(-errno, "create the 8 MiB memfd");
        mem = mmap(NULL, MEMORY_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
        if (mem == MAP_FAILED)
                die(-errno, "map the memfd");
        memory_fill(mem);
        munmap(mem, MEMORY_SIZE);
        step("filled an %u MiB memfd with a per-page counter pattern (seed %#" PRIx64 ")",
             MEMORY_SIZE >> 20, SEED);

        dev = open("/dev/vfio/devices/vfio0", O_RDWR | O_CLOEXEC);
        if (dev < 0)
                die(-errno, "open /dev/vfio/devices/vfio0");
        r = fd_classify(dev, &info);
        if (r < 0)
                die(r, "classify the device fd");
        step("opened /dev/vfio/devices/vfio0: %s, PCI %s", fd_kind_to_string(info.kind),
             info.has_pci ? pci_addr_to_string(&info.pci, addr) : "unknown");

        iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        if (iommufd < 0)
                die(-errno, "open /dev/iommu");
        r = vfio_device_bind_iommufd(dev, iommufd, &devid);
        if (r < 0)
                die(r, "bind vfio0 to iommufd");
        r = iommufd_ioas_alloc(iommufd, &ioas);
        if (r < 0)
                die(r, "allocate an IOAS");
        r = vfio_device_attach_pt(dev, ioas, &pt);
        if (r < 0)
                die(r, "attach vfio0 to the IOAS");
        step("bound vfio0 to /dev/iommu (devid %u) and attached it to IOAS %u", devid, ioas);

        r = vfio_device_get_irq_info(dev, VFIO_PCI_MSIX_IRQ_INDEX, &irq);
        if (r < 0)
                die(r, "query MSI-X");
        if (irq.count < MSIX_VECTORS)
                die(-ENOSPC, "vfio0 has only %u MSI-X vectors", irq.count);
        for (unsigned i = 0; i < MSIX_VECTORS; i++) {
                efd[i] = eventfd(0, EFD_CLOEXEC);
                if (efd[i] < 0)
                        die(-errno, "eventfd");
        }
        r = vfio_device_set_irqs_eventfd(dev, VFIO_PCI_MSIX_IRQ_INDEX, efd, MSIX_VECTORS);
        if (r < 0)
                die(r, "enable MSI-X");
        step("enabled %u MSI-X vectors with eventfds (the guest is running)", MSIX_VECTORS);

        r = luo_session_preserve_fd(l, session, memfd, TOKEN_MEMORY);
        if (r < 0)
                die(r, "preserve the memfd");
        step("preserved the memfd as token %d", TOKEN_MEMORY);
        r = luo_session_preserve_fd(l, session, dev, TOKEN_DEVICE);
        if (r < 0)
                die(r, "preserve vfio0");
        step("preserved vfio0 as token %d", TOKEN_DEVICE);

        r = vfio_device_disable_irqs(dev);
        if (r < 0)
                die(r, "disable the interrupts of vfio0");
        step("disabled interrupts on vfio0 (%d interrupt index%s switched off)", r, r == 1 ? "" : "es");

        r = write_fake_kernel(kernel);
        if (r < 0)
                die(r, "write the kernel image");
        r = kernel_cmdline_read(&cmdline);
        if (r < 0)
                die(r, "read /proc/cmdline");
        r = kexec_load_kernel(kernel, NULL, cmdline);
        (void) unlink(kernel);
        if (r < 0)
                die(r, "kexec_file_load %s", kernel);
        step("loaded the next kernel with command line \"%s\" (liveupdate %s)", cmdline,
             kernel_cmdline_has_flag(cmdline, "liveupdate") ? "on" : "OFF");
        free(cmdline);

        r = luo_prepare(l);
        if (r < 0)
                die(r, "send PREPARE");
        if (luo_get_abi(l) == LUO_ABI_V4)
                step("sent the v4 PREPARE event");

        /* The session fd stays open across the call: closing it would unpreserve everything. */
        step("rebooting into the new kernel with session fd %d held open", session);
        r = kexec_reboot();
        die(r, "reboot(LINUX_REBOOT_CMD_KEXEC) returned");
}

static int second_boot(Luo *l, int session) {
        char addr[PCI_ADDR_STRING_MAX];
        int memfd, dev, iommufd, r;
        uint32_t devid;
        struct stat st;
        uint64_t *mem;
        size_t bad;
        FdInfo info;

        step("retrieved session \"%s\" (fd %d)", SESSION_NAME, session);

        r = luo_session_retrieve_fd(l, session, TOKEN_MEMORY, &memfd);
        if (r < 0)
                die(r, "retrieve token %d (memfd)", TOKEN_MEMORY);
        if (fstat(memfd, &st) < 0)
                die(-errno, "fstat the memfd");
        if ((uint64_t) st.st_size != MEMORY_SIZE) {
                step("MISMATCH: the memfd is %jd bytes, expected %u", (intmax_t) st.st_size, MEMORY_SIZE);
                return 1;
        }
        mem = mmap(NULL, MEMORY_SIZE, PROT_READ, MAP_SHARED, memfd, 0);
        if (mem == MAP_FAILED)
                die(-errno, "map the memfd");
        bad = memory_verify(mem);
        munmap(mem, MEMORY_SIZE);
        if (bad) {
                step("MISMATCH: %zu of %u words of the memfd differ", bad, MEMORY_SIZE / 8);
                return 1;
        }
        step("retrieved the memfd: %u MiB, every byte of the pattern intact", MEMORY_SIZE >> 20);

        r = luo_session_retrieve_fd(l, session, TOKEN_DEVICE, &dev);
        if (r < 0)
                die(r, "retrieve token %d (vfio0)", TOKEN_DEVICE);
        r = fd_classify(dev, &info);
        if (r < 0)
                die(r, "classify the device fd");
        if (!fd_kind_is_vfio_device(info.kind)) {
                step("MISMATCH: token %d came back as %s, not a VFIO device", TOKEN_DEVICE,
                     fd_kind_to_string(info.kind));
                return 1;
        }
        step("retrieved the device: %s, PCI %s", fd_kind_to_string(info.kind),
             info.has_pci ? pci_addr_to_string(&info.pci, addr) : "unknown");

        iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        if (iommufd < 0)
                die(-errno, "open /dev/iommu");
        r = vfio_device_bind_iommufd(dev, iommufd, &devid);
        if (r < 0)
                die(r, "bind the retrieved device");
        step("bound the device to a new iommufd (devid %u)", devid);

        r = luo_session_finish(l, session);
        if (r < 0)
                die(r, "finish session \"%s\"", SESSION_NAME);
        r = luo_finish(l);
        if (r < 0)
                die(r, "send FINISH");
        step("finished session \"%s\": memory and device now belong to this boot", SESSION_NAME);

        step("SUMMARY: live update complete (%s ABI): 8 MiB of memory verified, device %s restored and bound",
             luo_abi_to_string(luo_get_abi(l)), info.has_pci ? addr : "vfio0");
        close(dev);
        close(memfd);
        close(iommufd);
        close(session);
        return 0;
}

int main(void) {
        const char *b = getenv("LUO_EMU_BOOT");
        int session = -1, r;
        Luo *l = NULL;

        boot = b ? atoi(b) : 0;
        setvbuf(stdout, NULL, _IOLBF, 0);

        r = luo_open(NULL, &l);
        if (r < 0)
                die(r, "open %s", LUO_DEVICE_PATH);
        step("opened %s: %s ABI", LUO_DEVICE_PATH, luo_abi_to_string(luo_get_abi(l)));

        /* Incoming session present: we are on the far side of a live update. */
        r = luo_session_retrieve(l, SESSION_NAME, &session);
        if (r == -ENOENT) {
                step("no incoming \"%s\" session: this is the first boot", SESSION_NAME);
                return first_boot(l);
        }
        if (r < 0)
                die(r, "retrieve session \"%s\"", SESSION_NAME);

        r = second_boot(l, session);
        luo_free(l);
        return r;
}
