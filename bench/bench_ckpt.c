/* bench_ckpt.c — checkpoint write and load speed of a ~100M-parameter model against the disk's
 * own sequential write and read speed, measured in the same run and the same folder.
 *
 * Model "mamba2-100m": 24 Mamba-2 layers, d_model 768 (state 128, head dim 64, expand 2),
 * vocab 8192 tied, fp32 (~97M parameters, ~390 MB of safetensors).
 *
 * Per repetition (orders alternate between repetitions):
 *   save        ssmlm_model_save into a fresh folder: config.json + model.safetensors, each
 *               written to a temp file, fsync'd and renamed
 *   disk write  the same number of bytes (random) to a temp file in the same folder with
 *               fwrite (1 MiB chunks) + fflush + fsync, then renamed
 *   load        ssmlm_model_load (config, model allocation, mmap + copy of every tensor)
 *   disk read   fread of the disk-write file (1 MiB chunks) into a buffer already in memory
 *   allocation  ssmlm_model_create alone (timed like the load, without the free): the part of a load that allocates and zeroes
 *               the weights (first touch of every page), which the fread baseline does not pay
 * Loads and reads run twice: "cached" right after the writes (the pages are still in the page
 * cache, so this is memory speed, not disk speed), then "after DONTNEED" once
 * posix_fadvise(POSIX_FADV_DONTNEED) has dropped both files from the page cache (the share of
 * pages still resident, checked with mincore, is printed).  On a virtual machine the host may
 * still cache the disk image, so the second figure is an upper bound on cold-disk speed.
 * Each repetition first waits (up to 30 s) for other processes to use at most 10 % of the CPUs.
 * One warm-up repetition is not counted.  Reported: median [min-max] MB/s (1 MB = 1e6 bytes),
 * ratios of medians, and the share of the CPUs other processes used during each repetition.
 * usage: bench_ckpt [--reps N] [--dir DIR] */
#include "bench_common.h"
#include "bench_models.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void make_config(ssmlm_config *c) {
    ssmlm_config_defaults(c);
    snprintf(c->name, sizeof c->name, "mamba2-100m");
    c->d_model = 768;
    c->vocab_size = 8192;
    c->tie_embeddings = 1;
    c->n_layer = 24;
    memset(c->pattern, 'M', 24);
    c->pattern[24] = 0;
    c->ssm_kind = SSMLM_SSM_MAMBA2;
    c->m2_d_state = 128;
    c->m2_headdim = 64;
    c->m2_expand = 2;
    c->m2_chunk_size = 64;
}

static double file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (double)sb.st_size : 0;
}

/* fwrite in 1 MiB chunks + fsync + rename: seconds, or -1 on failure. */
static double disk_write(const char *path, const unsigned char *buf, size_t n) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    double t0 = bench_now();
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    for (size_t off = 0; off < n; off += 1 << 20) {
        size_t k = n - off < (1u << 20) ? n - off : (1u << 20);
        if (fwrite(buf + off, 1, k, f) != k) {
            fclose(f);
            return -1;
        }
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        return -1;
    }
    fclose(f);
    if (rename(tmp, path) != 0) return -1;
    return bench_now() - t0;
}

/* fread in 1 MiB chunks: seconds, or -1 on failure. */
static double disk_read(const char *path, unsigned char *buf, size_t n) {
    double t0 = bench_now();
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t got = 0, k;
    while (got < n && (k = fread(buf + got, 1, n - got < (1u << 20) ? n - got : (1u << 20), f)) > 0) got += k;
    fclose(f);
    return got == n ? bench_now() - t0 : -1;
}

