/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lu-vfiod: command line, configuration, signals and the sd-event loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "common/config.h"
#include "common/message-ids.h"
#include "core/manager-fdstore.h"
#include "core/manager.h"
#include "frontends/dbus-service.h"
#include "frontends/operator.h"
#include "frontends/service-notify.h"
#include "frontends/vmm-server.h"
#include "system/fdstore.h"
#include "system/log.h"

#define DEFAULT_VMM_SOCKET     LU_RUNSTATEDIR "/lu-vfiod/vmm.sock"
#define DEFAULT_CONTROL_SOCKET LU_RUNSTATEDIR "/lu-vfiod/control.sock"
#define DEFAULT_STATE_DIR      "/var/lib/lu-vfiod"

/* NULL until set: the command line wins over the configuration, which wins over the default. */
static const char *arg_vmm_socket = NULL;
static const char *arg_control_socket = NULL;
static const char *arg_state_dir = NULL;
static const char *arg_config = NULL;
static bool arg_skip_irq_disable = false;

static void help(void) {
        printf("Usage: lu-vfiod [OPTIONS]\n"
               "Hold VFIO devices and guest memory of running VMs across a kexec live update.\n\n"
               "  --vmm-socket=PATH      VMM socket (default %s)\n"
               "  --control-socket=PATH  operator control socket, root only (default %s)\n"
               "  --state-dir=PATH       registry mirror directory (default %s)\n"
               "  --config=PATH          configuration file (default %s)\n"
               "  --test-skip-irq-disable  do not disable VFIO interrupts at commit (tests only)\n"
               "  --version              print the version\n"
               "  -h --help              this help\n",
               DEFAULT_VMM_SOCKET, DEFAULT_CONTROL_SOCKET, DEFAULT_STATE_DIR, CONFIG_DEFAULT_PATH);
}

static int parse_argv(int argc, char **argv) {
        enum { ARG_VMM = 0x100, ARG_CTL, ARG_STATE, ARG_CONFIG, ARG_SKIP_IRQ, ARG_VERSION };
        static const struct option options[] = {
                { "vmm-socket", required_argument, NULL, ARG_VMM },
                { "control-socket", required_argument, NULL, ARG_CTL },
                { "state-dir", required_argument, NULL, ARG_STATE },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "test-skip-irq-disable", no_argument, NULL, ARG_SKIP_IRQ },
                { "version", no_argument, NULL, ARG_VERSION },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_VMM:
                        arg_vmm_socket = optarg;
                        break;
                case ARG_CTL:
                        arg_control_socket = optarg;
                        break;
                case ARG_STATE:
                        arg_state_dir = optarg;
                        break;
                case ARG_CONFIG:
                        arg_config = optarg;
                        break;
                case ARG_SKIP_IRQ:
                        arg_skip_irq_disable = true;
                        break;
                case ARG_VERSION:
                        printf("lu-vfiod %s\n", PROJECT_VERSION);
                        return 0;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "lu-vfiod: unexpected argument: %s\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int mkdir_parents_of(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        char *s;

        if (!p)
                return -ENOMEM;
        s = strrchr(p, '/');
        if (!s || s == p)
                return 0;
        *s = 0;
        for (char *q = p + 1; *q; q++)
                if (*q == '/') {
                        *q = 0;
                        (void) mkdir(p, mode);
                        *q = '/';
                }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Every preserved item is an open fd here: make room for MaxVMs x MaxItemsPerVM. */
static void raise_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        rl.rlim_cur = rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
}

