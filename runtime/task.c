/* Tasks: JSONL classification with label words, and LM windows of a text. */
#include "sparq/task.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparq/philox.h"

typedef struct example {
    int32_t *ids; /* prompt tokens (bos + template(text)), cut from the left to max_len */
    int n;
    int label;
} example_t;

struct sq_task {
    sq_task_type_t type;
    int max_len, batch_size, n_labels, vocab;
    int32_t label_ids[SQ_CONFIG_LIST_MAX];
    example_t *train, *eval;
    int n_train, n_eval;
    /* lm: one token stream per split */
    int32_t *train_ids, *eval_ids;
    int64_t n_train_ids, n_eval_ids;
    /* epoch permutation cache */
    int *perm;
    int64_t perm_epoch;
    /* batch buffers (sized for max(batch_size, eval chunk) sequences) */
    int cap_seqs;
    int32_t *tokens, *targets, *rows, *labels, *micro_rows;
    float *nll, *logprobs;
    double *terms; /* [max_terms] scratch of sq_task_loss */
};

#define SQ_TASK_EVAL_CHUNK 32

static sq_status_t read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sq_error_set(SQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
        free(buf);
        fclose(f);
        return sq_error_set(SQ_ERR_IO, "%s: cannot read", path);
    }
    fclose(f);
    buf[n > 0 ? n : 0] = 0;
    *out = buf;
    *len = (size_t)(n > 0 ? n : 0);
    return SQ_OK;
}

static sq_status_t encode_alloc(sq_tokenizer_t *tok, const char *text, size_t len, int32_t **ids,
                                size_t *n)
{
    size_t need = 0;
    sq_status_t st = sq_tokenizer_encode(tok, text, len, NULL, 0, &need);
    if (st != SQ_OK && st != SQ_ERR_RANGE) return st;
    *ids = malloc(sizeof(int32_t) * (need + 1));
    if (!*ids) return sq_error_set(SQ_ERR_NOMEM, "tokenizer: out of memory");
    return sq_tokenizer_encode(tok, text, len, *ids, need + 1, n);
}

/* template with {text} replaced, tokenized, bos in front, cut from the left */
static sq_status_t make_prompt(const sq_config_t *cfg, sq_tokenizer_t *tok, const char *text,
                               example_t *ex)
{
    const char *tmpl = cfg->task.template_, *hole = strstr(tmpl, "{text}");
    size_t lt = strlen(text), cap = strlen(tmpl) + lt + 1;
    char *s = malloc(cap);
    if (!s) return sq_error_set(SQ_ERR_NOMEM, "task: out of memory");
    snprintf(s, cap, "%.*s%s%s", (int)(hole - tmpl), tmpl, text, hole + 6);
    int32_t *ids;
    size_t n;
    sq_status_t st = encode_alloc(tok, s, strlen(s), &ids, &n);
    free(s);
    if (st != SQ_OK) return st;
    int bos = cfg->task.bos_id >= 0;
    size_t keep = n + (size_t)bos > (size_t)cfg->task.max_len ? (size_t)cfg->task.max_len - bos : n;
    ex->ids = malloc(sizeof(int32_t) * (keep + (size_t)bos));
    if (!ex->ids) {
        free(ids);
        return sq_error_set(SQ_ERR_NOMEM, "task: out of memory");
    }
    if (bos) ex->ids[0] = cfg->task.bos_id;
    memcpy(ex->ids + bos, ids + (n - keep), sizeof(int32_t) * keep); /* keep the end: "It was" */
    ex->n = (int)keep + bos;
    free(ids);
    return SQ_OK;
}

