/* GPU stage figures (issue 7): forward throughput and MFU of a model that
 * fills the GPU, device memory per pipeline stage against a first-order
 * estimate, and the step-time breakdown of a two-stage pipeline with the
 * boundary's encode / copy / send overlapped with the next micro-batch or
 * not. Random weights at OPT shapes are written once to --workdir.
 *
 * The two-stage pipeline runs in one process on one GPU: stage 0's message
 * goes device -> page-locked host (the stager) -> a host copy standing in
 * for the wire -> stage 1's decode. It measures what overlap buys on the
 * device side; the network is bench_comm's and netns_pipeline.sh's job. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "sparq/codec_staging.h"
#include "sparq/config.h"
#include "sparq/model.h"
#include "sparq/weights.h"

typedef struct shape {
    const char *name;
    int C, F, H, L, V, P;
} shape_t;

static const shape_t shapes[] = {
    {"opt-125m", 768, 3072, 12, 12, 50272, 2048},
    {"opt-1.3b", 2048, 8192, 32, 24, 50272, 2048},
    {"opt-6.7b", 4096, 16384, 32, 32, 50272, 2048},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sparq bench gpu [--shape opt-1.3b] [--model DIR] [--workdir /tmp/sparq-bench]\n"
            "                       [--batch 4] [--seq 512] [--stages 2] [--micro 4] [--bits 8]\n"
            "                       [--reps 5] [--peak-tflops X] [--device N] [--gemm bf16]\n"
            "Forward throughput and MFU on one GPU, device memory per stage against a\n"
            "first-order estimate, and a two-stage step with overlap on and off.\n"
            "  --shape S         random weights at OPT shapes: opt-125m, opt-1.3b, opt-6.7b\n"
            "                    (written once under --workdir as fp16 safetensors)\n"
            "  --model DIR       a real HF model directory instead of --shape\n"
            "  --gemm M          the linear layers' GEMM math, as train.gemm: fp32, tf32,\n"
            "                    bf16 (default) or fp16 (weights cast into 16-bit operands each\n"
            "                    forward)\n"
            "  --peak-tflops X   the device's dense peak for the GEMM math in use (default:\n"
            "                    H100 SXM figures: 67 fp32, 495 tf32, 989 bf16 and fp16)\n");
}

/* ---- random weights at a shape ---- */

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static sq_status_t write_random_model(const shape_t *s, const char *dir)
{
    char path[1100], cfg[1024], name[160];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat sb;
    if (stat(path, &sb) == 0) return SQ_OK; /* written by an earlier run */
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return sq_error_set(SQ_ERR_IO, "%s: cannot create (%s)", dir, strerror(errno));
    snprintf(cfg, sizeof cfg,
             "{\"architectures\":[\"OPTForCausalLM\"],\"model_type\":\"opt\","
             "\"activation_function\":\"relu\",\"hidden_size\":%d,\"ffn_dim\":%d,"
             "\"num_attention_heads\":%d,\"num_hidden_layers\":%d,"
             "\"max_position_embeddings\":%d,\"vocab_size\":%d,\"word_embed_proj_dim\":%d,"
             "\"do_layer_norm_before\":true,\"enable_bias\":true,"
             "\"layer_norm_elementwise_affine\":true,\"torch_dtype\":\"float16\","
             "\"tie_word_embeddings\":true}\n",
             s->C, s->F, s->H, s->L, s->P, s->V, s->C);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (write_text(path, cfg) != 0) return sq_error_set(SQ_ERR_IO, "%s: cannot write", path);

    const int64_t big = (int64_t)s->V * s->C > (int64_t)s->F * s->C ? (int64_t)s->V * s->C
                                                                     : (int64_t)s->F * s->C;
    float *rnd = malloc(sizeof(float) * (size_t)big), *ones = malloc(sizeof(float) * (size_t)s->F);
    float *zeros = calloc((size_t)s->F, sizeof(float));
    sq_weight_out_t *t = calloc((size_t)s->L * 16 + 8, sizeof *t);
    char(*names)[160] = calloc((size_t)s->L * 16 + 8, sizeof *names);
    sq_status_t st = SQ_OK;
    if (!rnd || !ones || !zeros || !t || !names) {
        st = sq_error_set(SQ_ERR_NOMEM, "bench gpu: out of host memory for random weights");
        goto done;
    }
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < big; i++) { /* ~N(0, 0.02): sum of two uniforms, scaled */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        float u = (float)(x >> 40) / 16777216.0f, v = (float)((x >> 16) & 0xFFFFFF) / 16777216.0f;
        rnd[i] = (u + v - 1.0f) * 0.05f;
    }
    for (int i = 0; i < s->F; i++) ones[i] = 1.0f;
    int n = 0;
