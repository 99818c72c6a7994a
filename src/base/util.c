/* util.c — aligned memory, checked file I/O, atomic writes, RNG, clock and thread control. */
#include "base/base.h"
#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void *ssmlm_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes || posix_memalign(&p, 64, rounded) != 0) return NULL;
    return p;
}

void *ssmlm_calloc(size_t bytes) {
    void *p = ssmlm_alloc(bytes);
    if (p) memset(p, 0, bytes ? bytes : 64);
    return p;
}

void ssmlm_free(void *p) { free(p); }

ssmlm_status ssmlm_file_read(const char *path, char **data, size_t *size) {
    *data = NULL;
    if (size) *size = 0;
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) /* before fopen: a FIFO would block */
        return ssmlm_fail(SSMLM_ERR_IO, "give a regular file", "%s is not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return ssmlm_fail(SSMLM_ERR_IO, "check the path and its permissions", "cannot open %s: %s",
                          path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return ssmlm_fail(SSMLM_ERR_IO, "give a regular file", "%s is not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory reading %s (%zu bytes)", path, n);
    }
    if (fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        return ssmlm_fail(SSMLM_ERR_IO, NULL, "short read on %s", path);
    }
    fclose(f);
    buf[n] = 0;
    *data = buf;
    if (size) *size = n;
    return SSMLM_OK;
}

ssmlm_status ssmlm_file_map(const char *path, void **map, size_t *size) {
    *map = NULL;
    *size = 0;
    /* O_NONBLOCK: a FIFO must not block the open; it is rejected below as not regular */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return ssmlm_fail(SSMLM_ERR_IO, "check the path and its permissions", "cannot open %s: %s",
                          path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ssmlm_fail(SSMLM_ERR_IO, "give a regular file", "%s is not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return ssmlm_fail(SSMLM_ERR_IO, NULL, "cannot map %s: %s", path, strerror(errno));
        }
        *map = p;
        *size = (size_t)st.st_size;
    }
    close(fd);
    return SSMLM_OK;
}

void ssmlm_file_unmap(void *map, size_t size) {
    if (map) munmap(map, size);
}

ssmlm_status ssmlm_atomic_open(ssmlm_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path);
    af->path = strdup(path);
    af->tmp = malloc(n + 32);
    if (!af->path || !af->tmp) {
        free(af->path);
        free(af->tmp);
        return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "out of memory");
    }
    snprintf(af->tmp, n + 32, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        ssmlm_status s = ssmlm_fail(SSMLM_ERR_IO, "check that the folder exists and is writable",
                                    "cannot create %s: %s", af->tmp, strerror(errno));
        free(af->path);
        free(af->tmp);
        memset(af, 0, sizeof *af);
        return s;
    }
    return SSMLM_OK;
}

ssmlm_status ssmlm_atomic_write(ssmlm_atomic_file *af, const void *data, size_t n) {
    if (af->failed) return SSMLM_ERR_IO;
    if (n && fwrite(data, 1, n, af->f) != n) {
        af->failed = 1;
        return ssmlm_fail(SSMLM_ERR_IO, "check free disk space", "write to %s failed: %s", af->tmp,
                          strerror(errno));
    }
    return SSMLM_OK;
}

ssmlm_status ssmlm_atomic_close(ssmlm_atomic_file *af, int commit) {
    ssmlm_status s = SSMLM_OK;
    if (!af->f) return SSMLM_ERR_IO;
    if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0) {
        if (!af->failed)
            s = ssmlm_fail(SSMLM_ERR_IO, "check free disk space", "flushing %s failed: %s",
                           af->tmp, strerror(errno));
        af->failed = 1;
    }
    fclose(af->f);
    if (af->failed) s = SSMLM_ERR_IO;
    if (commit && !af->failed) {
        if (rename(af->tmp, af->path) != 0)
            s = ssmlm_fail(SSMLM_ERR_IO, NULL, "cannot rename %s to %s: %s", af->tmp, af->path,
                           strerror(errno));
    }
    if (!commit || s != SSMLM_OK) unlink(af->tmp);
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
    return commit ? s : SSMLM_OK;
}

ssmlm_status ssmlm_mkdir_p(const char *dir) {
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf)
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "bad folder name '%s'", dir);
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return ssmlm_fail(SSMLM_ERR_IO, "check permissions of the parent folder",
                                  "cannot create folder %s: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ssmlm_fail(SSMLM_ERR_IO, NULL, "%s exists and is not a folder", dir);
    return SSMLM_OK;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ssmlm_rng_seed(ssmlm_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ssmlm_rng_u64(ssmlm_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ssmlm_rng_uniform(ssmlm_rng *r) { return (double)(ssmlm_rng_u64(r) >> 11) * 0x1.0p-53; }

double ssmlm_rng_normal(ssmlm_rng *r) {
    double u1 = ssmlm_rng_uniform(r), u2 = ssmlm_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double ssmlm_time(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int g_threads = 0;

void ssmlm_set_threads(int n) {
    if (n < 1) n = 1;
    g_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int ssmlm_get_threads(void) { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

int ssmlm_threads_init(char **argv) {
    int model = openblas_get_parallel();
    if (model != 2 && !getenv("OMP_WAIT_POLICY") && argv && argv[0]) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
        /* exec failed: go on with the policy libgomp already read */
    }
    return model;
}

int ssmlm_blas_serial_begin(int workers) {
    /* the OpenMP build runs single-threaded inside a parallel region by itself, and its
     * openblas_set_num_threads would also set the OpenMP team size of the caller */
    if (workers <= 1 || openblas_get_parallel() == 2) return 0;
    int n = openblas_get_num_threads();
    if (n > 1) openblas_set_num_threads(1);
    return n;
}

void ssmlm_blas_serial_end(int saved) {
    if (saved > 1) openblas_set_num_threads(saved);
}

ssmlm_status ssmlm_file_read_text(const char *path, char **text) { return ssmlm_file_read(path, text, NULL); }

/* ---- growable text -------------------------------------------------------------------------- */
void ssmlm_text_printf(ssmlm_text *t, const char *fmt, ...) {
    if (t->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->n;
        int k = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            t->failed = 1;
            return;
        }
        if (t->s && (size_t)k < room) {
            t->n += (size_t)k;
            return;
        }
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->n + (size_t)k + 1) cap *= 2;
        char *p = realloc(t->s, cap);
        if (!p) {
            t->failed = 1;
            return;
        }
        t->s = p;
        t->cap = cap;
    }
}

void ssmlm_json_string(ssmlm_text *t, const char *s, int ascii_only) {
    ssmlm_text_printf(t, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') ssmlm_text_printf(t, "\\%c", *p);
        else if (*p == '\n') ssmlm_text_printf(t, "\\n");
        else if (*p == '\t') ssmlm_text_printf(t, "\\t");
        else if (*p < 0x20 || *p == 0x7f || (ascii_only && *p >= 0x80)) ssmlm_text_printf(t, "\\u%04x", *p);
        else ssmlm_text_printf(t, "%c", *p);
    }
    ssmlm_text_printf(t, "\"");
}

void ssmlm_json_number(ssmlm_text *t, double x) {
    if (!isfinite(x)) {
        ssmlm_text_printf(t, "null");
        return;
    }
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    ssmlm_text_printf(t, "%s", buf);
}

void ssmlm_text_free(ssmlm_text *t) {
    free(t->s);
    memset(t, 0, sizeof *t);
}
