/* cli.h — shared helpers of the ssmlm commands: option parsing, error printing, model
 * selection (--preset / --config / --pattern). */
#ifndef SSMLM_CLI_H
#define SSMLM_CLI_H

#include "ssmlm.h"
#include <stdio.h>

/* Prints "error: <last error>" and "hint: <hint>" to stderr; returns 1 (the exit status). */
int cli_error(void);
/* Prints "error: msg" and hint for CLI-level problems; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Option scanning: cli_opt(argc, argv, &i, "--name") returns the option's value (the next
 * argument, or after '='), or NULL if argv[i] is not that option.  Sets *missing when the
 * value is absent. */
const char *cli_opt(int argc, char **argv, int *i, const char *name, int *missing);
int cli_flag(char **argv, int i, const char *name);
int cli_parse_i64(const char *s, int64_t *out);
int cli_parse_f64(const char *s, double *out);

/* Resolves a config from --preset NAME, --config FILE (ssmlm or mamba_ssm JSON).  Returns 0 on
 * success, else prints the error and returns the exit code. */
int cli_load_config(ssmlm_config *c, const char *preset, const char *config_path);

int cmd_info(int argc, char **argv);
int cmd_pattern(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_reproduce(int argc, char **argv);
int cmd_eval(int argc, char **argv);

#endif