#define ADD(nm, ndim_, d0, d1, src)                                                                \
    do {                                                                                           \
        snprintf(names[n], sizeof names[n], "%s", (nm));                                           \
        t[n] = (sq_weight_out_t){.name = names[n], .dtype = SQ_DTYPE_F16, .ndim = (ndim_),         \
                                 .data = (src)};                                                   \
        t[n].shape[0] = (d0);                                                                      \
        t[n].shape[1] = (d1);                                                                      \
        n++;                                                                                       \
    } while (0)
    ADD("model.decoder.embed_tokens.weight", 2, s->V, s->C, rnd);
    ADD("model.decoder.embed_positions.weight", 2, s->P + 2, s->C, rnd);
    ADD("model.decoder.final_layer_norm.weight", 1, s->C, 0, ones);
    ADD("model.decoder.final_layer_norm.bias", 1, s->C, 0, zeros);
    static const char *const proj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    for (int l = 0; l < s->L; l++) {
        for (int k = 0; k < 2; k++) {
            const char *ln = k ? "final_layer_norm" : "self_attn_layer_norm";
            snprintf(name, sizeof name, "model.decoder.layers.%d.%s.weight", l, ln);
            ADD(name, 1, s->C, 0, ones);
            snprintf(name, sizeof name, "model.decoder.layers.%d.%s.bias", l, ln);
            ADD(name, 1, s->C, 0, zeros);
        }
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "model.decoder.layers.%d.self_attn.%s.weight", l, proj[k]);
            ADD(name, 2, s->C, s->C, rnd);
            snprintf(name, sizeof name, "model.decoder.layers.%d.self_attn.%s.bias", l, proj[k]);
            ADD(name, 1, s->C, 0, zeros);
        }
        snprintf(name, sizeof name, "model.decoder.layers.%d.fc1.weight", l);
        ADD(name, 2, s->F, s->C, rnd);
        snprintf(name, sizeof name, "model.decoder.layers.%d.fc1.bias", l);
        ADD(name, 1, s->F, 0, zeros);
        snprintf(name, sizeof name, "model.decoder.layers.%d.fc2.weight", l);
        ADD(name, 2, s->C, s->F, rnd);
        snprintf(name, sizeof name, "model.decoder.layers.%d.fc2.bias", l);
        ADD(name, 1, s->C, 0, zeros);
    }
#undef ADD
    fprintf(stderr, "bench gpu: writing %d random tensors at %s shapes to %s ...\n", n, s->name, dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st = sq_safetensors_write(path, t, (size_t)n);
done:
    free(rnd);
    free(ones);
    free(zeros);
    free(t);
    free(names);
    return st;
}

/* ---- measurements ---- */

typedef struct job {
    const char *path;
    int B, T, S, M, bits, reps, device;
    int gemm; /* SQ_GEMM_* (as train.gemm) */
    double peak_tflops;
    int32_t *tok, *tgt;
    float *nll;
} job_t;

/* A CUDA backend with the job's GEMM math (TF32 is a backend switch). */
static sq_status_t gpu_backend(const job_t *j, sq_backend_t **be)
{
    SQ_TRY(sq_backend_cuda_create(j->device, be));
    sq_status_t st = sq_backend_cuda_set_tf32(*be, j->gemm == SQ_GEMM_TF32);
    if (st != SQ_OK) sq_backend_destroy(*be);
    return st;
}

static double device_used_mb(void)
{
    size_t fr = 0, total = 0;
    if (sq_cuda_mem_info(&fr, &total) != SQ_OK) return NAN;
    return (double)(total - fr) / 1048576.0;
}