static sq_status_t load_jsonl(const sq_config_t *cfg, sq_tokenizer_t *tok, const char *path,
                              example_t **out, int *count)
{
    char *buf;
    size_t len;
    SQ_TRY(read_file(path, &buf, &len));
    int cap = 256, n = 0, line = 0;
    example_t *ex = calloc((size_t)cap, sizeof *ex);
    sq_status_t st = ex ? SQ_OK : sq_error_set(SQ_ERR_NOMEM, "task: out of memory");
    for (char *p = buf; st == SQ_OK && *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line++;
        char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q) {
            cJSON *j = cJSON_Parse(q);
            const cJSON *text = j ? cJSON_GetObjectItemCaseSensitive(j, "text") : NULL;
            const cJSON *label = j ? cJSON_GetObjectItemCaseSensitive(j, "label") : NULL;
            if (!j || !cJSON_IsObject(j)) {
                st = sq_error_set(SQ_ERR_FORMAT, "%s:%d: not a JSON object", path, line);
            } else if (!cJSON_IsString(text)) {
                st = sq_error_set(SQ_ERR_FORMAT, "%s:%d: \"text\" is missing or not a string",
                                  path, line);
            } else if (!cJSON_IsNumber(label) || label->valuedouble != floor(label->valuedouble) ||
                       label->valuedouble < 0 || label->valuedouble >= cfg->task.n_labels) {
                st = sq_error_set(SQ_ERR_FORMAT,
                                  "%s:%d: \"label\" must be an integer in [0, %d) (task.labels has "
                                  "%d words)",
                                  path, line, cfg->task.n_labels, cfg->task.n_labels);
            } else {
                if (n == cap) {
                    example_t *g = realloc(ex, sizeof *ex * (size_t)(cap *= 2));
                    if (!g) st = sq_error_set(SQ_ERR_NOMEM, "task: out of memory");
                    else ex = g;
                }
                if (st == SQ_OK) {
                    memset(&ex[n], 0, sizeof ex[n]);
                    ex[n].label = (int)label->valuedouble;
                    st = make_prompt(cfg, tok, text->valuestring, &ex[n]);
                    if (st == SQ_OK) n++;
                    else sq_error_push(st, "%s:%d", path, line);
                }
            }
            cJSON_Delete(j);
        }
        p = nl ? nl + 1 : p + strlen(p);
    }
    free(buf);
    if (st == SQ_OK && n == 0) st = sq_error_set(SQ_ERR_FORMAT, "%s: no examples", path);
    if (st != SQ_OK) {
        for (int i = 0; i < n; i++) free(ex[i].ids);
        free(ex);
        return st;
    }
    *out = ex;
    *count = n;
    return SQ_OK;
}

static sq_status_t load_text(sq_tokenizer_t *tok, const char *path, int max_len, int32_t **ids,
                             int64_t *n)
{
    char *buf;
    size_t len, nn;
    SQ_TRY(read_file(path, &buf, &len));
    sq_status_t st = encode_alloc(tok, buf, len, ids, &nn);
    free(buf);
    if (st != SQ_OK) return sq_error_push(st, "%s", path);
    if ((int64_t)nn < max_len + 1) {
        free(*ids);
        return sq_error_set(SQ_ERR_FORMAT, "%s: %zu tokens, fewer than one window of %d", path, nn,
                            max_len + 1);
    }
    *n = (int64_t)nn;
    return SQ_OK;
}

static void free_examples(example_t *ex, int n)
{
    for (int i = 0; ex && i < n; i++) free(ex[i].ids);
    free(ex);
}

void sq_task_destroy(sq_task_t *t)
{
    if (!t) return;
    free_examples(t->train, t->n_train);
    free_examples(t->eval, t->n_eval);
    free(t->train_ids);
    free(t->eval_ids);
    free(t->perm);
    free(t->tokens);
    free(t->targets);
    free(t->rows);
    free(t->micro_rows);
    free(t->labels);
    free(t->nll);
    free(t->terms);
    free(t->logprobs);
    free(t);
}

