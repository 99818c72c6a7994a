/* cmd_info.c — `ssmlm info` and `ssmlm pattern`: layer patterns, parameter counts per
 * component and memory plans of presets and configs. */
#include "cli.h"
#include <string.h>

static void print_bytes(const char *what, double bytes) {
    const char *unit = "GB";
    double v = bytes / 1e9;
    if (bytes < 1e6) {
        unit = "KB";
        v = bytes / 1e3;
    } else if (bytes < 1e9) {
        unit = "MB";
        v = bytes / 1e6;
    }
    printf("  %-44s %10.2f %s\n", what, v, unit);
}

static void print_counts_line(const char *what, int64_t layers, int64_t n) {
    if (layers >= 0)
        printf("  %-14s %4lld layers %16lld  (%.4f B)\n", what, (long long)layers, (long long)n, (double)n / 1e9);
    else
        printf("  %-26s %16lld  (%.4f B)\n", what, (long long)n, (double)n / 1e9);
}

static int info_one(const ssmlm_config *c, int64_t batch, int64_t seq) {
    ssmlm_param_counts pc;
    if (ssmlm_config_count_params(c, &pc) != SSMLM_OK) return cli_error();
    printf("%s\n", c->name);
    printf("  d_model %lld, %lld layers, vocab %lld (padded %lld), %s embeddings, %s\n",
           (long long)c->d_model, (long long)c->n_layer, (long long)c->vocab_size,
           (long long)ssmlm_config_vocab_padded(c), c->tie_embeddings ? "tied" : "untied",
           c->norm_kind == SSMLM_NORM_LAYER ? (c->norm_zero_centered ? "LayerNorm1p" : "LayerNorm") : "RMSNorm");
    printf("  pattern %s\n", c->pattern);
    print_counts_line(c->ssm_kind == SSMLM_SSM_MAMBA1 ? "Mamba-1" : "Mamba-2", pc.n_mamba, pc.mamba);
    print_counts_line("attention", pc.n_attention, pc.attention);
    print_counts_line("MLP", pc.n_mlp, pc.mlp);
    print_counts_line("embedding", -1, pc.embedding);
    if (pc.lm_head) print_counts_line("output layer", -1, pc.lm_head);
    print_counts_line("final norm", -1, pc.final_norm);
    printf("  %-26s %16lld  (%.2f B)\n", "total", (long long)pc.total, (double)pc.total / 1e9);
    double P = (double)pc.total;
    print_bytes("weights fp32", 4 * P);
    print_bytes("weights bf16", 2 * P);
    double act = (double)ssmlm_config_activation_bytes(c, batch, seq);
    char what[96];
    snprintf(what, sizeof what, "training fp32 (w+grad+AdamW 16 B/param)");
    print_bytes(what, 16 * P);
    snprintf(what, sizeof what, "activations, batch %lld x seq %lld", (long long)batch, (long long)seq);
    print_bytes(what, act);
    print_bytes("training total", 16 * P + act);
    return 0;
}

