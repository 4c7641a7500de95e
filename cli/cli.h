/* The `sparq` command: one binary, one file per subcommand. */
#ifndef SPARQ_CLI_H
#define SPARQ_CLI_H

#include <stdint.h>
#include <stdio.h>

typedef struct sq_cli_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} sq_cli_cmd_t;

int sq_cmd_logits(int argc, char **argv);
int sq_cmd_train(int argc, char **argv);
int sq_cmd_export(int argc, char **argv);
int sq_cmd_tokenize(int argc, char **argv);
int sq_cmd_worker(int argc, char **argv);
int sq_cmd_launch(int argc, char **argv);
int sq_cmd_plan(int argc, char **argv);


/* Parse "1,2,3" into ids; returns count or -1 with a message on stderr. */
int sq_cli_parse_ids(const char *opt, const char *s, int32_t **out);
/* Print an error from the sparq error trail and return exit code 1. */
int sq_cli_fail(const char *cmd, int status);

#endif
