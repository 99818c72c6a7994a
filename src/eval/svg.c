/* svg.c — SVG line plots written as plain text: a plot area with a frame and grid, 1-2-5 ticks
 * on linear or log axes, one polyline per finite run of each series (a lone point is a dot),
 * a legend, the title and axis labels.  Written atomically. */
#include "eval/svg.h"
#include "base/base.h"
#include <math.h>
#include <string.h>

#define MAX_TICKS 32

static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

/* Text content or attribute value with & < > " ' escaped; control characters dropped. */
static void sb_text(ssmlm_text *b, const char *s) {
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': ssmlm_text_printf(b, "&amp;"); break;
        case '<': ssmlm_text_printf(b, "&lt;"); break;
        case '>': ssmlm_text_printf(b, "&gt;"); break;
        case '"': ssmlm_text_printf(b, "&quot;"); break;
        case '\'': ssmlm_text_printf(b, "&apos;"); break;
        default:
            if (c >= 0x20 || c == '\t') ssmlm_text_printf(b, "%c", c);
        }
    }
}

/* ---- ticks -------------------------------------------------------------------------------- */
/* The 1-2-5 step nearest above raw: 1, 2, 5 or 10 times 10^floor(log10 raw). */
static double nice_step(double raw) {
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    return (f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0) * mag;
}

static int linear_ticks(double lo, double hi, double *ticks, int cap, double *step_out) {
    double step = nice_step((hi - lo) / 6.0);
    if (!(step > 0) || !isfinite(step)) return 0;
    double k0 = ceil(lo / step - 1e-9), k1 = floor(hi / step + 1e-9);
    while (k1 - k0 + 1 < 3 && step > 0 && isfinite(lo / step)) { /* too few: the next smaller 1-2-5 step */
        double m = step / pow(10.0, floor(log10(step) + 1e-9));
        step = m < 3 ? step / 2 : step * 0.4; /* 1 -> 0.5, 2 -> 1, 5 -> 2 */
        k0 = ceil(lo / step - 1e-9);
        k1 = floor(hi / step + 1e-9);
    }
    int n = 0;
    for (double k = k0; k <= k1 && n < cap; k++) {
        double t = k * step;
        ticks[n++] = fabs(t) < step * 1e-9 ? 0.0 : t;
    }
    if (step_out) *step_out = step;
    return n;
}

int ssmlm_plot_ticks(double lo, double hi, int log_scale, double *ticks, int cap, double *step) {
    if (step) *step = 0;
    if (!(lo < hi) || !isfinite(lo) || !isfinite(hi) || cap < 1) return 0;
    if (!log_scale) return linear_ticks(lo, hi, ticks, cap, step);
    if (!(lo > 0)) return 0;
    int e0 = (int)ceil(log10(lo) - 1e-9), e1 = (int)floor(log10(hi) + 1e-9);
    int powers = e1 - e0 + 1;
    if (log10(hi / lo) < 1.0 || powers < 1) return linear_ticks(lo, hi, ticks, cap, step);
    int n = 0;
    if (powers < 3) { /* 1, 2, 5 in every decade that touches the range */
        static const double m[3] = {1, 2, 5};
        for (int e = e0 - 1; e <= e1 && n < cap; e++)
            for (int j = 0; j < 3 && n < cap; j++) {
                double t = m[j] * pow(10.0, e);
                if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) ticks[n++] = t;
            }
        return n;
    }
    int every = (powers + 7) / 8; /* at most 8 powers */
    for (int e = e0; e <= e1 && n < cap; e++)
        if ((e - e0) % every == 0) ticks[n++] = pow(10.0, e);
    return n;
}

/* ---- axes --------------------------------------------------------------------------------- */
typedef struct axis {
    int log;
    double lo, hi;            /* axis range (positive when log) */
    double ticks[MAX_TICKS], step;
    int nt;
    double px0, px1;          /* pixel positions of lo and hi */
} axis;

static int usable(double v, int log) { return isfinite(v) && (!log || v > 0); }

