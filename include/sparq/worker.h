/* sparq/worker.h — pipeline stage workers and the local launcher.
 *
 * A job of S stages runs one worker per stage (`sparq worker --stage K`, or
 * all of them on one machine with `sparq launch`). Stage k loads only its
 * unit range; stage k listens on its address and stage k-1 connects to it.
 * Per step t and SPSA sample, every stage runs the 2*M micro-batch forwards
 * (M micro-batches x {+eps, -eps}, out-of-place perturbation, so both signs
 * are in flight together): stage 0 embeds, each stage encodes what crosses
 * its output boundary with the codec and sends it on; the last stage
 * computes the losses and g, which travels back down the chain; then every
 * stage applies the same update to its own parameters. With ZO pair coding
 * (codec.zo_pair, the default for quantized codecs) the -eps message of a
 * micro-batch carries x- - x+ (quantized on its own scales) and the receiver
 * adds its decoded x+, so both passes see the same quantization error and
 * the projected gradient keeps its precision. Each worker's folder
 * (output/stage-K) holds its run log, snapshots and per-step metrics
 * (compute, encode/decode, wait, bytes raw vs encoded).
 */
#ifndef SPARQ_WORKER_H
#define SPARQ_WORKER_H

#include "sparq/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sq_worker_opts {
    int stage;              /* this worker's stage */
    int resume;             /* continue the run in output/stage-K */
    int quiet;
    uint64_t token;         /* job token (0: from SPARQ_JOB_TOKEN / pipeline.token / config) */
} sq_worker_opts_t;

/* The stage index from the launcher environment (SLURM_PROCID,
 * OMPI_COMM_WORLD_RANK, PMI_RANK), or -1. */
int sq_worker_stage_from_env(void);

/* The job token: SPARQ_JOB_TOKEN, else pipeline.token, else a hash of the
 * configuration (fine on one machine; set a token across machines). */
uint64_t sq_worker_job_token(const sq_config_t *cfg);

sq_status_t sq_worker_run(const sq_config_t *cfg, const sq_worker_opts_t *opts);

/* Fork one worker per stage (before any UCX call), prefix their output with
 * "[stage K]", and return the first non-zero exit status after stopping the
 * others (0 when all succeed). */
int sq_launch(const char *config_path, char *const *extra_args, int n_extra, int resume,
              int quiet);

#ifdef __cplusplus
}
#endif
#endif
