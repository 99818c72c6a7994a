/* test_dist.c — the data-parallel layer.  Always: single-process semantics (rank 0 of 1, every
 * collective a no-op that still validates its arguments, the hash).  In an MPI build the test
 * also starts itself under `mpirun -np 2` and `-np 3` and checks, on every rank, chunked sum
 * all-reduces, chunked broadcasts from a non-zero root and check_same catching a one-word and
 * a size difference; and once as an MPI singleton (SSMLM_DIST=mpi without a launcher).
 *
 * mpirun runs over loopback only: btl self,tcp on lo, oob on lo, pml ob1 (no UCX network probe),
 * no CPU binding (the sandbox may restrict cpusets), root allowed. */
#include "test.h"
#include "train/dist.h"
#include "base/base.h"
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static void unset_launcher_env(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "SSMLM_DIST"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
}

static void test_hash(void) {
    unsigned char a[67], b[67];
    for (int i = 0; i < 67; i++) a[i] = b[i] = (unsigned char)(i * 37 + 11);
    uint64_t h = ssmlm_dist_hash(a, 67);
    CHECK(h == ssmlm_dist_hash(b, 67), "equal buffers hash differently");
    CHECK(h != ssmlm_dist_hash(a, 66), "length not part of the hash");
    CHECK(ssmlm_dist_hash(a, 0) != ssmlm_dist_hash(a, 8), "empty buffer collides");
    for (int i = 0; i < 67; i++) { /* every byte position, including the 3-byte tail */
        b[i] ^= 0x10;
        CHECK(ssmlm_dist_hash(b, 67) != h, "flipping byte %d not detected", i);
        b[i] ^= 0x10;
    }
    /* the same word at two positions must not cancel */
    uint64_t w[4] = {1, 2, 3, 4}, v[4] = {1, 2, 3, 4};
    v[0] ^= 0xff;
    v[2] ^= 0xff;
    CHECK(ssmlm_dist_hash(w, 32) != ssmlm_dist_hash(v, 32), "two equal word changes cancel");
}

static void test_single(void) {
    ssmlm_dist d;
    unset_launcher_env();
    CHECK_OK(ssmlm_dist_init(&d, NULL, NULL));
    CHECK(d.rank == 0 && d.size == 1 && d.initialized_mpi == 0, "plain process: rank %d size %d mpi %d", d.rank,
          d.size, d.initialized_mpi);

    float xf[5] = {1, -2, 3.5f, NAN, 1e30f};
    double xd[3] = {0.25, -1e300, 7};
    CHECK_OK(ssmlm_dist_allreduce_f32(&d, xf, 5));
    CHECK(xf[0] == 1 && xf[1] == -2 && xf[2] == 3.5f && isnan(xf[3]) && xf[4] == 1e30f, "one rank: sum changed data");
    CHECK_OK(ssmlm_dist_allreduce_f64(&d, xd, 3));
    CHECK(xd[0] == 0.25 && xd[1] == -1e300 && xd[2] == 7, "one rank: f64 sum changed data");
    CHECK_OK(ssmlm_dist_allreduce_f32(&d, NULL, 0));
    CHECK(ssmlm_dist_allreduce_f32(&d, xf, -1) == SSMLM_ERR_INVALID, "negative count accepted");
    CHECK(ssmlm_dist_allreduce_f64(&d, NULL, 4) == SSMLM_ERR_INVALID, "NULL buffer accepted");
    CHECK(has(ssmlm_last_error(), "allreduce_f64"), "message does not name the call: %s", ssmlm_last_error());

    char buf[16] = "hello";
    CHECK_OK(ssmlm_dist_bcast(&d, buf, sizeof buf, 0));
    CHECK(strcmp(buf, "hello") == 0, "bcast on one rank changed data");
    CHECK(ssmlm_dist_bcast(&d, buf, sizeof buf, 1) == SSMLM_ERR_INVALID, "root 1 of 1 accepted");
    CHECK(has(ssmlm_last_error(), "root 1"), "message does not name the root: %s", ssmlm_last_error());
    CHECK(ssmlm_dist_bcast(&d, buf, -3, 0) == SSMLM_ERR_INVALID, "negative byte count accepted");

    CHECK_OK(ssmlm_dist_check_same(&d, buf, sizeof buf, "weights"));
    CHECK_OK(ssmlm_dist_check_same(&d, NULL, 0, NULL));
    CHECK(ssmlm_dist_check_same(&d, NULL, 8, "weights") == SSMLM_ERR_INVALID, "NULL buffer accepted");
    ssmlm_dist_barrier(&d);
    ssmlm_dist_finalize(&d);
    ssmlm_dist_finalize(&d);
    CHECK(d.size == 1 && d.rank == 0, "finalize left rank %d size %d", d.rank, d.size);

    ssmlm_dist bad;
    memset(&bad, 0, sizeof bad);
    CHECK(ssmlm_dist_allreduce_f32(&bad, xf, 1) == SSMLM_ERR_INVALID, "uninitialized context accepted");
    CHECK(has(ssmlm_last_hint(), "ssmlm_dist_init"), "hint: %s", ssmlm_last_hint());
    ssmlm_dist_barrier(NULL);
    ssmlm_dist_finalize(NULL);

    if (!ssmlm_dist_has_mpi()) {
        /* several ranks started by a launcher, but no MPI: each would train alone */
        setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
        CHECK(ssmlm_dist_init(&d, NULL, NULL) == SSMLM_ERR_UNSUPPORTED, "no-MPI build accepted 4 launched ranks");
        CHECK(has(ssmlm_last_error(), "4 ranks"), "message: %s", ssmlm_last_error());
        unsetenv("OMPI_COMM_WORLD_SIZE");
        setenv("PMI_SIZE", "1", 1);
        CHECK_OK(ssmlm_dist_init(&d, NULL, NULL));
        CHECK(d.size == 1, "one launched rank: size %d", d.size);
        unsetenv("PMI_SIZE");
    }
}

