/* cmd_reproduce.c — `ssmlm reproduce <experiment>`: the paper's findings at small scale on a CPU
 * (src/eval/reproduce.h): trains the experiment's models, evaluates them, writes tables, SVG
 * plots and a markdown report into the output folder. */
#include "cli.h"
#include "eval/reproduce.h"
#include <string.h>

static const struct {
    const char *name;
    ssmlm_status (*fn)(const ssmlm_repro_options *);
    const char *about;
} k_experiments[] = {
    {"phonebook", ssmlm_reproduce_phonebook,
     "Transformer, Mamba, Mamba-2 and a hybrid on phone books: copying vs length (Figures 3, 7)"},
    {"attention-ratio", ssmlm_reproduce_attention_ratio,
     "hybrids with 0-50% attention layers: validation loss vs attention fraction (Figure 4)"},
};
#define N_EXPERIMENTS (int)(sizeof k_experiments / sizeof k_experiments[0])

static void usage(FILE *f) {
    fprintf(f,
            "usage: ssmlm reproduce <experiment>|all [options]\n"
            "\n"
            "Reproduces findings of \"An Empirical Study of Mamba-based Language Models\" at small\n"
            "scale: trains the experiment's models from scratch, evaluates them and writes a table,\n"
            "SVG plots and report.md (which findings reproduced, which did not) into the output folder.\n"
            "\n"
            "experiments:\n");
    for (int i = 0; i < N_EXPERIMENTS; i++) fprintf(f, "  %-16s %s\n", k_experiments[i].name, k_experiments[i].about);
    fprintf(f,
            "  %-16s every experiment above, each in its own subfolder\n"
            "\n"
            "options:\n"
            "  --out DIR        output folder (default reproduce/<experiment>)\n"
            "  --budget X       scale the training steps by X (default 1: about 30 minutes per\n"
            "                   experiment on 2 cores; 4 is a closer reproduction)\n"
            "  --quick          smoke-test sizes, a few minutes in all (what the test suite runs)\n"
            "  --seed N         seed of data, initialization and evaluation (default 1)\n"
            "  --threads N      threads (default: all cores)\n"
            "  --quiet          no progress display\n"
            "  --help           this text\n",
            "all");
}

int cmd_reproduce(int argc, char **argv) {
    ssmlm_repro_options o;
    ssmlm_repro_defaults(&o);
    const char *exp = NULL, *out = NULL, *v;
    int64_t threads = 0, seed = (int64_t)o.seed;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            usage(stdout);
            return 0;
        } else if ((v = cli_opt(argc, argv, &i, "--out", &missing))) {
            out = v;
        } else if ((v = cli_opt(argc, argv, &i, "--budget", &missing))) {
            if (!cli_parse_f64(v, &o.budget) || !(o.budget > 0) || o.budget > 1000)
                return cli_usage_error("reproduce", "--budget '%s' must be a number in (0, 1000]", v);
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (!cli_parse_i64(v, &seed) || seed < 0) return cli_usage_error("reproduce", "--seed '%s' must be an integer >= 0", v);
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (!cli_parse_i64(v, &threads) || threads < 1 || threads > 4096)
                return cli_usage_error("reproduce", "--threads '%s' must be an integer in [1, 4096]", v);
        } else if (cli_flag(argv, i, "--quick")) {
            o.quick = 1;
        } else if (cli_flag(argv, i, "--quiet")) {
            o.quiet = 1;
        } else if (missing) {
            return cli_usage_error("reproduce", "%s needs a value", argv[i]);
        } else if (argv[i][0] == '-') {
            return cli_usage_error("reproduce", "unknown option '%s'", argv[i]);
        } else if (exp) {
            return cli_usage_error("reproduce", "one experiment at a time ('%s' and '%s'); 'all' runs every one", exp, argv[i]);
        } else {
            exp = argv[i];
        }
    }
    if (!exp) {
        usage(stderr);
        return 2;
    }
    int all = !strcmp(exp, "all"), found = 0;
    if (threads > 0) ssmlm_set_threads((int)threads);
    o.seed = (uint64_t)seed;
    for (int k = 0; k < N_EXPERIMENTS; k++) {
        if (!all && strcmp(exp, k_experiments[k].name)) continue;
        found = 1;
        char dir[4096];
        if (out && !all) snprintf(dir, sizeof dir, "%s", out);
        else snprintf(dir, sizeof dir, "%s/%s", out ? out : "reproduce", k_experiments[k].name);
        o.out_dir = dir;
        if (k_experiments[k].fn(&o) != SSMLM_OK) return cli_error();
    }
    if (!found)
        return cli_usage_error("reproduce", "unknown experiment '%s' (phonebook, attention-ratio, all)", exp);
    return 0;
}
