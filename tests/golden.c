/* golden.c — test support (see golden.h); compiled into each test in its precision. */
#include "golden.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int test_passed, test_failed;

const char *golden_dir(void) {
    const char *e = getenv("SSMLM_GOLDEN");
    return e && *e ? e : "../shared/golden";
}

static cJSON *load_index(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/index.json", golden_dir());
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    return j;
}

int golden_open(golden *g, const char *case_name) {
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", case_name);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s%s.safetensors", golden_dir(), case_name,
             REAL_IS_F64 ? ".f64" : "");
    ssmlm_status s = ssmlm_st_open(&g->st, path);
    CHECK(s == SSMLM_OK, "open %s: %s", path, ssmlm_last_error());
    if (s != SSMLM_OK) return 0;
    g->index = load_index();
    CHECK(g->index != NULL, "cannot read %s/index.json", golden_dir());
    if (!g->index) return 0;
    g->info = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g->index, "cases"),
                                               case_name);
    g->config = cJSON_GetObjectItemCaseSensitive(g->info, "config");
    CHECK(g->config != NULL, "index.json has no config for %s", case_name);
    return g->config != NULL;
}

void golden_close(golden *g) {
    ssmlm_st_close(&g->st);
    cJSON_Delete(g->index);
    memset(g, 0, sizeof *g);
}

int golden_has(const golden *g, const char *name) { return ssmlm_st_find(&g->st, name) != NULL; }

real *golden_get(golden *g, const char *name, int64_t *numel) {
    const ssmlm_st_tensor *t = ssmlm_st_find(&g->st, name);
    CHECK(t != NULL, "%s: missing tensor %s", g->name, name);
    if (!t) return NULL;
    real *x = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(real));
#if REAL_IS_F64
    ssmlm_st_read_f64(t, x);
#else
    ssmlm_st_read_f32(t, x);
#endif
    if (numel) *numel = t->numel;
    return x;
}

int32_t *golden_get_i32(golden *g, const char *name, int64_t *numel) {
    const ssmlm_st_tensor *t = ssmlm_st_find(&g->st, name);
    CHECK(t != NULL, "%s: missing tensor %s", g->name, name);
    if (!t) return NULL;
    double *d = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(double));
    int32_t *x = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(int32_t));
    ssmlm_st_read_f64(t, d);
    for (int64_t i = 0; i < t->numel; i++) x[i] = (int32_t)d[i];
    free(d);
    if (numel) *numel = t->numel;
    return x;
}

double golden_cfg(const golden *g, const char *key) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(g->config, key);
    if (cJSON_IsNumber(v)) return v->valuedouble;
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? 1 : 0;
    return NAN;
}

char **golden_cases_of_kind(const char *kind) {
    cJSON *idx = load_index();
    CHECK(idx != NULL, "cannot read %s/index.json", golden_dir());
    char **out = calloc(64, sizeof *out);
    int n = 0;
    if (!idx) return out;
    cJSON *cases = cJSON_GetObjectItemCaseSensitive(idx, "cases");
    for (cJSON *c = cases ? cases->child : NULL; c && n < 63; c = c->next) {
        cJSON *k = cJSON_GetObjectItemCaseSensitive(c, "kind");
        if (cJSON_IsString(k) && strcmp(k->valuestring, kind) == 0) out[n++] = strdup(c->string);
    }
    cJSON_Delete(idx);
    return out;
}

void golden_free_list(char **list) {
    for (int i = 0; list && list[i]; i++) free(list[i]);
    free(list);
}

int golden_compare(const char *what, const real *got, const real *want, int64_t n, double tol) {
    double maxref = 0, maxerr = 0;
    int64_t worst = 0;
    int finite = 1;
    for (int64_t i = 0; i < n; i++) {
        double r = fabs((double)want[i]), e = fabs((double)got[i] - (double)want[i]);
        if (!isfinite((double)got[i])) finite = 0;
        if (r > maxref) maxref = r;
        if (e > maxerr) { maxerr = e; worst = i; }
    }
    double rel = maxerr / (maxref > 1e-30 ? maxref : 1e-30);
    int ok = finite && rel <= tol;
    CHECK(ok, "%s: relative error %.3g > %.1g (worst at %lld: got %.10g want %.10g)%s", what, rel,
          tol, (long long)worst, n ? (double)got[worst] : 0.0, n ? (double)want[worst] : 0.0,
          finite ? "" : " [non-finite values]");
    return ok;
}