sq_status_t sq_task_load(const sq_config_t *cfg, sq_tokenizer_t *tok, int vocab_size,
                         sq_task_t **out)
{
    sq_status_t st = SQ_OK;
    sq_task_t *t = calloc(1, sizeof *t);
    if (!t) return sq_error_set(SQ_ERR_NOMEM, "task: out of memory");
    t->type = cfg->task.type;
    t->max_len = cfg->task.max_len;
    t->batch_size = cfg->train.batch_size;
    t->vocab = vocab_size;
    t->perm_epoch = -1;
    if (cfg->task.bos_id >= vocab_size) {
        st = sq_error_set(SQ_ERR_CONFIG, "task.bos_id: %d is outside the vocabulary (%d)",
                          cfg->task.bos_id, vocab_size);
        goto fail;
    }
    if (t->type == SQ_TASK_CLASSIFY) {
        t->n_labels = cfg->task.n_labels;
        for (int c = 0; c < t->n_labels; c++) {
            int32_t ids[8];
            size_t n = 0;
            const char *w = cfg->task.labels[c];
            st = sq_tokenizer_encode(tok, w, strlen(w), ids, 8, &n);
            if (st == SQ_OK && n != 1)
                st = sq_error_set(SQ_ERR_CONFIG,
                                  "task.labels[%d]: \"%s\" is %zu tokens; label words must be "
                                  "single tokens (try a leading space, e.g. \" great\")",
                                  c, w, n);
            if (st != SQ_OK) goto fail;
            if (ids[0] >= vocab_size) {
                st = sq_error_set(SQ_ERR_CONFIG, "task.labels[%d]: token %d outside the model's "
                                                 "vocabulary (%d)",
                                  c, ids[0], vocab_size);
                goto fail;
            }
            t->label_ids[c] = ids[0];
        }
        SQ_TRY_GOTO(st, load_jsonl(cfg, tok, cfg->task.train, &t->train, &t->n_train), fail);
        if (cfg->task.eval[0])
            SQ_TRY_GOTO(st, load_jsonl(cfg, tok, cfg->task.eval, &t->eval, &t->n_eval), fail);
    } else {
        SQ_TRY_GOTO(st, load_text(tok, cfg->task.train, t->max_len, &t->train_ids, &t->n_train_ids),
                    fail);
        t->n_train = (int)((t->n_train_ids - 1) / t->max_len);
        if (cfg->task.eval[0]) {
            SQ_TRY_GOTO(st, load_text(tok, cfg->task.eval, t->max_len, &t->eval_ids, &t->n_eval_ids),
                        fail);
            t->n_eval = (int)((t->n_eval_ids - 1) / t->max_len);
        }
    }
    if (cfg->task.eval_limit > 0 && t->n_eval > cfg->task.eval_limit) {
        for (int i = cfg->task.eval_limit; t->eval && i < t->n_eval; i++) free(t->eval[i].ids);
        t->n_eval = cfg->task.eval_limit;
    }

    t->cap_seqs = t->batch_size > SQ_TASK_EVAL_CHUNK ? t->batch_size : SQ_TASK_EVAL_CHUNK;
    size_t rows = (size_t)t->cap_seqs * (size_t)t->max_len;
    t->tokens = malloc(sizeof(int32_t) * rows);
    t->targets = malloc(sizeof(int32_t) * rows);
    t->rows = malloc(sizeof(int32_t) * rows);
    t->micro_rows = malloc(sizeof(int32_t) * (size_t)t->cap_seqs);
    t->terms = malloc(sizeof(double) * rows);
    t->labels = malloc(sizeof(int32_t) * (size_t)t->cap_seqs);
    t->nll = malloc(sizeof(float) * rows);
    t->logprobs = malloc(sizeof(float) * (size_t)t->cap_seqs * SQ_CONFIG_LIST_MAX);
    t->perm = malloc(sizeof(int) * (size_t)(t->n_train > 0 ? t->n_train : 1));
    if (!t->tokens || !t->targets || !t->rows || !t->micro_rows || !t->terms || !t->labels || !t->nll || !t->logprobs || !t->perm) {
        st = sq_error_set(SQ_ERR_NOMEM, "task: out of memory");
        goto fail;
    }
    *out = t;
    return SQ_OK;
fail:
    sq_task_destroy(t);
    return st;
}

