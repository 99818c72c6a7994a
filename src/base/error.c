/* error.c — the last-error record (thread-local) behind ssmlm_last_error / ssmlm_last_hint. */
#include "base/base.h"
#include <stdarg.h>
#include <string.h>

static _Thread_local char g_error[1024];
static _Thread_local char g_hint[512];

ssmlm_status ssmlm_fail(ssmlm_status status, const char *hint, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
    snprintf(g_hint, sizeof g_hint, "%s", hint ? hint : "");
    return status;
}

void ssmlm_error_context(const char *fmt, ...) {
    char prefix[512], old[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_error, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof g_error - 3) n = sizeof g_error - 3;
    memcpy(g_error, prefix, n);
    memcpy(g_error + n, ": ", 2);
    size_t rest = sizeof g_error - n - 3, m = strlen(old);
    if (m > rest) m = rest;
    memcpy(g_error + n + 2, old, m);
    g_error[n + 2 + m] = 0;
}

void ssmlm_clear_error(void) {
    g_error[0] = 0;
    g_hint[0] = 0;
}

const char *ssmlm_last_error(void) { return g_error; }
const char *ssmlm_last_hint(void) { return g_hint; }

const char *ssmlm_status_name(ssmlm_status s) {
    switch (s) {
    case SSMLM_OK: return "ok";
    case SSMLM_ERR_INVALID: return "invalid";
    case SSMLM_ERR_IO: return "io";
    case SSMLM_ERR_FORMAT: return "format";
    case SSMLM_ERR_MEMORY: return "memory";
    case SSMLM_ERR_NUMERIC: return "numeric";
    case SSMLM_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown";
}

void ssmlm_assert_fail(const char *cond, const char *file, int line) {
    fprintf(stderr, "ssmlm: internal invariant failed: %s (%s:%d)\n", cond, file, line);
    abort();
}