static sq_status_t timed_forward(sq_model_t *m, const sq_batch_t *b, sq_head_out_t *out, int reps,
                                 double *median_s)
{
    sq_backend_t *be = sq_model_backend(m);
    double t[64];
    if (reps > 64) reps = 64;
    SQ_TRY(sq_model_forward(m, b, out)); /* warm-up: cuBLAS heuristics, caches */
    SQ_TRY(be->ops->sync(be));
    for (int r = 0; r < reps; r++) {
        double t0 = sq_bench_now();
        SQ_TRY(sq_model_forward(m, b, out));
        SQ_TRY(be->ops->sync(be));
        t[r] = sq_bench_now() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], sq_bench_cmp_double);
    *median_s = t[reps / 2];
    return SQ_OK;
}

static sq_status_t forward_figures(job_t *j)
{
    sq_backend_t *be;
    sq_model_t *m;
    double base = device_used_mb();
    SQ_TRY(gpu_backend(j, &be));
    sq_model_load_opts_t lo = {.max_batch = j->B, .max_seq = j->T,
                               .gemm_dtype = sq_config_gemm_dtype(j->gemm)};
    sq_status_t st = sq_model_load(j->path, &lo, be, &m);
    if (st != SQ_OK) {
        sq_backend_destroy(be);
        return st;
    }
    sq_batch_t b = {.B = j->B, .T = j->T, .tokens = j->tok, .targets = j->tgt};
    sq_head_out_t out = {.nll = j->nll};
    double med = 0;
    st = timed_forward(m, &b, &out, j->reps, &med);
    if (st == SQ_OK) {
        const double flops = sq_model_forward_flops(m, j->B, j->T);
        const double tf = flops / med * 1e-12;
        printf("\n### Forward, whole model on one GPU (%s GEMMs)\n\n", sq_config_gemm_names[j->gemm]);
        printf("| model | batch x seq | forward ms (median of %d) | tokens/s | TFLOP/fwd | "
               "TFLOP/s | peak TFLOP/s | MFU | device MB (params + activations + scratch) |\n",
               j->reps);
        printf("|---|---|---|---|---|---|---|---|---|\n");
        printf("| %s | %d x %d | %.2f | %.0f | %.3f | %.1f | %.0f | %.1f%% | %.0f |\n", j->path,
               j->B, j->T, med * 1e3, (double)j->B * j->T / med, flops * 1e-12, tf,
               j->peak_tflops, 100.0 * tf / j->peak_tflops, device_used_mb() - base);
    }
    sq_model_destroy(m);
    sq_backend_destroy(be);
    return st;
}

static sq_status_t memory_figures(job_t *j, const sq_model_config_t *mc)
{
    printf("\n### Device memory per stage (%d stages, micro-batch %d x %d, %d micro-batches)\n\n",
           j->S, j->B / j->M, j->T, j->M);
    printf("| stage | units | ZO device MB | first-order estimate MB | ratio |\n|---|---|---|---|---|\n");
    for (int s = 0; s < j->S; s++) {
        const int ub = sq_model_even_cut(mc->n_layers, j->S, s);
        const int ue = sq_model_even_cut(mc->n_layers, j->S, s + 1);
        sq_backend_t *be;
        sq_model_t *m;
        double base = device_used_mb();
        SQ_TRY(gpu_backend(j, &be));
        sq_model_load_opts_t lo = {.unit_begin = ub, .unit_end = ue, .max_batch = j->B / j->M,
                                   .max_seq = j->T, .perturb = 1,
                                   .gemm_dtype = sq_config_gemm_dtype(j->gemm)};
        sq_status_t st = sq_model_load(j->path, &lo, be, &m);
        if (st != SQ_OK) {
            sq_backend_destroy(be);
            return st;
        }
        const double used = device_used_mb() - base;
        const int Bm = j->B / j->M;
        const sq_bench_fo_mem_t f =
            sq_bench_fo_estimate(mc, ub, ue, s, j->S, j->M,
                                 (int64_t)(sq_model_param_bytes(m) / 4), Bm, j->T, Bm * j->T);
        const double fo = f.weights_mb + f.act_mb;
        printf("| %d | [%d, %d) | %.0f | %.0f | %.2fx |\n", s, ub, ue, used, fo, fo / used);
        sq_model_destroy(m);
        sq_backend_destroy(be);
    }
    return SQ_OK;
}

