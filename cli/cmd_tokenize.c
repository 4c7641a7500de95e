/* sparq tokenize: JSONL {"text"} in, {"text","ids"} out. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sparq/tokenizer.h"

int sq_cmd_tokenize(int argc, char **argv)
{
    static const struct option opts[] = {{"tokenizer", required_argument, 0, 't'},
                                         {"jsonl", required_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *tdir = NULL, *in = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "t:j:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': tdir = optarg; break;
        case 'j': in = optarg; break;
        case 'h':
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: sparq tokenize --tokenizer DIR|tokenizer.json --jsonl IN.jsonl\n"
                    "Reads lines {\"text\": ...} and writes {\"text\": ..., \"ids\": [...]} to "
                    "stdout.\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (!tdir || !in) {
        fprintf(stderr, "sparq tokenize: --tokenizer and --jsonl are required\n");
        return 2;
    }
    sq_tokenizer_t *tok;
    sq_status_t st = sq_tokenizer_load(tdir, &tok);
    if (st != SQ_OK) return sq_cli_fail("tokenize", st);
    FILE *f = strcmp(in, "-") ? fopen(in, "r") : stdin;
    if (!f) {
        fprintf(stderr, "sparq tokenize: %s: cannot open\n", in);
        sq_tokenizer_destroy(tok);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0, icap = 1024;
    int32_t *ids = malloc(sizeof *ids * icap);
    ssize_t len;
    int lineno = 0, rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)len) continue;
        cJSON *j = cJSON_Parse(line);
        const cJSON *text = j ? cJSON_GetObjectItemCaseSensitive(j, "text") : NULL;
        if (!cJSON_IsString(text)) {
            fprintf(stderr, "sparq tokenize: %s:%d: expected an object with a string \"text\"\n",
                    in, lineno);
            rc = 1;
        } else {
            size_t n = 0, tl = strlen(text->valuestring);
            st = sq_tokenizer_encode(tok, text->valuestring, tl, ids, icap, &n);
            if (st == SQ_ERR_RANGE) {
                int32_t *g = realloc(ids, sizeof *ids * (icap = n + 16));
                if (g) {
                    ids = g;
                    st = sq_tokenizer_encode(tok, text->valuestring, tl, ids, icap, &n);
                }
            }
            if (st != SQ_OK) {
                rc = sq_cli_fail("tokenize", st);
            } else {
                cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
                cJSON_AddStringToObject(o, "text", text->valuestring);
                for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
                cJSON_AddItemToObject(o, "ids", arr);
                char *s = cJSON_PrintUnformatted(o);
                puts(s);
                free(s);
                cJSON_Delete(o);
            }
        }
        cJSON_Delete(j);
    }
    free(line);
    free(ids);
    if (f != stdin) fclose(f);
    sq_tokenizer_destroy(tok);
    return rc;
}
