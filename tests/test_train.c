/* test_train.c — the training loop: every family learns a tiny synthetic task; resume is
 * bit-exact; SIGKILL at any moment (including during a checkpoint write) leaves a loadable
 * latest checkpoint and the resumed run ends exactly where an uninterrupted one does; clear
 * errors for bad data, ids >= vocab, bad flags and unwritable folders; data parallelism over
 * 2 MPI ranks equals one process. */
#include "golden.h"
#include "train/synth.h"
#include "train/train.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <math.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_out[1 << 16];
static char g_tmp[64];


static int run(const char *args) { return run_ssmlm(args, g_out, sizeof g_out); }

/* Losses of metrics.jsonl, indexed by step (1-based); returns the number of lines. */
static int read_losses(const char *dir, double *loss, int max) {
    char p[512], line[1024];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        const char *s = strstr(line, "\"step\":"), *l = strstr(line, "\"loss\":");
        if (!s || !l) continue;
        int st = atoi(s + 7);
        if (st >= 1 && st <= max) loss[st] = atof(l + 7);
        n++;
    }
    fclose(f);
    return n;
}

static ssmlm_docs *copy_docs(uint64_t seed) {
    ssmlm_synth_config sc;
    memset(&sc, 0, sizeof sc);
    sc.task = SSMLM_SYNTH_COPY;
    sc.n_docs = 400;
    sc.seed = seed;
    sc.min_entries = 4;
    sc.max_entries = 8;
    sc.vocab = 8;
    ssmlm_docs *d = NULL;
    CHECK_OK(ssmlm_docs_synthetic(&d, &sc));
    return d;
}

static void tiny_train_config(ssmlm_train_config *tc, const char *out, int64_t steps, int64_t total) {
    ssmlm_train_defaults(tc);
    tc->out_dir = out;
    tc->steps = steps;
    tc->batch_rows = 8;
    tc->micro_rows = 4;
    tc->seq_len = 64;
    tc->sched.peak_lr = 3e-3;
    tc->sched.min_lr = 3e-4;
    tc->sched.warmup = 5;
    tc->sched.total = total;
    tc->eval_rows = 8;
    tc->quiet = 1;
}

/* Each family learns the copy task's output distribution: the scored tokens (the copy of a
 * string over an 8-symbol alphabet, and its newline) start near ln 257 = 5.55 nats and must fall
 * below 2.5 (chance over the alphabet is ln 8 = 2.08) within 60 steps. */
static void families_learn(void) {
    const char *presets[] = {"tiny-transformer", "tiny-mamba", "tiny-mamba2", "tiny-hybrid"};
    ssmlm_docs *docs = copy_docs(5);
    for (int k = 0; k < 4 && docs; k++) {
        ssmlm_config c;
        ssmlm_preset(&c, presets[k]);
        ssmlm_model *m = NULL;
        CHECK_OK(ssmlm_model_create(&m, &c, SSMLM_F32));
        if (!m) continue;
        ssmlm_model_init(m, 1);
        ssmlm_batcher *b = NULL;
        CHECK_OK(ssmlm_batcher_create(&b, docs, 64, 7, 0.0, 0));
        char out[128];
        snprintf(out, sizeof out, "%s/fam_%d", g_tmp, k);
        ssmlm_train_config tc;
        tiny_train_config(&tc, out, 60, 60);
        ssmlm_dist d;
    CHECK_OK(ssmlm_dist_init(&d, NULL, NULL));
        ssmlm_train_result res;
        CHECK_OK(ssmlm_train_run(m, b, NULL, &tc, &d, NULL, &res));
        double loss[64] = {0};
        read_losses(out, loss, 63);
        double tail = 0;
        for (int s = 56; s <= 60; s++) tail += loss[s] / 5;
        printf("%-17s loss step 1 %.3f -> steps 56-60 %.3f\n", presets[k], loss[1], tail);
        CHECK(loss[1] > 4.5, "%s: initial loss %.3f should be near ln(257)", presets[k], loss[1]);
        CHECK(tail < 2.5, "%s: loss after 60 steps %.3f, want < 2.5", presets[k], tail);
        ssmlm_batcher_free(b);
        ssmlm_model_free(m);
    }
    ssmlm_docs_free(docs);
}

