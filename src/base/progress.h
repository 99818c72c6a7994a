/* progress.h — the one way library code reports progress: a progress line such as
 *   train [#########...........]  45% 450/1000  loss 2.31 lr 3.0e-4 |g| 0.8 1234 tok/s  ETA 1m23s
 * redrawn in place with \r when the output is a terminal, or printed as plain lines every N %
 * or every K seconds otherwise (so CI logs stay readable).  The caller (the CLI) owns the
 * object and passes it to library functions; every function accepts NULL and then does nothing. */
#ifndef SSMLM_PROGRESS_H
#define SSMLM_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct ssmlm_progress {
    /* settings: ssmlm_progress_init fills them, the caller may change them before begin */
    FILE *out;             /* stderr by default */
    int tty;               /* 1: one line redrawn with \r; 0: plain lines (isatty, TERM != dumb) */
    int enabled;           /* 0: print nothing */
    int bar_width;         /* characters inside [ ] (20) */
    int columns;           /* longest terminal line (terminal width - 1, or 99) */
    double every_pct;      /* plain lines: one each time another every_pct % is done (10; 0 = never) */
    double every_s;        /* plain lines: or when every_s seconds passed since the last (30; 0 = never) */
    double min_redraw_s;   /* terminal: at most one redraw per min_redraw_s (0.1) */
    double (*clock)(void); /* seconds, ssmlm_time by default */
    /* state */
    char label[48];
    char extra[256];       /* the caller's text of the last update */
    int64_t total, done;
    int64_t base;          /* units done before the timer started (resumed runs) */
    double t0, t_last;     /* start, last line written */
    double next_pct;       /* plain lines: the next percentage that prints */
    int shown;             /* characters of the line now on the terminal */
    int updates;           /* updates since begin */
} ssmlm_progress;

/* Defaults for output out (NULL: stderr). */
void ssmlm_progress_init(ssmlm_progress *p, FILE *out);
/* Starts a phase of total units (total <= 0: unknown) named label (may be NULL); starts the timer.
 * A zeroed object (out == NULL) is initialized first, for stderr. */
void ssmlm_progress_begin(ssmlm_progress *p, int64_t total, const char *label);
/* Marks done units as complete before the timer started (a resumed run): the rate, and so the
 * ETA, counts only the units done since begin. */
void ssmlm_progress_skip(ssmlm_progress *p, int64_t done);
/* done units complete; extra_fmt (printf-style) is the text after the counts (NULL keeps the
 * previous text, "" clears it). */
void ssmlm_progress_update(ssmlm_progress *p, int64_t done, const char *extra_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A message on its own line (e.g. a validation result) without breaking the progress line. */
void ssmlm_progress_log(ssmlm_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Final line ("... in 12m03s") and a newline. */
void ssmlm_progress_end(ssmlm_progress *p);

/* "45s", "1m23s", "2h05m", "3d04h" (rounded to the second); "--" when not finite or negative.
 * Returns buf. */
char *ssmlm_progress_format_duration(char *buf, size_t n, double seconds);
/* The line for `done` units at time now (clock seconds), with the bar when bar != 0; returns its
 * length as snprintf does. */
int ssmlm_progress_format(const ssmlm_progress *p, int64_t done, double now, int bar, char *buf, size_t n);

#endif
