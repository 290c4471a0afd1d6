/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lu-vfioctl's polkit text agent (polkit-agent.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <systemd/sd-login.h>
#include <unistd.h>

#include "macro.h"
#include "polkit-agent.h"

#define PKTTYAGENT "/usr/bin/pkttyagent"
#define AGENT_REGISTER_TIMEOUT_MS 10000

/* Whether this process belongs to a login session (logind's), whose own agent, if any, wins. */
static bool in_login_session(void) {
        _cleanup_free_ char *session = NULL;
        return sd_pid_get_session(0, &session) >= 0;
}

int polkit_agent_open(pid_t *ret_pid) {
        _cleanup_close_ int rfd = -EBADF, wfd = -EBADF;
        int pipefd[2];
        pid_t parent = getpid(), pid;
        bool fallback;

        *ret_pid = 0;
        if (geteuid() == 0 || !isatty(STDIN_FILENO) || access(PKTTYAGENT, X_OK) < 0)
                return 0;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        rfd = pipefd[0];
        wfd = pipefd[1];
        /* polkitd uses a --fallback agent only for a subject in a session that has no agent of its
         * own: outside any session (a unit, a container shell, nsenter) it would be ignored. */
        fallback = in_login_session();
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                char notify[16];
                /* The agent is ours only: it goes when lu-vfioctl goes, however that happens. */
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent)
                        _exit(EXIT_FAILURE);
                if (fcntl(wfd, F_SETFD, 0) < 0)
                        _exit(EXIT_FAILURE);
                snprintf(notify, sizeof(notify), "%d", wfd);
                if (fallback)
                        execl(PKTTYAGENT, PKTTYAGENT, "--notify-fd", notify, "--fallback", (char *) NULL);
                else
                        execl(PKTTYAGENT, PKTTYAGENT, "--notify-fd", notify, (char *) NULL);
                _exit(EXIT_FAILURE);
        }
        wfd = safe_close(wfd);
        /* pkttyagent closes the fd once it is registered; EOF either way, also if it failed. */
        for (;;) {
                struct pollfd p = { .fd = rfd, .events = POLLIN };
                char c;
                int n = poll(&p, 1, AGENT_REGISTER_TIMEOUT_MS);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                if (read(rfd, &c, 1) <= 0)
                        break;
        }
        *ret_pid = pid;
        return (int) pid;
}

void polkit_agent_close(pid_t pid) {
        if (pid <= 0)
                return;
        (void) kill(pid, SIGTERM);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}