int main(int argc, char **argv) {
        _cleanup_(listen_fds_done) ListenFds fds = {};
        _cleanup_(server_freep) Server *server = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        DbusService *bus = NULL;
        FdStoreMirror *mirror = NULL;
        int vmm_fd = -EBADF;
        sd_event *e = NULL;
        Config config;
        char err[512] = "";
        int r;

        log_setup();
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        config_init_defaults(&config);
        r = config_parse_file(&config, arg_config ?: CONFIG_DEFAULT_PATH, !arg_config, err, sizeof(err));
        if (r < 0) {
                log_error("%s", err[0] ? err : "cannot read the configuration");
                return EXIT_FAILURE;
        }
        /* Socket activation and the fd store: named fds from the service manager. */
        r = listen_fds_take(&fds);
        if (r < 0)
                log_warning_errno(r, "Ignoring LISTEN_FDS: %m");
        vmm_fd = listen_fds_pop(&fds, FDSTORE_VMM_SOCKET);
        if (vmm_fd < 0)
                vmm_fd = listen_fds_pop(&fds, "unknown");   /* systemd-socket-activate without --fdname */
        if (!arg_vmm_socket)
                arg_vmm_socket = config.vmm_socket ?: DEFAULT_VMM_SOCKET;
        if (!arg_control_socket)
                arg_control_socket = config.control_socket ?: DEFAULT_CONTROL_SOCKET;
        if (!arg_state_dir)
                arg_state_dir = config.state_dir ?: DEFAULT_STATE_DIR;
        raise_nofile();
        (void) umask(0022);

        r = mkdir_parents_of(arg_vmm_socket, 0755);
        if (r >= 0)
                r = mkdir_parents_of(arg_control_socket, 0755);
        if (r >= 0 && mkdir(arg_state_dir, 0700) < 0 && errno != EEXIST)
                r = -errno;
        if (r < 0) {
                log_error_errno(r, "Cannot create runtime/state directories: %m");
                goto out;
        }

        r = sd_event_default(&e);
        if (r < 0)
                goto out;
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        (void) signal(SIGPIPE, SIG_IGN);
        r = sd_event_add_signal(e, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(e, NULL, SIGINT, NULL, NULL);
        if (r < 0)
                goto out;

        {
                ManagerOptions opts = {
                        .state_dir = arg_state_dir,
                        .skip_irq_disable = arg_skip_irq_disable,
                };
                r = manager_new(e, &config, &opts, &m);
        }
        if (r < 0)
                goto out;
        vmm_protocol_attach(m);
        r = server_new(e, m, &config, &server);
        if (r < 0)
                goto out;
        m->stored_fds = &fds;
        r = manager_startup(m);
        m->stored_fds = NULL;
        if (r < 0)
                goto out;
        r = fdstore_mirror_new(m, &mirror);
        if (r < 0) {
                log_error_errno(r, "Cannot keep sessions in the fd store: %m");
                goto out;
        }
        m->fdstore = mirror;
        fdstore_mirror_include_state(mirror, config.kexec_mode == KEXEC_MODE_SYSTEMD);
        if (config.kexec_mode == KEXEC_MODE_SYSTEMD && !fdstore_enabled())
                log_warning("KexecMode=systemd without a service manager fd store: sessions would not survive the kexec");
        r = service_notify_start(e, m);
        if (r < 0)
                goto out;
        if (vmm_fd >= 0) {
                r = server_adopt(server, &vmm_protocol, TAKE_FD(vmm_fd));
                if (r < 0) {
                        log_error_errno(r, "Cannot use the VMM socket passed by the service manager: %m");
                        goto out;
                }
                log_info("VMM socket passed by the service manager (socket activation)");
        } else {
                r = server_listen(server, &vmm_protocol, arg_vmm_socket);
                if (r < 0) {
                        log_error_errno(r, "Cannot listen on %s: %m", arg_vmm_socket);
                        goto out;
                }
        }
        r = server_listen(server, &operator_protocol, arg_control_socket);
        if (r < 0) {
                log_error_errno(r, "Cannot listen on %s: %m", arg_control_socket);
                goto out;
        }
        log_event(LOG_INFO, LU_MESSAGE_READY, 0, NULL, NULL, NULL, "lu-vfiod %s ready: state %s, VMM socket %s",
                  PROJECT_VERSION, update_state_to_string(m->state), arg_vmm_socket);
        {
                /* D-Bus is optional: without a bus the control socket still works. */
                DbusServiceOptions dopts = {
                        .use_polkit = config.polkit,
                        .fallback_gid = config.has_operator_gid ? (gid_t) config.operator_gid : (gid_t) -1,
                };
                int k = config.dbus ? dbus_service_new(e, m, &dopts, &bus) : 0;
                if (k < 0)
                        log_warning_errno(k, "D-Bus interface unavailable (%m): lu-vfioctl will not work, the control socket does");
        }
        service_notify_ready(m);
        r = sd_event_loop(e);
        service_notify_stop(m);
        log_info("lu-vfiod exiting");
out:
        if (r < 0)
                log_error_errno(r, "Fatal: %m");
        server = server_free(server);
        bus = dbus_service_free(bus);
        if (m)
                m->fdstore = NULL;
        mirror = fdstore_mirror_free(mirror);
        vmm_fd = safe_close(vmm_fd);
        m = manager_free(m);
        sd_event_unref(e);
        config_done(&config);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
