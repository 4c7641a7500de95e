/* ZO trainer: determinism, resume after kill -9, the run log as checkpoint,
 * pinned L+/L-/g for a fixed seed, bad configs and data.
 *
 * usage: test_trainer SPARQ_BINARY */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sparq/config.h"
#include "sparq/task.h"
#include "sparq/trainer.h"
#include "sparq/weights.h"
#include "sparq/zo_rng.h"

static const char *sparq_bin;
static char tmpdir[256];

/* A small, fast job: opt-mini sentiment, batch 4, 12 steps. */
static void write_job(const char *path, const char *out, const char *extra)
{
    char buf[4096];
    snprintf(buf, sizeof buf,
             "model: %s/models/opt-mini\n"
             "output: %s\n"
             "task:\n"
             "  type: classification\n"
             "  train: %s/data/sentiment/train.jsonl\n"
             "  eval: %s/data/sentiment/eval.jsonl\n"
             "  labels: [\" terrible\", \" great\"]\n"
             "  bos_id: 2\n"
             "  max_len: 32\n"
             "  eval_limit: 8\n"
             "optimizer:\n"
             "  lr: 1.0e-4\n"
             "  eps: 1.0e-3\n"
             "  weight_decay: 0.01\n"
             "train:\n"
             "  steps: 12\n"
             "  batch_size: 4\n"
             "  eval_every: 6\n"
             "  log_every: 1\n"
             "  snapshot_every: 5\n"
             "  seed: 7\n"
             "  threads: 1\n"
             "%s",
             SQ_REPO_DIR, out, SQ_REPO_DIR, SQ_REPO_DIR, extra ? extra : "");
    sq_test_write_text(path, buf);
}

static void train_in_process(const char *job, const char *const *sets, int n_sets,
                             int64_t stop_after)
{
    sq_config_t cfg;
    SQ_CHECK(sq_config_load(job, &cfg));
    for (int i = 0; i < n_sets; i++) SQ_CHECK(sq_config_set(&cfg, sets[i]));
    sq_train_opts_t o = {.quiet = 1, .stop_after = stop_after};
    SQ_CHECK(sq_train_run(&cfg, &o));
}

static void resume_in_process(const char *dir)
{
    sq_config_t cfg;
    sq_config_defaults(&cfg);
    sq_train_opts_t o = {.quiet = 1, .resume_dir = dir};
    SQ_CHECK(sq_train_run(&cfg, &o));
}

static void assert_same_file(const char *a, const char *b)
{
    size_t la, lb;
    char *x = sq_test_read_all(a, &la), *y = sq_test_read_all(b, &lb);
    if (!x || !y) fail_msg("missing %s or %s", a, b);
    if (la != lb || memcmp(x, y, la) != 0) fail_msg("%s and %s differ", a, b);
    free(x);
    free(y);
}

static void test_deterministic_and_resume(void **state)
{
    (void)state;
    char job[512], a[512], b[512], c[512], pa[600], pb[600];
    snprintf(a, sizeof a, "%s/run-a", tmpdir);
    snprintf(b, sizeof b, "%s/run-b", tmpdir);
    snprintf(c, sizeof c, "%s/run-c", tmpdir);
    snprintf(job, sizeof job, "%s/job.yaml", tmpdir);
    write_job(job, a, NULL);
    train_in_process(job, NULL, 0, 0);

    /* same config and seed: the same run log, byte for byte */
    const char *set_b[] = {"output=" /* filled below */};
    char ob[600];
    snprintf(ob, sizeof ob, "output=%s", b);
    set_b[0] = ob;
    train_in_process(job, set_b, 1, 0);
    snprintf(pa, sizeof pa, "%s/runlog.jsonl", a);
    snprintf(pb, sizeof pb, "%s/runlog.jsonl", b);
    assert_same_file(pa, pb);
    snprintf(pa, sizeof pa, "%s/snapshot-00000012.safetensors", a);
    snprintf(pb, sizeof pb, "%s/snapshot-00000012.safetensors", b);
    assert_same_file(pa, pb);

    /* a clean stop after 7 steps, then resume: same final weights */
    char oc[600];
    snprintf(oc, sizeof oc, "output=%s", c);
    const char *set_c[] = {oc};
    train_in_process(job, set_c, 1, 7);
    snprintf(pb, sizeof pb, "%s/snapshot-00000012.safetensors", c);
    assert_int_equal(access(pb, F_OK), -1);
    resume_in_process(c);
    assert_same_file(pa, pb);
    snprintf(pb, sizeof pb, "%s/runlog.jsonl", c);
    snprintf(pa, sizeof pa, "%s/runlog.jsonl", a);
    assert_same_file(pa, pb);
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, ch;
    if (!f) return 0;
    while ((ch = fgetc(f)) != EOF) n += ch == '\n';
    fclose(f);
    return n;
}

