/* golden.h — test support: reading the reference vectors in ../shared/golden (in the precision
 * the test is compiled for), comparing arrays, and finite-difference gradient checks. */
#ifndef SSMLM_GOLDEN_H
#define SSMLM_GOLDEN_H

#include "ssmlm.h"
#include "kernels/real.h"
#include "test.h"
#include <cjson/cJSON.h>

/* Tolerances of ../shared/golden/README.md for this precision (relative to the reference's
 * largest magnitude). */
#define GOLDEN_TOL_FWD (REAL_IS_F64 ? 1e-10 : 1e-4)
#define GOLDEN_TOL_GRAD (REAL_IS_F64 ? 1e-10 : 1e-3)

/* Folder of the reference vectors: $SSMLM_GOLDEN, else ../shared/golden. */
const char *golden_dir(void);

typedef struct golden {
    char name[64];
    ssmlm_safetensors st;
    cJSON *index;   /* whole index.json */
    cJSON *config;  /* this case's "config" object (owned by index) */
    cJSON *info;    /* this case's object in index.json */
} golden;

/* Opens <case>.safetensors (fp32 build) or <case>.f64.safetensors (fp64 build). */
int golden_open(golden *g, const char *case_name);
void golden_close(golden *g);
/* Tensor as a malloc'ed real array (NULL and a test failure if missing); numel may be NULL. */
real *golden_get(golden *g, const char *name, int64_t *numel);
/* Integer tensor (ids, labels) as malloc'ed int32. */
int32_t *golden_get_i32(golden *g, const char *name, int64_t *numel);
int golden_has(const golden *g, const char *name);
/* Numeric config value (NAN if absent). */
double golden_cfg(const golden *g, const char *key);
/* Names of all cases of a kind (NULL-terminated, malloc'ed array of malloc'ed strings). */
char **golden_cases_of_kind(const char *kind);
void golden_free_list(char **list);

/* max|got - want| <= tol * max(max|want|, 1e-30); records a CHECK, prints details. */
int golden_compare(const char *what, const real *got, const real *want, int64_t n, double tol);
/* Compare against a golden tensor by name. */
int golden_check(golden *g, const char *name, const real *got, int64_t n, double tol);

/* Finite-difference check of an analytic gradient (meaningful in the fp64 build): for up to
 * max_checks entries i of x (spread over the array), compares grad[i] with
 * the fourth-order central difference with h = 1e-4 max(1, |x_i|).  Relative to max(|fd|, |grad|, max |grad| of the tensor).  Records CHECKs. */
typedef double (*fd_loss_fn)(void *ctx);
int fd_check(const char *what, real *x, const real *grad, int64_t n, fd_loss_fn loss, void *ctx,
             int max_checks, double tol);

/* Runs the ssmlm program ($SSMLM_BUILD/ssmlm, default build/ssmlm) with args; stdout and stderr
 * go to out (NUL-terminated, truncated to cap); returns the exit code (-1 if it did not exit). */
int run_ssmlm(const char *args, char *out, size_t cap);
/* The folder of the ssmlm program under test. */
const char *ssmlm_build_dir(void);

/* Whole file into a malloc'ed buffer (NULL if it cannot be opened; *n = 0 on a short read),
 * and a buffer written to a file (records CHECKs). */
void *read_all(const char *path, size_t *n);
void write_all(const char *path, const void *p, size_t n);
/* The file dir/name as NUL-terminated text (caller frees), NULL if it cannot be read. */
char *file_text(const char *dir, const char *name);

/* Fill with uniform values in [-a, a] from a simple seeded generator. */
void fill_uniform(real *x, int64_t n, double a, uint64_t *seed);

/* Logits of B sequences of T tokens computed by prefill(P tokens) and then one step per
 * token; out [B, T, V] (records CHECKs, also of the final position). */
void prefill_then_steps(ssmlm_model *m, const int32_t *ids, int64_t B, int64_t T, int64_t P, int64_t V, real *out);

/* SANITIZED: 1 in the AddressSanitizer build (several times slower: tests train less there). */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#endif
