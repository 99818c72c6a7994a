/* test_svg.c — SVG plots: the output is well-formed XML (tags balanced, attributes quoted,
 * text escaped), names every series, draws one polyline per series with one point per finite
 * value (NaN/Inf and log-axis values <= 0 split the line), copes with empty, all-NaN and
 * one-point series and with no series; axis ticks are multiples of a 1-2-5 step (or 1/2/5 x
 * powers of ten on log axes); files are written atomically and bad input is rejected. */
#include "test.h"
#include "eval/svg.h"
#include "base/base.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[64];

static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static int count_str(const char *s, const char *needle) {
    int n = 0;
    size_t k = strlen(needle);
    for (const char *p = strstr(s, needle); p; p = strstr(p + k, needle)) n++;
    return n;
}

/* A rough XML check: every tag closed in order, quotes balanced inside tags, no raw '<' in
 * text, every '&' starts a known entity, one root element <svg>.  Returns 1 if well-formed. */
static int xml_ok(const char *s, char *why, size_t nwhy) {
    char stack[64][32];
    int depth = 0, roots = 0;
    const char *p = s;
    if (strncmp(p, "<?xml", 5) == 0) {
        p = strstr(p, "?>");
        if (!p) return snprintf(why, nwhy, "unterminated declaration"), 0;
        p += 2;
    }
    while (*p) {
        if (*p == '&') {
            static const char *ent[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            int ok = 0;
            for (int i = 0; i < 5; i++) ok |= strncmp(p, ent[i], strlen(ent[i])) == 0;
            if (!ok) return snprintf(why, nwhy, "bare & at %ld", (long)(p - s)), 0;
            p++;
            continue;
        }
        if (*p != '<') {
            if (depth == 0 && *p != '\n' && *p != ' ') return snprintf(why, nwhy, "text outside the root"), 0;
            p++;
            continue;
        }
        const char *end = p + 1;
        int quotes = 0;
        while (*end && !(*end == '>' && quotes % 2 == 0)) {
            if (*end == '"') quotes++;
            if (*end == '<' && quotes % 2 == 0) return snprintf(why, nwhy, "'<' inside a tag at %ld", (long)(end - s)), 0;
            end++;
        }
        if (!*end) return snprintf(why, nwhy, "unterminated tag at %ld", (long)(p - s)), 0;
        char name[32];
        int closing = p[1] == '/', selfclose = end[-1] == '/';
        const char *n0 = p + 1 + closing;
        size_t nl = strcspn(n0, " \t\n/>");
        if (nl == 0 || nl >= sizeof name) return snprintf(why, nwhy, "bad tag name at %ld", (long)(p - s)), 0;
        memcpy(name, n0, nl);
        name[nl] = 0;
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
                return snprintf(why, nwhy, "</%s> closes <%s>", name, depth ? stack[depth - 1] : "nothing"), 0;
            depth--;
        } else if (!selfclose) {
            if (depth == 0) roots++;
            if (depth == 0 && strcmp(name, "svg") != 0) return snprintf(why, nwhy, "root is <%s>", name), 0;
            if (depth == 64) return snprintf(why, nwhy, "too deep"), 0;
            snprintf(stack[depth++], sizeof stack[0], "%s", name);
        }
        p = end + 1;
    }
    if (depth != 0) return snprintf(why, nwhy, "<%s> not closed", stack[depth - 1]), 0;
    if (roots != 1) return snprintf(why, nwhy, "%d root elements", roots), 0;
    return 1;
}

/* Numbers of points of each polyline, in order (at most cap). */
static int polyline_points(const char *s, int *counts, int cap) {
    int n = 0;
    for (const char *p = strstr(s, "<polyline"); p && n < cap; p = strstr(p + 1, "<polyline")) {
        const char *q = strstr(p, "points=\"");
        if (!q) break;
        q += 8;
        int pts = 0;
        while (*q && *q != '"') {
            double x, y;
            int used = 0;
            if (sscanf(q, "%lf,%lf%n", &x, &y, &used) != 2) break;
            pts++;
            q += used;
            while (*q == ' ') q++;
        }
        counts[n++] = pts;
    }
    return n;
}