static void test_kill9_then_resume(void **state)
{
    (void)state;
    char job[512], ref[512], k[512], path[600], want[600];
    snprintf(ref, sizeof ref, "%s/run-ref", tmpdir);
    snprintf(k, sizeof k, "%s/run-kill", tmpdir);
    snprintf(job, sizeof job, "%s/job-kill.yaml", tmpdir);
    write_job(job, ref, "");
    train_in_process(job, NULL, 0, 0);

    write_job(job, k, "");
    snprintf(path, sizeof path, "%s/runlog.jsonl", k);
    pid_t pid = fork();
    if (pid == 0) {
        execl(sparq_bin, sparq_bin, "train", "--config", job, "--quiet", (char *)NULL);
        _exit(127);
    }
    /* kill it mid-run, as soon as 8 steps are logged */
    for (int i = 0; i < 6000 && count_lines(path) < 8; i++) usleep(5000);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status) || WIFEXITED(status));
    int logged = count_lines(path);
    assert_true(logged >= 8);

    /* simulate a torn final line as a crash mid-write leaves it */
    FILE *f = fopen(path, "a");
    fputs("{\"step\":", f);
    fclose(f);

    pid = fork();
    if (pid == 0) {
        execl(sparq_bin, sparq_bin, "train", "--resume", k, "--quiet", (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    snprintf(path, sizeof path, "%s/snapshot-00000012.safetensors", k);
    snprintf(want, sizeof want, "%s/snapshot-00000012.safetensors", ref);
    assert_same_file(want, path);
}

/* The snapshot the trainer wrote equals base weights + the run log replayed. */
static void test_log_is_the_checkpoint(void **state)
{
    (void)state;
    char job[512], dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/run-a", tmpdir); /* from the first test */
    snprintf(job, sizeof job, "%s/run-a/config.yaml", tmpdir);
    sq_config_t cfg;
    SQ_CHECK(sq_config_load(job, &cfg));
    sq_backend_t *be;
    sq_model_t *m;
    sq_selection_t sel;
    SQ_CHECK(sq_backend_cpu_create(1, &be));
    sq_model_load_opts_t lo = {.max_batch = 1, .max_seq = 8};
    SQ_CHECK(sq_model_load(cfg.model, &lo, be, &m));
    SQ_CHECK(sq_selection_build(&cfg, m, &sel));
    /* replay every entry from the base weights (no snapshot) */
    sq_runlog_entry_t *e;
    int64_t n;
    snprintf(path, sizeof path, "%s/runlog.jsonl", dir);
    SQ_CHECK(sq_runlog_read(path, &e, &n));
    assert_int_equal(n, 12);
    for (int64_t t = 0; t < n; t++) {
        assert_true(e[t].seeds[0] == sq_zo_step_seed(7, (uint64_t)t, 0));
        SQ_CHECK(sq_zo_apply_update(m, &sel, e[t].n, e[t].seeds, e[t].g, e[t].lr, 0.01f));
    }
    free(e);
    snprintf(path, sizeof path, "%s/snapshot-00000012.safetensors", dir);
    sq_weight_file_t *wf;
    SQ_CHECK(sq_safetensors_open(path, &wf));
    for (int i = 0; i < sq_model_param_count(m); i++) {
        const sq_param_t *p = sq_model_param(m, i);
        const sq_weight_info_t *info = sq_weights_find(wf, p->name);
        assert_non_null(info);
        assert_memory_equal(info->data, p->t.data, info->nbytes);
    }
    sq_weights_close(wf);
    sq_selection_free(&sel);
    sq_model_destroy(m);
    sq_backend_destroy(be);
}

/* L(theta + eps z), L(theta - eps z) and g of step 0 for a fixed seed, pinned;
 * in-place perturbation gives the same L+ bit for bit. */
static void test_pinned_losses(void **state)
{
    (void)state;
    char job[512];
    snprintf(job, sizeof job, "%s/job-pin.yaml", tmpdir);
    write_job(job, "/nonexistent", "");
    sq_config_t cfg;
    SQ_CHECK(sq_config_load(job, &cfg));
    sq_backend_t *be;
    sq_model_t *m;
    sq_tokenizer_t *tok;
    sq_task_t *task;
    sq_selection_t sel;
    SQ_CHECK(sq_backend_cpu_create(1, &be));
    sq_model_load_opts_t lo = {.max_batch = 4, .max_seq = 32, .perturb = 1};
    SQ_CHECK(sq_model_load(cfg.model, &lo, be, &m));
    SQ_CHECK(sq_tokenizer_load(cfg.model, &tok));
    SQ_CHECK(sq_task_load(&cfg, tok, sq_model_config(m)->vocab_size, &task));
    SQ_CHECK(sq_selection_build(&cfg, m, &sel));
    sq_task_batch_t b;
    SQ_CHECK(sq_task_train_batch(task, cfg.train.seed, 0, &b));
    uint64_t s = sq_zo_step_seed(cfg.train.seed, 0, 0);
    double l[3];
    for (int k = 0; k < 2; k++) {
        sq_perturbation_t p = {.seed = s, .scale = k ? -1e-3f : 1e-3f, .tuned = sel.tuned};
        SQ_CHECK(sq_model_set_perturbation(m, &p));
        SQ_CHECK(sq_model_forward(m, &b.batch, &b.head));
        SQ_CHECK(sq_task_loss(task, &b, &l[k], NULL, NULL));
    }
    SQ_CHECK(sq_model_set_perturbation(m, NULL));
    double g = (l[0] - l[1]) / 2e-3;
    printf("pinned: L+ %.9g L- %.9g g %.9g\n", l[0], l[1], g);
    /* values from this implementation at commit time (regression pin) */
    const double want_lp = PIN_LPLUS, want_lm = PIN_LMINUS;
    assert_true(fabs(l[0] - want_lp) < 1e-5 * fabs(want_lp));
    assert_true(fabs(l[1] - want_lm) < 1e-5 * fabs(want_lm));
    /* in place: theta + eps z written into theta gives the same L+ */
    SQ_CHECK(sq_zo_perturb_inplace(m, &sel, s, 1e-3f));
    SQ_CHECK(sq_model_forward(m, &b.batch, &b.head));
    SQ_CHECK(sq_task_loss(task, &b, &l[2], NULL, NULL));
    assert_true(l[2] == l[0]);
    sq_selection_free(&sel);
    sq_task_destroy(task);
    sq_tokenizer_destroy(tok);
    sq_model_destroy(m);
    sq_backend_destroy(be);
}

static void expect_config_error(const char *yaml, sq_status_t want, const char *needle)
{
    char path[512];
    snprintf(path, sizeof path, "%s/bad.yaml", tmpdir);
    sq_test_write_text(path, yaml);
    sq_config_t cfg;
    sq_status_t st = sq_config_load(path, &cfg);
    if (st != want || !strstr(sq_error_last(), needle))
        fail_msg("config %s: got status %d \"%s\", want %d containing \"%s\"", yaml, st,
                 sq_error_last(), want, needle);
}

static void test_bad_configs(void **state)
{
    (void)state;
    const char *base = "model: m\ntask:\n  train: t\n  labels: [a, b]\n";
    char y[1024];
    snprintf(y, sizeof y, "%soptimizer:\n  lrr: 1\n", base);
    expect_config_error(y, SQ_ERR_CONFIG, "bad.yaml:6: unknown key \"optimizer.lrr\"");
    snprintf(y, sizeof y, "%soptimizer:\n  lr: fast\n", base);
    expect_config_error(y, SQ_ERR_CONFIG, "bad.yaml:6: optimizer.lr: expected a number");
    snprintf(y, sizeof y, "%strain:\n  steps: 1.5\n", base);
    expect_config_error(y, SQ_ERR_CONFIG, "train.steps: expected an integer");
    snprintf(y, sizeof y, "%strain:\n  batch_size: 0\n", base);
    expect_config_error(y, SQ_ERR_RANGE, "train.batch_size: 0 is outside");
    snprintf(y, sizeof y, "%soptimizer:\n  schedule: cosyne\n", base);
    expect_config_error(y, SQ_ERR_CONFIG, "not one of: constant, linear, cosine");
    expect_config_error("model: m\ntask:\n  train: t\n", SQ_ERR_CONFIG, "task.labels");
    expect_config_error("model: [1, 2]\n", SQ_ERR_CONFIG, "model: expected a single value");
    expect_config_error("model: m\n  bad indent: [\n", SQ_ERR_CONFIG, "YAML error");
    expect_config_error("- a\n- b\n", SQ_ERR_CONFIG, "must be a mapping");
    snprintf(y, sizeof y, "%stask:\n  labels: x\n", "model: m\n");
    expect_config_error(y, SQ_ERR_CONFIG, "task.labels: expected a list");

    /* plan files: only placement and codec keys, one source of boundaries, sizes agree */
    char plan[512];
    snprintf(plan, sizeof plan, "%s/plan.yaml", tmpdir);
    snprintf(y, sizeof y, "%spipeline:\n  plan: plan.yaml\n", base);
    sq_test_write_text(plan, "pipeline:\n  stages: 2\n  boundaries: [7]\ntrain:\n  steps: 9\n");
    expect_config_error(y, SQ_ERR_CONFIG, "plan.yaml:5: \"train.steps\" cannot be set by a plan");
    sq_test_write_text(plan, "pipeline:\n  stages: 3\n  boundaries: [7]\n");
    expect_config_error(y, SQ_ERR_CONFIG, "pipeline.boundaries: 1 entries for 3 stages");
    snprintf(y, sizeof y, "%spipeline:\n  plan: missing.yaml\n", base);
    expect_config_error(y, SQ_ERR_IO, "missing.yaml: cannot open");
    snprintf(y, sizeof y, "%spipeline:\n  plan: plan.yaml\n  boundaries: [4]\n", base);
    expect_config_error(y, SQ_ERR_CONFIG, "pipeline.plan and pipeline.boundaries are both given");

    /* a good plan sets the split; a plan for another model is refused at stage setup */
    sq_test_write_text(plan, "pipeline:\n  stages: 2\n  boundaries: [7]\n  plan_units: 20\n"
                     "codec:\n  boundary_bits: [4]\n");
    snprintf(y, sizeof y, "%spipeline:\n  plan: plan.yaml\n", base);
    char path[512];
    snprintf(path, sizeof path, "%s/good.yaml", tmpdir);
    sq_test_write_text(path, y);
    sq_config_t cfg;
    assert_int_equal(sq_config_load(path, &cfg), SQ_OK);
    assert_int_equal(cfg.pipeline.stages, 2);
    assert_int_equal(sq_config_codec_bits(&cfg, 0), 4);
    int b, e;
    assert_int_equal(sq_config_stage_units(&cfg, 20, 6, 1, &b, &e), SQ_OK);
    assert_int_equal(b, 7);
    assert_int_equal(e, 20);
    assert_int_equal(sq_config_stage_units(&cfg, 29, 9, 1, &b, &e), SQ_ERR_CONFIG);
    assert_non_null(strstr(sq_error_last(), "made for a model of 20 units; this model has 29"));
}

static void test_bad_data(void **state)
{
    (void)state;
    char job[512], data[512];
    snprintf(job, sizeof job, "%s/job-data.yaml", tmpdir);
    snprintf(data, sizeof data, "%s/bad.jsonl", tmpdir);
    sq_tokenizer_t *tok;
    SQ_CHECK(sq_tokenizer_load(SQ_REPO_DIR "/models/gpt2-tokenizer", &tok));
    struct {
        const char *jsonl, *needle;
    } cases[] = {
        {"{\"text\":\"ok\",\"label\":1}\nnot json\n", "bad.jsonl:2: not a JSON object"},
        {"{\"label\":1}\n", "bad.jsonl:1: \"text\" is missing"},
        {"{\"text\":\"x\",\"label\":2}\n", "bad.jsonl:1: \"label\" must be an integer in [0, 2)"},
        {"{\"text\":\"x\",\"label\":0.5}\n", "\"label\" must be an integer"},
        {"\n\n", "no examples"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sq_test_write_text(data, cases[i].jsonl);
        sq_config_t cfg;
        sq_config_defaults(&cfg);
        snprintf(cfg.model, sizeof cfg.model, "m");
        snprintf(cfg.task.train, sizeof cfg.task.train, "%s", data);
        cfg.task.n_labels = 2;
        snprintf(cfg.task.labels[0], sizeof cfg.task.labels[0], " bad");
        snprintf(cfg.task.labels[1], sizeof cfg.task.labels[1], " good");
        sq_task_t *t = NULL;
        sq_status_t st = sq_task_load(&cfg, tok, 50257, &t);
        if (st == SQ_OK || !strstr(sq_error_last(), cases[i].needle))
            fail_msg("data case %zu: status %d \"%s\"", i, st, sq_error_last());
    }
    /* a label word of two tokens is refused */
    sq_config_t cfg;
    sq_config_defaults(&cfg);
    snprintf(cfg.task.train, sizeof cfg.task.train, "%s/data/sentiment/train.jsonl", SQ_REPO_DIR);
    cfg.task.n_labels = 2;
    snprintf(cfg.task.labels[0], sizeof cfg.task.labels[0], " bad");
    snprintf(cfg.task.labels[1], sizeof cfg.task.labels[1], " supercalifragilistic");
    sq_task_t *t = NULL;
    assert_int_equal(sq_task_load(&cfg, tok, 50257, &t), SQ_ERR_CONFIG);
    assert_non_null(strstr(sq_error_last(), "label words must be single tokens"));
    sq_tokenizer_destroy(tok);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SPARQ_BINARY\n", argv[0]);
        return 2;
    }
    sparq_bin = argv[1];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sparq-test-trainer-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_and_resume),
        cmocka_unit_test(test_log_is_the_checkpoint),
        cmocka_unit_test(test_kill9_then_resume),
        cmocka_unit_test(test_pinned_losses),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_bad_data),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (rc == 0 && system(cmd) != 0) rc = 1;
    return rc;
}
