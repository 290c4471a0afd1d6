/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * luo-emu: shared state and interfaces of the LUO kernel emulator.
 *
 * One single-threaded supervisor holds every piece of emulated kernel state; the
 * "machine" is a PID + mount namespace whose trapped syscalls (seccomp user
 * notification) are answered from here. See docs/emulator.md.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <linux/seccomp.h>

#include "macro.h"

#define _noreturn_ __attribute__((noreturn))

/* ---- options and global state (main.c) ---- */

enum emu_abi { EMU_ABI_UPSTREAM, EMU_ABI_V4 };

/* Which upstream kernel the upstream ABI behaves as (spec §8; --kernel=). */
enum emu_kernel { EMU_KERNEL_7_1, EMU_KERNEL_7_2 };

enum fail_point {
        FAIL_OPEN,
        FAIL_CREATE_SESSION,
        FAIL_RETRIEVE_SESSION,
        FAIL_PRESERVE,
        FAIL_RETRIEVE_FD,
        FAIL_FINISH,
        FAIL_FREEZE,
        _FAIL_MAX,
};

struct emu_options {
        enum emu_abi abi;
        enum emu_kernel kernel;
        unsigned n_vfio;
        uint8_t vfio_vf[32];            /* bitmap: device i is an SR-IOV VF (--vfio-vf=) */
        const char *cmdline;
        unsigned bind_delay_ms;
        bool verbose;
        char **argv;                    /* COMMAND [ARGS...] */
        int fail_errno[_FAIL_MAX];      /* 0: no injection */
        long fail_count[_FAIL_MAX];     /* remaining, < 0 = unlimited */
        long fail_skip[_FAIL_MAX];      /* matching calls to let through first */
        int fail_boot[_FAIL_MAX];       /* only in this boot, < 0 = every boot */
};

extern struct emu_options opt;
extern struct rlimit machine_nofile;   /* luo-emu's original RLIMIT_NOFILE */

struct emu_state {
        unsigned boot;                  /* LUO_EMU_BOOT of the running machine */
        uint64_t reboot_call_us;        /* CLOCK_REALTIME µs: entry of the reboot(KEXEC) that started it */
        char *cmdline;                  /* command line of this boot */
        char boot_id[37];               /* this boot's /proc/sys/kernel/random/boot_id */
        bool luo_enabled;               /* liveupdate=on and kho=on this boot */
        pid_t init_pid;                 /* machine init, host PID */
        int init_pidfd;
        int listener;                   /* seccomp listener of this boot */
        int proc_fd;                    /* the machine's /proc (O_PATH) */
        int epoll_fd;
        int obj_epoll_fd;               /* object A ends only, nested in epoll_fd */
        char *tmpdir;                   /* private, removed at exit */
        bool luo_dev_in_use;            /* exclusive open flag */
        bool machine_dying;             /* killed: trapped calls are left unanswered */

        /* kexec */
        bool kexec_loaded;
        char *kexec_cmdline;            /* next boot's command line */
        bool kexec_crash_loaded;

        /* v4 global state */
        unsigned v4_state;
};

extern struct emu_state emu;

_printf_(1, 2) void log_error(const char *fmt, ...);
_printf_(1, 2) void log_debug(const char *fmt, ...);

/* Consumes one injected failure for this point: 0 or a negative errno. */
int fail_check(enum fail_point p);

/* ---- emulated kernel objects (object.c) ---- */

enum obj_kind {
        OBJ_LUO_DEV,
        OBJ_SESSION,
        OBJ_VFIO,
        OBJ_IOMMUFD,
        OBJ_VFIO_CONTAINER,             /* legacy /dev/vfio/vfio */
        OBJ_VFIO_GROUP,                 /* legacy /dev/vfio/<group> */
};

struct session;
struct vfio_file;
struct iommufd;
struct vfio_container;
struct vfio_dev;

struct object {
        enum obj_kind kind;
        int a_fd;                       /* supervisor's end of the socketpair */
        int b_fd;                       /* machine's end until installed, else -1 */
        ino_t b_ino;
        struct object *hnext;
        union {
                struct session *session;
                struct vfio_file *vfio;
                struct iommufd *iommufd;
                struct vfio_container *container;
                struct vfio_dev *group_dev;
        };
};

/* Creates the socketpair; the caller installs o->b_fd into the machine and then calls
 * object_installed(). Returns NULL on allocation/socket failure (errno set). */
struct object *object_new(enum obj_kind kind);
void object_installed(struct object *o);
struct object *object_find(ino_t ino);
/* Drops the object without running release semantics (kexec, rollback). */
void object_free(struct object *o);
/* Called from the event loop when the machine released its last reference. */
void object_release(struct object *o);
void object_drop_all(void);
/* Processes every pending release without blocking. */
void object_drain_releases(void);