/* A multiple of a 1, 2 or 5 x 10^k step. */
static int is_125(double step) {
    double m = step / pow(10.0, floor(log10(step) + 1e-9));
    return fabs(m - 1) < 1e-6 || fabs(m - 2) < 1e-6 || fabs(m - 5) < 1e-6;
}

static char *render(const ssmlm_plot *p) {
    char *svg = NULL;
    size_t len = 0;
    CHECK_OK(ssmlm_svg_render(p, &svg, &len));
    if (svg) {
        char why[128];
        CHECK(strlen(svg) == len, "length %zu vs %zu", strlen(svg), len);
        CHECK(xml_ok(svg, why, sizeof why), "not well-formed: %s", why);
    }
    return svg;
}

static void test_ticks(void) {
    double t[64], step;
    int n = ssmlm_plot_ticks(0, 1, 0, t, 64, &step);
    CHECK(n == 6 && step == 0.2 && t[0] == 0 && fabs(t[5] - 1) < 1e-12, "[0,1]: %d ticks, step %g", n, step);
    n = ssmlm_plot_ticks(2.1, 4.5, 1, t, 64, &step); /* log, less than a decade: linear 1-2-5 ticks */
    CHECK(n == 5 && step == 0.5 && fabs(t[0] - 2.5) < 1e-12, "log [2.1,4.5]: %d ticks from %g step %g", n, t[0], step);
    n = ssmlm_plot_ticks(1e-3, 1e3, 1, t, 64, &step);
    CHECK(n == 7 && step == 0 && fabs(t[0] - 1e-3) < 1e-18 && fabs(t[6] - 1e3) < 1e-9, "log 6 decades: %d", n);
    n = ssmlm_plot_ticks(1.5, 40, 1, t, 64, &step); /* 1-2 decades: 2, 5, 10, 20 */
    CHECK(n == 4 && t[0] == 2 && t[1] == 5 && t[2] == 10 && t[3] == 20, "log [1.5,40]: %d ticks %g %g", n, t[0], t[1]);
    n = ssmlm_plot_ticks(1, 1e20, 1, t, 64, &step); /* 21 powers: every 3rd */
    CHECK(n == 7 && fabs(t[1] / 1e3 - 1) < 1e-12, "log 20 decades: %d ticks, second %g", n, t[1]);
    CHECK(ssmlm_plot_ticks(1, 1, 0, t, 64, &step) == 0, "empty range gives ticks");
    CHECK(ssmlm_plot_ticks(-1, 10, 1, t, 64, &step) == 0, "log range through 0 gives ticks");
    CHECK(ssmlm_plot_ticks(0, NAN, 0, t, 64, &step) == 0, "NaN range gives ticks");
    CHECK(ssmlm_plot_ticks(0, 100, 0, t, 2, &step) == 2, "cap not respected");

    /* random linear ranges: 3..10 ticks inside the range, evenly spaced by a 1-2-5 step */
    ssmlm_rng r;
    ssmlm_rng_seed(&r, 7);
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        double scale = pow(10.0, 12 * ssmlm_rng_uniform(&r) - 6);
        double lo = (ssmlm_rng_uniform(&r) - 0.5) * scale * 4, hi = lo + scale * (0.01 + ssmlm_rng_uniform(&r));
        n = ssmlm_plot_ticks(lo, hi, 0, t, 64, &step);
        int ok = n >= 3 && n <= 10 && step > 0 && is_125(step);
        for (int k = 0; ok && k < n; k++) {
            double q = t[k] / step;
            ok = t[k] >= lo - 1e-9 * scale && t[k] <= hi + 1e-9 * scale && fabs(q - round(q)) < 1e-6 &&
                 (k == 0 || fabs(t[k] - t[k - 1] - step) < 1e-9 * scale);
        }
        if (!ok && bad++ < 5) CHECK(0, "ticks of [%g, %g]: %d, step %g", lo, hi, n, step);
    }
    CHECK(bad == 0, "%d bad linear tick sets", bad);
    /* random log ranges over several decades: every tick is 1, 2 or 5 x 10^k */
    bad = 0;
    for (int i = 0; i < 500; i++) {
        double lo = pow(10.0, 20 * ssmlm_rng_uniform(&r) - 10), hi = lo * pow(10.0, 1 + 15 * ssmlm_rng_uniform(&r));
        n = ssmlm_plot_ticks(lo, hi, 1, t, 64, &step);
        int ok = n >= 2 && n <= 12;
        for (int k = 0; ok && k < n; k++)
            ok = is_125(t[k]) && t[k] >= lo * (1 - 1e-9) && t[k] <= hi * (1 + 1e-9) && (k == 0 || t[k] > t[k - 1]);
        if (!ok && bad++ < 5) CHECK(0, "log ticks of [%g, %g]: %d", lo, hi, n);
    }
    CHECK(bad == 0, "%d bad log tick sets", bad);
}

