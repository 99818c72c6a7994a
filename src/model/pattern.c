/* pattern.c — the layer pattern: the paper's Algorithm 1 (Megatron-LM allocate_layers) and
 * validation of explicit patterns.  Reproduces Python's double arithmetic exactly: rint()
 * under the default rounding mode is round-half-to-even like Python's round(), and this file
 * is compiled without FMA contraction (Makefile). */
#include "base/base.h"
#include <math.h>
#include <string.h>

ssmlm_status ssmlm_pattern_allocate(int64_t n, double attn_ratio, double mlp_ratio, char *out) {
    if (n <= 0 || n > SSMLM_MAX_LAYERS)
        return ssmlm_fail(SSMLM_ERR_INVALID, "try --layers 24", "layers %lld must be in 1..%d",
                          (long long)n, SSMLM_MAX_LAYERS);
    if (!(attn_ratio >= 0 && attn_ratio <= 1))
        return ssmlm_fail(SSMLM_ERR_INVALID, "the paper's hybrid uses 0.08",
                          "attention ratio %g must be in [0, 1]", attn_ratio);
    if (!(mlp_ratio >= 0 && mlp_ratio <= 1))
        return ssmlm_fail(SSMLM_ERR_INVALID, "the paper's hybrid uses 0.5",
                          "MLP ratio %g must be in [0, 1]", mlp_ratio);
    if (attn_ratio + mlp_ratio > 1)
        return ssmlm_fail(SSMLM_ERR_INVALID, "e.g. attention 0.08 with MLP 0.5",
                          "attention ratio %g + MLP ratio %g exceed 1", attn_ratio, mlp_ratio);
    double nd = (double)n;
    int64_t n_attn = (int64_t)rint(nd * attn_ratio);
    int64_t n_mamba = n - n_attn;
    for (int64_t i = 0; i < n; i++) out[i] = 'M';
    out[n] = 0;
    /* attention: A+1 Mamba sections of equal (fractional) length */
    double len = (double)n_mamba / (double)(n_attn + 1);
    double x = len;
    for (int64_t i = 0; i < n; i++) {
        if (x < 0.5) {
            out[i] = '*';
            x += len;
        } else {
            x -= 1;
        }
    }
    int64_t n_mlp = (int64_t)rint(nd * mlp_ratio);
    if (n_mlp > 0) {
        n_mamba -= n_mlp;
        double r = (double)n_mamba / (double)n_mlp;
        x = r;
        for (int64_t i = 0; i < n; i++) {
            if (out[i] != 'M') continue;
            if (x < 0.5) {
                out[i] = '+';
                x += r;
            } else {
                x -= 1;
            }
        }
    }
    return SSMLM_OK;
}

ssmlm_status ssmlm_pattern_normalize(char *p) {
    size_t n = strlen(p);
    if (n == 0)
        return ssmlm_fail(SSMLM_ERR_INVALID, "e.g. \"M+M*M+\" (M Mamba, * attention, + MLP)",
                          "pattern is empty");
    if (n > SSMLM_MAX_LAYERS)
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "pattern has %zu layers, at most %d allowed", n,
                          SSMLM_MAX_LAYERS);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '-') p[i] = '+';
        if (p[i] != 'M' && p[i] != '*' && p[i] != '+')
            return ssmlm_fail(SSMLM_ERR_INVALID,
                              "use M (Mamba), * (attention), + or - (MLP)",
                              "pattern character %zu is '%c'", i, p[i]);
    }
    return SSMLM_OK;
}