#ifdef SSMLM_MPI
/* ---- run on every rank under mpirun -------------------------------------------------------- */
static int rank_checks(void) {
    ssmlm_dist d;
    CHECK_OK(ssmlm_dist_init(&d, NULL, NULL));
    CHECK(d.initialized_mpi == 1, "launched by mpirun but MPI not initialized");
    const char *env = getenv("OMPI_COMM_WORLD_SIZE");
    CHECK(env && d.size == atoi(env) && d.size >= 2, "size %d, launcher says %s", d.size, env ? env : "nothing");
    int R = d.size, r = d.rank;
    d.chunk_bytes = 40; /* 10 floats / 5 doubles / 40 bytes per MPI call: many chunks + a tail */

    /* x_i = (r+1) i + 0.5 r  ->  sum_r x_i = i R(R+1)/2 + 0.5 R(R-1)/2, exact in binary */
    enum { N = 1003 };
    float *xf = malloc(sizeof(float) * N);
    double *xd = malloc(sizeof(double) * N);
    for (int i = 0; i < N; i++) {
        xf[i] = (float)((r + 1) * i) + 0.5f * (float)r;
        xd[i] = (double)((r + 1) * i) * 1e10 + 0.5 * r;
    }
    CHECK_OK(ssmlm_dist_allreduce_f32(&d, xf, N));
    CHECK_OK(ssmlm_dist_allreduce_f64(&d, xd, N));
    int bad_f = 0, bad_d = 0;
    for (int i = 0; i < N; i++) {
        double tri = R * (R + 1) / 2.0, half = 0.5 * R * (R - 1) / 2.0;
        if (xf[i] != (float)(i * tri + half)) bad_f++;
        if (xd[i] != i * tri * 1e10 + half) bad_d++;
    }
    CHECK(bad_f == 0, "rank %d: %d wrong f32 sums (x[%d] = %g)", r, bad_f, N - 1, xf[N - 1]);
    CHECK(bad_d == 0, "rank %d: %d wrong f64 sums", r, bad_d);
    CHECK_OK(ssmlm_dist_allreduce_f32(&d, xf, 0));

    /* broadcast 1001 bytes from the last rank in 40-byte pieces */
    enum { NB = 1001 };
    unsigned char *b = malloc(NB);
    int root = R - 1;
    for (int i = 0; i < NB; i++) b[i] = (unsigned char)(r == root ? i * 7 + 3 : 0xee);
    CHECK_OK(ssmlm_dist_bcast(&d, b, NB, root));
    int bad_b = 0;
    for (int i = 0; i < NB; i++) bad_b += b[i] != (unsigned char)(i * 7 + 3);
    CHECK(bad_b == 0, "rank %d: %d bytes differ after bcast from rank %d", r, bad_b, root);
    CHECK(ssmlm_dist_bcast(&d, b, NB, R) == SSMLM_ERR_INVALID, "root %d of %d accepted", R, R);

    /* identical buffers pass; a one-word difference on rank 1 fails on every rank */
    CHECK_OK(ssmlm_dist_check_same(&d, xd, sizeof(double) * N, "weights"));
    if (r == 1) xd[500] = nextafter(xd[500], 0);
    ssmlm_status s = ssmlm_dist_check_same(&d, xd, sizeof(double) * N, "weights");
    CHECK(s == SSMLM_ERR_NUMERIC, "rank %d: one changed double not detected (%s)", r, ssmlm_status_name(s));
    CHECK(has(ssmlm_last_error(), "weights differs") && has(ssmlm_last_error(), "first rank 1") &&
              has(ssmlm_last_error(), "1 of"),
          "rank %d message: %s", r, ssmlm_last_error());
    /* different sizes with equal leading bytes */
    s = ssmlm_dist_check_same(&d, xf, (int64_t)sizeof(float) * (r == 0 ? N : N - 1), "grads");
    CHECK(s == SSMLM_ERR_NUMERIC, "rank %d: size difference not detected", r);
    CHECK(has(ssmlm_last_error(), "grads"), "message: %s", ssmlm_last_error());
    ssmlm_dist_barrier(&d);
    free(xf);
    free(xd);
    free(b);
    ssmlm_dist_finalize(&d);
    CHECK(d.size == 1 && d.initialized_mpi == 0, "finalize did not reset the context");
    printf("rank %d of %d: %d passed, %d failed\n", r, R, test_passed, test_failed);
    return test_failed ? 1 : 0;
}