/* Range from the fixed bounds or the data, then ticks; automatic ranges widen to whole ticks. */
static void axis_setup(axis *a, int log, double fmin, double fmax, double dmin, double dmax) {
    a->log = log;
    int fixed = fmin < fmax && usable(fmin, log) && usable(fmax, log);
    double lo = fixed ? fmin : dmin, hi = fixed ? fmax : dmax;
    if (!(lo <= hi)) { /* no data */
        lo = log ? 1 : 0;
        hi = log ? 10 : 1;
    }
    if (lo == hi) { /* one value: a range around it */
        if (log) {
            lo /= 2;
            hi *= 2;
        } else {
            double d = lo != 0 ? fabs(lo) * 0.1 : 1;
            lo -= d;
            hi += d;
        }
    }
    a->nt = ssmlm_plot_ticks(lo, hi, log, a->ticks, MAX_TICKS, &a->step);
    if (!fixed) {
        if (a->step > 0) { /* linear ticks: widen to the enclosing multiples of the step */
            double l2 = floor(lo / a->step + 1e-9) * a->step, h2 = ceil(hi / a->step - 1e-9) * a->step;
            if (!log || l2 > 0) lo = l2;
            hi = h2;
        } else if (log) { /* power ticks: widen to the enclosing powers of ten, or to the enclosing
                  * 1/2/5 x 10^k values when fewer than three powers fall in the range */
            double l10 = pow(10.0, floor(log10(lo) + 1e-9)), h10 = pow(10.0, ceil(log10(hi) - 1e-9));
            int powers = (int)floor(log10(hi) + 1e-9) - (int)ceil(log10(lo) - 1e-9) + 1;
            if (powers >= 3) {
                lo = l10;
                hi = h10;
            } else {
                lo = lo >= 5 * l10 * (1 - 1e-9) ? 5 * l10 : lo >= 2 * l10 * (1 - 1e-9) ? 2 * l10 : l10;
                double hb = h10 / 10;
                hi = hi <= hb * (1 + 1e-9) ? hb : hi <= 2 * hb * (1 + 1e-9) ? 2 * hb : hi <= 5 * hb * (1 + 1e-9) ? 5 * hb : h10;
            }
        }
        a->nt = ssmlm_plot_ticks(lo, hi, log, a->ticks, MAX_TICKS, &a->step);
    }
    a->lo = lo;
    a->hi = hi;
}

static double axis_map(const axis *a, double v) {
    double f = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) : (v - a->lo) / (a->hi - a->lo);
    double p = a->px0 + f * (a->px1 - a->px0);
    if (isnan(p)) return a->px0;
    return p < -1e5 ? -1e5 : p > 1e5 ? 1e5 : p; /* far-away points stay valid numbers */
}

/* Tick label: enough decimals for the step; exponent form for very large or small values. */
static void tick_label(char *buf, size_t n, double v, double step) {
    double av = fabs(v);
    if (v != 0 && (av >= 1e6 || av < 1e-4)) {
        snprintf(buf, n, "%.3g", v);
        char *e = strchr(buf, 'e'); /* 1e+06 -> 1e6, 2.5e-05 -> 2.5e-5 */
        if (e) {
            char *s = e + 1, *d = s;
            if (*s == '+') s++;
            else if (*s == '-') d = ++s;
            while (*s == '0' && s[1]) s++;
            memmove(d, s, strlen(s) + 1);
        }
    } else {
        int dec = step > 0 ? (int)ceil(-log10(step) - 1e-9) : (av < 1 ? (int)ceil(-log10(av) - 1e-9) : 0);
        if (dec < 0) dec = 0;
        snprintf(buf, n, "%.*f", dec, v);
    }
}

/* ---- series ------------------------------------------------------------------------------- */
static double series_x(const ssmlm_plot_series *s, int64_t i) { return s->x ? s->x[i] : (double)i; }

static void draw_series(ssmlm_text *b, const ssmlm_plot_series *s, const char *color, const axis *ax, const axis *ay) {
    ssmlm_text_printf(b, "<g class=\"series\">\n<title>");
    sb_text(b, s->name);
    ssmlm_text_printf(b, "</title>\n");
    const char *dash = s->dashed ? " stroke-dasharray=\"6 4\"" : "";
    int64_t i = 0;
    while (i < s->n) {
        while (i < s->n && !(usable(series_x(s, i), ax->log) && usable(s->y[i], ay->log))) i++;
        int64_t j = i;
        while (j < s->n && usable(series_x(s, j), ax->log) && usable(s->y[j], ay->log)) j++;
        if (j - i == 1) {
            ssmlm_text_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", axis_map(ax, series_x(s, i)),
                      axis_map(ay, s->y[i]), color);
        } else if (j - i > 1) {
            ssmlm_text_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" stroke-linejoin=\"round\"%s points=\"",
                      color, dash);
            for (int64_t k = i; k < j; k++)
                ssmlm_text_printf(b, "%s%.1f,%.1f", k > i ? " " : "", axis_map(ax, series_x(s, k)), axis_map(ay, s->y[k]));
            ssmlm_text_printf(b, "\"/>\n");
        }
        i = j;
    }
    ssmlm_text_printf(b, "</g>\n");
}

