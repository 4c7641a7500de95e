/* sparq plan end to end on a tiny job (the planner's profiling, fidelity and
 * writers under the sanitizers too), and its answers to bad input: clear
 * messages and exit codes, never a crash. usage: test_plan_cli SPARQ_BINARY */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

static const char *sparq_bin;
static char tmpdir[256];

/* Run `sparq plan ARGS` on the example job shrunk to a few tokens; returns
 * the exit status (-1: killed by a signal) and leaves stderr in tmpdir/err. */
static int plan(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "'%s' plan --config %s/examples/pipeline-opt-mini.yaml --set train.batch_size=2 "
             "--set pipeline.micro_batches=1 --set task.max_len=16 --reps 1 --calib-batches 1 "
             "--quiet %s > '%s/out' 2> '%s/err'",
             sparq_bin, SQ_REPO_DIR, args, tmpdir, tmpdir);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect_err(const char *args, int code, const char *needle)
{
    char path[300];
    int got = plan(args);
    snprintf(path, sizeof path, "%s/err", tmpdir);
    char *err = sq_test_read_all(path, NULL);
    if (got != code || !err || !strstr(err, needle))
        fail_msg("sparq plan %s: exit %d (want %d), stderr: %s", args, got, code, err ? err : "");
    free(err);
}

static void test_plan_and_report(void **state)
{
    (void)state;
    char args[1024], path[600];
    snprintf(args, sizeof args,
             "--stages 3 --fidelity-steps 2 --min-fidelity 0.5 --calib %s/data/text/moby-dick-ch1-12.txt "
             "-o %s/plan.yaml --report %s/rep",
             SQ_REPO_DIR, tmpdir, tmpdir);
    assert_int_equal(plan(args), 0);
    snprintf(path, sizeof path, "%s/plan.yaml", tmpdir);
    char *y = sq_test_read_all(path, NULL);
    assert_non_null(y);
    assert_non_null(strstr(y, "stages: 3"));
    assert_non_null(strstr(y, "plan_units: 20"));
    free(y);
    static const char *files[] = {"plan.md", "plan.svg", "profile.csv"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/rep/%s", tmpdir, files[i]);
        char *t = sq_test_read_all(path, NULL);
        if (!t) fail_msg("%s missing", path);
        free(t);
    }
    /* the baseline on its own, Markdown on stdout */
    assert_int_equal(plan("--balance-only -o /dev/null"), 0);
    snprintf(path, sizeof path, "%s/out", tmpdir);
    char *md = sq_test_read_all(path, NULL);
    assert_non_null(md);
    assert_non_null(strstr(md, "## The plan (balance only)"));
    free(md);
}

static void test_bad_input(void **state)
{
    (void)state;
    expect_err("--stages 100 --fidelity-steps 0 -o /dev/null", 1, "100 stages for a model of 20 units");
    expect_err("--calib /nonexistent/text.txt --fidelity-steps 0", 1, "/nonexistent/text.txt: cannot open");
    expect_err("--mem-cap-mb 1 --fidelity-steps 0 -o /dev/null", 1, "fits the memory cap");
    expect_err("--min-fidelity 2", 2, "--min-fidelity");
    expect_err("--min-fidelity 0.9 --fidelity-steps 0", 2, "needs --fidelity-steps");
    expect_err("--stages x", 2, "--stages");
    expect_err("--set codec.bits=3", 1, "codec.bits: 3 is not 8, 4 or 2");
    expect_err("--fidelity-steps 0 -o /nonexistent/dir/plan.yaml", 1, "/nonexistent/dir/plan.yaml");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SPARQ_BINARY\n", argv[0]);
        return 2;
    }
    sparq_bin = argv[1];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sparq-test-plan-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_and_report),
        cmocka_unit_test(test_bad_input),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (rc == 0 && system(cmd) != 0) rc = 1;
    return rc;
}
