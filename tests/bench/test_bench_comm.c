/* `sparq bench comm` on examples/pipeline-opt-mini.yaml, one step: exit 0,
 * one CSV row per stage boundary with 0 < encoded bytes < fp16 bytes, the
 * Markdown file written; a job with pipeline.stages = 1 and bad options
 * fail with a message and no crash.
 *
 * usage: test_bench_comm SPARQ_BINARY */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *sparq_bin;
static char tmpdir[256], job[512];

/* Run sparq with argv (NULL-terminated, argv[0] = "sparq"); stdout and stderr
 * go to files in tmpdir. Returns the exit status, or -1 when it died of a
 * signal (a crash is never an acceptable answer to bad input). */
static int run_sparq(char *const argv[])
{
    char out[600], err[600];
    snprintf(out, sizeof out, "%s/stdout", tmpdir);
    snprintf(err, sizeof err, "%s/stderr", tmpdir);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(126);
        execv(sparq_bin, argv);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *read_out(const char *which)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", tmpdir, which);
    char *s = sq_test_read_all(path, NULL);
    assert_non_null(s);
    return s;
}

/* Index of `name` in the comma-separated header line. */
static int csv_col(const char *header, const char *name)
{
    int col = 0;
    size_t n = strlen(name);
    for (const char *p = header; *p && *p != '\n'; col++) {
        if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == '\n' || !p[n])) return col;
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    return -1;
}

static double csv_field(const char *line, int col)
{
    const char *p = line;
    for (int i = 0; i < col && p; i++) {
        p = strchr(p, ',');
        if (p) p++;
    }
    assert_non_null(p);
    return strtod(p, NULL);
}

static void check_run(int stages)
{
    char csv[600], md[600], set[64];
    snprintf(csv, sizeof csv, "%s/comm.csv", tmpdir);
    snprintf(md, sizeof md, "%s/comm.md", tmpdir);
    snprintf(set, sizeof set, "pipeline.stages=%d", stages);
    char *argv[] = {"sparq",   "bench", "comm",  "--config", job,    "--set", set,
                    "--steps", "1",     "--csv", csv,        "--md", md,      NULL};
    int rc = run_sparq(argv);
    if (rc != 0) {
        char *e = read_out("stderr");
        fail_msg("sparq bench comm exited %d: %s", rc, e);
    }
    char *text = sq_test_read_all(csv, NULL);
    assert_non_null(text);
    int c_enc = csv_col(text, "bytes_encoded"), c_f16 = csv_col(text, "bytes_fp16");
    int c_bd = csv_col(text, "boundary");
    assert_true(c_enc >= 0 && c_f16 >= 0 && c_bd >= 0);
    int rows = 0;
    for (char *line = strchr(text, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        const char *row = line + 1;
        double enc = csv_field(row, c_enc), f16 = csv_field(row, c_f16);
        assert_int_equal((int)csv_field(row, c_bd), rows);
        if (!(enc > 0 && enc < f16))
            fail_msg("boundary %d: %.0f encoded bytes vs %.0f fp16 bytes", rows, enc, f16);
        rows++;
    }
    assert_int_equal(rows, stages - 1);
    free(text);
    char *m = sq_test_read_all(md, NULL);
    assert_non_null(m);
    assert_non_null(strstr(m, "command: sparq bench comm"));
    assert_non_null(strstr(m, "codec % of first-order"));
    assert_non_null(strstr(m, "| stage | units |"));
    free(m);
}

static void test_two_stages(void **state)
{
    (void)state;
    check_run(2);
}

static void test_three_stages(void **state)
{
    (void)state;
    check_run(3);
}

static void test_bad_input(void **state)
{
    (void)state;
    char *no_pipeline[] = {
        "sparq",   "bench", "comm", "--config", job, "--set", "pipeline.stages=1",
        "--steps", "1",     NULL};
    int rc = run_sparq(no_pipeline);
    assert_true(rc > 0);
    char *e = read_out("stderr");
    assert_non_null(strstr(e, "pipeline.stages"));
    free(e);

    char *bad_steps[] = {"sparq", "bench", "comm", "--config", job, "--steps", "x", NULL};
    assert_true(run_sparq(bad_steps) > 0);
    char *no_config[] = {"sparq", "bench", "comm", NULL};
    assert_true(run_sparq(no_config) > 0);
    char *missing[] = {"sparq", "bench", "comm", "--config", "/nonexistent/job.yaml", NULL};
    assert_true(run_sparq(missing) > 0);
    e = read_out("stderr");
    assert_non_null(strstr(e, "/nonexistent/job.yaml"));
    free(e);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SPARQ_BINARY\n", argv[0]);
        return 2;
    }
    sparq_bin = argv[1];
    snprintf(job, sizeof job, "%s/examples/pipeline-opt-mini.yaml", SQ_REPO_DIR);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sparq-test-bench-comm-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_stages),
        cmocka_unit_test(test_three_stages),
        cmocka_unit_test(test_bad_input),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) rc = 1;
    return rc;
}
