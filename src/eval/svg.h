/* svg.h — small dependency-free SVG line plots: loss curves (loss vs step, train and validation)
 * and accuracy-vs-length charts.  Several named series, a legend, linear or log axes with
 * 1-2-5 ticks; NaN/Inf points (and points <= 0 on a log axis) leave gaps. */
#ifndef SSMLM_SVG_H
#define SSMLM_SVG_H

#include "ssmlm.h"
#include <stddef.h>

typedef struct ssmlm_plot_series {
    const char *name;      /* legend text (NULL: "series k") */
    const double *x;       /* n x values, or NULL for 0, 1, ..., n-1 */
    const double *y;       /* n y values */
    int64_t n;
    const char *color;     /* "#rrggbb"; NULL takes the next palette color */
    int dashed;            /* dashed line, e.g. validation next to training */
} ssmlm_plot_series;

typedef struct ssmlm_plot {
    const char *title, *xlabel, *ylabel; /* any may be NULL */
    int log_x, log_y;
    /* fixed axis ranges when min < max (e.g. accuracy 0..1); otherwise from the data, widened
     * to whole ticks */
    double x_min, x_max, y_min, y_max;
    int width, height;     /* pixels; 0 = 800 x 480 */
    const ssmlm_plot_series *series;
    int n_series;
} ssmlm_plot;

/* Writes the plot to path (temp file + rename). */
ssmlm_status ssmlm_svg_plot(const char *path, const ssmlm_plot *p);
/* The same SVG text in a malloc'ed NUL-terminated string (caller frees); len may be NULL. */
ssmlm_status ssmlm_svg_render(const ssmlm_plot *p, char **svg, size_t *len);

/* Axis ticks for [lo, hi]: on a linear axis (or a log axis spanning less than a decade) the
 * multiples of a step 1, 2 or 5 x 10^k giving 3 to 10 ticks; on a wider log axis the powers of
 * ten, with 2x and 5x between them when fewer than three powers fall in range, or every m-th
 * power when there are too many.  Writes at most cap ticks, returns their number; *step gets
 * the linear step (0 for power ticks; step may be NULL). */
int ssmlm_plot_ticks(double lo, double hi, int log_scale, double *ticks, int cap, double *step);

#endif
