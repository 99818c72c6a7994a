/* test_presets.c — parameter counts of the paper's 8B presets (exact integers of
 * architectures.md §3 and the paper's Table 1 within 0.01B), every preset validates, and the
 * parameter table is consistent (offsets aligned, no overlap). */
#include "ssmlm.h"
#include "test.h"
#include <math.h>
#include <string.h>


static void exact(const char *name, int64_t want, double paper) {
    ssmlm_config c;
    ssmlm_param_counts pc;
    CHECK(ssmlm_preset(&c, name) == SSMLM_OK, "preset %s: %s", name, ssmlm_last_error());
    CHECK(ssmlm_config_count_params(&c, &pc) == SSMLM_OK, "count %s", name);
    CHECK(pc.total == want, "%s: %lld parameters, want %lld", name, (long long)pc.total, (long long)want);
    /* the paper rounds to 2 decimals; our exact count must round within one unit of it */
    CHECK(fabs(round((double)pc.total / 1e7) / 100 - paper) <= 0.0100001, "%s: %.4fB vs paper %.2fB", name,
          (double)pc.total / 1e9, paper);
}

int main(void) {
    exact("mamba-8b", 8148783104LL, 8.15);
    exact("mamba2-8b", 8236999680LL, 8.24);
    exact("hybrid-8b", 8654517248LL, 8.66);
    exact("transformer-8b", 8540135424LL, 8.53);

    /* per-component detail of the hybrid (architectures.md §3) */
    ssmlm_config c;
    ssmlm_param_counts pc;
    ssmlm_preset(&c, "hybrid-8b");
    ssmlm_config_count_params(&c, &pc);
    CHECK(strcmp(c.pattern, "M+M+M++M+M*+M+M+M+M++M*+M+M+M+M+M*++M+M+M+M+M*+M++M+M+M+") == 0, "hybrid-8b pattern %s", c.pattern);
    CHECK(pc.n_mamba == 24 && pc.n_attention == 4 && pc.n_mlp == 28, "hybrid layer counts %lld/%lld/%lld",
          (long long)pc.n_mamba, (long long)pc.n_attention, (long long)pc.n_mlp);
    CHECK(pc.mamba == 2631361536LL, "24 Mamba-2 layers: %lld", (long long)pc.mamba);
    CHECK(pc.attention == 167788544LL, "4 attention layers: %lld", (long long)pc.attention);
    CHECK(pc.mlp == 3758211072LL, "28 MLP layers: %lld", (long long)pc.mlp);
    CHECK(pc.embedding + pc.lm_head + pc.final_norm == 2097156096LL, "embedding + output + final norm: %lld",
          (long long)(pc.embedding + pc.lm_head + pc.final_norm));

    for (const char *const *n = ssmlm_preset_names(); *n; n++) {
        ssmlm_config p;
        CHECK(ssmlm_preset(&p, *n) == SSMLM_OK, "preset %s: %s", *n, ssmlm_last_error());
        CHECK(ssmlm_config_validate(&p) == SSMLM_OK, "preset %s validates: %s", *n, ssmlm_last_error());
        CHECK((int64_t)strlen(p.pattern) == p.n_layer, "preset %s: n_layer matches the pattern", *n);
    }
    CHECK(ssmlm_preset(&c, "mamba-9b") == SSMLM_ERR_INVALID, "unknown preset rejected");
    CHECK(strstr(ssmlm_last_hint(), "hybrid-8b") != NULL, "hint lists presets: %s", ssmlm_last_hint());

    /* the table of a tiny model: aligned, non-overlapping, every slot where the layer needs it */
    ssmlm_model *m = NULL;
    ssmlm_preset(&c, "tiny-hybrid");
    CHECK(ssmlm_model_create(&m, &c, SSMLM_F32) == SSMLM_OK, "create tiny-hybrid: %s", ssmlm_last_error());
    if (m) {
        int64_t end = 0;
        int ok = 1;
        for (int i = 0; i < ssmlm_model_n_params(m); i++) {
            const ssmlm_param_info *p = ssmlm_model_param(m, i);
            ok &= p->offset % 16 == 0 && p->offset >= end;
            end = p->offset + p->numel;
        }
        CHECK(ok, "parameter offsets aligned and ordered");
        CHECK(ssmlm_model_find_param(m, "embedding.weight") >= 0, "embedding present");
        CHECK(ssmlm_model_find_param(m, "lm_head.weight") < 0, "tied model has no lm_head");
        ssmlm_model_free(m);
    }
    TEST_END();
}
