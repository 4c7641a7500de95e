/* ZO-SGD pieces shared by the single-process trainer and the stage workers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "sparq/trainer.h"

double sq_zo_lr(const sq_config_t *cfg, int64_t step)
{
    const double lr = cfg->optimizer.lr, T = cfg->train.steps > 0 ? cfg->train.steps : 1;
    const double frac = (double)step / T;
    switch (cfg->optimizer.schedule) {
    case SQ_LR_LINEAR: return lr * (1.0 - frac);
    case SQ_LR_COSINE: return lr * 0.5 * (1.0 + cos(M_PI * frac));
    default: return lr;
    }
}

sq_status_t sq_zo_apply_update(sq_model_t *m, const sq_selection_t *sel, int n,
                               const uint64_t *seeds, const float *g, float lr, float wd)
{
    sq_backend_t *be = NULL;
    for (int i = 0; i < sel->n_params; i++) {
        if (!sel->tuned[i]) continue;
        sq_param_t *p = sq_model_param(m, i);
        if (!be) be = sq_model_backend(m);
        SQ_TRY(be->ops->zo_update(be, &p->t, n, seeds, g, p->zo_id, lr, p->is_vector ? 0.0f : wd,
                                  sel->masks[i]));
    }
    return SQ_OK;
}

sq_status_t sq_zo_perturb_inplace(sq_model_t *m, const sq_selection_t *sel, uint64_t seed,
                                  float scale)
{
    sq_backend_t *be = sq_model_backend(m);
    for (int i = 0; i < sel->n_params; i++) {
        if (!sel->tuned[i]) continue;
        sq_param_t *p = sq_model_param(m, i);
        SQ_TRY(be->ops->zo_perturb(be, &p->t, seed, p->zo_id, 0, scale, sel->masks[i], &p->t));
    }
    return SQ_OK;
}

sq_status_t sq_job_backend(const sq_config_t *cfg, int stage, sq_backend_t **out)
{
    if (cfg->train.device != 1 && cfg->train.gemm != SQ_GEMM_FP32)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "train.gemm: tf32, bf16 and fp16 need train.device: cuda (the CPU backend "
                            "computes in fp32)");
    if (cfg->train.device != 1) return sq_backend_cpu_create(cfg->train.threads, out);
    const int n = sq_cuda_device_count();
    if (n <= 0)
        return sq_error_set(SQ_ERR_UNSUPPORTED, "train.device is cuda but %s",
                            sq_cuda_available() ? "no device is usable"
                                                : "no CUDA device is visible (or this sparq was "
                                                  "built without CUDA)");
    const char *env = getenv("SPARQ_CUDA_DEVICE");
    const int dev = env && *env ? atoi(env) : stage % n;
    SQ_TRY(sq_backend_cuda_create(dev, out));
    if (cfg->train.gemm == SQ_GEMM_BF16 && cfg->optimizer.eps < 1e-2 && stage == 0)
        fprintf(stderr,
                "sparq: warning: train.gemm bf16 with optimizer.eps %g: bf16 rounds theta +- eps z "
                "to 8 significant bits, which below eps ~1e-2 is no longer small against eps z "
                "(on opt-mini at 1e-3 the projected gradient moved by a third; at 1e-2 by 0.1%%); "
                "train.gemm fp16 keeps 11 bits (at 1e-3: 0.005%%)\n",
                cfg->optimizer.eps);
    sq_status_t st = sq_backend_cuda_set_tf32(*out, cfg->train.gemm == SQ_GEMM_TF32);
    if (st != SQ_OK) {
        sq_backend_destroy(*out);
        *out = NULL;
    }
    return st;
}

sq_dtype_t sq_job_gemm_dtype(const sq_config_t *cfg)
{
    return sq_config_gemm_dtype(cfg->train.gemm);
}