static int same_weights(ssmlm_model *a, ssmlm_model *b) {
    for (int i = 0; i < ssmlm_model_n_params(a); i++)
        if (memcmp(ssmlm_model_param_data(a, i), ssmlm_model_param_data(b, i),
                   (size_t)ssmlm_model_param(a, i)->numel * sizeof(float)) != 0)
            return 0;
    return 1;
}

/* 20 uninterrupted steps == 10 steps, stop, resume, 10 steps: same losses and weights, bit for bit. */
static void resume_exact(void) {
    ssmlm_docs *docs = copy_docs(9);
    ssmlm_config c;
    ssmlm_preset(&c, "tiny-hybrid");
    ssmlm_model *m1 = NULL, *m2 = NULL, *m3 = NULL;
    CHECK_OK(ssmlm_model_create(&m1, &c, SSMLM_F32));
    CHECK_OK(ssmlm_model_create(&m2, &c, SSMLM_F32));
    CHECK_OK(ssmlm_model_create(&m3, &c, SSMLM_F32));
    if (!docs || !m1 || !m2 || !m3) return;
    ssmlm_model_init(m1, 3);
    ssmlm_model_init(m2, 3);
    ssmlm_dist d;
    CHECK_OK(ssmlm_dist_init(&d, NULL, NULL));
    ssmlm_train_result res;
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/straight", g_tmp);
    snprintf(b, sizeof b, "%s/resumed", g_tmp);
    ssmlm_train_config tc;
    ssmlm_batcher *bt = NULL;
    CHECK_OK(ssmlm_batcher_create(&bt, docs, 64, 11, 0.0, 0));
    tiny_train_config(&tc, a, 20, 20);
    tc.ckpt_every = 10;
    CHECK_OK(ssmlm_train_run(m1, bt, NULL, &tc, &d, NULL, &res));
    ssmlm_batcher_free(bt);
    /* first half */
    CHECK_OK(ssmlm_batcher_create(&bt, docs, 64, 11, 0.0, 0));
    tiny_train_config(&tc, b, 10, 20);
    CHECK_OK(ssmlm_train_run(m2, bt, NULL, &tc, &d, NULL, &res));
    ssmlm_batcher_free(bt);
    /* second half in a fresh model and batcher, from the checkpoint */
    ssmlm_model_init(m3, 999); /* overwritten by the checkpoint */
    CHECK_OK(ssmlm_batcher_create(&bt, docs, 64, 11, 0.0, 0));
    tiny_train_config(&tc, b, 20, 20);
    tc.resume = 1;
    CHECK_OK(ssmlm_train_run(m3, bt, NULL, &tc, &d, NULL, &res));
    ssmlm_batcher_free(bt);
    double la[32] = {0}, lb[32] = {0};
    read_losses(a, la, 31);
    read_losses(b, lb, 31);
    int same = 1;
    for (int s = 1; s <= 20; s++) same &= la[s] == lb[s] && la[s] != 0;
    CHECK(same, "losses of the resumed run differ (step 11: %.9g vs %.9g, step 20: %.9g vs %.9g)", la[11], lb[11], la[20], lb[20]);
    CHECK(same_weights(m1, m3), "weights after resume differ from the uninterrupted run");
    CHECK(!same_weights(m1, m2), "control: 10-step weights differ from 20-step weights");
    /* keep: only the newest 2 checkpoints remain, and latest names step 20 */
    char latest[256];
    CHECK_OK(ssmlm_train_latest(b, latest, sizeof latest));
    CHECK(strstr(latest, "step_00000020") != NULL, "latest is %s", latest);
    ssmlm_model_free(m1);
    ssmlm_model_free(m2);
    ssmlm_model_free(m3);
    ssmlm_docs_free(docs);
}