/* Samples of all series' lines that fall inside the rectangle. */
static int64_t legend_hits(const ssmlm_plot *p, const axis *ax, const axis *ay, double x, double y, double w, double h) {
    int64_t hits = 0;
    for (int k = 0; k < p->n_series; k++) {
        const ssmlm_plot_series *s = &p->series[k];
        double px = 0, py = 0;
        int prev = 0;
        for (int64_t i = 0; i < s->n; i++) {
            if (!usable(series_x(s, i), ax->log) || !usable(s->y[i], ay->log)) {
                prev = 0;
                continue;
            }
            double qx = axis_map(ax, series_x(s, i)), qy = axis_map(ay, s->y[i]);
            /* one sample every ~4 pixels along the segment from the previous point */
            int m = prev ? (int)fmin(256, ceil(hypot(qx - px, qy - py) / 4)) : 1;
            if (m < 1) m = 1;
            for (int j = prev ? 1 : m; j <= m; j++) {
                double sx = px + (qx - px) * j / m, sy = py + (qy - py) * j / m;
                hits += sx >= x && sx <= x + w && sy >= y && sy <= y + h;
            }
            px = qx;
            py = qy;
            prev = 1;
        }
    }
    return hits;
}

static ssmlm_status check_plot(const ssmlm_plot *p) {
    if (!p) return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "svg plot: no plot given");
    if (p->n_series < 0 || (p->n_series > 0 && !p->series))
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "svg plot: %d series but no series array", p->n_series);
    for (int k = 0; k < p->n_series; k++) {
        const ssmlm_plot_series *s = &p->series[k];
        if (s->n < 0 || (s->n > 0 && !s->y))
            return ssmlm_fail(SSMLM_ERR_INVALID, "give y values for every point", "svg plot: series %d (%s) has %lld points but no y",
                              k, s->name ? s->name : "unnamed", (long long)s->n);
    }
    if ((p->log_x && p->x_min < p->x_max && !(p->x_min > 0)) || (p->log_y && p->y_min < p->y_max && !(p->y_min > 0)))
        return ssmlm_fail(SSMLM_ERR_INVALID, "give a positive range, or none (0, 0) for the data's range",
                          "svg plot: fixed range on a log axis must be positive");
    if (p->width < 0 || p->height < 0 || (p->width && p->width < 200) || (p->height && p->height < 150))
        return ssmlm_fail(SSMLM_ERR_INVALID, "use at least 200 x 150, or 0 for the default",
                          "svg plot: size %d x %d too small", p->width, p->height);
    return SSMLM_OK;
}