/* The numbers in the tick labels of group cls ("x-ticks"/"y-ticks"). */
static int tick_labels(const char *svg, const char *cls, double *v, int cap) {
    char open[48];
    snprintf(open, sizeof open, "<g class=\"%s\"", cls);
    const char *p = strstr(svg, open), *end = p ? strstr(p, "</g>") : NULL;
    int n = 0;
    while (p && (p = strstr(p, "<text")) && p < end && n < cap) {
        p = strchr(p, '>') + 1;
        v[n++] = strtod(p, NULL);
    }
    return n;
}

static void test_loss_curve(void) {
    enum { N = 200 };
    double step[N], loss[N], vstep[5], vloss[5];
    for (int i = 0; i < N; i++) {
        step[i] = 10.0 * (i + 1);
        loss[i] = 2.0 + 8.0 * exp(-i / 30.0);
    }
    for (int i = 0; i < 5; i++) {
        vstep[i] = 400.0 * (i + 1);
        vloss[i] = 2.5 + 4.0 * exp(-i);
    }
    ssmlm_plot_series s[2] = {{"train", step, loss, N, NULL, 0}, {"val <held-out> & \"clean\"", vstep, vloss, 5, "#d62728", 1}};
    ssmlm_plot p = {0};
    p.title = "tiny-hybrid: loss";
    p.xlabel = "step";
    p.ylabel = "loss";
    p.series = s;
    p.n_series = 2;
    char path[128];
    snprintf(path, sizeof path, "%s/loss.svg", g_dir);
    CHECK_OK(ssmlm_svg_plot(path, &p));
    char *svg = NULL;
    CHECK_OK(ssmlm_file_read(path, &svg, NULL));
    if (!svg) return;
    char why[128];
    CHECK(xml_ok(svg, why, sizeof why), "loss.svg not well-formed: %s", why);
    CHECK(has(svg, ">train<") && has(svg, "val &lt;held-out&gt; &amp; &quot;clean&quot;"), "series names missing");
    CHECK(has(svg, "tiny-hybrid: loss") && has(svg, ">step<") && has(svg, ">loss<"), "title or labels missing");
    int counts[8];
    int np = polyline_points(svg, counts, 8);
    CHECK(np == 2 && counts[0] == N && counts[1] == 5, "%d polylines (%d, %d points)", np, counts[0], counts[1]);
    CHECK(count_str(svg, "stroke-dasharray") == 2, "dashed validation line (plot and legend)");
    CHECK(has(svg, "stroke=\"#d62728\""), "given color not used");
    /* every point inside the drawing */
    const char *q = strstr(svg, "points=\"");
    int outside = 0;
    while (q) {
        q += 8;
        double x, y;
        int used;
        while (sscanf(q, "%lf,%lf%n", &x, &y, &used) == 2) {
            outside += x < 0 || x > 800 || y < 0 || y > 480;
            q += used;
            while (*q == ' ') q++;
        }
        q = strstr(q, "points=\"");
    }
    CHECK(outside == 0, "%d points outside the 800 x 480 drawing", outside);
    /* tick labels: multiples of one 1-2-5 step, covering the data */
    double v[32];
    int n = tick_labels(svg, "x-ticks", v, 32);
    CHECK(n >= 3 && v[0] <= 10 && v[n - 1] >= 2000, "x ticks: %d from %g to %g", n, n ? v[0] : 0, n ? v[n - 1] : 0);
    for (int i = 1; i < n; i++) {
        double st = v[1] - v[0];
        CHECK(is_125(st) && fabs(v[i] - v[i - 1] - st) < 1e-9 * st && fabs(v[i] / st - round(v[i] / st)) < 1e-9,
              "x tick %g (step %g) not a 1-2-5 multiple", v[i], st);
    }
    n = tick_labels(svg, "y-ticks", v, 32);
    CHECK(n >= 3 && v[0] <= 2 && v[n - 1] >= 10, "y ticks: %d from %g to %g", n, n ? v[0] : 0, n ? v[n - 1] : 0);
    free(svg);

    /* the same path again replaces the file; no temporary file stays behind */
    p.title = "second";
    CHECK_OK(ssmlm_svg_plot(path, &p));
    CHECK_OK(ssmlm_file_read(path, &svg, NULL));
    CHECK(svg && has(svg, ">second<"), "file not replaced");
    free(svg);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp > /dev/null", g_dir);
    CHECK(system(cmd) != 0, "temporary file left in %s", g_dir);
}

