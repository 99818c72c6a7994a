/* test_progress.c — the progress line on a fake clock: duration/ETA formatting (seconds,
 * minutes, hours, days, unknown), percentages (floor, clamped, unknown total), the bar, the rate
 * after a resume, plain-line output to a file every N % or every K seconds, terminal redraws
 * with \r (rate-limited, cut to the width), log lines, and silence when disabled or NULL. */
#include "test.h"
#include "base/progress.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double g_now;
static double fake_clock(void) { return g_now; }

static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static int count(const char *s, char c) {
    int n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

/* Everything written to f so far, NUL-terminated (static buffer). */
static const char *contents(FILE *f) {
    static char buf[1 << 16];
    fflush(f);
    long end = ftell(f);
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fseek(f, end, SEEK_SET);
    return buf;
}

static void expect_duration(double s, const char *want) {
    char buf[32];
    ssmlm_progress_format_duration(buf, sizeof buf, s);
    CHECK(strcmp(buf, want) == 0, "duration %g: '%s', want '%s'", s, buf, want);
}

static void test_durations(void) {
    expect_duration(0, "0s");
    expect_duration(0.4, "0s");
    expect_duration(45, "45s");
    expect_duration(59.4, "59s");
    expect_duration(59.6, "1m00s");
    expect_duration(83, "1m23s");
    expect_duration(3599, "59m59s");
    expect_duration(3600, "1h00m");
    expect_duration(7505, "2h05m");
    expect_duration(86399, "23h59m");
    expect_duration(90061, "1d01h");
    expect_duration(-1, "--");
    expect_duration(NAN, "--");
    expect_duration(INFINITY, "--");
}

static ssmlm_progress make(FILE *f, int tty) {
    ssmlm_progress p;
    ssmlm_progress_init(&p, f);
    p.tty = tty;
    p.clock = fake_clock;
    return p;
}

static void test_format(void) {
    FILE *f = tmpfile();
    ssmlm_progress p = make(f, 0);
    CHECK(p.enabled && p.bar_width == 20, "defaults");
    g_now = 100;
    ssmlm_progress_begin(&p, 1000, "train");
    snprintf(p.extra, sizeof p.extra, "loss 2.31 lr 3.0e-4");
    char line[512];
    /* 450 units in 45 s: 10 units/s, 550 left -> 55 s */
    int n = ssmlm_progress_format(&p, 450, 145, 1, line, sizeof line);
    CHECK(n == (int)strlen(line), "length %d vs %zu", n, strlen(line));
    CHECK(strcmp(line, "train [#########...........]  45% 450/1000  loss 2.31 lr 3.0e-4  ETA 55s") == 0, "line: '%s'",
          line);
    ssmlm_progress_format(&p, 450, 145, 0, line, sizeof line);
    CHECK(strcmp(line, "train  45% 450/1000  loss 2.31 lr 3.0e-4  ETA 55s") == 0, "plain line: '%s'", line);
    /* floor: 999/1000 is 99%, 2/3 is 66%; past the total clamps to 100% and a full bar */
    ssmlm_progress_format(&p, 999, 200, 0, line, sizeof line);
    CHECK(has(line, " 99% 999/1000"), "999/1000: '%s'", line);
    p.total = 3;
    ssmlm_progress_format(&p, 2, 200, 0, line, sizeof line);
    CHECK(has(line, " 66% 2/3"), "2/3: '%s'", line);
    ssmlm_progress_format(&p, 5, 200, 1, line, sizeof line);
    CHECK(has(line, "[####################] 100% 5/3") && has(line, "in 1m40s"), "past total: '%s'", line);
    /* nothing done yet: no rate, no ETA */
    p.total = 1000;
    ssmlm_progress_format(&p, 0, 100, 0, line, sizeof line);
    CHECK(has(line, "  0% 0/1000") && has(line, "ETA --"), "start: '%s'", line);
    /* hours */
    ssmlm_progress_format(&p, 1, 110, 0, line, sizeof line);
    CHECK(has(line, "ETA 2h46m"), "slow rate: '%s'", line); /* 999 * 10 s = 9990 s */
    /* unknown total: the count and the elapsed time */
    ssmlm_progress_begin(&p, 0, NULL);
    p.extra[0] = 0;
    ssmlm_progress_format(&p, 1234, 190, 1, line, sizeof line);
    CHECK(strcmp(line, "1234  in 1m30s") == 0, "unknown total: '%s'", line);
    /* resumed: 500 done before begin, 100 more in 10 s -> 10/s, 400 left -> 40 s */
    g_now = 0;
    ssmlm_progress_begin(&p, 1000, "train");
    ssmlm_progress_skip(&p, 500);
    ssmlm_progress_format(&p, 600, 10, 0, line, sizeof line);
    CHECK(has(line, " 60% 600/1000") && has(line, "ETA 40s"), "resumed: '%s'", line);
    /* a small buffer truncates like snprintf and reports the full length */
    char small[8];
    int full = ssmlm_progress_format(&p, 600, 10, 1, small, sizeof small);
    CHECK(strlen(small) == 7 && full > 30, "truncation: '%s' %d", small, full);
    fclose(f);
}

static void test_plain_percent(void) {
    FILE *f = tmpfile();
    ssmlm_progress p = make(f, 0);
    CHECK(p.tty == 0, "a temporary file is not a terminal");
    p.every_s = 0;
    g_now = 0;
    ssmlm_progress_begin(&p, 1000, "train");
    for (int d = 1; d <= 1000; d++) {
        g_now = d * 0.1; /* 10 units/s */
        ssmlm_progress_update(&p, d, "loss %.2f", 3.0 - d * 0.001);
    }
    ssmlm_progress_end(&p);
    const char *out = contents(f);
    /* the first update, then 10%, 20%, ..., 90%, then end's line */
    CHECK(count(out, '\n') == 11, "%d lines:\n%s", count(out, '\n'), out);
    CHECK(count(out, '\r') == 0 && !has(out, "["), "plain output has \\r or a bar:\n%s", out);
    CHECK(has(out, "train   0% 1/1000  loss 3.00  ETA 1m40s\n"), "first line:\n%s", out);
    CHECK(has(out, "train  50% 500/1000  loss 2.50  ETA 50s\n"), "50%% line:\n%s", out);
    CHECK(has(out, "train 100% 1000/1000  loss 2.00  in 1m40s\n"), "end line:\n%s", out);
    fclose(f);
}

static void test_plain_seconds(void) {
    FILE *f = tmpfile();
    ssmlm_progress p = make(f, 0);
    p.every_pct = 0;
    p.every_s = 30;
    g_now = 0;
    ssmlm_progress_begin(&p, 100, "eval");
    for (int d = 1; d < 100; d++) {
        g_now = d; /* 1 unit/s: a line at the first update, then every 30 s */
        ssmlm_progress_update(&p, d, NULL);
    }
    const char *out = contents(f);
    CHECK(count(out, '\n') == 4, "%d lines (want 1 s, 31 s, 61 s, 91 s):\n%s", count(out, '\n'), out);
    CHECK(has(out, "eval  31% 31/100  ETA 1m09s\n"), "31 s line:\n%s", out);
    /* a log line is a plain line */
    ssmlm_progress_log(&p, "step %d val loss %.3f", 99, 1.5);
    CHECK(has(contents(f), "\nstep 99 val loss 1.500\n"), "log line:\n%s", contents(f));
    fclose(f);
}

static void test_tty(void) {
    FILE *f = tmpfile();
    ssmlm_progress p = make(f, 1);
    g_now = 0;
    ssmlm_progress_begin(&p, 1000, "train");
    for (int d = 1; d <= 1000; d++) {
        g_now = d * 0.01; /* redraws limited to one per 0.1 s: about 100 of 1000 updates */
        ssmlm_progress_update(&p, d, "loss %.2f", 2.0);
    }
    const char *out = contents(f);
    int redraws = count(out, '\r');
    CHECK(redraws >= 95 && redraws <= 105, "%d redraws for 1000 updates over 10 s", redraws);
    CHECK(count(out, '\n') == 0, "terminal output has newlines before the end");
    CHECK(has(out, "\rtrain [##########..........]  50% 50") && has(out, "/1000  loss 2.00  ETA 5s"),
          "50%% redraw missing");
    /* a line wider than the terminal loses the end of the caller's text, not the counts/time */
    p.columns = 70;
    ssmlm_progress_update(&p, 1000, "%s", "a very long statistics text that would wrap a seventy-column terminal");
    out = contents(f);
    const char *last = strrchr(out, '\r');
    CHECK(last && strlen(last + 1) == 70 && has(last, "100% 1000/1000  a very") && has(last, "~  in 10s"),
          "line not fitted to 70 columns: '%s'", last ? last + 1 : "");
    /* a log line clears the bar, prints, then redraws it */
    size_t before = strlen(out);
    ssmlm_progress_log(&p, "checkpoint saved");
    out = contents(f);
    CHECK(has(out + before, "checkpoint saved\n\rtrain [####################] 100%"), "log on a terminal: '%s'",
          out + before);
    ssmlm_progress_end(&p);
    out = contents(f);
    CHECK(out[strlen(out) - 1] == '\n' && count(out, '\n') == 2, "end must finish the line");
    fclose(f);
}

static void test_silent(void) {
    FILE *f = tmpfile();
    ssmlm_progress p = make(f, 0);
    p.enabled = 0;
    ssmlm_progress_begin(&p, 10, "x");
    ssmlm_progress_update(&p, 5, "y");
    ssmlm_progress_log(&p, "z");
    ssmlm_progress_end(&p);
    CHECK(contents(f)[0] == 0, "disabled progress wrote '%s'", contents(f));
    CHECK(p.done == 5, "disabled progress still tracks done");
    fclose(f);
    ssmlm_progress_init(NULL, NULL);
    ssmlm_progress_begin(NULL, 10, "x");
    ssmlm_progress_skip(NULL, 1);
    ssmlm_progress_update(NULL, 5, "%d", 1);
    ssmlm_progress_log(NULL, "z");
    ssmlm_progress_end(NULL);
    ssmlm_progress q;
    ssmlm_progress_init(&q, NULL);
    CHECK(q.out == stderr && q.clock != NULL, "default output");
    ssmlm_progress z;
    memset(&z, 0, sizeof z);
    ssmlm_progress_begin(&z, 10, "zeroed");
    CHECK(z.out == stderr && z.enabled && z.total == 10, "zeroed object not initialized by begin");
}

int main(void) {
    test_durations();
    test_format();
    test_plain_percent();
    test_plain_seconds();
    test_tty();
    test_silent();
    TEST_END();
}
