/* presets.c — named configurations: the paper's four 8B models (Tables 1 and 6; exact counts in
 * reference architectures.md §3), the 130M and 840M ablation sizes, and tiny test models. */
#include "base/base.h"
#include <string.h>

static const char *const k_names[] = {
    "transformer-8b", "mamba-8b", "mamba2-8b", "hybrid-8b",
    "transformer-130m", "mamba-130m", "mamba2-130m", "hybrid-130m",
    "transformer-840m", "mamba-840m", "mamba2-840m", "hybrid-840m",
    "tiny-transformer", "tiny-mamba", "tiny-mamba2", "tiny-hybrid", NULL};

const char *const *ssmlm_preset_names(void) { return k_names; }

static void repeat_pattern(ssmlm_config *c, const char *unit, int64_t times) {
    size_t u = strlen(unit);
    c->pattern[0] = 0;
    for (int64_t i = 0; i < times; i++) memcpy(c->pattern + i * (int64_t)u, unit, u + 1);
    c->n_layer = (int64_t)strlen(c->pattern);
}

/* Family settings shared by every size. d: d_model, layers: paper layer count (Transformer
 * layers count attention+MLP as one). */
static ssmlm_status family(ssmlm_config *c, const char *fam, int64_t d, int64_t layers) {
    c->d_model = d;
    if (strcmp(fam, "transformer") == 0) {
        /* Megatron GPT reference: MHA, RoPE on 50% of head dims, squared-ReLU 4x MLP,
         * LayerNorm1p with bias (architectures.md §2.6) */
        repeat_pattern(c, "*+", layers);
        c->attn_heads = d / 128 >= 8 ? d / 128 : d / 64;
        c->attn_kv_heads = c->attn_heads;
        c->attn_head_dim = d / c->attn_heads;
        c->attn_rotary_dim = c->attn_head_dim / 2;
        c->mlp_hidden = 4 * d;
        c->mlp_act = SSMLM_ACT_RELU2;
        c->norm_kind = SSMLM_NORM_LAYER;
        c->norm_zero_centered = 1;
    } else if (strcmp(fam, "mamba") == 0) {
        repeat_pattern(c, "M", layers);
        c->ssm_kind = SSMLM_SSM_MAMBA1;
        c->m1_d_state = d >= 4096 ? 128 : 16;
        c->m1_dt_rank = (d + 15) / 16;
    } else if (strcmp(fam, "mamba2") == 0 || strcmp(fam, "hybrid") == 0) {
        c->ssm_kind = SSMLM_SSM_MAMBA2;
        c->m2_d_state = 128;
        c->m2_headdim = 64;
        c->m2_ngroups = d >= 4096 ? 8 : 1;
        c->m2_chunk_size = d >= 4096 ? 128 : 64;
        if (fam[0] == 'm') {
            repeat_pattern(c, "M", layers);
        } else {
            /* 8% attention, 50% MLP through Algorithm 1; GQA 4:1, no position encoding,
             * GELU 4x MLP (architectures.md §2.4-2.5) */
            ssmlm_status s = ssmlm_pattern_allocate(layers, 0.08, 0.5, c->pattern);
            if (s != SSMLM_OK) return s;
            c->n_layer = layers;
            c->attn_heads = d / 128 >= 8 ? d / 128 : d / 64;
            c->attn_kv_heads = c->attn_heads / 4 > 0 ? c->attn_heads / 4 : 1;
            c->attn_head_dim = d / c->attn_heads;
            c->attn_rotary_dim = 0;
            c->mlp_hidden = 4 * d;
            c->mlp_act = SSMLM_ACT_GELU;
        }
    } else {
        return SSMLM_ERR_INVALID;
    }
    return SSMLM_OK;
}

ssmlm_status ssmlm_preset(ssmlm_config *c, const char *name) {
    ssmlm_config_defaults(c);
    snprintf(c->name, sizeof c->name, "%s", name ? name : "");
    const char *dash = name ? strrchr(name, '-') : NULL;
    char fam[32] = "";
    if (dash && (size_t)(dash - name) < sizeof fam) {
        memcpy(fam, name, (size_t)(dash - name));
        fam[dash - name] = 0;
    }
    const char *size = dash ? dash + 1 : "";
    ssmlm_status s = SSMLM_ERR_INVALID;
    if (strncmp(name ? name : "", "tiny-", 5) == 0) {
        /* byte-level vocabulary, a few layers: fast enough for tests */
        const char *f = name + 5;
        c->vocab_size = 257; /* bytes 0..255 + end of document (SSMLM_BYTE_EOD) */
        c->tie_embeddings = 1;
        if (strcmp(f, "hybrid") == 0) {
            s = family(c, "hybrid", 64, 8);
        } else {
            s = family(c, f, 64, strcmp(f, "transformer") == 0 ? 2 : 4);
        }
        if (s == SSMLM_OK) {
            c->m1_d_state = 8;
            c->m2_d_state = 16;
            c->m2_headdim = 16;
            c->m2_chunk_size = 16;
            c->attn_heads = 4;
            c->attn_kv_heads = strcmp(f, "hybrid") == 0 ? 2 : 4;
            c->attn_head_dim = 16;
            if (strcmp(f, "transformer") == 0) c->attn_rotary_dim = 8;
        }
    } else if (strcmp(size, "8b") == 0) {
        /* Megatron tokenizer: 256,000 pieces, no padding, untied (architectures.md §3) */
        c->vocab_size = 256000;
        c->vocab_pad_multiple = 128;
        c->tie_embeddings = 0;
        s = family(c, fam, 4096, strcmp(fam, "transformer") == 0 ? 32 : 56);
        if (s == SSMLM_OK && strcmp(fam, "transformer") == 0) c->attn_heads = c->attn_kv_heads = 32;
        if (s == SSMLM_OK && strcmp(fam, "hybrid") == 0) {
            c->attn_heads = 32;
            c->attn_kv_heads = 8;
            c->attn_head_dim = 128;
        }
    } else if (strcmp(size, "130m") == 0) {
        /* mamba_ssm 130M shape: d 768, 24 layers, GPT-NeoX vocabulary, tied */
        c->vocab_size = 50277;
        c->vocab_pad_multiple = 16;
        c->tie_embeddings = 1;
        s = family(c, fam, 768, strcmp(fam, "transformer") == 0 ? 12 : 24);
    } else if (strcmp(size, "840m") == 0) {
        /* d 1024, 48 layers (the paper's 48-layer ablation pattern), 256K vocab, untied */
        c->vocab_size = 256000;
        c->vocab_pad_multiple = 128;
        c->tie_embeddings = 0;
        s = family(c, fam, 1024, strcmp(fam, "transformer") == 0 ? 24 : 48);
    }
    if (s != SSMLM_OK) {
        char list[512] = "";
        for (int i = 0; k_names[i]; i++) {
            strncat(list, k_names[i], sizeof list - strlen(list) - 2);
            if (k_names[i + 1]) strncat(list, ", ", sizeof list - strlen(list) - 1);
        }
        return ssmlm_fail(SSMLM_ERR_INVALID, list, "unknown preset '%s'; known presets are listed in the hint",
                          name ? name : "(null)");
    }
    ssmlm_config_resolve(c);
    return ssmlm_config_validate(c);
}
