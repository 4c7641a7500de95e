/* sparq launch: every stage of a job on this machine, as child processes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sparq/worker.h"

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

typedef struct child {
    pid_t pid;
    int fd;          /* read end of its stdout+stderr */
    int alive, status;
    char buf[8192];  /* partial line */
    size_t len;
} child_t;

static void emit_lines(child_t *c, int k, int flush)
{
    size_t start = 0;
    for (size_t i = 0; i < c->len; i++) {
        if (c->buf[i] != '\n') continue;
        fprintf(stderr, "[stage %d] %.*s\n", k, (int)(i - start), c->buf + start);
        start = i + 1;
    }
    if (flush && start < c->len) {
        fprintf(stderr, "[stage %d] %.*s\n", k, (int)(c->len - start), c->buf + start);
        start = c->len;
    }
    memmove(c->buf, c->buf + start, c->len - start);
    c->len -= start;
    if (c->len == sizeof c->buf) { /* an over-long line: print it as is */
        fprintf(stderr, "[stage %d] %.*s\n", k, (int)c->len, c->buf);
        c->len = 0;
    }
}

int sq_launch(const char *config_path, char *const *extra_args, int n_extra, int resume, int quiet)
{
    sq_config_t cfg;
    sq_status_t st = sq_config_load(config_path, &cfg);
    for (int i = 0; st == SQ_OK && i + 1 < n_extra; i += 2)
        if (!strcmp(extra_args[i], "--set")) st = sq_config_set(&cfg, extra_args[i + 1]);
    if (st != SQ_OK) {
        fprintf(stderr, "sparq launch: %s\n", sq_error_last());
        return 2;
    }
    const int S = cfg.pipeline.stages;
    /* a fresh secret per job unless the user set one */
    if (!getenv("SPARQ_JOB_TOKEN")) {
        unsigned char r[16];
        char hex[33];
        FILE *u = fopen("/dev/urandom", "rb");
        if (!u || fread(r, 1, sizeof r, u) != sizeof r) {
            fprintf(stderr, "sparq launch: cannot read /dev/urandom for the job token\n");
            if (u) fclose(u);
            return 1;
        }
        fclose(u);
        for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", r[i]);
        setenv("SPARQ_JOB_TOKEN", hex, 1);
    }
    child_t *ch = calloc((size_t)S, sizeof *ch);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    for (int k = 0; k < S; k++) {
        int p[2];
        if (pipe(p) != 0) {
            perror("sparq launch: pipe");
            return 1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("sparq launch: fork");
            return 1;
        }
        if (pid == 0) { /* no UCX has been touched in this process: exec a clean worker */
            dup2(p[1], 1);
            dup2(p[1], 2);
            close(p[0]);
            close(p[1]);
            char stage[16];
            snprintf(stage, sizeof stage, "%d", k);
            char **argv = calloc((size_t)n_extra + 10, sizeof *argv);
            int a = 0;
            argv[a++] = "sparq";
            argv[a++] = "worker";
            argv[a++] = "--config";
            argv[a++] = (char *)config_path;
            argv[a++] = "--stage";
            argv[a++] = stage;
            if (resume) argv[a++] = "--resume";
            if (quiet) argv[a++] = "--quiet";
            for (int i = 0; i < n_extra; i++) argv[a++] = extra_args[i];
            argv[a] = NULL;
            execv("/proc/self/exe", argv);
            fprintf(stderr, "exec failed: %s\n", strerror(errno));
            _exit(127);
        }
        close(p[1]);
        ch[k] = (child_t){.pid = pid, .fd = p[0], .alive = 1};
    }
    int first_bad = -1, alive = S, rc = 0;
    while (alive > 0) {
        struct pollfd pf[64];
        int map[64], n = 0;
        for (int k = 0; k < S && n < 64; k++)
            if (ch[k].fd >= 0) {
                pf[n] = (struct pollfd){.fd = ch[k].fd, .events = POLLIN};
                map[n++] = k;
            }
        if (n) poll(pf, (nfds_t)n, 200);
        else usleep(50000);
        for (int i = 0; i < n; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            child_t *c = &ch[map[i]];
            ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
            if (r > 0) {
                c->len += (size_t)r;
                emit_lines(c, map[i], 0);
            } else if (r == 0 || (r < 0 && errno != EINTR)) {
                emit_lines(c, map[i], 1);
                close(c->fd);
                c->fd = -1;
            }
        }
        for (int k = 0; k < S; k++) {
            if (!ch[k].alive) continue;
            int status;
            if (waitpid(ch[k].pid, &status, WNOHANG) != ch[k].pid) continue;
            ch[k].alive = 0;
            alive--;
            int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            if (code != 0 && first_bad < 0) {
                first_bad = k;
                rc = code;
                fprintf(stderr, "sparq launch: stage %d %s %d; stopping the other stages\n", k,
                        WIFEXITED(status) ? "exited with status" : "was killed by signal",
                        WIFEXITED(status) ? code : WTERMSIG(status));
                for (int j = 0; j < S; j++)
                    if (ch[j].alive) kill(ch[j].pid, SIGTERM);
            }
        }
        if (got_signal && first_bad < 0) {
            fprintf(stderr, "sparq launch: signal %d, stopping the stages\n", (int)got_signal);
            for (int j = 0; j < S; j++)
                if (ch[j].alive) kill(ch[j].pid, SIGTERM);
            first_bad = S;
            rc = 128 + (int)got_signal;
        }
    }
    for (int k = 0; k < S; k++)
        if (ch[k].fd >= 0) close(ch[k].fd);
    free(ch);
    return rc;
}
