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

#include "config.h"
#include "log.h"
#include "manager.h"
#include "vmm-server.h"

#define DEFAULT_VMM_SOCKET     LU_RUNSTATEDIR "/lu-vfiod/vmm.sock"
#define DEFAULT_CONTROL_SOCKET LU_RUNSTATEDIR "/lu-vfiod/control.sock"
#define DEFAULT_STATE_DIR      "/var/lib/lu-vfiod"

static const char *arg_vmm_socket = DEFAULT_VMM_SOCKET;
static const char *arg_control_socket = DEFAULT_CONTROL_SOCKET;
static const char *arg_state_dir = DEFAULT_STATE_DIR;
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
        _cleanup_(server_freep) Server *server = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
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
        r = server_new(e, m, &config, &server);
        if (r < 0)
                goto out;
        r = manager_startup(m);
        if (r < 0)
                goto out;
        r = server_listen(server, CONN_VMM, arg_vmm_socket);
        if (r < 0) {
                log_error_errno(r, "Cannot listen on %s: %m", arg_vmm_socket);
                goto out;
        }
        r = server_listen(server, CONN_OPERATOR, arg_control_socket);
        if (r < 0) {
                log_error_errno(r, "Cannot listen on %s: %m", arg_control_socket);
                goto out;
        }
        log_info("lu-vfiod %s ready: state %s, VMM socket %s", PROJECT_VERSION,
                 update_state_to_string(m->state), arg_vmm_socket);
        (void) sd_notify(false, "READY=1");
        r = sd_event_loop(e);
        log_info("lu-vfiod exiting");
out:
        if (r < 0)
                log_error_errno(r, "Fatal: %m");
        server = server_free(server);
        m = manager_free(m);
        sd_event_unref(e);
        config_done(&config);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