/* SIGKILL the CLI at several moments of a run that checkpoints every step; each time the latest
 * checkpoint must load, and resuming to the end must give the uninterrupted run's weights. */
static void kill_and_resume(void) {
    char ref[256], kil[256], args[2048];
    snprintf(ref, sizeof ref, "%s/kill_ref", g_tmp);
    snprintf(kil, sizeof kil, "%s/kill_run", g_tmp);
    const char *common = "--preset tiny-mamba2 --data synth:copy --synth-docs 200 --steps 150 --batch 4 --seq 32 "
                         "--ckpt-every 1 --keep 2 --val-fraction 0 --quiet --threads 1";
    snprintf(args, sizeof args, "train %s --out %s", common, ref);
    CHECK(run(args) == 0, "reference run: %s", g_out);
    int kills = 0;
    for (int attempt = 0; attempt < 12; attempt++) {
        pid_t pid = fork();
        if (pid == 0) {
            char bin[512];
            snprintf(bin, sizeof bin, "%s/ssmlm", ssmlm_build_dir());
            int fd = open("/dev/null", 1);
            dup2(fd, 1);
            dup2(fd, 2);
            char *argv[40];
            int n = 0;
            argv[n++] = bin;
            argv[n++] = "train";
            char copy[1024];
            snprintf(copy, sizeof copy, "%s", common);
            for (char *t = strtok(copy, " "); t && n < 36; t = strtok(NULL, " ")) argv[n++] = t;
            argv[n++] = "--out";
            argv[n++] = kil;
            if (attempt > 0) argv[n++] = "--resume";
            argv[n] = NULL;
            execv(bin, argv);
            _exit(127);
        }
        usleep((useconds_t)(150000 + 70000 * attempt));
        int st = 0;
        if (waitpid(pid, &st, WNOHANG) == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            kills++;
        }
        /* whatever happened, the latest checkpoint (if any) must load */
        char latest[512];
        if (ssmlm_train_latest(kil, latest, sizeof latest) == SSMLM_OK) {
            ssmlm_model *m = NULL;
            ssmlm_status s = ssmlm_model_load(&m, latest, SSMLM_F32);
            CHECK(s == SSMLM_OK, "after kill %d: latest %s does not load: %s", attempt, latest, ssmlm_last_error());
            ssmlm_model_free(m);
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) break; /* finished */
    }
    CHECK(kills >= 2, "the run was killed %d times (wanted at least 2)", kills);
    snprintf(args, sizeof args, "train %s --out %s --resume", common, kil);
    CHECK(run(args) == 0, "final resume: %s", g_out);
    char pa[512], pb[512];
    CHECK_OK(ssmlm_train_latest(ref, pa, sizeof pa));
    CHECK_OK(ssmlm_train_latest(kil, pb, sizeof pb));
    ssmlm_model *ma = NULL, *mb = NULL;
    CHECK_OK(ssmlm_model_load(&ma, pa, SSMLM_F32));
    CHECK_OK(ssmlm_model_load(&mb, pb, SSMLM_F32));
    if (ma && mb) CHECK(same_weights(ma, mb), "killed-and-resumed run ends with different weights");
    ssmlm_model_free(ma);
    ssmlm_model_free(mb);
}

/* A learning rate that blows the weights up: the run stops at the step whose loss is not finite,
 * names it, and the checkpoint before it still loads. */
