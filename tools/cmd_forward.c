/* cmd_forward.c — `ssmlm forward`: runs a checkpoint on token ids and writes the logits and
 * the mean loss to a safetensors file, the way a user checks that a model loads and computes
 * what PyTorch computes. */
#include "cli.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct tokens {
    int32_t *v;
    int64_t B, T;
} tokens;

/* Text: whitespace-separated integers, one sequence per non-empty line. */
static int read_text_tokens(const char *path, const char *text, tokens *out) {
    int64_t cap = 1024, n = 0, line = 1, rows = 0, row_len = 0, first_len = -1;
    out->v = malloc((size_t)cap * sizeof(int32_t));
    const char *p = text;
    while (*p) {
        if (*p == '\n' || *p == '\r') {
            if (row_len > 0) {
                if (first_len < 0) first_len = row_len;
                else if (row_len != first_len) {
                    fprintf(stderr, "error: %s line %lld has %lld tokens, the first sequence has %lld\n"
                                    "hint: sequences of one batch must have the same length\n",
                            path, (long long)line, (long long)row_len, (long long)first_len);
                    return 1;
                }
                rows++;
            }
            if (*p == '\n') line++;
            row_len = 0;
            p++;
            continue;
        }
        if (isspace((unsigned char)*p) || *p == ',') {
            p++;
            continue;
        }
        char *end;
        long long x = strtoll(p, &end, 10);
        if (end == p || x < 0 || x > INT32_MAX) {
            fprintf(stderr, "error: %s line %lld: '%.20s' is not a token id\nhint: token files hold non-negative integers\n",
                    path, (long long)line, p);
            return 1;
        }
        if (n == cap) {
            cap *= 2;
            out->v = realloc(out->v, (size_t)cap * sizeof(int32_t));
        }
        out->v[n++] = (int32_t)x;
        row_len++;
        p = end;
    }
    if (row_len > 0) {
        if (first_len >= 0 && row_len != first_len) {
            fprintf(stderr, "error: %s line %lld has %lld tokens, the first sequence has %lld\n"
                            "hint: sequences of one batch must have the same length\n",
                    path, (long long)line, (long long)row_len, (long long)first_len);
            return 1;
        }
        if (first_len < 0) first_len = row_len;
        rows++;
    }
    if (n == 0) {
        fprintf(stderr, "error: %s holds no token ids\nhint: write integers separated by spaces, one sequence per line\n", path);
        return 1;
    }
    out->B = rows;
    out->T = first_len;
    return 0;
}

static int tensor_tokens(const char *path, const ssmlm_st_tensor *t, tokens *out) {
    if (t->dtype == SSMLM_ST_F32 || t->dtype == SSMLM_ST_F64 || t->dtype == SSMLM_ST_BF16 || t->dtype == SSMLM_ST_F16) {
        fprintf(stderr, "error: %s: tensor '%s' is %s; token ids must be an integer dtype\n", path, t->name,
                ssmlm_st_dtype_name(t->dtype));
        return 1;
    }
    if (t->ndim < 1 || t->ndim > 2 || t->numel == 0) {
        fprintf(stderr, "error: %s: tensor '%s' must have shape [T] or [B, T]\n", path, t->name);
        return 1;
    }
    out->B = t->ndim == 2 ? t->shape[0] : 1;
    out->T = t->shape[t->ndim - 1];
    out->v = malloc((size_t)t->numel * sizeof(int32_t));
    double *d = malloc((size_t)t->numel * sizeof(double));
    ssmlm_st_read_f64(t, d);
    for (int64_t i = 0; i < t->numel; i++) {
        if (d[i] < INT32_MIN || d[i] > INT32_MAX) {
            fprintf(stderr, "error: %s: tensor '%s' element %lld = %.0f does not fit a token id\n", path, t->name,
                    (long long)i, d[i]);
            free(d);
            return 1;
        }
        out->v[i] = (int32_t)d[i];
    }
    free(d);
    return 0;
}

/* Reads token ids (and labels if the file has them) from text or safetensors. */
static int read_tokens(const char *path, tokens *ids, tokens *labels) {
    size_t n = strlen(path);
    if (n > 12 && strcmp(path + n - 12, ".safetensors") == 0) {
        ssmlm_safetensors st;
        if (ssmlm_st_open(&st, path) != SSMLM_OK) return cli_error();
        static const char *const id_names[] = {"input_ids", "input.input_ids", "tokens", "ids"};
        static const char *const label_names[] = {"labels", "input.labels"};
        const ssmlm_st_tensor *t = NULL;
        for (int i = 0; i < 4 && !t; i++) t = ssmlm_st_find(&st, id_names[i]);
        int rc = 0;
        if (!t) {
            fprintf(stderr, "error: %s has no tensor input_ids (or input.input_ids, tokens, ids)\n", path);
            rc = 1;
        } else {
            rc = tensor_tokens(path, t, ids);
        }
        const ssmlm_st_tensor *l = NULL;
        for (int i = 0; i < 2 && !l && labels && rc == 0; i++) l = ssmlm_st_find(&st, label_names[i]);
        if (l) rc = tensor_tokens(path, l, labels);
        ssmlm_st_close(&st);
        return rc;
    }
    char *text;
    if (ssmlm_file_read_text(path, &text) != SSMLM_OK) return cli_error();
    int rc = read_text_tokens(path, text, ids);
    free(text);
    return rc;
}