static void test_gaps_and_edges(void) {
    double x[10], y[10];
    for (int i = 0; i < 10; i++) {
        x[i] = i;
        y[i] = 1.0 + i;
    }
    y[4] = NAN;
    y[7] = INFINITY;
    double one_x = 3, one_y = 0.5, nan_y[3] = {NAN, NAN, NAN};
    ssmlm_plot_series s[4] = {{"gappy", x, y, 10, NULL, 0},
                              {"single", &one_x, &one_y, 1, NULL, 0},
                              {"all-NaN", NULL, nan_y, 3, NULL, 0},
                              {"empty", NULL, NULL, 0, NULL, 0}};
    ssmlm_plot p = {0};
    p.series = s;
    p.n_series = 4;
    char *svg = render(&p);
    if (svg) {
        int counts[8];
        int np = polyline_points(svg, counts, 8);
        /* gappy: 0-3, 5-6, 8-9 */
        CHECK(np == 3 && counts[0] == 4 && counts[1] == 2 && counts[2] == 2, "%d polylines for NaN/Inf gaps", np);
        CHECK(count_str(svg, "<circle") == 1, "single point not drawn as a dot");
        CHECK(has(svg, ">all-NaN<") && has(svg, ">empty<") && has(svg, ">single<"), "legend lacks a series");
        CHECK(!has(svg, "nan") && !has(svg, "inf"), "non-finite number printed");
        CHECK(!has(svg, "no data"), "'no data' with data");
        free(svg);
    }

    /* log y: values <= 0 are gaps too */
    double ly[6] = {10, 1, 0, -3, 0.01, 0.001};
    ssmlm_plot_series sl = {"log", NULL, ly, 6, NULL, 0};
    ssmlm_plot pl = {0};
    pl.log_y = 1;
    pl.series = &sl;
    pl.n_series = 1;
    svg = render(&pl);
    if (svg) {
        int counts[4];
        int np = polyline_points(svg, counts, 4);
        CHECK(np == 2 && counts[0] == 2 && counts[1] == 2, "log gaps: %d polylines", np);
        double v[32];
        int n = tick_labels(svg, "y-ticks", v, 32);
        CHECK(n == 5 && v[0] == 0.001 && v[4] == 10, "log y ticks: %d, %g..%g", n, n ? v[0] : 0, n ? v[n - 1] : 0);
        free(svg);
    }

    /* extreme ranges still give finite coordinates */
    double ext[3] = {-1.7e308, 0, 1.7e308}, tiny[3] = {1e-300, 1, 1e300};
    ssmlm_plot_series se = {"extreme", NULL, ext, 3, NULL, 0};
    ssmlm_plot px = {0};
    px.series = &se;
    px.n_series = 1;
    svg = render(&px);
    CHECK(svg && !has(svg, "nan") && !has(svg, "inf"), "huge linear range printed a non-finite number");
    free(svg);
    se.y = tiny;
    px.log_y = 1;
    svg = render(&px);
    CHECK(svg && !has(svg, "nan") && !has(svg, "inf") && has(svg, "<polyline"), "600-decade log range");
    free(svg);

    /* nothing to draw: no series, a single point, a fixed range */
    ssmlm_plot pe = {0};
    pe.title = "empty";
    svg = render(&pe);
    CHECK(svg && has(svg, "no data") && !has(svg, "<polyline"), "empty plot");
    free(svg);
    ssmlm_plot p1 = {0};
    p1.series = &s[1];
    p1.n_series = 1;
    svg = render(&p1);
    CHECK(svg && count_str(svg, "<circle") == 1, "one-point plot");
    free(svg);
    ssmlm_plot pf = {0};
    pf.series = s;
    pf.n_series = 1;
    pf.y_min = 0;
    pf.y_max = 1; /* most points above: clipped, still finite coordinates */
    pf.width = 300;
    pf.height = 200;
    svg = render(&pf);
    if (svg) {
        double v[32];
        int n = tick_labels(svg, "y-ticks", v, 32);
        CHECK(n == 6 && v[0] == 0 && v[5] == 1, "fixed range ticks: %d", n);
        CHECK(has(svg, "width=\"300\" height=\"200\"") && has(svg, "clip-path"), "size or clipping");
        free(svg);
    }
}