/* Two stages on one GPU, M micro-batches x (+eps, -eps). */
typedef struct two {
    sq_backend_t *be[2];
    sq_model_t *m[2];
    sq_codec_stager_t *sg[2]; /* [0] encodes, [1] decodes */
    uint8_t *wire;
    size_t cap;
} two_t;

/* Stage 1's side of one payload (a u64 length, then the message):
 * "receive" it from the wire copy, decode, forward to the loss. */
static sq_status_t stage1(job_t *j, two_t *p, const sq_boundary_t *in, const sq_batch_t *b,
                          size_t len, double *dec_s)
{
    double ts = sq_bench_now();
    SQ_TRY(sq_codec_stager_decode(p->sg[1], p->wire + 8, len - 8, in->t[0].data, sq_tensor_rows(&in->t[0]),
                                  sq_tensor_cols(&in->t[0]), sq_tensor_ld(&in->t[0])));
    *dec_s += sq_bench_now() - ts;
    sq_head_out_t h = {.nll = j->nll};
    return sq_model_forward(p->m[1], b, &h);
}

/* One step: micro-batch i (M of them, each +eps and -eps) is queued on stage
 * 0, then the message of i-1 is finished, copied and handed to stage 1, then
 * i is encoded. With overlap, i's encode is only queued and finished after
 * i+1's stage-0 forward is queued; without, it is finished at once. */
static sq_status_t pipeline_step(job_t *j, two_t *p, int overlap, double *step_s, double *enc_s,
                                 double *dec_s, size_t *bytes)
{
    const int Bm = j->B / j->M;
    sq_codec_params_t cp = sq_codec_params_default();
    cp.bits = j->bits;
    sq_boundary_t out, in;
    SQ_TRY(sq_model_output_boundary(p->m[0], Bm, j->T, &out));
    SQ_TRY(sq_model_input_boundary(p->m[1], Bm, j->T, &in));
    const double t0 = sq_bench_now();
    *enc_s = *dec_s = 0;
    *bytes = 0;
    size_t len = 0;
    sq_batch_t prev = {0};
    for (int i = 0; i < 2 * j->M; i++) {
        const int64_t r0 = (int64_t)(i / 2) * Bm * j->T;
        sq_batch_t b = {.B = Bm, .T = j->T, .tokens = j->tok + r0, .targets = j->tgt + r0};
        SQ_TRY(sq_model_forward(p->m[0], &b, NULL));
        double ts = sq_bench_now();
        if (i > 0) {
            if (overlap) SQ_TRY(sq_codec_stager_finish(p->sg[0], &len));
            memcpy(p->wire, sq_codec_stager_send_buf(p->sg[0]), len);
            *enc_s += sq_bench_now() - ts;
            *bytes += len;
            SQ_TRY(stage1(j, p, &in, &prev, len, dec_s));
        }
        ts = sq_bench_now();
        SQ_TRY(sq_codec_stager_encode(p->sg[0], &cp, out.t[0].data, sq_tensor_rows(&out.t[0]),
                                      sq_tensor_cols(&out.t[0]), sq_tensor_ld(&out.t[0])));
        if (!overlap) SQ_TRY(sq_codec_stager_finish(p->sg[0], &len));
        *enc_s += sq_bench_now() - ts;
        prev = b;
    }
    double ts = sq_bench_now();
    if (overlap) SQ_TRY(sq_codec_stager_finish(p->sg[0], &len));
    memcpy(p->wire, sq_codec_stager_send_buf(p->sg[0]), len);
    *enc_s += sq_bench_now() - ts;
    *bytes += len;
    SQ_TRY(stage1(j, p, &in, &prev, len, dec_s));
    SQ_TRY(p->be[1]->ops->sync(p->be[1]));
    *step_s = sq_bench_now() - t0;
    return SQ_OK;
}

