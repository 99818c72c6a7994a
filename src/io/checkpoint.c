/* checkpoint.c — model folders: config.json + model.safetensors.  Loads ssmlm's own tensor
 * names and the mamba_ssm / Hugging Face names (backbone.layers.{j}.mixer.*, norm2 + mlp for
 * blocks with an MLP, backbone.embedding(s).weight, backbone.norm_f.weight, lm_head.weight),
 * converting any floating dtype to the model's precision (or, for a bf16-weight model's
 * matrices, to bf16 tensor by tensor).  Saves ssmlm names, in the storage type of each tensor. */
#include "model/model.h"
#include <string.h>
#include <sys/stat.h>

/* mamba_ssm block index and role of each layer: a non-MLP layer opens block j; an MLP layer
 * right after it is that block's norm2/mlp. Returns -1 when a layer has no mamba_ssm name. */
static void mamba_ssm_blocks(const ssmlm_config *c, int *block, int *is_mlp_part) {
    int j = -1;
    for (int l = 0; l < c->n_layer; l++) {
        int mlp_part = c->pattern[l] == '+' && l > 0 && c->pattern[l - 1] != '+';
        if (!mlp_part) j++;
        block[l] = c->pattern[l] == '+' && !mlp_part ? -1 : j;
        is_mlp_part[l] = mlp_part;
    }
}

/* Writes up to 3 alternative external names of parameter p; returns how many. */
static int alt_names(const ssmlm_param_info *p, const int *block, const int *mlp_part,
                     char out[3][160]) {
    int n = 0;
    if (p->layer < 0) {
        if (strcmp(p->name, "embedding.weight") == 0) {
            snprintf(out[n++], 160, "backbone.embedding.weight");
            snprintf(out[n++], 160, "backbone.embeddings.weight");
        } else if (strncmp(p->name, "norm_f.", 7) == 0) {
            snprintf(out[n++], 160, "backbone.%s", p->name);
        }
        return n;
    }
    int j = block[p->layer];
    if (j < 0) return 0;
    const char *rest = strchr(strchr(p->name, '.') + 1, '.') + 1; /* after "layers.{l}." */
    if (strncmp(rest, "norm.", 5) == 0)
        snprintf(out[n++], 160, "backbone.layers.%d.%s%s", j, mlp_part[p->layer] ? "norm2." : "norm.", rest + 5);
    else
        snprintf(out[n++], 160, "backbone.layers.%d.%s", j, rest);
    return n;
}

int model_param_alt_names(const ssmlm_model *m, int i, char out[3][160]) {
    const ssmlm_config *c = &m->cfg;
    int *block = malloc((size_t)c->n_layer * sizeof(int)), *mlp_part = malloc((size_t)c->n_layer * sizeof(int));
    int n = 0;
    if (block && mlp_part) {
        mamba_ssm_blocks(c, block, mlp_part);
        n = alt_names(&m->params[i].info, block, mlp_part, out);
    }
    free(block);
    free(mlp_part);
    return n;
}