static void nan_stops_run(void) {
    ssmlm_docs *docs = copy_docs(13);
    ssmlm_config c;
    ssmlm_preset(&c, "tiny-transformer");
    ssmlm_model *m = NULL;
    CHECK_OK(ssmlm_model_create(&m, &c, SSMLM_F32));
    ssmlm_batcher *bt = NULL;
    if (!docs || !m || ssmlm_batcher_create(&bt, docs, 64, 1, 0.0, 0) != SSMLM_OK) return;
    ssmlm_model_init(m, 1);
    char out[128];
    snprintf(out, sizeof out, "%s/nan", g_tmp);
    ssmlm_train_config tc;
    tiny_train_config(&tc, out, 6, 6);
    tc.sched.warmup = 0;
    tc.sched.peak_lr = tc.sched.min_lr = 1e30;
    tc.adam.clip = 0;
    tc.ckpt_every = 1;
    ssmlm_dist d;
    CHECK_OK(ssmlm_dist_init(&d, NULL, NULL));
    ssmlm_train_result res;
    ssmlm_status s = ssmlm_train_run(m, bt, NULL, &tc, &d, NULL, &res);
    CHECK(s == SSMLM_ERR_NUMERIC && strstr(ssmlm_last_error(), "step "), "blow-up reported with its step: %s",
          ssmlm_last_error());
    CHECK(strstr(ssmlm_last_error(), "NaN") || strstr(ssmlm_last_error(), "nan") || strstr(ssmlm_last_error(), "inf") ||
              strstr(ssmlm_last_error(), "Inf"),
          "message names the non-finite value: %s", ssmlm_last_error());
    char latest[512];
    if (res.steps_done > 0) {
        CHECK_OK(ssmlm_train_latest(out, latest, sizeof latest));
        ssmlm_model *l = NULL;
        CHECK_OK(ssmlm_model_load(&l, latest, SSMLM_F32));
        ssmlm_model_free(l);
    }
    ssmlm_batcher_free(bt);
    ssmlm_model_free(m);
    ssmlm_docs_free(docs);
}

/* Continued pretraining: a finished run's model trains on at a longer sequence length with a new
 * schedule (--init-from), starting from its weights. */
static void continued_pretraining(void) {
    char a[256], b[256], args[2048], latest[512];
    snprintf(a, sizeof a, "%s/short_ctx", g_tmp);
    snprintf(b, sizeof b, "%s/long_ctx", g_tmp);
    snprintf(args, sizeof args, "train --preset tiny-hybrid --data synth:copy --synth-docs 200 --synth-vocab 8 --steps 20 "
                                "--batch 4 --seq 32 --lr 3e-3 --val-fraction 0 --quiet --out %s", a);
    CHECK(run(args) == 0, "short-context run: %s", g_out);
    CHECK_OK(ssmlm_train_latest(a, latest, sizeof latest));
    snprintf(args, sizeof args, "train --init-from %s --data synth:copy --synth-docs 200 --synth-vocab 8 --steps 5 "
                                "--batch 2 --seq 128 --lr 1e-3 --warmup 0 --val-fraction 0 --quiet --out %s", latest, b);
    CHECK(run(args) == 0, "long-context continuation: %s", g_out);
    double la[32] = {0}, lb[8] = {0};
    read_losses(a, la, 31);
    read_losses(b, lb, 7);
    CHECK(lb[1] > 0 && lb[1] < 4.0, "continuation starts from the trained weights: step 1 loss %.3f (a fresh model is ~5.5)", lb[1]);
}