int sq_task_train_size(const sq_task_t *t)
{
    return t->n_train;
}

int sq_task_eval_size(const sq_task_t *t)
{
    return t->n_eval;
}

int sq_task_max_seq(const sq_task_t *t)
{
    return t->max_len;
}

/* Fisher-Yates with Philox draws: epoch e's order depends on (seed, e) only. */
static void epoch_perm(sq_task_t *t, uint64_t seed, int64_t epoch)
{
    if (t->perm_epoch == epoch) return;
    for (int i = 0; i < t->n_train; i++) t->perm[i] = i;
    for (int i = t->n_train - 1; i > 0; i--) {
        uint32_t b[4];
        sq_philox_block(seed ^ 0xda7a0000ull, (uint64_t)epoch, (uint64_t)i, b);
        int j = (int)((((uint64_t)b[0] << 32) | b[1]) % (uint64_t)(i + 1));
        int tmp = t->perm[i];
        t->perm[i] = t->perm[j];
        t->perm[j] = tmp;
    }
    t->perm_epoch = epoch;
}

/* Lay out classification examples: right-padded, one scored row each. */
static sq_status_t classify_batch(sq_task_t *t, const example_t *const *ex, int n,
                                  sq_task_batch_t *b)
{
    int T = 1;
    for (int i = 0; i < n; i++)
        if (ex[i]->n > T) T = ex[i]->n;
    for (int i = 0; i < n; i++) {
        int32_t *tok = t->tokens + (size_t)i * T;
        memcpy(tok, ex[i]->ids, sizeof(int32_t) * (size_t)ex[i]->n);
        for (int j = ex[i]->n; j < T; j++) tok[j] = ex[i]->ids[ex[i]->n - 1]; /* pad: never read */
        t->rows[i] = i * T + ex[i]->n - 1;
        t->labels[i] = ex[i]->label;
    }
    memset(b, 0, sizeof *b);
    b->batch = (sq_batch_t){.B = n, .T = T, .tokens = t->tokens, .targets = NULL};
    b->head = (sq_head_out_t){.rows = t->rows,
                              .n_rows = n,
                              .logit_index = t->label_ids,
                              .n_logit_index = t->n_labels,
                              .logprobs = t->logprobs};
    b->n_examples = n;
    b->labels = t->labels;
    return SQ_OK;
}

static sq_status_t lm_batch(sq_task_t *t, const int32_t *ids, const int64_t *starts, int n,
                            sq_task_batch_t *b)
{
    const int T = t->max_len;
    for (int i = 0; i < n; i++) {
        memcpy(t->tokens + (size_t)i * T, ids + starts[i], sizeof(int32_t) * (size_t)T);
        memcpy(t->targets + (size_t)i * T, ids + starts[i] + 1, sizeof(int32_t) * (size_t)T);
    }
    memset(b, 0, sizeof *b);
    b->batch = (sq_batch_t){.B = n, .T = T, .tokens = t->tokens, .targets = t->targets};
    b->head = (sq_head_out_t){.nll = t->nll};
    b->n_examples = n;
    return SQ_OK;
}

sq_status_t sq_task_train_batch(sq_task_t *t, uint64_t seed, int64_t step, sq_task_batch_t *b)
{
    const int B = t->batch_size;
    if (t->type == SQ_TASK_LM) {
        int64_t starts[B];
        for (int i = 0; i < B; i++) {
            uint32_t r[4];
            sq_philox_block(seed ^ 0x1a0000ull, (uint64_t)step, (uint64_t)i, r);
            starts[i] = (int64_t)((((uint64_t)r[0] << 32) | r[1]) %
                                  (uint64_t)(t->n_train_ids - t->max_len));
        }
        return lm_batch(t, t->train_ids, starts, B, b);
    }
    const example_t *ex[B];
    for (int i = 0; i < B; i++) {
        int64_t g = step * B + i;
        epoch_perm(t, seed, g / t->n_train);
        ex[i] = &t->train[t->perm[g % t->n_train]];
    }
    return classify_batch(t, ex, B, b);
}

