/* test_pattern.c — the paper's Algorithm 1 (all eight Table 11 rows, rounding ties, edge cases)
 * and explicit pattern validation. */
#include "ssmlm.h"
#include "test.h"
#include <string.h>


static void row(int64_t n, double a, double m, const char *want) {
    char got[SSMLM_MAX_LAYERS + 1];
    ssmlm_status s = ssmlm_pattern_allocate(n, a, m, got);
    CHECK(s == SSMLM_OK && strcmp(got, want) == 0, "allocate(%lld, %g, %g): got %s want %s", (long long)n, a, m,
          s == SSMLM_OK ? got : ssmlm_last_error(), want);
}

int main(void) {
    /* Table 11 (paper notation, + = MLP) */
    row(24, 0, 0, "MMMMMMMMMMMMMMMMMMMMMMMM");
    row(24, 0.08, 0, "MMMMMMM*MMMMMMMM*MMMMMMM");
    row(24, 0.17, 0, "MMMM*MMMM*MMMM*MMMM*MMMM");
    row(24, 0.08, 0.30, "MM+MM+M*M+MMM+MM*+MM+MM+");
    row(24, 0.08, 0.50, "M+M+M++*M+M+M+M+*M++M+M+");
    row(24, 0.50, 0.50, "+*+*+*+*+*+**+*+*+*+*+*+");
    row(48, 0.08, 0.50, "M+M+M++M+*M+M+M+M++*M+M+M+M+*M++M+M+M+*M+M++M+M+");
    row(56, 0.08, 0.50, "M+M+M++M+M*+M+M+M+M++M*+M+M+M+M+M*++M+M+M+M+M*+M++M+M+M+");
    /* round half to even: 10 * 0.25 = 2.5 -> 2 attention layers (not 3) */
    char p[64];
    CHECK(ssmlm_pattern_allocate(10, 0.25, 0, p) == SSMLM_OK, "10 x 0.25");
    int na = 0;
    for (int i = 0; p[i]; i++) na += p[i] == '*';
    CHECK(na == 2, "10 x 0.25 gives %d attention layers, want 2 (half to even)", na);
    /* 30 * 0.05 = 1.5 -> 2 (half to even rounds up here) */
    CHECK(ssmlm_pattern_allocate(30, 0.05, 0, p) == SSMLM_OK, "30 x 0.05");
    na = 0;
    for (int i = 0; p[i]; i++) na += p[i] == '*';
    CHECK(na == 2, "30 x 0.05 gives %d attention layers, want 2", na);
    /* over-allocation edge case of the reference: N=3, a=m=0.5 -> "*+*" */
    row(3, 0.5, 0.5, "*+*");
    /* all attention */
    row(4, 1.0, 0, "****");
    /* invalid inputs */
    CHECK(ssmlm_pattern_allocate(0, 0.1, 0.1, p) == SSMLM_ERR_INVALID, "0 layers rejected");
    CHECK(ssmlm_pattern_allocate(8, -0.1, 0, p) == SSMLM_ERR_INVALID, "negative ratio rejected");
    CHECK(ssmlm_pattern_allocate(8, 0.6, 0.6, p) == SSMLM_ERR_INVALID, "ratios summing past 1 rejected");
    CHECK(strstr(ssmlm_last_error(), "exceed") != NULL, "message names the rule: %s", ssmlm_last_error());
    /* explicit patterns */
    char q[] = "M-M*+";
    CHECK(ssmlm_pattern_normalize(q) == SSMLM_OK && strcmp(q, "M+M*+") == 0, "'-' is MLP: %s", q);
    char bad[] = "MMxM";
    CHECK(ssmlm_pattern_normalize(bad) == SSMLM_ERR_INVALID, "bad character rejected");
    CHECK(strstr(ssmlm_last_error(), "character 2") != NULL, "message names the position: %s", ssmlm_last_error());
    char empty[] = "";
    CHECK(ssmlm_pattern_normalize(empty) == SSMLM_ERR_INVALID, "empty pattern rejected");
    TEST_END();
}