static void cli_errors(void) {
    char args[2048], p[512];
    /* token id >= vocab */
    snprintf(p, sizeof p, "%s/big.u16", g_tmp);
    FILE *f = fopen(p, "wb");
    uint16_t toks[64];
    for (int i = 0; i < 64; i++) toks[i] = (uint16_t)(i == 40 ? 60000 : i);
    fwrite(toks, 2, 64, f);
    fclose(f);
    snprintf(args, sizeof args, "train --preset tiny-mamba2 --data tokens16:%s --out %s/e1 --steps 2 --seq 8 --batch 2", p, g_tmp);
    CHECK(run(args) == 1 && strstr(g_out, "60000") && strstr(g_out, "hint:"), "id >= vocab: %s", g_out);
    /* corrupt Megatron index */
    snprintf(p, sizeof p, "%s/bad", g_tmp);
    char q[600];
    snprintf(q, sizeof q, "%s.idx", p);
    f = fopen(q, "wb");
    fwrite("NOTANIDX\0\0\0\0\0\0\0\0\0\0", 1, 18, f);
    fclose(f);
    snprintf(q, sizeof q, "%s.bin", p);
    f = fopen(q, "wb");
    fwrite(toks, 2, 8, f);
    fclose(f);
    snprintf(args, sizeof args, "train --preset tiny-mamba2 --data megatron:%s --out %s/e2 --steps 2", p, g_tmp);
    CHECK(run(args) == 1 && strstr(g_out, "error:") && strstr(g_out, ".idx"), "corrupt idx: %s", g_out);
    /* invalid flags */
    CHECK(run("train --preset tiny-mamba2 --data synth:copy --out /tmp/x --steps -3") == 2 && strstr(g_out, "--steps"),
          "negative steps: %s", g_out);
    CHECK(run("train --preset tiny-mamba2 --data synth:nope --out /tmp/x") == 2 && strstr(g_out, "nope"), "bad task: %s", g_out);
    CHECK(run("train --preset tiny-mamba2 --data synth:copy") == 2 && strstr(g_out, "--out"), "missing --out: %s", g_out);
    CHECK(run("train --preset tiny-mamba2 --data synth:copy --out /tmp/x --frobnicate") == 2, "unknown flag: %s", g_out);
    CHECK(run("train --help") == 0 && strstr(g_out, "--recipe paper"), "train --help: %s", g_out);
    /* unwritable output folder: a path below a regular file */
    snprintf(args, sizeof args, "train --preset tiny-mamba2 --data synth:copy --synth-docs 50 --out %s/big.u16/run --steps 2 --seq 16 --batch 2", g_tmp);
    CHECK(run(args) == 1 && strstr(g_out, "error:"), "unwritable folder: %s", g_out);
    /* resume without a checkpoint */
    snprintf(args, sizeof args, "train --resume --data synth:copy --out %s/none --steps 2", g_tmp);
    CHECK(run(args) == 1 && strstr(g_out, "no checkpoint"), "resume without checkpoint: %s", g_out);
}

/* 2 ranks x global batch 8 == 1 process x batch 8 (fp32 reduction order differs: 1e-5). */
static void mpi_equals_single(void) {
    if (system("command -v mpirun >/dev/null 2>&1") != 0 || !ssmlm_dist_has_mpi()) {
        printf("MPI not available in this build: data-parallel equality not tested here\n");
        return;
    }
    char args[2048], cmd[4096];
    const char *common = "--preset tiny-hybrid --data synth:copy --synth-docs 200 --steps 6 --batch 8 --micro-batch 2 "
                         "--seq 32 --val-fraction 0 --quiet --threads 1";
    snprintf(args, sizeof args, "train %s --out %s/mpi1", common, g_tmp);
    CHECK(run(args) == 0, "single process: %s", g_out);
    snprintf(cmd, sizeof cmd,
             "OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_pml=ob1 "
             "OMPI_MCA_hwloc_base_binding_policy=none OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
             "ASAN_OPTIONS=\"$ASAN_OPTIONS:detect_leaks=0\" "
             "mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 %s/ssmlm train %s --out %s/mpi2 2>&1",
             ssmlm_build_dir(), common, g_tmp);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(g_out, 1, sizeof g_out - 1, f) : 0;
    g_out[n] = 0;
    int st = f ? pclose(f) : -1;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "mpirun -np 2: %s", g_out);
    double l1[8] = {0}, l2[8] = {0};
    char d1[256], d2[256];
    snprintf(d1, sizeof d1, "%s/mpi1", g_tmp);
    snprintf(d2, sizeof d2, "%s/mpi2", g_tmp);
    read_losses(d1, l1, 7);
    read_losses(d2, l2, 7);
    for (int s = 1; s <= 6; s++)
        CHECK(l1[s] > 0 && fabs(l1[s] - l2[s]) <= 1e-5 * fabs(l1[s]), "step %d: 1 process %.7f, 2 ranks %.7f", s, l1[s], l2[s]);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ssmlm_train_XXXXXX");
    CHECK(mkdtemp(g_tmp) != NULL, "mkdtemp");
    ssmlm_set_threads(2);
    families_learn();
    resume_exact();
    kill_and_resume();
    nan_stops_run();
    continued_pretraining();
    cli_errors();
    mpi_equals_single();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
