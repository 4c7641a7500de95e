/* sparq logits: the reference-comparison contract (see README). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sparq/config.h"
#include "sparq/model.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sparq logits --model PATH --tokens 1,2,3 [--logit-index 5,9] [--threads N]\n"
            "                    [--device cpu|cuda[:N]] [--gemm fp32|tf32|bf16|fp16]\n"
            "\n"
            "Runs the whole model on one sequence and prints JSON:\n"
            "  {\"argmax\": [T], \"next_token_nll\": [T-1], \"logits\": [[T x K]]}\n"
            "where next_token_nll[t] = -log p(tokens[t+1]) and logits[t][k] is the logit\n"
            "of vocab id logit_index[k] at position t (omitted without --logit-index).\n"
            "\n"
            "  --model PATH        HF model directory (config.json + *.safetensors),\n"
            "                      model.safetensors.index.json, or llama2.c .bin\n"
            "  --tokens IDS        comma-separated token ids\n"
            "  --logit-index IDS   vocab ids whose logits to print\n"
            "  --threads N         CPU threads (default: all cores)\n"
            "  --device D          cpu (default), cuda (GPU 0) or cuda:N\n"
            "  --gemm M            cuda: the linear layers' GEMM math: fp32 (default), tf32,\n"
            "                      bf16 or fp16 (16-bit weight and input operands, fp32\n"
            "                      accumulation)\n");
}

static void print_floats(const float *v, int n)
{
    putchar('[');
    for (int i = 0; i < n; i++) printf("%s%.9g", i ? "," : "", v[i]);
    putchar(']');
}

int sq_cmd_logits(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"tokens", required_argument, 0, 't'},
                                         {"logit-index", required_argument, 0, 'i'},
                                         {"threads", required_argument, 0, 'j'},
                                         {"device", required_argument, 0, 'd'},
                                         {"gemm", required_argument, 0, 'g'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *model_path = NULL;
    int32_t *tokens = NULL, *index = NULL;
    int T = 0, K = 0, threads = 0, c, rc = 1, gpu = -1, gemm = SQ_GEMM_FP32;
    while ((c = getopt_long(argc, argv, "m:t:i:j:d:g:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 't':
            free(tokens);
            if ((T = sq_cli_parse_ids("--tokens", optarg, &tokens)) < 0) return 2;
            break;
        case 'i':
            free(index);
            if ((K = sq_cli_parse_ids("--logit-index", optarg, &index)) < 0) return 2;
            break;
        case 'j': threads = atoi(optarg); break;
        case 'd':
            if (!strcmp(optarg, "cpu")) gpu = -1;
            else if (!strcmp(optarg, "cuda")) gpu = 0;
            else if (!strncmp(optarg, "cuda:", 5) && optarg[5] >= '0' && optarg[5] <= '9')
                gpu = atoi(optarg + 5);
            else {
                fprintf(stderr, "sparq logits: --device %s: expected cpu, cuda or cuda:N\n", optarg);
                return 2;
            }
            break;
        case 'g':
            if ((gemm = sq_config_gemm_from_name(optarg)) < 0) {
                fprintf(stderr, "sparq logits: --gemm %s: expected fp32, tf32, bf16 or fp16\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model_path || T <= 0) {
        fprintf(stderr, "sparq logits: --model and --tokens are required\n");
        usage(stderr);
        return 2;
    }
    if (gemm != SQ_GEMM_FP32 && gpu < 0) {
        fprintf(stderr, "sparq logits: --gemm tf32, bf16 and fp16 need --device cuda\n");
        return 2;
    }

    sq_backend_t *be = NULL;
    sq_model_t *m = NULL;
    float *nll = NULL, *logits = NULL;
    int32_t *targets = NULL, *argmax = NULL;
    sq_status_t st = gpu >= 0 ? sq_backend_cuda_create(gpu, &be) : sq_backend_cpu_create(threads, &be);
    if (st == SQ_OK && gemm == SQ_GEMM_TF32) st = sq_backend_cuda_set_tf32(be, 1);
    if (st != SQ_OK) goto fail;
    sq_model_load_opts_t lo = {.max_batch = 1, .max_seq = T,
                               .gemm_dtype = sq_config_gemm_dtype(gemm)};
    if ((st = sq_model_load(model_path, &lo, be, &m)) != SQ_OK) goto fail;

    targets = malloc(sizeof *targets * (size_t)T);
    argmax = malloc(sizeof *argmax * (size_t)T);
    nll = calloc((size_t)T, sizeof *nll);
    logits = calloc((size_t)T * (size_t)(K ? K : 1), sizeof *logits);
    if (!targets || !argmax || !nll || !logits) {
        st = sq_error_set(SQ_ERR_NOMEM, "out of host memory");
        goto fail;
    }
    for (int t = 0; t < T; t++) targets[t] = t + 1 < T ? tokens[t + 1] : -1;
    sq_batch_t batch = {.B = 1, .T = T, .tokens = tokens, .targets = targets};
    sq_head_out_t out = {.nll = nll, .argmax = argmax, .logit_index = index, .n_logit_index = K,
                         .logits = K ? logits : NULL};
    if ((st = sq_model_forward(m, &batch, &out)) != SQ_OK) goto fail;

    printf("{\"argmax\":[");
    for (int t = 0; t < T; t++) printf("%s%d", t ? "," : "", argmax[t]);
    printf("],\"next_token_nll\":");
    print_floats(nll, T - 1);
    if (K) {
        printf(",\"logit_index\":[");
        for (int k = 0; k < K; k++) printf("%s%d", k ? "," : "", index[k]);
        printf("],\"logits\":[");
        for (int t = 0; t < T; t++) {
            if (t) putchar(',');
            print_floats(logits + (size_t)t * K, K);
        }
        putchar(']');
    }
    printf("}\n");
    rc = 0;
fail:
    if (rc) rc = sq_cli_fail("logits", st);
    sq_model_destroy(m);
    sq_backend_destroy(be);
    free(tokens);
    free(index);
    free(targets);
    free(argmax);
    free(nll);
    free(logits);
    return rc;
}