ssmlm_status ssmlm_svg_render(const ssmlm_plot *p, char **svg, size_t *len) {
    *svg = NULL;
    if (len) *len = 0;
    ssmlm_status st = check_plot(p);
    if (st != SSMLM_OK) return st;
    int W = p->width ? p->width : 800, H = p->height ? p->height : 480;
    double left = 78, right = 24, top = p->title && *p->title ? 44 : 20, bottom = 58;

    /* data ranges over the points that can be drawn */
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    int64_t drawable = 0;
    for (int k = 0; k < p->n_series; k++) {
        const ssmlm_plot_series *s = &p->series[k];
        for (int64_t i = 0; i < s->n; i++) {
            double x = series_x(s, i), y = s->y[i];
            if (!usable(x, p->log_x) || !usable(y, p->log_y)) continue;
            drawable++;
            xmin = fmin(xmin, x);
            xmax = fmax(xmax, x);
            ymin = fmin(ymin, y);
            ymax = fmax(ymax, y);
        }
    }
    axis ax, ay;
    axis_setup(&ax, p->log_x, p->x_min, p->x_max, xmin, xmax);
    axis_setup(&ay, p->log_y, p->y_min, p->y_max, ymin, ymax);
    ax.px0 = left;
    ax.px1 = W - right;
    ay.px0 = H - bottom;
    ay.px1 = top;

    ssmlm_text b = {0};
    ssmlm_text_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    ssmlm_text_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                  "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n", W, H, W, H);
    ssmlm_text_printf(&b, "<defs><clipPath id=\"plot-area\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>"
                  "</clipPath></defs>\n", left, top, W - left - right, H - top - bottom);
    ssmlm_text_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    if (p->title && *p->title) {
        ssmlm_text_printf(&b, "<text x=\"%.1f\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">",
                  (left + W - right) / 2);
        sb_text(&b, p->title);
        ssmlm_text_printf(&b, "</text>\n");
    }

    /* grid, ticks and tick labels */
    char lab[64];
    ssmlm_text_printf(&b, "<g class=\"x-ticks\" text-anchor=\"middle\">\n");
    for (int i = 0; i < ax.nt; i++) {
        double x = axis_map(&ax, ax.ticks[i]);
        tick_label(lab, sizeof lab, ax.ticks[i], ax.step);
        ssmlm_text_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                      "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x, top, x, H - bottom, x, H - bottom + 16, lab);
    }
    ssmlm_text_printf(&b, "</g>\n<g class=\"y-ticks\" text-anchor=\"end\">\n");
    for (int i = 0; i < ay.nt; i++) {
        double y = axis_map(&ay, ay.ticks[i]);
        tick_label(lab, sizeof lab, ay.ticks[i], ay.step);
        ssmlm_text_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                      "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", left, y, W - right, y, left - 6, y + 4, lab);
    }
    ssmlm_text_printf(&b, "</g>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n",
              left, top, W - left - right, H - top - bottom);
    if (p->xlabel && *p->xlabel) {
        ssmlm_text_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">", (left + W - right) / 2,
                  (double)H - 14);
        sb_text(&b, p->xlabel);
        ssmlm_text_printf(&b, "</text>\n");
    }
    if (p->ylabel && *p->ylabel) {
        double cy = (top + H - bottom) / 2;
        ssmlm_text_printf(&b, "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 18 %.1f)\">",
                  cy, cy);
        sb_text(&b, p->ylabel);
        ssmlm_text_printf(&b, "</text>\n");
    }

    /* series, clipped to the plot area */
    char unnamed[32];
    ssmlm_text_printf(&b, "<g clip-path=\"url(#plot-area)\">\n");
    for (int k = 0; k < p->n_series; k++) {
        ssmlm_plot_series s = p->series[k];
        if (!s.name) {
            snprintf(unnamed, sizeof unnamed, "series %d", k + 1);
            s.name = unnamed;
        }
        draw_series(&b, &s, s.color ? s.color : palette[k % 10], &ax, &ay);
    }
    ssmlm_text_printf(&b, "</g>\n");
    if (drawable == 0)
        ssmlm_text_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n",
                  (left + W - right) / 2, (top + H - bottom) / 2);

    /* legend: in the corner of the plot area that covers the fewest line samples */
    if (p->n_series > 0) {
        size_t longest = 8;
        for (int k = 0; k < p->n_series; k++)
            if (p->series[k].name && strlen(p->series[k].name) > longest) longest = strlen(p->series[k].name);
        double lw = 44 + 6.8 * (double)(longest > 60 ? 60 : longest), lh = 8 + 18.0 * p->n_series;
        double cx[4] = {W - right - lw - 8, left + 8, W - right - lw - 8, left + 8};
        double cy[4] = {top + 8, top + 8, H - bottom - lh - 8, H - bottom - lh - 8};
        int best = 0;
        int64_t best_hits = -1;
        for (int c = 0; c < 4; c++) {
            int64_t hits = legend_hits(p, &ax, &ay, cx[c] - 4, cy[c] - 4, lw + 8, lh + 8);
            if (best_hits < 0 || hits < best_hits) {
                best = c;
                best_hits = hits;
            }
        }
        double lx = cx[best], ly = cy[best];
        ssmlm_text_printf(&b, "<g class=\"legend\">\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" "
                      "fill-opacity=\"0.85\" stroke=\"#bbb\"/>\n", lx, ly, lw, lh);
        for (int k = 0; k < p->n_series; k++) {
            const ssmlm_plot_series *s = &p->series[k];
            double y = ly + 4 + 18.0 * k + 9;
            ssmlm_text_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>"
                          "<text x=\"%.1f\" y=\"%.1f\">", lx + 8, y, lx + 32, y, s->color ? s->color : palette[k % 10],
                      s->dashed ? " stroke-dasharray=\"6 4\"" : "", lx + 38, y + 4);
            if (s->name) sb_text(&b, s->name);
            else ssmlm_text_printf(&b, "series %d", k + 1);
            ssmlm_text_printf(&b, "</text>\n");
        }
        ssmlm_text_printf(&b, "</g>\n");
    }
    ssmlm_text_printf(&b, "</svg>\n");
    if (b.failed) {
        free(b.s);
        return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "svg plot: out of memory");
    }
    *svg = b.s;
    if (len) *len = b.n;
    return SSMLM_OK;
}

ssmlm_status ssmlm_svg_plot(const char *path, const ssmlm_plot *p) {
    char *svg = NULL;
    size_t n = 0;
    ssmlm_status st = ssmlm_svg_render(p, &svg, &n);
    if (st != SSMLM_OK) {
        ssmlm_error_context("writing %s", path);
        return st;
    }
    ssmlm_atomic_file af;
    st = ssmlm_atomic_open(&af, path);
    if (st == SSMLM_OK) {
        ssmlm_status w = ssmlm_atomic_write(&af, svg, n);
        st = ssmlm_atomic_close(&af, w == SSMLM_OK);
        if (w != SSMLM_OK) st = w;
    }
    free(svg);
    return st;
}