/* ---- trapped-call context (trap.c) ---- */

struct call {
        struct seccomp_notif *req;
        struct seccomp_notif_resp *resp;
        int pidfd;
        bool answered;
};

int call_pidfd(struct call *c);
int call_getfd(struct call *c, int fd);                 /* copy of the caller's fd, or -errno */
int call_read(struct call *c, uint64_t addr, void *buf, size_t len);    /* 0 or -EFAULT */
int call_write(struct call *c, uint64_t addr, const void *buf, size_t len);
bool call_valid(struct call *c);
/* get_unused_fd_flags() of the caller: 0 if one more fd fits, else -EMFILE. */
int call_fd_room(struct call *c);
/* Installs srcfd in the caller; returns the new fd number or -errno. */
int call_addfd(struct call *c, int srcfd, bool cloexec);
/* Installs srcfd and completes the call with the fd number as its result. */
int call_addfd_send(struct call *c, int srcfd, bool cloexec);
void call_reply(struct call *c, int64_t val);           /* val < 0: -errno */
void call_continue(struct call *c);
/* Looks up the emulated object behind the caller's fd; NULL if not ours. */
struct object *call_object(struct call *c, int fd);
/* Creates a fresh object of kind, installs it in the caller (O_CLOEXEC if asked). */
int call_install_object(struct call *c, struct object *o, bool cloexec);
/* Reads a NUL-terminated string of the caller (page by page). */
int call_read_string(struct call *c, uint64_t addr, char *buf, size_t size);

int trap_install_filter(void);                          /* in the machine child */
void trap_handle(int listener);

/* ioctl argument helpers shared by the size-prefixed LUO dispatchers. */
int user_struct_in(struct call *c, uint64_t arg, void *kbuf, size_t ksize, uint32_t usize);

/* ---- LUO (luo.c / luo-upstream.c / luo-v4.c) ---- */

#define LUO_FILES_MAX     128
#define LUO_SESSIONS_MAX  819

/* Whether the per-session file limit and the session count limit apply: Linux 7.1 (and the v4
 * ABI) have them; 7.2 removed both (2a441a14c2c0, 1d1153097f4d). */
static inline bool luo_has_limits(void) {
        return opt.abi == EMU_ABI_V4 || opt.kernel == EMU_KERNEL_7_1;
}

enum pfile_kind { PF_MEMFD, PF_VFIO };

struct pfile {
        uint64_t token;
        enum pfile_kind kind;
        int fd;                         /* LUO's own reference */
        dev_t st_dev;
        ino_t st_ino;
        off_t pos;                      /* memfd position at freeze */
        unsigned dev_index;             /* VFIO device */
        int retrieve_status;            /* 0 not yet, 1 done, < 0 sticky errno */
        bool incoming;                  /* handed over by the previous boot */
};

struct session {
        char name[64];
        bool incoming;
        bool retrieved;
        struct pfile *files;
        size_t n_files, n_alloc;
        struct object *obj;             /* open session file, NULL if none */
        struct session *prev, *next;
        unsigned v4_state;
};

struct session_list {
        struct session *head, *tail;
        size_t count;
};

extern struct session_list luo_outgoing, luo_incoming;

struct session *session_new(const char *name, bool incoming);
void session_unlink_free(struct session *s);
struct session *session_find(struct session_list *l, const char *name);
int session_preserve_fd(struct call *c, struct session *s, int fd, uint64_t token);
int session_unpreserve_token(struct session *s, uint64_t token);
int session_retrieve_fd(struct call *c, struct session *s, uint64_t token, int *ret_fd);
int session_finish(struct session *s);
bool session_can_finish(struct session *s);
void session_drop_incoming(struct session *s);
void session_unpreserve_all(struct session *s);
/* Freeze (and on failure unfreeze) the given sessions; v4 freezes one at a time. */
int session_freeze(struct session *s, bool disable_irqs);
bool pfile_memfd_is_preserved(dev_t dev, ino_t ino);
/* Reboot path: freeze everything that is handed over; 0 or -errno. */
int luo_freeze_all(void);
/* After a successful freeze: build the next boot's incoming state. */
void luo_handover(bool next_enabled);
void luo_release_session(struct session *s);

int luo_open_device(struct call *c, int flags);
/* Copies a struct back to the caller: min(@ksize, @usize) bytes, as every LUO ioctl does. */
int luo_respond(struct call *c, uint64_t arg, const void *buf, uint32_t ksize, uint32_t usize);
/* Creates a session file object for @s, installs it O_CLOEXEC in the caller and stores the fd
 * in *@fd_field of @buf, which is then written back; returns 0 or -errno (nothing installed). */