int golden_check(golden *g, const char *name, const real *got, int64_t n, double tol) {
    int64_t m = 0;
    real *want = golden_get(g, name, &m);
    if (!want) return 0;
    CHECK(m == n, "%s %s: %lld values, reference has %lld", g->name, name, (long long)n, (long long)m);
    char what[256];
    snprintf(what, sizeof what, "%s %s", g->name, name);
    int ok = m == n && golden_compare(what, got, want, n, tol);
    free(want);
    return ok;
}

int fd_check(const char *what, real *x, const real *grad, int64_t n, fd_loss_fn loss, void *ctx,
             int max_checks, double tol) {
    double scale = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)grad[i]));
    /* errors are judged against the tensor's largest gradient: the rounding floor of the
     * differences (~1e-12 absolute) must not dominate entries that are tiny by nature */
    scale = fmax(scale, 1e-10);
    int ok = 1;
    int64_t stride = n > max_checks ? n / max_checks : 1;
    for (int64_t i = (stride > 1 ? stride / 2 : 0); i < n; i += stride) {
        /* fourth-order central difference: truncation O(h^4), rounding ~eps |loss| / h */
        real old = x[i];
        double h = 1e-4 * fmax(1.0, fabs((double)old)), f[4];
        const double off[4] = {h, -h, 2 * h, -2 * h};
        for (int k = 0; k < 4; k++) {
            x[i] = (real)((double)old + off[k]);
            f[k] = loss(ctx);
        }
        x[i] = old;
        double fd = (8 * (f[0] - f[1]) - (f[2] - f[3])) / (12 * h), an = (double)grad[i];
        double err = fabs(fd - an) / fmax(fmax(fabs(fd), fabs(an)), scale);
        if (err > tol) {
            ok = 0;
            CHECK(0, "%s: FD mismatch at %lld: analytic %.10g, finite difference %.10g (rel %.3g)",
                  what, (long long)i, an, fd, err);
            break;
        }
    }
    if (ok) test_passed++;
    return ok;
}

void fill_uniform(real *x, int64_t n, double a, uint64_t *seed) {
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(*seed >> 11) * 0x1.0p-53;
        x[i] = (real)((2 * u - 1) * a);
    }
}

const char *ssmlm_build_dir(void) {
    const char *b = getenv("SSMLM_BUILD");
    return b && *b ? b : "build";
}

int run_ssmlm(const char *args, char *out, size_t cap) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s/ssmlm %s 2>&1", ssmlm_build_dir(), args);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void *read_all(const char *path, size_t *n) {
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *n = len > 0 ? (size_t)len : 0;
    void *p = malloc(*n ? *n : 1);
    if (p && fread(p, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return p;
}

char *file_text(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *t = NULL;
    return ssmlm_file_read_text(path, &t) == SSMLM_OK ? t : NULL;
}

void write_all(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    CHECK(fwrite(p, 1, n, f) == n, "short write %s", path);
    fclose(f);
}

/* Logits of B sequences of T tokens computed by prefill(P tokens) and then one step per
 * token; out [B, T, V]. */
void prefill_then_steps(ssmlm_model *m, const int32_t *ids, int64_t B, int64_t T, int64_t P,
                               int64_t V, real *out) {
    ssmlm_state *st = NULL;
    CHECK_OK(ssmlm_state_create(&st, m, B, T));
    if (!st) return;
    real *pre = malloc((size_t)(B * P * V) * sizeof(real)), *one = malloc((size_t)(B * V) * sizeof(real));
    int32_t *pid = malloc((size_t)(B * P) * sizeof(int32_t)), *tok = malloc((size_t)B * sizeof(int32_t));
    for (int64_t b = 0; b < B; b++) memcpy(pid + b * P, ids + b * T, (size_t)P * sizeof(int32_t));
    CHECK_OK(ssmlm_model_prefill(m, st, pid, P, pre));
    for (int64_t b = 0; b < B; b++) memcpy(out + b * T * V, pre + b * P * V, (size_t)(P * V) * sizeof(real));
    for (int64_t t = P; t < T; t++) {
        for (int64_t b = 0; b < B; b++) tok[b] = ids[b * T + t];
        CHECK_OK(ssmlm_model_step(m, st, tok, one));
        for (int64_t b = 0; b < B; b++) memcpy(out + (b * T + t) * V, one + b * V, (size_t)V * sizeof(real));
    }
    CHECK(ssmlm_state_pos(st, B - 1) == T, "position after decoding %lld", (long long)ssmlm_state_pos(st, B - 1));
    free(pre);
    free(one);
    free(pid);
    free(tok);
    ssmlm_state_free(st);
}