/* Drops the file's pages from the page cache; returns the share still resident (mincore). */
static double drop_cache(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    struct stat sb;
    double resident = -1;
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (fstat(fd, &sb) == 0 && sb.st_size > 0) {
        void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            long pg = sysconf(_SC_PAGESIZE);
            size_t np = ((size_t)sb.st_size + (size_t)pg - 1) / (size_t)pg, in = 0;
            unsigned char *vec = malloc(np);
            if (vec && mincore(p, (size_t)sb.st_size, vec) == 0) {
                for (size_t i = 0; i < np; i++) in += vec[i] & 1;
                resident = (double)in / (double)np;
            }
            free(vec);
            munmap(p, (size_t)sb.st_size);
        }
    }
    close(fd);
    return resident;
}

static double timed_load(const char *dir) {
    ssmlm_model *m = NULL;
    double t0 = bench_now();
    ssmlm_status s = ssmlm_model_load(&m, dir, SSMLM_F32);
    double t = bench_now() - t0;
    ssmlm_model_free(m);
    return s == SSMLM_OK ? t : -1;
}

static double timed_alloc(const ssmlm_config *c) {
    ssmlm_model *m = NULL;
    double t0 = bench_now();
    ssmlm_status s = ssmlm_model_create(&m, c, SSMLM_F32);
    double t = bench_now() - t0;
    ssmlm_model_free(m);
    return s == SSMLM_OK ? t : -1;
}

static int fail(const char *what) {
    fprintf(stderr, "error: %s: %s\nhint: %s\n", what, ssmlm_last_error(), ssmlm_last_hint() ? ssmlm_last_hint() : "");
    return 1;
}

enum { SAVE, WRITE, LOAD_C, READ_C, LOAD_U, READ_U, NCOL };
static const char *k_names[NCOL] = {"ssmlm_model_save (fsync + rename)", "disk write: fwrite + fsync",
                                    "ssmlm_model_load, cached",          "disk read: fread, cached",
                                    "ssmlm_model_load, after DONTNEED",  "disk read: fread, after DONTNEED"};

