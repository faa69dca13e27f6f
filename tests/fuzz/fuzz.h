/* What every fuzz harness shares: an invariant check that aborts, so that
 * libFuzzer saves the input that broke it. */
#ifndef YTDLP_ASYNC_FUZZ_H
#define YTDLP_ASYNC_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define FZ_CHECK(cond)                                                   \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond,     \
                    __FILE__, __LINE__);                                 \
            abort();                                                     \
        }                                                                \
    } while (0)

#endif
