/* progress.c — progress line with bar, percentage, counts, the caller's statistics and an ETA
 * from the average rate since begin:  ETA = (total - done) / ((done - base) / elapsed). */
#include "base/progress.h"
#include "base/base.h"
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define LINE_MAX_CHARS 512

static double now_of(const ssmlm_progress *p) { return p->clock ? p->clock() : ssmlm_time(); }

void ssmlm_progress_init(ssmlm_progress *p, FILE *out) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->out = out ? out : stderr;
    const char *term = getenv("TERM");
    p->tty = isatty(fileno(p->out)) && !(term && strcmp(term, "dumb") == 0);
    p->enabled = 1;
    p->bar_width = 20;
    p->columns = 99;
    struct winsize ws;
    if (p->tty && ioctl(fileno(p->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) p->columns = ws.ws_col - 1;
    p->every_pct = 10;
    p->every_s = 30;
    p->min_redraw_s = 0.1;
    p->clock = ssmlm_time;
}

void ssmlm_progress_begin(ssmlm_progress *p, int64_t total, const char *label) {
    if (!p) return;
    if (!p->out) ssmlm_progress_init(p, NULL); /* a zeroed object gets the defaults */
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->extra[0] = 0;
    p->total = total > 0 ? total : 0;
    p->done = p->base = 0;
    p->t0 = p->t_last = now_of(p);
    p->next_pct = 0;
    p->shown = 0;
    p->updates = 0;
}

void ssmlm_progress_skip(ssmlm_progress *p, int64_t done) {
    if (!p) return;
    p->base = p->done = done;
}

char *ssmlm_progress_format_duration(char *buf, size_t n, double seconds) {
    if (!isfinite(seconds) || seconds < 0 || seconds > 1e12) {
        snprintf(buf, n, "--");
        return buf;
    }
    long long s = (long long)floor(seconds + 0.5);
    if (s < 60) snprintf(buf, n, "%llds", s);
    else if (s < 3600) snprintf(buf, n, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400) snprintf(buf, n, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else snprintf(buf, n, "%lldd%02lldh", s / 86400, s / 3600 % 24);
    return buf;
}

/* Appends to buf at *len (keeping the total snprintf-style length in *len). */
static void put(char *buf, size_t n, int *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t n, int *len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t at = (size_t)*len < n ? (size_t)*len : n;
    int k = vsnprintf(n > at ? buf + at : NULL, n > at ? n - at : 0, fmt, ap);
    va_end(ap);
    if (k > 0) *len += k;
}

int ssmlm_progress_format(const ssmlm_progress *p, int64_t done, double now, int bar, char *buf, size_t n) {
    int len = 0;
    if (n) buf[0] = 0;
    if (p->label[0]) put(buf, n, &len, "%s ", p->label);
    double elapsed = now - p->t0;
    char t[32];
    if (p->total > 0) {
        int64_t shown = done < 0 ? 0 : done > p->total ? p->total : done;
        /* floor: 100% only when complete */
        int pct = shown >= p->total ? 100 : (int)fmin(99, floor(100.0 * (double)shown / (double)p->total));
        if (bar) {
            int w = p->bar_width > 0 ? p->bar_width : 20;
            int fill = (int)floor((double)w * (double)shown / (double)p->total);
            put(buf, n, &len, "[");
            for (int i = 0; i < w; i++) put(buf, n, &len, "%c", i < fill ? '#' : '.');
            put(buf, n, &len, "] ");
        }
        put(buf, n, &len, "%3d%% %lld/%lld", pct, (long long)done, (long long)p->total);
    } else {
        put(buf, n, &len, "%lld", (long long)done);
    }
    if (p->extra[0]) put(buf, n, &len, "  %s", p->extra);
    if (p->total > 0 && done < p->total) {
        double rate = elapsed > 0 ? (double)(done - p->base) / elapsed : 0;
        double eta = rate > 0 ? (double)(p->total - done) / rate : NAN;
        put(buf, n, &len, "  ETA %s", ssmlm_progress_format_duration(t, sizeof t, eta));
    } else {
        put(buf, n, &len, "  in %s", ssmlm_progress_format_duration(t, sizeof t, elapsed));
    }
    return len;
}

/* Terminal: back to column 0, the line fitted to the terminal width (the caller's text is
 * shortened first, so the counts and the ETA stay), blanks over the rest of the previous line. */
static void draw(ssmlm_progress *p, double now) {
    char line[LINE_MAX_CHARS];
    int cols = p->columns > 10 && p->columns < LINE_MAX_CHARS ? p->columns : 99;
    int len = ssmlm_progress_format(p, p->done, now, 1, line, sizeof line);
    if (len > cols && p->extra[0]) {
        ssmlm_progress q = *p;
        size_t keep = strlen(q.extra), over = (size_t)(len - cols);
        keep = keep > over + 1 ? keep - over - 1 : 0;
        if (keep) {
            q.extra[keep] = '~';
            q.extra[keep + 1] = 0;
        } else {
            q.extra[0] = 0;
        }
        len = ssmlm_progress_format(&q, q.done, now, 1, line, sizeof line);
    }
    if (len >= (int)sizeof line) len = (int)sizeof line - 1;
    if (len > cols) line[len = cols] = 0;
    fprintf(p->out, "\r%s%*s", line, p->shown > len ? p->shown - len : 0, "");
    fflush(p->out);
    p->shown = len;
    p->t_last = now;
}

static void plain_line(ssmlm_progress *p, double now) {
    char line[LINE_MAX_CHARS];
    ssmlm_progress_format(p, p->done, now, 0, line, sizeof line);
    fprintf(p->out, "%s\n", line);
    fflush(p->out);
    p->t_last = now;
}

void ssmlm_progress_update(ssmlm_progress *p, int64_t done, const char *extra_fmt, ...) {
    if (!p) return;
    p->done = done;
    if (extra_fmt) {
        va_list ap;
        va_start(ap, extra_fmt);
        vsnprintf(p->extra, sizeof p->extra, extra_fmt, ap);
        va_end(ap);
    }
    if (!p->enabled) return;
    double now = now_of(p);
    int first = p->updates++ == 0;
    if (p->tty) {
        int complete = p->total > 0 && done >= p->total;
        if (first || complete || now - p->t_last >= p->min_redraw_s) draw(p, now);
        return;
    }
    /* plain: the first update, each every_pct %, each every_s seconds; the last line is end's */
    if (p->total > 0 && done >= p->total) return;
    double pct = p->total > 0 ? 100.0 * (double)done / (double)p->total : 0;
    int due = first || (p->every_pct > 0 && p->total > 0 && pct >= p->next_pct) ||
              (p->every_s > 0 && now - p->t_last >= p->every_s);
    if (!due) return;
    if (p->every_pct > 0) p->next_pct = (floor(pct / p->every_pct) + 1) * p->every_pct;
    plain_line(p, now);
}

void ssmlm_progress_log(ssmlm_progress *p, const char *fmt, ...) {
    if (!p || !p->enabled) return;
    if (p->tty && p->shown) fprintf(p->out, "\r%*s\r", p->shown, "");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->out, fmt, ap);
    va_end(ap);
    fputc('\n', p->out);
    fflush(p->out);
    if (p->tty && p->shown) {
        p->shown = 0;
        draw(p, now_of(p));
    }
}

void ssmlm_progress_end(ssmlm_progress *p) {
    if (!p || !p->enabled) return;
    double now = now_of(p);
    if (p->tty) {
        draw(p, now);
        fputc('\n', p->out);
        fflush(p->out);
        p->shown = 0;
    } else {
        plain_line(p, now);
    }
}