static int singleton_checks(void) {
    ssmlm_dist d;
    CHECK_OK(ssmlm_dist_init(&d, NULL, NULL));
    CHECK(d.initialized_mpi == 1 && d.size == 1 && d.rank == 0, "singleton: rank %d size %d mpi %d", d.rank, d.size,
          d.initialized_mpi);
    double x[2] = {1.5, -2};
    CHECK_OK(ssmlm_dist_allreduce_f64(&d, x, 2));
    CHECK(x[0] == 1.5 && x[1] == -2, "singleton sum changed data");
    CHECK_OK(ssmlm_dist_check_same(&d, x, sizeof x, "x"));
    ssmlm_dist_finalize(&d);
    printf("singleton: %d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}

/* ---- launching ---------------------------------------------------------------------------- */
/* Runs argv (with SSMLM_DIST=mpi in the environment if singleton) in its own process group;
 * returns its exit status, or -1 if it did not finish in 120 s (a hang guard, then killed). */
static int run_child(char *const argv[], int singleton) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        setpgid(0, 0);
        unset_launcher_env();
        if (singleton) setenv("SSMLM_DIST", "mpi", 1);
        setenv("OMPI_MCA_btl", "self,tcp", 1);
        setenv("OMPI_MCA_btl_tcp_if_include", "lo", 1);
        setenv("OMPI_MCA_oob_tcp_if_include", "lo", 1);
        setenv("OMPI_MCA_pml", "ob1", 1);
        setenv("OMPI_MCA_hwloc_base_binding_policy", "none", 1);
        setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
        /* sanitizer builds: OpenMPI leaves its own allocations (some in unloaded plugins) at
         * exit; the leak check of our code is the single-process part above */
        char asan[1024];
        const char *old = getenv("ASAN_OPTIONS");
        snprintf(asan, sizeof asan, "%s%sdetect_leaks=0", old ? old : "", old && *old ? ":" : "");
        setenv("ASAN_OPTIONS", asan, 1);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s\n", argv[0]);
        _exit(127);
    }
    setpgid(pid, pid);
    for (int waited_ms = 0; waited_ms < 120000; waited_ms += 20) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        if (w < 0) return -1;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void test_mpirun(void) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0, "cannot find this test's executable");
    if (n <= 0) return;
    self[n] = 0;
    const char *np[] = {"2", "3"};
    for (int k = 0; k < 2; k++) {
        char *argv[] = {"mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                        "-np", (char *)np[k], self, "--ranks", NULL};
        int rc = run_child(argv, 0);
        CHECK(rc == 0, "mpirun -np %s %s --ranks: %s %d (127: mpirun missing; install openmpi-bin)", np[k], self,
              rc < 0 ? "hung, killed after 120 s," : "exit", rc);
    }
    char *argv[] = {self, "--singleton", NULL};
    int rc = run_child(argv, 1);
    CHECK(rc == 0, "MPI singleton (SSMLM_DIST=mpi): exit %d", rc);
}
#endif

int main(int argc, char **argv) {
#ifdef SSMLM_MPI
    if (argc > 1 && strcmp(argv[1], "--ranks") == 0) return rank_checks();
    if (argc > 1 && strcmp(argv[1], "--singleton") == 0) return singleton_checks();
    CHECK(ssmlm_dist_has_mpi() == 1, "built with SSMLM_MPI but the library says no MPI");
#else
    (void)argc;
    (void)argv;
    CHECK(ssmlm_dist_has_mpi() == 0, "library built with MPI, test without: build flags differ");
#endif
    test_hash();
    test_single();
#ifdef SSMLM_MPI
    test_mpirun();
#endif
    TEST_END();
}