int main(int argc, char **argv) {
    int reps = 7;
    const char *parent = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) parent = argv[++i];
        else {
            fprintf(stderr, "usage: bench_ckpt [--reps N] [--dir DIR]\n");
            return 2;
        }
    }
    if (reps < 3) reps = 3;
    char base[512];
    snprintf(base, sizeof base, "%s/ssmlm_bench_ckpt_XXXXXX", parent);
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    ssmlm_config c;
    make_config(&c);
    ssmlm_model *m = NULL;
    if (ssmlm_model_create(&m, &c, SSMLM_F32) != SSMLM_OK) return fail("model");
    ssmlm_model_init(m, 7);
    ssmlm_param_counts pc;
    ssmlm_config_count_params(&c, &pc);

    /* the checkpoint's size, from one save outside the measurements */
    char dir[700], mpath[800], cpath[800], rawpath[800];
    snprintf(dir, sizeof dir, "%s/probe", base);
    if (ssmlm_model_save(m, dir) != SSMLM_OK) return fail("save");
    snprintf(mpath, sizeof mpath, "%s/model.safetensors", dir);
    snprintf(cpath, sizeof cpath, "%s/config.json", dir);
    size_t bytes = (size_t)(file_size(mpath) + file_size(cpath));
    bench_rmtree(dir);
    unsigned char *buf = malloc(bytes), *rbuf = malloc(bytes);
    if (!buf || !rbuf) return 1;
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
    memset(rbuf, 0, bytes);

    printf("bench_ckpt: %s (%s), %.2fM parameters, fp32; checkpoint %.1f MB; folder %s; %d repetitions\n\n", c.name,
           c.pattern, (double)pc.total / 1e6, (double)bytes / 1e6, base, reps);
    printf("| rep | others' CPU | save s | write s | load cached s | read cached s | allocation s | resident after "
           "DONTNEED | load s | read s |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    double *t[NCOL + 1];
    for (int k = 0; k <= NCOL; k++) t[k] = malloc((size_t)(reps + 1) * sizeof(double));
    double res_min = 1, res_max = 0;
    /* repetition 0 is the warm-up; its results go to index reps and are not summarized */
    for (int rr = 0; rr <= reps; rr++) {
        int r = rr == 0 ? reps : rr - 1;
        bench_wait_quiet(0.10, 30);
        bench_cpu_sample c0 = bench_cpu_now();
        snprintf(dir, sizeof dir, "%s/rep%d", base, r);
        snprintf(mpath, sizeof mpath, "%s/model.safetensors", dir);
        snprintf(rawpath, sizeof rawpath, "%s/raw%d.bin", base, r);
        for (int ph = 0; ph < 2; ph++) {
            if ((ph == 0) == (r % 2 == 0)) {
                double t0 = bench_now();
                if (ssmlm_model_save(m, dir) != SSMLM_OK) return fail("save");
                t[SAVE][r] = bench_now() - t0;
            } else if ((t[WRITE][r] = disk_write(rawpath, buf, bytes)) < 0) {
                perror(rawpath);
                return 1;
            }
        }
        for (int ph = 0; ph < 2; ph++) {
            if ((ph == 0) == (r % 2 == 0)) {
                if ((t[LOAD_C][r] = timed_load(dir)) < 0) return fail("load");
            } else if ((t[READ_C][r] = disk_read(rawpath, rbuf, bytes)) < 0) {
                perror(rawpath);
                return 1;
            }
        }
        if ((t[NCOL][r] = timed_alloc(&c)) < 0) return fail("allocation");
        double res = drop_cache(mpath), res2 = drop_cache(rawpath);
        if (res2 > res) res = res2;
        if (rr > 0 && res < res_min) res_min = res;
        if (rr > 0 && res > res_max) res_max = res;
        for (int ph = 0; ph < 2; ph++) {
            if ((ph == 0) == (r % 2 == 0)) {
                if ((t[LOAD_U][r] = timed_load(dir)) < 0) return fail("load");
            } else if ((t[READ_U][r] = disk_read(rawpath, rbuf, bytes)) < 0) {
                perror(rawpath);
                return 1;
            }
        }
        double foreign = bench_cpu_foreign(c0, bench_cpu_now());
        if (rr == 0) printf("| warm-up ");
        else printf("| %d ", rr);
        printf("| %.0f%% | %.3f | %.3f | %.3f | %.3f | %.3f | %.1f%% | %.3f | %.3f |\n", 100 * foreign, t[SAVE][r], t[WRITE][r],
               t[LOAD_C][r], t[READ_C][r], t[NCOL][r], 100 * res, t[LOAD_U][r], t[READ_U][r]);
        fflush(stdout);
        bench_rmtree(dir);
        remove(rawpath);
        sync(); /* the deletions reach the disk before the next repetition's fsyncs */
    }

    double med[NCOL];
    printf("\n| operation | MB/s median [min-max] | s median |\n|---|---|---|\n");
    for (int k = 0; k < NCOL; k++) {
        bench_stats s = bench_summarize(t[k], reps); /* times: min time = max speed */
        med[k] = (double)bytes / 1e6 / s.median;
        printf("| %s | %.0f [%.0f-%.0f] | %.3f |\n", k_names[k], med[k], (double)bytes / 1e6 / s.max,
               (double)bytes / 1e6 / s.min, s.median);
    }
    bench_stats al = bench_summarize(t[NCOL], reps);
    printf("| allocation alone (ssmlm_model_create) | | %.3f [%.3f-%.3f] |\n", al.median, al.min, al.max);
    printf("\nsave / disk write %.2f; load / disk read: cached %.2f, after DONTNEED %.2f "
           "(pages resident after DONTNEED: %.1f%%-%.1f%%)\n",
           med[SAVE] / med[WRITE], med[LOAD_C] / med[READ_C], med[LOAD_U] / med[READ_U], 100 * res_min, 100 * res_max);

    bench_rmtree(base);
    for (int k = 0; k <= NCOL; k++) free(t[k]);
    free(buf);
    free(rbuf);
    ssmlm_model_free(m);
    return 0;
}