int cmd_info(int argc, char **argv) {
    const char *preset = NULL, *config = NULL, *v;
    int64_t batch = 1, seq = 4096;
    int all = 1;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            printf("usage: ssmlm info [--preset NAME | --config FILE] [--batch B] [--seq T]\n\n"
                   "Prints the layer pattern, parameter counts per component (exact integers),\n"
                   "and the memory for weights (fp32, bf16) and for fp32 training of B x T tokens.\n"
                   "Without --preset or --config: the paper's four 8B models.\n\n"
                   "  --preset NAME   one of:");
            for (const char *const *n = ssmlm_preset_names(); *n; n++) printf(" %s", *n);
            printf("\n  --config FILE   ssmlm or mamba_ssm config.json\n"
                   "  --batch B       batch for the activation estimate (default 1)\n"
                   "  --seq T         sequence length for the activation estimate (default 4096)\n");
            return 0;
        } else if ((v = cli_opt(argc, argv, &i, "--preset", &missing))) {
            preset = v;
            all = 0;
        } else if ((v = cli_opt(argc, argv, &i, "--config", &missing))) {
            config = v;
            all = 0;
        } else if ((v = cli_opt(argc, argv, &i, "--batch", &missing))) {
            if (!cli_parse_i64(v, &batch) || batch < 1) return cli_usage_error("info", "--batch '%s' is not a positive integer", v);
        } else if ((v = cli_opt(argc, argv, &i, "--seq", &missing))) {
            if (!cli_parse_i64(v, &seq) || seq < 1) return cli_usage_error("info", "--seq '%s' is not a positive integer", v);
        } else {
            return cli_usage_error("info", missing ? "option %s needs a value" : "unknown option '%s'", argv[i]);
        }
        if (missing) return cli_usage_error("info", "option %s needs a value", argv[i]);
    }
    if (all) {
        static const char *const k8b[] = {"transformer-8b", "mamba-8b", "mamba2-8b", "hybrid-8b"};
        static const double paper[] = {8.53, 8.15, 8.24, 8.66};
        printf("The paper's 8B models (Waleffe et al. 2024, Table 1):\n\n");
        int rc = 0;
        ssmlm_param_counts pc[4];
        for (int k = 0; k < 4; k++) {
            ssmlm_config c;
            if ((rc = cli_load_config(&c, k8b[k], NULL))) return rc;
            if ((rc = info_one(&c, batch, seq))) return rc;
            ssmlm_config_count_params(&c, &pc[k]);
            printf("\n");
        }
        printf("%-16s %16s %8s %8s\n", "model", "parameters", "billions", "paper");
        for (int k = 0; k < 4; k++)
            printf("%-16s %16lld %8.2f %8.2f\n", k8b[k], (long long)pc[k].total, (double)pc[k].total / 1e9, paper[k]);
        return 0;
    }
    ssmlm_config c;
    int rc = cli_load_config(&c, preset, config);
    return rc ? rc : info_one(&c, batch, seq);
}

int cmd_pattern(int argc, char **argv) {
    int64_t layers = 56;
    double attn = 0.08, mlp = 0.5;
    const char *v;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            printf("usage: ssmlm pattern [--layers N] [--attn RATIO] [--mlp RATIO]\n\n"
                   "Layer pattern of a hybrid by the paper's Algorithm 1 (Megatron-LM allocate_layers):\n"
                   "round(N*attn) attention layers spread evenly, then round(N*mlp) MLP layers among\n"
                   "the Mamba layers (round half to even).  M = Mamba-2, * = attention, + = MLP.\n\n"
                   "  --layers N     total layers (default 56)\n"
                   "  --attn RATIO   attention fraction in [0,1] (default 0.08)\n"
                   "  --mlp RATIO    MLP fraction in [0,1] (default 0.5)\n");
            return 0;
        } else if ((v = cli_opt(argc, argv, &i, "--layers", &missing))) {
            if (!cli_parse_i64(v, &layers)) return cli_usage_error("pattern", "--layers '%s' is not an integer", v);
        } else if ((v = cli_opt(argc, argv, &i, "--attn", &missing))) {
            if (!cli_parse_f64(v, &attn)) return cli_usage_error("pattern", "--attn '%s' is not a number", v);
        } else if ((v = cli_opt(argc, argv, &i, "--mlp", &missing))) {
            if (!cli_parse_f64(v, &mlp)) return cli_usage_error("pattern", "--mlp '%s' is not a number", v);
        } else {
            return cli_usage_error("pattern", missing ? "option %s needs a value" : "unknown option '%s'", argv[i]);
        }
        if (missing) return cli_usage_error("pattern", "option %s needs a value", argv[i]);
    }
    char p[SSMLM_MAX_LAYERS + 1];
    if (ssmlm_pattern_allocate(layers, attn, mlp, p) != SSMLM_OK) return cli_error();
    int64_t nm = 0, na = 0, nf = 0;
    for (int64_t i = 0; i < layers; i++) {
        nm += p[i] == 'M';
        na += p[i] == '*';
        nf += p[i] == '+';
    }
    printf("%s\n", p);
    printf("layers %lld: Mamba %lld (%.1f%%), attention %lld (%.1f%%), MLP %lld (%.1f%%)\n", (long long)layers,
           (long long)nm, 100.0 * (double)nm / (double)layers, (long long)na, 100.0 * (double)na / (double)layers,
           (long long)nf, 100.0 * (double)nf / (double)layers);
    printf("attention layers at:");
    for (int64_t i = 0; i < layers; i++)
        if (p[i] == '*') printf(" %lld", (long long)i);
    printf("\n");
    return 0;
}
