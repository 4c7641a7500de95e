/* sparq/task.h — training and evaluation data as model batches.
 *
 * classification (MeZO style): each example becomes template("{text}") as
 * tokens; the model scores every label word at the prompt's last position,
 * score_c = log p(label_c | prompt); loss = -log softmax(score)[gold], and
 * the prediction is argmax score. Label words must be single tokens (the
 * usual " great"/" terrible" kind); a longer one is a config error.
 *
 * lm: next-token loss on windows of task.max_len tokens of a text file.
 *
 * Which examples step t trains on is a pure function of (seed, t): epoch
 * permutations drawn from Philox, so a resumed run sees the same batches.
 */
#ifndef SPARQ_TASK_H
#define SPARQ_TASK_H

#include "sparq/config.h"
#include "sparq/model.h"
#include "sparq/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sq_task sq_task_t;

/* One batch, laid out for sq_model_forward + its head outputs. Buffers are
 * owned by the task and reused by the next call. */
typedef struct sq_task_batch {
    sq_batch_t batch;      /* B x T tokens (right-padded), targets */
    sq_head_out_t head;    /* which rows/ids the loss needs (outputs in the task's buffers) */
    int n_examples;
    const int32_t *labels; /* [B] gold label per example (classification) */
} sq_task_batch_t;

sq_status_t sq_task_load(const sq_config_t *cfg, sq_tokenizer_t *tok, int vocab_size,
                         sq_task_t **out);
void sq_task_destroy(sq_task_t *t);

int sq_task_train_size(const sq_task_t *t);
int sq_task_eval_size(const sq_task_t *t);
/* Longest sequence a batch can have (sizes the model). */
int sq_task_max_seq(const sq_task_t *t);

/* The batch of step `step` (batch_size examples). */
sq_status_t sq_task_train_batch(sq_task_t *t, uint64_t seed, int64_t step, sq_task_batch_t *b);
/* Evaluation examples [first, first + count). */
sq_status_t sq_task_eval_batch(sq_task_t *t, int first, int count, sq_task_batch_t *b);

/* The terms the loss averages, in order (classification: one per example;
 * lm: one per token), after the forward filled b->head's outputs. The mean
 * of all terms of a batch, summed in order in double, is the loss: a
 * pipeline that evaluates a batch in micro-batches concatenates their terms
 * and gets the single-process loss bit for bit. Returns the count. */
int sq_task_loss_terms(const sq_task_t *t, const sq_task_batch_t *b, double *terms, int *correct);
/* Most terms one batch of batch_size examples can produce. */
int sq_task_max_terms(const sq_task_t *t);

/* Micro-batch m of M (B % M == 0): a view of examples [m*B/M, (m+1)*B/M)
 * with the same padding as the full batch. */
sq_status_t sq_task_micro_batch(sq_task_t *t, const sq_task_batch_t *full, int m, int M,
                                sq_task_batch_t *out);

/* Mean loss of a batch after the forward filled b->head's outputs, and the
 * number of correct predictions (classification: label; lm: next token). */
sq_status_t sq_task_loss(sq_task_t *t, const sq_task_batch_t *b, double *loss, int *correct,
                         int *counted);

#ifdef __cplusplus
}
#endif
#endif