/* Top-left corner of the legend box. */
static void legend_at(const char *svg, double *x, double *y) {
    const char *g = strstr(svg, "<g class=\"legend\">");
    *x = *y = -1;
    if (g && sscanf(strstr(g, "<rect"), "<rect x=\"%lf\" y=\"%lf\"", x, y) != 2) *x = *y = -1;
}

static void test_legend_place(void) {
    double up[50], down[50];
    for (int i = 0; i < 50; i++) {
        up[i] = i;
        down[i] = 49 - i;
    }
    ssmlm_plot_series s = {"rising", NULL, up, 50, NULL, 0};
    ssmlm_plot p = {0};
    p.series = &s;
    p.n_series = 1;
    double x, y;
    char *svg = render(&p); /* the diagonal crosses top right and bottom left: top left is free */
    if (svg) legend_at(svg, &x, &y);
    CHECK(svg && x > 0 && x < 400 && y > 0 && y < 240, "legend over a rising line at (%g, %g)", x, y);
    free(svg);
    s.y = down; /* a falling curve leaves the top right free, the preferred corner */
    svg = render(&p);
    if (svg) legend_at(svg, &x, &y);
    CHECK(svg && x > 400 && y > 0 && y < 240, "legend over a falling line at (%g, %g)", x, y);
    free(svg);
}

static void test_errors(void) {
    double y[2] = {1, 2};
    ssmlm_plot_series s = {"s", NULL, NULL, 2, NULL, 0};
    ssmlm_plot p = {0};
    p.series = &s;
    p.n_series = 1;
    char *svg = (char *)1;
    CHECK(ssmlm_svg_render(&p, &svg, NULL) == SSMLM_ERR_INVALID && svg == NULL, "missing y accepted");
    CHECK(has(ssmlm_last_error(), "series 0 (s)"), "message: %s", ssmlm_last_error());
    s.y = y;
    p.log_y = 1;
    p.y_min = -1;
    p.y_max = 1;
    CHECK(ssmlm_svg_render(&p, &svg, NULL) == SSMLM_ERR_INVALID, "negative log range accepted");
    p.log_y = 0;
    p.width = 50;
    CHECK(ssmlm_svg_render(&p, &svg, NULL) == SSMLM_ERR_INVALID, "tiny size accepted");
    p.width = 0;
    p.n_series = 3;
    p.series = NULL;
    CHECK(ssmlm_svg_render(&p, &svg, NULL) == SSMLM_ERR_INVALID, "NULL series accepted");
    CHECK(ssmlm_svg_render(NULL, &svg, NULL) == SSMLM_ERR_INVALID, "NULL plot accepted");
    p.series = &s;
    p.n_series = 1;
    char path[128];
    snprintf(path, sizeof path, "%s/missing/dir/plot.svg", g_dir);
    CHECK(ssmlm_svg_plot(path, &p) == SSMLM_ERR_IO, "write into a missing folder succeeded");
    CHECK(has(ssmlm_last_error(), "missing/dir"), "message: %s", ssmlm_last_error());
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/ssmlm_svg_%ld", (long)getpid());
    mkdir(g_dir, 0777);
    test_ticks();
    test_loss_curve();
    test_gaps_and_edges();
    test_legend_place();
    test_errors();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    TEST_END();
}
