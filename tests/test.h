/* test.h — a minimal test harness: CHECK records a pass or a failure (with file:line), and
 * TEST_END prints "N passed, N failed" and returns the exit status from main. */
#ifndef SSMLM_TEST_H
#define SSMLM_TEST_H

#include <stdio.h>

extern int test_passed, test_failed;

#define CHECK(cond, ...)                                                                    \
    do {                                                                                    \
        if (cond) {                                                                         \
            test_passed++;                                                                  \
        } else {                                                                            \
            test_failed++;                                                                  \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                            \
            fprintf(stderr, __VA_ARGS__);                                                   \
            fputc('\n', stderr);                                                            \
        }                                                                                   \
    } while (0)

#define CHECK_OK(expr)                                                                      \
    do {                                                                                    \
        ssmlm_status st_ = (expr);                                                          \
        CHECK(st_ == SSMLM_OK, "%s -> %s: %s", #expr, ssmlm_status_name(st_),              \
              ssmlm_last_error());                                                          \
    } while (0)

#define TEST_END()                                                                          \
    do {                                                                                    \
        printf("%d passed, %d failed\n", test_passed, test_failed);                         \
        return test_failed ? 1 : 0;                                                         \
    } while (0)

#endif