static int same_shape(const ssmlm_param_info *p, const ssmlm_st_tensor *t) {
    if (t->numel != p->numel) return 0;
    if (t->ndim == p->ndim) {
        for (int d = 0; d < p->ndim; d++)
            if (t->shape[d] != p->shape[d]) return 0;
        return 1;
    }
    /* conv weights may come as [C, K] instead of [C, 1, K] */
    return p->ndim == 3 && t->ndim == 2 && t->shape[0] == p->shape[0] && t->shape[1] == p->shape[2];
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t at = 0;
    at += (size_t)snprintf(buf + at, n - at, "[");
    for (int d = 0; d < ndim && at < n; d++)
        at += (size_t)snprintf(buf + at, n - at, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (at < n) snprintf(buf + at, n - at, "]");
}

ssmlm_status ssmlm_model_load(ssmlm_model **out, const char *dir, ssmlm_dtype dtype) {
    return ssmlm_model_load_ex(out, dir, dtype, 0);
}

ssmlm_status ssmlm_model_load_ex(ssmlm_model **out, const char *dir, ssmlm_dtype dtype, unsigned flags) {
    *out = NULL;
    char path[4200], run_dir[4096];
    ssmlm_config c;
    snprintf(path, sizeof path, "%s/config.json", dir);
    struct stat sb0;
    if (stat(path, &sb0) != 0) {
        /* a training run folder: follow its `latest` file to the newest checkpoint */
        char latest[4096], *name = NULL;
        snprintf(latest, sizeof latest, "%s/latest", dir);
        if (stat(latest, &sb0) == 0 && ssmlm_file_read(latest, &name, NULL) == SSMLM_OK) {
            name[strcspn(name, "\r\n")] = 0;
            if (name[0] && !strchr(name, '/')) {
                snprintf(run_dir, sizeof run_dir, "%s/%s", dir, name);
                dir = run_dir;
                snprintf(path, sizeof path, "%s/config.json", dir);
            }
            free(name);
        }
    }
    ssmlm_status s = ssmlm_config_load_json(&c, path);
    if (s != SSMLM_OK) {
        ssmlm_error_context("loading model %s", dir);
        return s;
    }
    ssmlm_model *m = NULL;
    s = ssmlm_model_create_ex(&m, &c, dtype, flags);
    if (s != SSMLM_OK) return s;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        char alt[4200];
        snprintf(alt, sizeof alt, "%s/pytorch_model.bin", dir);
        ssmlm_model_free(m);
        if (stat(alt, &sb) == 0)
            return ssmlm_fail(SSMLM_ERR_UNSUPPORTED,
                              "convert it once with safetensors.torch.save_file(torch.load(...), 'model.safetensors')",
                              "%s has only pytorch_model.bin (pickle), which ssmlm does not execute", dir);
        return ssmlm_fail(SSMLM_ERR_IO, "a model folder holds config.json and model.safetensors",
                          "%s not found", path);
    }
    ssmlm_safetensors st;
    s = ssmlm_st_open(&st, path);
    if (s != SSMLM_OK) {
        ssmlm_model_free(m);
        return s;
    }
    int *block = malloc((size_t)c.n_layer * sizeof(int)), *mlp_part = malloc((size_t)c.n_layer * sizeof(int));
    char *used = calloc((size_t)(st.n ? st.n : 1), 1);
    if (!block || !mlp_part || !used) {
        s = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
        goto done;
    }
    mamba_ssm_blocks(&c, block, mlp_part);
    for (int i = 0; i < m->n_params; i++) {
        const ssmlm_param_info *p = &m->params[i].info;
        char names[3][160];
        int n = alt_names(p, block, mlp_part, names);
        const ssmlm_st_tensor *t = ssmlm_st_find(&st, p->name);
        for (int k = 0; !t && k < n; k++) t = ssmlm_st_find(&st, names[k]);
        if (!t) {
            s = ssmlm_fail(SSMLM_ERR_FORMAT,
                           "check that config.json describes this checkpoint (layers, pattern, tie_embeddings)",
                           "%s: tensor '%s'%s%s%s not found", path, p->name, n ? " (or '" : "",
                           n ? names[0] : "", n ? "')" : "");
            goto done;
        }
        if (!same_shape(p, t)) {
            char a[96], b[96];
            shape_str(a, sizeof a, p->ndim, p->shape);
            shape_str(b, sizeof b, t->ndim, t->shape);
            s = ssmlm_fail(SSMLM_ERR_FORMAT, "config.json and the weights disagree; check d_model, d_state, headdim, ngroups",
                           "%s: tensor '%s' has shape %s, the config needs %s", path, t->name, b, a);
            goto done;
        }
        if (t->dtype != SSMLM_ST_F32 && t->dtype != SSMLM_ST_F64 && t->dtype != SSMLM_ST_BF16 && t->dtype != SSMLM_ST_F16) {
            s = ssmlm_fail(SSMLM_ERR_FORMAT, "weights must be F32, F64, BF16 or F16",
                           "%s: tensor '%s' has dtype %s", path, t->name, ssmlm_st_dtype_name(t->dtype));
            goto done;
        }
        used[t - st.tensors] = 1;
        if (m->params[i].bf16) ssmlm_st_read_bf16(t, model_w(m, i));
        else if (dtype == SSMLM_F64) ssmlm_st_read_f64(t, model_w(m, i));
        else ssmlm_st_read_f32(t, model_w(m, i));
    }
    for (int k = 0; k < st.n; k++) {
        const char *nm = st.tensors[k].name;
        if (used[k] || strstr(nm, "_extra_state")) continue;
        if (c.tie_embeddings && strcmp(nm, "lm_head.weight") == 0) continue; /* torch keeps the tied copy */
        s = ssmlm_fail(SSMLM_ERR_FORMAT, "check that config.json matches the checkpoint (attn_layer_idx, d_intermediate, tie_embeddings)",
                       "%s: tensor '%s' is not a parameter of the configured model", path, nm);
        goto done;
    }
    s = SSMLM_OK;
done:
    free(block);
    free(mlp_part);
    free(used);
    ssmlm_st_close(&st);
    if (s != SSMLM_OK) ssmlm_model_free(m);
    else *out = m;
    return s;
}

ssmlm_status ssmlm_model_save(const ssmlm_model *m, const char *dir) {
    ssmlm_status s = ssmlm_mkdir_p(dir);
    if (s != SSMLM_OK) return s;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    s = ssmlm_config_save_json(&m->cfg, path);
    if (s != SSMLM_OK) return s;
    ssmlm_st_out *t = calloc((size_t)m->n_params, sizeof *t);
    if (!t) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
    for (int i = 0; i < m->n_params; i++) {
        const ssmlm_param_info *p = &m->params[i].info;
        t[i].name = p->name;
        t[i].dtype = m->params[i].bf16 ? SSMLM_ST_BF16 : m->dtype == SSMLM_F64 ? SSMLM_ST_F64 : SSMLM_ST_F32;
        t[i].ndim = p->ndim;
        memcpy(t[i].shape, p->shape, sizeof p->shape);
        t[i].data = model_w(m, i);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    s = ssmlm_st_write(path, t, m->n_params, "{\"format\":\"ssmlm\"}");
    free(t);
    return s;
}
