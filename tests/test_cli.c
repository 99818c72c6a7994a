/* test_cli.c — the ssmlm program end to end: info, pattern, forward on a golden mamba_ssm
 * checkpoint, --help on every command, and clear errors with non-zero exit codes. */
#include "golden.h"
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char g_out[1 << 16];

static int run(const char *args) { return run_ssmlm(args, g_out, sizeof g_out); }

int main(void) {
    CHECK(run("info") == 0, "info: %s", g_out);
    CHECK(strstr(g_out, "8654517248") && strstr(g_out, "8540135424") && strstr(g_out, "8148783104") &&
              strstr(g_out, "8236999680"),
          "info prints the exact 8B counts");
    CHECK(run("info --preset tiny-mamba2 --batch 2 --seq 64") == 0 && strstr(g_out, "activations"), "info preset: %s", g_out);
    CHECK(run("pattern --layers 56 --attn 0.08 --mlp 0.5") == 0 &&
              strstr(g_out, "M+M+M++M+M*+M+M+M+M++M*+M+M+M+M+M*++M+M+M+M+M*+M++M+M+M+") &&
              strstr(g_out, "attention 4"),
          "pattern: %s", g_out);
    const char *cmds[] = {"info", "pattern", "forward"};
    for (int i = 0; i < 3; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        CHECK(run(a) == 0 && strstr(g_out, "usage: ssmlm"), "%s --help: %s", cmds[i], g_out);
    }
    CHECK(run("--help") == 0 && strstr(g_out, "forward"), "top-level help");
    CHECK(run("frobnicate") == 2 && strstr(g_out, "unknown command"), "unknown command: %s", g_out);
    CHECK(run("pattern --layers") == 2 && strstr(g_out, "needs a value"), "missing value: %s", g_out);
    CHECK(run("pattern --attn 0.7 --mlp 0.6") == 1 && strstr(g_out, "error:") && strstr(g_out, "hint:"),
          "invalid ratios: %s", g_out);
    CHECK(run("info --preset nope") == 1 && strstr(g_out, "unknown preset"), "bad preset: %s", g_out);

    /* forward on the golden hybrid checkpoint with its inputs; loss must equal the reference */
    char args[4096], out[] = "/tmp/ssmlm_cli_XXXXXX";
    CHECK(mkdtemp(out) != NULL, "mkdtemp");
    char **cases = golden_cases_of_kind("lm");
    for (int k = 0; cases[k]; k++) {
        golden g;
        if (!golden_open(&g, cases[k])) continue;
        cJSON *ck = cJSON_GetObjectItemCaseSensitive(g.info, "checkpoint_dir");
        char case_file[1024];
        snprintf(case_file, sizeof case_file, "%s/%s.safetensors", golden_dir(), cases[k]);
        snprintf(args, sizeof args, "forward --model %s/%s --tokens %s --out %s/%s.safetensors", golden_dir(),
                 ck->valuestring, case_file, out, cases[k]);
        int rc = run(args);
        CHECK(rc == 0, "%s: %s", args, g_out);
        char res[1200];
        snprintf(res, sizeof res, "%s/%s.safetensors", out, cases[k]);
        ssmlm_safetensors st;
        if (rc == 0 && ssmlm_st_open(&st, res) == SSMLM_OK) {
            const ssmlm_st_tensor *lt = ssmlm_st_find(&st, "logits"), *ls = ssmlm_st_find(&st, "loss");
            CHECK(lt && ls, "%s: output has logits and loss", cases[k]);
            if (lt && ls) {
                real *lg = malloc((size_t)lt->numel * sizeof(real));
                double loss;
                ssmlm_st_read_f64(ls, &loss);
#if REAL_IS_F64
                ssmlm_st_read_f64(lt, lg);
#else
                ssmlm_st_read_f32(lt, lg);
#endif
                golden_check(&g, "output.logits", lg, lt->numel, 1e-4);
                real lr = (real)loss;
                golden_check(&g, "output.loss", &lr, 1, 1e-4);
                free(lg);
            }
            ssmlm_st_close(&st);
        }
        golden_close(&g);
    }
    golden_free_list(cases);
    snprintf(args, sizeof args, "forward --model /nonexistent --tokens %s/x.txt", out);
    CHECK(run(args) == 1 && strstr(g_out, "error:"), "missing model: %s", g_out);
    snprintf(args, sizeof args, "printf '1 2 3\\n4 5\\n' > %s/bad.txt", out);
    CHECK(system(args) == 0, "write bad tokens");
    snprintf(args, sizeof args, "forward --model %s/lm_hybrid_ckpt --tokens %s/bad.txt", golden_dir(), out);
    CHECK(run(args) == 1 && strstr(g_out, "same length"), "ragged token file: %s", g_out);
    snprintf(args, sizeof args, "printf '1 2 300\\n' > %s/big.txt", out);
    CHECK(system(args) == 0, "write big tokens");
    snprintf(args, sizeof args, "forward --model %s/lm_hybrid_ckpt --tokens %s/big.txt", golden_dir(), out);
    CHECK(run(args) == 1 && strstr(g_out, "outside the vocabulary"), "token id >= vocab: %s", g_out);
    snprintf(args, sizeof args, "rm -rf %s", out);
    CHECK(system(args) == 0, "cleanup");
    TEST_END();
}