static sq_status_t overlap_figures(job_t *j, const sq_model_config_t *mc)
{
    const int Bm = j->B / j->M;
    two_t p = {0};
    sq_status_t st = SQ_OK;
    const int cut = 1 + 3 * (mc->n_layers / 2); /* after layer L/2 - 1: the hidden stream */
    const int units = sq_model_unit_count(mc);
    for (int s = 0; s < 2 && st == SQ_OK; s++) {
        st = gpu_backend(j, &p.be[s]);
        sq_model_load_opts_t lo = {.unit_begin = s ? cut : 0, .unit_end = s ? units : cut,
                                   .max_batch = Bm, .max_seq = j->T,
                                   .gemm_dtype = sq_config_gemm_dtype(j->gemm)};
        if (st == SQ_OK) st = sq_model_load(j->path, &lo, p.be[s], &p.m[s]);
    }
    sq_codec_params_t cp = sq_codec_params_default();
    cp.bits = j->bits;
    const int64_t rows = (int64_t)Bm * j->T;
    p.cap = 8 + sq_codec_max_size(&cp, rows, mc->d_model); /* u64 length + message */
    if (st == SQ_OK && !(p.wire = malloc(p.cap)))
        st = sq_error_set(SQ_ERR_NOMEM, "bench gpu: wire buffer");
    printf("\n### Two-stage step on one GPU: %d micro-batches x (+eps, -eps), %d-bit auto codec\n\n",
           j->M, j->bits);
    printf("| overlap | step ms (median of %d) | encode + copy wait ms | decode ms | bytes/step |\n"
           "|---|---|---|---|---|\n",
           j->reps);
    for (int overlap = 0; overlap < 2 && st == SQ_OK; overlap++) {
        for (int s = 0; s < 2; s++) {
            sq_codec_stager_destroy(p.sg[s]);
            p.sg[s] = NULL;
        }
        for (int s = 0; s < 2 && st == SQ_OK; s++)
            st = sq_codec_stager_create(rows, rows * mc->d_model, s ? 0 : p.cap, 1, s ? p.cap : 0,
                                        sq_backend_cuda_stream(p.be[s]), &p.sg[s]);
        double t[64], e = 0, d = 0, ts, es, ds;
        size_t bytes = 0;
        int reps = j->reps > 64 ? 64 : j->reps;
        if (st == SQ_OK) st = pipeline_step(j, &p, overlap, &ts, &es, &ds, &bytes); /* warm-up */
        for (int r = 0; r < reps && st == SQ_OK; r++) {
            st = pipeline_step(j, &p, overlap, &t[r], &es, &ds, &bytes);
            e += es / reps;
            d += ds / reps;
        }
        if (st != SQ_OK) break;
        qsort(t, (size_t)reps, sizeof t[0], sq_bench_cmp_double);
        printf("| %s | %.2f | %.2f | %.2f | %zu |\n", overlap ? "on" : "off", t[reps / 2] * 1e3,
               e * 1e3, d * 1e3, bytes);
    }
    for (int s = 0; s < 2; s++) {
        sq_codec_stager_destroy(p.sg[s]);
        sq_model_destroy(p.m[s]);
        sq_backend_destroy(p.be[s]);
    }
    free(p.wire);
    return st;
}