sq_status_t sq_task_eval_batch(sq_task_t *t, int first, int count, sq_task_batch_t *b)
{
    if (first < 0 || count <= 0 || count > t->cap_seqs || first + count > t->n_eval)
        return sq_error_set(SQ_ERR_RANGE, "task: eval batch [%d, %d) outside [0, %d)", first,
                            first + count, t->n_eval);
    if (t->type == SQ_TASK_LM) {
        int64_t starts[count];
        for (int i = 0; i < count; i++) starts[i] = (int64_t)(first + i) * t->max_len;
        return lm_batch(t, t->eval_ids, starts, count, b);
    }
    const example_t *ex[count];
    for (int i = 0; i < count; i++) ex[i] = &t->eval[first + i];
    return classify_batch(t, ex, count, b);
}

int sq_task_max_terms(const sq_task_t *t)
{
    return t->type == SQ_TASK_LM ? t->cap_seqs * t->max_len : t->cap_seqs;
}

int sq_task_loss_terms(const sq_task_t *t, const sq_task_batch_t *b, double *terms, int *correct)
{
    int ok = 0;
    if (t->type == SQ_TASK_LM) {
        const int n = b->batch.B * b->batch.T;
        for (int i = 0; i < n; i++) terms[i] = b->head.nll[i];
        if (correct) *correct = -1; /* argmax not requested during training */
        return n;
    }
    const int C = t->n_labels;
    for (int i = 0; i < b->n_examples; i++) {
        const float *s = b->head.logprobs + (size_t)i * C;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (s[c] > s[best]) best = c;
        double mx = s[best], z = 0;
        for (int c = 0; c < C; c++) z += exp((double)s[c] - mx);
        terms[i] = log(z) + mx - s[b->labels[i]];
        ok += best == b->labels[i];
    }
    if (correct) *correct = ok;
    return b->n_examples;
}

sq_status_t sq_task_micro_batch(sq_task_t *t, const sq_task_batch_t *full, int m, int M,
                                sq_task_batch_t *out)
{
    const int B = full->batch.B, T = full->batch.T;
    if (M <= 0 || B % M != 0 || m < 0 || m >= M)
        return sq_error_set(SQ_ERR_INVALID_ARG, "task: micro-batch %d of %d for a batch of %d", m,
                            M, B);
    const int Bm = B / M;
    const int64_t off = (int64_t)m * Bm * T;
    *out = *full;
    out->batch.B = Bm;
    out->batch.tokens = full->batch.tokens + off;
    out->n_examples = Bm;
    if (t->type == SQ_TASK_LM) {
        out->batch.targets = full->batch.targets + off;
        out->head.nll = full->head.nll; /* written from 0 for each micro-batch */
        return SQ_OK;
    }
    for (int i = 0; i < Bm; i++) t->micro_rows[i] = full->head.rows[m * Bm + i] - (int32_t)off;
    out->head.rows = t->micro_rows;
    out->head.n_rows = Bm;
    out->labels = full->labels + m * Bm;
    return SQ_OK;
}

sq_status_t sq_task_loss(sq_task_t *t, const sq_task_batch_t *b, double *loss, int *correct,
                         int *counted)
{
    int n = sq_task_loss_terms(t, b, t->terms, correct);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += t->terms[i];
    if (!isfinite(sum)) return sq_error_set(SQ_ERR_RANGE, "task: loss is not finite");
    *loss = sum / n;
    if (counted) *counted = n;
    return SQ_OK;
}
