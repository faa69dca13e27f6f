/*
 * ctest.h - the smallest test harness for the pure C units (make ctest).
 *
 * CHECK(cond, fmt, ...) records a failure with file:line and goes on;
 * RUN(test) runs one test function and prints its name and outcome;
 * main() returns ctest_result(): 0 when every check held.
 */
#ifndef YTDLP_ASYNC_CTEST_H
#define YTDLP_ASYNC_CTEST_H

#include <stdio.h>

static int ctest_failures;
static int ctest_checks;

#define CHECK(cond, ...)                                                 \
    do {                                                                 \
        ctest_checks++;                                                  \
        if (!(cond)) {                                                   \
            ctest_failures++;                                            \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__,       \
                    __LINE__, #cond);                                    \
            fprintf(stderr, __VA_ARGS__);                                \
            fputc('\n', stderr);                                         \
        }                                                                \
    } while (0)

#define RUN(fn)                                                          \
    do {                                                                 \
        int before_ = ctest_failures;                                    \
        fn();                                                            \
        printf("%s %s\n", ctest_failures == before_ ? "ok  " : "FAIL",   \
               #fn);                                                     \
    } while (0)

static int ctest_result(void)
{
    printf("%d checks, %d failed\n", ctest_checks, ctest_failures);
    return ctest_failures ? 1 : 0;
}

#endif