int luo_session_install(struct call *c, struct session *s, uint64_t arg, void *buf, uint32_t ksize,
                        uint32_t usize, int32_t *fd_field);
void luo_upstream_ioctl(struct call *c, struct object *o, unsigned cmd, uint64_t arg);
void luo_v4_ioctl(struct call *c, struct object *o, unsigned cmd, uint64_t arg);
int luo_v4_freeze_all(void);
void luo_v4_boot(bool handed_over);

/* ---- VFIO (vfio.c) and iommufd (iommufd.c) ---- */

enum { IRQ_INTX, IRQ_MSI, IRQ_MSIX, IRQ_ERR, IRQ_REQ, IRQ_NONE };

struct vfio_dev {
        unsigned index;
        char bdf[16];
        uint8_t bus, devfn;
        struct vfio_file *bound;        /* file that passed BIND_IOMMUFD */
        int irq_type;                   /* IRQ_NONE when no INTx/MSI/MSI-X is active */
        unsigned irq_count;
        bool err_trigger, req_trigger;
        bool incoming_busy;             /* preserved by the previous boot, not finished */
        bool incoming_state;            /* handed-over state not yet consumed by a bind */
        bool driver_bound;              /* sysfs driver link present */
        uint32_t devid;
        /* legacy group path: IOMMU group <index> holds just this device */
        bool group_opened;
        unsigned group_files;           /* device fds from VFIO_GROUP_GET_DEVICE_FD */
        struct vfio_container *group_container;
};

struct vfio_file {
        struct vfio_dev *dev;
        bool retrieved;                 /* anon inode from RETRIEVE_FD */
        bool access;                    /* BIND_IOMMUFD done */
        struct iommufd *ictx;
        uint32_t pt_id;                 /* attached HWPT, 0 if none */
        struct object *obj;
        bool group;                     /* from VFIO_GROUP_GET_DEVICE_FD */
        int group_ref;                  /* device fds hold their group file */
};

extern struct vfio_dev *vfio_devs;

void vfio_init(void);
void vfio_boot_reset(void);
int vfio_open_cdev(struct call *c, unsigned index, int flags);
struct vfio_file *vfio_file_new(struct vfio_dev *d, bool retrieved);
void vfio_ioctl(struct call *c, struct object *o, unsigned cmd, uint64_t arg);
void vfio_file_release(struct vfio_file *f);
void vfio_irqs_off(struct vfio_dev *d);
void vfio_rw(struct call *c, struct vfio_file *f, bool write, uint64_t buf, uint64_t count, int64_t pos);

/* legacy container/group path (vfio-group.c) */
int vfio_container_open(struct call *c, int flags);
int vfio_group_open(struct call *c, unsigned index, int flags);
void vfio_container_ioctl(struct call *c, struct object *o, unsigned cmd, uint64_t arg);
void vfio_group_ioctl(struct call *c, struct object *o, unsigned cmd, uint64_t arg);
void vfio_container_put(struct vfio_container *k);
void vfio_group_release(struct vfio_dev *d);

struct iommufd *iommufd_get(struct iommufd *i);
void iommufd_put(struct iommufd *i);
int iommufd_open(struct call *c, int flags);
void iommufd_ioctl(struct call *c, struct object *o, unsigned cmd, uint64_t arg);
void iommufd_release(struct iommufd *i);
/* Attach: resolves an IOAS/HWPT id; returns the HWPT id or -errno. */
int iommufd_attach(struct iommufd *i, uint32_t pt_id);
void iommufd_detach(struct iommufd *i, uint32_t hwpt_id);
uint32_t iommufd_new_devid(struct iommufd *i);

/* ---- kexec / reboot (kexec.c) ---- */

void kexec_file_load_call(struct call *c);
void kexec_reboot_call(struct call *c);
bool cmdline_luo_enabled(const char *cmdline);

/* ---- machine and fake file system (machine.c, fakefs.c) ---- */

int fakefs_setup(void);                 /* supervisor, once */
int fakefs_boot(void);                  /* supervisor, before each boot */
int fakefs_machine_mounts(void);        /* in the machine child */
void fakefs_set_kexec_loaded(bool loaded);
void fakefs_set_driver(unsigned index, bool bound);
void fakefs_cleanup(void);
const char *fakefs_tmp(void);
extern int fakefs_timer_tag;
extern int fakefs_bind_tag;
void fakefs_on_bind(void);              /* a write to /sys/bus/pci/drivers/vfio-pci/bind */

int machine_boot(void);
void machine_kill(void);
/* A kexec was committed: the running machine is killed and the next one booted. */
extern bool machine_kexec_pending;
extern int machine_exit_request;        /* >= 0: exit luo-emu with this status */
