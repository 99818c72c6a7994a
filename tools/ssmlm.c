/* ssmlm.c — the command-line program: `ssmlm <command> [options]`, --help on each command. */
#include "cli.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *about;
} k_commands[] = {
    {"info", cmd_info, "parameter counts, layer pattern and memory of a preset or config"},
    {"pattern", cmd_pattern, "hybrid layer pattern from the paper's Algorithm 1"},
    {"forward", cmd_forward, "run a checkpoint on token ids, write logits and loss"},
    {"train", cmd_train, "train a model on token data, text or a synthetic task"},
    {"generate", cmd_generate, "generate text from prompts (batched, streaming, sampling options)"},
    {"score", cmd_score, "log-probabilities of continuations given a context"},
    {"eval", cmd_eval, "evaluate a model: phonebook (accuracy and correct digits vs length)"},
    {"reproduce", cmd_reproduce, "the paper's findings at small scale: phonebook, attention-ratio"},
};
#define N_COMMANDS (int)(sizeof k_commands / sizeof k_commands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: ssmlm <command> [options]   (ssmlm <command> --help for details)\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].about);
}

int cli_error(void) {
    fprintf(stderr, "error: %s\n", ssmlm_last_error());
    if (ssmlm_last_hint()[0]) fprintf(stderr, "hint: %s\n", ssmlm_last_hint());
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nhint: see 'ssmlm %s --help'\n", cmd);
    va_end(ap);
    return 2;
}

const char *cli_opt(int argc, char **argv, int *i, const char *name, int *missing) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != 0) return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

int cli_flag(char **argv, int i, const char *name) { return strcmp(argv[i], name) == 0; }

int cli_parse_i64(const char *s, int64_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end) return 0;
    *out = v;
    return 1;
}

int cli_parse_f64(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end) return 0;
    *out = v;
    return 1;
}

int cli_load_config(ssmlm_config *c, const char *preset, const char *config_path) {
    ssmlm_status s;
    if (config_path) s = ssmlm_config_load_json(c, config_path);
    else s = ssmlm_preset(c, preset ? preset : "hybrid-8b");
    return s == SSMLM_OK ? 0 : cli_error();
}

int main(int argc, char **argv) {
    ssmlm_threads_init(argv); /* how idle OpenMP threads wait (see include/ssmlm.h) */
    if (argc < 2 || cli_flag(argv, 1, "--help") || cli_flag(argv, 1, "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], k_commands[i].name) == 0) return k_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "error: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
