/* test_repro_phonebook.c — `ssmlm reproduce phonebook --quick`: the run completes, writes every
 * output (report.md, results.json, results.csv, the four SVG plots, the training runs), the
 * report holds the setup, a table row for each of the four models and the findings section,
 * and a second run with the same seed gives identical numbers. */
#include "golden.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_tmp[64];
static char g_out[1 << 16];

static void check_outputs(const char *dir) {
    static const char *const files[] = {"report.md", "results.json", "results.csv", "accuracy_standard.svg",
                                        "accuracy_reversed.svg", "digits_standard.svg", "fuzzy_memory.svg",
                                        "runs/transformer/latest", "runs/mamba/latest", "runs/mamba2/latest",
                                        "runs/hybrid/latest"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        CHECK(access(path, R_OK) == 0, "%s written", files[i]);
    }
    char *rep = file_text(dir, "report.md");
    CHECK(rep != NULL, "report.md readable");
    if (rep) {
        static const char *const want[] = {"## Setup", "## Results", "## Findings", "## Notes", "Quick mode",
                                           "| Transformer |", "| Mamba |", "| Mamba-2 |", "| Mamba-2-Hybrid |",
                                           "### Accuracy, standard layout", "### Accuracy, reversed layout",
                                           "fuzzy memory", "rule:", "In short:", "tokens/s"};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            CHECK(strstr(rep, want[i]) != NULL, "report.md has '%s'", want[i]);
        /* one verdict per claim, six claims */
        int verdicts = 0;
        for (const char *p = rep; (p = strstr(p, "   - rule:")); p++) verdicts++;
        CHECK(verdicts == 6, "six findings with a rule each (%d)", verdicts);
        /* the accuracy tables: a row per model in each of the 4 metric tables */
        int rows = 0;
        for (const char *p = rep; (p = strstr(p, "\n| Mamba-2-Hybrid | ")); p++) rows++;
        CHECK(rows >= 5, "hybrid rows in the setup and the result tables (%d)", rows);
        free(rep);
    }
    char *js = file_text(dir, "results.json");
    cJSON *j = js ? cJSON_Parse(js) : NULL;
    CHECK(j != NULL, "results.json parses");
    cJSON *models = cJSON_GetObjectItem(j, "models");
    CHECK(cJSON_GetArraySize(models) == 4, "4 models in results.json");
    int ok = 1;
    for (int a = 0; a < cJSON_GetArraySize(models); a++) {
        cJSON *m = cJSON_GetArrayItem(models, a);
        ok &= cJSON_GetObjectItem(m, "params")->valuedouble > 0 && cJSON_GetObjectItem(m, "tokens_per_s")->valuedouble > 0;
        for (int layout = 0; layout < 2; layout++) {
            cJSON *pts = cJSON_GetObjectItem(cJSON_GetObjectItem(m, layout ? "reversed" : "standard"), "points");
            ok &= cJSON_GetArraySize(pts) >= 3;
            for (int i = 0; i < cJSON_GetArraySize(pts); i++) {
                double acc = cJSON_GetObjectItem(cJSON_GetArrayItem(pts, i), "accuracy")->valuedouble;
                double dig = cJSON_GetObjectItem(cJSON_GetArrayItem(pts, i), "correct_digits")->valuedouble;
                ok &= acc >= 0 && acc <= 1 && dig >= 0 && dig <= 10;
            }
        }
    }
    CHECK(ok, "every model has parameters, a speed and numbers in range for both layouts");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "findings")) == 6, "6 findings in results.json");
    cJSON_Delete(j);
    free(js);
    char *csv = file_text(dir, "results.csv");
    int lines = 0;
    for (const char *p = csv; p && *p; p++) lines += *p == '\n';
    CHECK(csv && strncmp(csv, "model,layout,entries,", 21) == 0 && lines == 1 + 4 * 2 * 3, "results.csv: header + 24 rows (%d lines)",
          lines);
    free(csv);
    char *svg = file_text(dir, "accuracy_standard.svg");
    CHECK(svg && strstr(svg, "<svg") && strstr(svg, "Mamba-2-Hybrid") && strstr(svg, "longest training book"),
          "accuracy plot with the models and the training length");
    free(svg);
}

int main(int argc, char **argv) {
    (void)argc;
    ssmlm_threads_init(argv); /* as the ssmlm program does */
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ssmlm_pbrepro_XXXXXX");
    CHECK(mkdtemp(g_tmp) != NULL, "mkdtemp");
    const char *budget = SANITIZED ? " --budget 0.2" : "";
    char a[128], b[128], args[512];
    snprintf(a, sizeof a, "%s/a", g_tmp);
    snprintf(b, sizeof b, "%s/b", g_tmp);
    snprintf(args, sizeof args, "reproduce phonebook --quick --quiet --seed 4 --threads 2%s --out %s", budget, a);
    int rc = run_ssmlm(args, g_out, sizeof g_out);
    CHECK(rc == 0, "quick run exit %d: %s", rc, g_out);
    CHECK(strstr(g_out, "Mamba-2-Hybrid") && strstr(g_out, "findings:"), "prints the table and the findings: %s", g_out);
    check_outputs(a);
    snprintf(args, sizeof args, "reproduce phonebook --quick --quiet --seed 4 --threads 2%s --out %s", budget, b);
    rc = run_ssmlm(args, g_out, sizeof g_out);
    CHECK(rc == 0, "second quick run exit %d: %s", rc, g_out);
    char *ca = file_text(a, "results.csv"), *cb = file_text(b, "results.csv");
    CHECK(ca && cb && strcmp(ca, cb) == 0, "same seed, same results table");
    free(ca);
    free(cb);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
