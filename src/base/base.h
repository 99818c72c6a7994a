/* base.h — internal foundation: error recording, never-compiled-out asserts, aligned memory,
 * checked file I/O (read, mmap, write-temp-then-rename), a seeded RNG and thread control. */
#ifndef SSMLM_BASE_H
#define SSMLM_BASE_H

#include "ssmlm.h"
#include <stdio.h>
#include <stdlib.h>

/* Records an error (what failed, where) and a hint; returns status so callers can
 * `return ssmlm_fail(...)`.  hint may be NULL. */
ssmlm_status ssmlm_fail(ssmlm_status status, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes the current error message with context ("loading model: ..."). */
void ssmlm_error_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ssmlm_clear_error(void);

/* Invariant check that stays in release builds. */
#define SSMLM_ASSERT(cond)                                                                  \
    do {                                                                                    \
        if (!(cond)) ssmlm_assert_fail(#cond, __FILE__, __LINE__);                          \
    } while (0)
_Noreturn void ssmlm_assert_fail(const char *cond, const char *file, int line);

/* 64-byte aligned allocation (free with ssmlm_free); returns NULL on failure. */
void *ssmlm_alloc(size_t bytes);
void *ssmlm_calloc(size_t bytes);
void ssmlm_free(void *p);

/* Whole-file read into a NUL-terminated malloc'ed buffer. */
ssmlm_status ssmlm_file_read(const char *path, char **data, size_t *size);
/* Read-only map of a whole file (size 0 files give map=NULL). */
ssmlm_status ssmlm_file_map(const char *path, void **map, size_t *size);
void ssmlm_file_unmap(void *map, size_t size);

/* Atomic write: open path.tmp.<pid>, write, fsync, rename over path. */
typedef struct ssmlm_atomic_file {
    FILE *f;
    char *path;
    char *tmp;
    int failed;
} ssmlm_atomic_file;
ssmlm_status ssmlm_atomic_open(ssmlm_atomic_file *af, const char *path);
ssmlm_status ssmlm_atomic_write(ssmlm_atomic_file *af, const void *data, size_t n);
/* Commits (rename) on success; on failure or if commit==0 removes the temp file. */
ssmlm_status ssmlm_atomic_close(ssmlm_atomic_file *af, int commit);
ssmlm_status ssmlm_mkdir_p(const char *dir);

/* A growable NUL-terminated text buffer: printf appends; after a failed allocation (failed = 1)
 * further appends do nothing and the text is incomplete.  Zero-initialize; free with
 * ssmlm_text_free. */
typedef struct ssmlm_text {
    char *s;               /* the text (NULL while empty) */
    size_t n, cap;
    int failed;
} ssmlm_text;
void ssmlm_text_printf(ssmlm_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ssmlm_text_free(ssmlm_text *t);

/* JSON values appended to a text (the one writer of every JSON file ssmlm produces).
 * ssmlm_json_string: a string literal, quotes included: '"' and '\\' escaped, newline and tab
 * as \n and \t, other bytes below 0x20 and 0x7f as \u00XX; with ascii_only every byte >= 0x80
 * too (each byte as the code point of its value: for byte strings that need not be UTF-8, such
 * as a model's output), otherwise such bytes are copied (UTF-8 text stays readable).
 * ssmlm_json_number: a finite x as the shortest %.Ng (N = 15..17) that reads back as exactly x;
 * null when x is NaN or infinite. */
void ssmlm_json_string(ssmlm_text *t, const char *s, int ascii_only);
void ssmlm_json_number(ssmlm_text *t, double x);

/* splitmix64-seeded xoshiro256** RNG. */
typedef struct ssmlm_rng { uint64_t s[4]; } ssmlm_rng;
void ssmlm_rng_seed(ssmlm_rng *r, uint64_t seed);
uint64_t ssmlm_rng_u64(ssmlm_rng *r);
double ssmlm_rng_uniform(ssmlm_rng *r);      /* [0, 1) */
double ssmlm_rng_normal(ssmlm_rng *r);       /* N(0, 1) */

/* Around a parallel region whose workers call BLAS: with an OpenBLAS that runs its own pthreads,
 * BLAS is made single-threaded while workers > 1 (nested thread pools oversubscribe the cores);
 * the OpenMP build of OpenBLAS does so by itself (nothing to do).  begin returns what end
 * restores. */
int ssmlm_blas_serial_begin(int workers);
void ssmlm_blas_serial_end(int saved);

/* Monotonic wall clock in seconds. */
double ssmlm_time(void);

#endif