int cmd_forward(int argc, char **argv) {
    const char *model_dir = NULL, *tok_path = NULL, *out_path = NULL, *label_path = NULL, *v;
    ssmlm_dtype dtype = SSMLM_F32;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            printf("usage: ssmlm forward --model DIR --tokens FILE [--labels FILE] [--out FILE.safetensors] [--dtype f32|f64]\n\n"
                   "Runs the model in DIR (config.json + model.safetensors; ssmlm, mamba_ssm or Hugging Face\n"
                   "names) on token ids and writes 'logits' [B, T, V] and the mean cross-entropy 'loss' [1].\n\n"
                   "  --model DIR      model folder\n"
                   "  --tokens FILE    token ids: a text file (integers, one sequence per line, equal lengths)\n"
                   "                   or a .safetensors file with an integer tensor input_ids [B, T] or [T]\n"
                   "                   (and optionally labels [B, T])\n"
                   "  --labels FILE    labels in the same format; default: the labels tensor of --tokens if any,\n"
                   "                   else the next token (the last position is not scored)\n"
                   "  --out FILE       output .safetensors (written to a temporary file, then renamed)\n"
                   "  --dtype f32|f64  compute precision (default f32; f64 to compare with float64 references)\n");
            return 0;
        } else if ((v = cli_opt(argc, argv, &i, "--model", &missing))) {
            model_dir = v;
        } else if ((v = cli_opt(argc, argv, &i, "--tokens", &missing))) {
            tok_path = v;
        } else if ((v = cli_opt(argc, argv, &i, "--labels", &missing))) {
            label_path = v;
        } else if ((v = cli_opt(argc, argv, &i, "--out", &missing))) {
            out_path = v;
        } else if ((v = cli_opt(argc, argv, &i, "--dtype", &missing))) {
            if (strcmp(v, "f32") == 0) dtype = SSMLM_F32;
            else if (strcmp(v, "f64") == 0) dtype = SSMLM_F64;
            else return cli_usage_error("forward", "--dtype '%s' must be f32 or f64", v);
        } else {
            return cli_usage_error("forward", missing ? "option %s needs a value" : "unknown option '%s'", argv[i]);
        }
        if (missing) return cli_usage_error("forward", "option %s needs a value", argv[i]);
    }
    if (!model_dir) return cli_usage_error("forward", "--model DIR is required");
    if (!tok_path) return cli_usage_error("forward", "--tokens FILE is required");
    tokens ids = {0}, labels = {0};
    int rc = read_tokens(tok_path, &ids, &labels);
    if (!rc && label_path) {
        free(labels.v);
        labels.v = NULL;
        rc = read_tokens(label_path, &labels, NULL);
        if (!rc && (labels.B != ids.B || labels.T != ids.T)) {
            fprintf(stderr, "error: %s is %lld x %lld, the tokens are %lld x %lld\n", label_path, (long long)labels.B,
                    (long long)labels.T, (long long)ids.B, (long long)ids.T);
            rc = 1;
        }
    }
    if (!rc && labels.v && (labels.B * labels.T != ids.B * ids.T)) {
        fprintf(stderr, "error: labels have %lld values, tokens %lld\n", (long long)(labels.B * labels.T),
                (long long)(ids.B * ids.T));
        rc = 1;
    }
    if (rc) goto done;
    if (!labels.v) { /* next-token labels */
        labels.v = malloc((size_t)(ids.B * ids.T) * sizeof(int32_t));
        for (int64_t b = 0; b < ids.B; b++)
            for (int64_t t = 0; t < ids.T; t++)
                labels.v[b * ids.T + t] = t + 1 < ids.T ? ids.v[b * ids.T + t + 1] : -1;
    }
    ssmlm_model *m = NULL;
    if (ssmlm_model_load(&m, model_dir, dtype) != SSMLM_OK) {
        rc = cli_error();
        goto done;
    }
    const ssmlm_config *c = ssmlm_model_config(m);
    int64_t V = ssmlm_config_vocab_padded(c);
    size_t es = dtype == SSMLM_F64 ? 8 : 4;
    void *logits = malloc((size_t)(ids.B * ids.T * V) * es);
    double loss = 0;
    if (!logits || ssmlm_model_forward(m, ids.v, labels.v, ids.B, ids.T, logits, &loss) != SSMLM_OK) {
        rc = logits ? cli_error() : 1;
    } else {
        printf("model %s: %lld layers (%s), batch %lld x %lld tokens, mean loss %.6f\n", model_dir,
               (long long)c->n_layer, c->pattern, (long long)ids.B, (long long)ids.T, loss);
        if (out_path) {
            ssmlm_st_out t[2] = {
                {"logits", dtype == SSMLM_F64 ? SSMLM_ST_F64 : SSMLM_ST_F32, 3, {ids.B, ids.T, V}, logits},
                {"loss", SSMLM_ST_F64, 1, {1}, &loss},
            };
            if (ssmlm_st_write(out_path, t, 2, "{\"format\":\"ssmlm-forward\"}") != SSMLM_OK) rc = cli_error();
            else printf("wrote %s (logits [%lld, %lld, %lld], loss)\n", out_path, (long long)ids.B, (long long)ids.T, (long long)V);
        }
    }
    free(logits);
    ssmlm_model_free(m);
done:
    free(ids.v);
    free(labels.v);
    return rc;
}