int sq_bench_gpu_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"shape", required_argument, 0, 'S'},   {"model", required_argument, 0, 'm'},
        {"workdir", required_argument, 0, 'w'}, {"batch", required_argument, 0, 'b'},
        {"seq", required_argument, 0, 's'},     {"stages", required_argument, 0, 'k'},
        {"micro", required_argument, 0, 'M'},   {"bits", required_argument, 0, 'q'},
        {"reps", required_argument, 0, 'r'},    {"peak-tflops", required_argument, 0, 'p'},
        {"device", required_argument, 0, 'd'},  {"gemm", required_argument, 0, 'g'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *shape = "opt-1.3b", *model = NULL, *workdir = "/tmp/sparq-bench";
    job_t j = {.B = 4, .T = 512, .S = 2, .M = 4, .bits = 8, .reps = 5, .gemm = SQ_GEMM_BF16};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "S:m:w:b:s:k:M:q:r:p:d:g:h", opts, NULL)) != -1) {
        switch (c) {
        case 'S': shape = optarg; break;
        case 'm': model = optarg; break;
        case 'w': workdir = optarg; break;
        case 'b': j.B = atoi(optarg); break;
        case 's': j.T = atoi(optarg); break;
        case 'k': j.S = atoi(optarg); break;
        case 'M': j.M = atoi(optarg); break;
        case 'q': j.bits = atoi(optarg); break;
        case 'r': j.reps = atoi(optarg); break;
        case 'p': j.peak_tflops = atof(optarg); break;
        case 'd': j.device = atoi(optarg); break;
        case 'g':
            if ((j.gemm = sq_config_gemm_from_name(optarg)) < 0) {
                fprintf(stderr, "sparq bench gpu: --gemm %s: expected fp32, tf32, bf16 or fp16\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (j.B <= 0 || j.T <= 0 || j.S < 2 || j.M <= 0 || j.B % j.M || j.reps <= 0 ||
        (j.bits != 8 && j.bits != 4 && j.bits != 2)) {
        fprintf(stderr, "sparq bench gpu: --batch, --seq, --reps positive; --stages >= 2; "
                        "--micro dividing --batch; --bits 8, 4 or 2\n");
        return 2;
    }
    if (!sq_cuda_available()) {
        printf("sparq bench gpu: no CUDA device visible: nothing measured\n");
        return 0;
    }
    if (j.peak_tflops <= 0) { /* H100 SXM dense peaks: fp32, TF32 and bf16 tensor cores */
        static const double peaks[] = {67.0, 495.0, 989.0, 989.0};
        j.peak_tflops = peaks[j.gemm];
    }
    char dir[1024];
    sq_status_t st = SQ_OK;
    if (!model) {
        const shape_t *s = NULL;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            if (!strcmp(shapes[i].name, shape)) s = &shapes[i];
        if (!s) {
            fprintf(stderr, "sparq bench gpu: unknown --shape %s\n", shape);
            return 2;
        }
        if (mkdir(workdir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "sparq bench gpu: %s: %s\n", workdir, strerror(errno));
            return 1;
        }
        snprintf(dir, sizeof dir, "%s/%s", workdir, s->name);
        st = write_random_model(s, dir);
        model = dir;
    }
    j.path = model;
    sq_model_config_t mc = {0};
    if (st == SQ_OK) { /* the config, from a one-unit load on the CPU */
        sq_backend_t *cpu;
        sq_model_t *probe;
        sq_model_load_opts_t lo = {.unit_begin = 0, .unit_end = 1, .max_batch = 1, .max_seq = 1};
        st = sq_backend_cpu_create(1, &cpu);
        if (st == SQ_OK && (st = sq_model_load(model, &lo, cpu, &probe)) == SQ_OK) {
            mc = *sq_model_config(probe);
            sq_model_destroy(probe);
        }
        sq_backend_destroy(cpu);
    }
    const int N = j.B * j.T;
    j.tok = malloc(sizeof *j.tok * (size_t)N);
    j.tgt = malloc(sizeof *j.tgt * (size_t)N);
    j.nll = malloc(sizeof *j.nll * (size_t)N);
    if (st == SQ_OK && (!j.tok || !j.tgt || !j.nll))
        st = sq_error_set(SQ_ERR_NOMEM, "bench gpu: token buffers");
    if (st == SQ_OK && j.T > mc.max_pos)
        st = sq_error_set(SQ_ERR_RANGE, "bench gpu: --seq %d exceeds the model's %d positions", j.T,
                          mc.max_pos);
    if (st == SQ_OK) {
        uint32_t x = 12345;
        for (int i = 0; i < N; i++) {
            x = x * 1664525u + 1013904223u;
            j.tok[i] = (int32_t)(x % (uint32_t)mc.vocab_size);
        }
        for (int i = 0; i < N; i++) j.tgt[i] = (i + 1) % j.T ? j.tok[i + 1] : -1;
        sq_bench_print_machine();
        sq_cuda_print_device(j.device);
    }
    if (st == SQ_OK) st = forward_figures(&j);
    if (st == SQ_OK) st = memory_figures(&j, &mc);
    if (st == SQ_OK) st = overlap_figures(&j, &mc);
    free(j.tok);
    free(j.tgt);
    free(j.nll);
    if (st != SQ_OK) {
        fprintf(stderr, "sparq bench gpu: %s\n", sq_error_last());
        return 1;
    }
    return 0;
}
