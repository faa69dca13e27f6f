/*
 * test_ratelimit.c - the token bucket (csrc/ratelimit.c) on a fake clock:
 * unlimited, the burst, debt paid back before the next chunk, the wait it
 * announces, and the long-run rate a greedy reader gets.
 */
#include "engine.h"
#include "ctest.h"

static void test_unlimited_always_allows(void)
{
    struct ratelimit rl;
    rl_set(&rl, 0, 0.0);
    rl_take(&rl, 1 << 30);
    rl_refill(&rl, 1.0);
    CHECK(rl_allows(&rl), "unlimited refused");
    CHECK(rl_wait_ms(&rl) == 0, "wait %ld", rl_wait_ms(&rl));
}

static void test_burst_is_a_twentieth_of_a_second(void)
{
    struct ratelimit rl;
    rl_set(&rl, 2e6, 0.0);
    CHECK(rl.burst == 1e5, "burst %f", rl.burst);
    rl_set(&rl, 1000, 0.0);
    CHECK(rl.burst == 16384.0, "small rates get 16 KiB: %f", rl.burst);
    /* the bucket never holds more than its burst */
    rl_refill(&rl, 100.0);
    CHECK(rl.tokens == rl.burst, "tokens %f", rl.tokens);
}

static void test_debt_is_paid_before_the_next_chunk(void)
{
    struct ratelimit rl;
    rl_set(&rl, 100000, 0.0);        /* 100 kB/s, burst 16384 */
    rl_take(&rl, 16384 + 50000);     /* a chunk curl already delivered */
    CHECK(!rl_allows(&rl), "allowed while in debt");
    /* 50000 bytes of debt at 100 kB/s: 0.5 s */
    CHECK(rl_wait_ms(&rl) >= 500 && rl_wait_ms(&rl) <= 502, "wait %ld",
          rl_wait_ms(&rl));
    rl_refill(&rl, 0.4);
    CHECK(!rl_allows(&rl), "allowed after 0.4 s");
    rl_refill(&rl, 0.5001);
    CHECK(rl_allows(&rl), "refused after the debt is paid");
}

static void test_greedy_reader_gets_the_rate(void)
{
    struct ratelimit rl;
    double now = 0, taken = 0;
    rl_set(&rl, 1e6, now);
    while (now < 10.0) {
        rl_refill(&rl, now);
        if (rl_allows(&rl)) {
            rl_take(&rl, 16384);
            taken += 16384;
        } else {
            now += (double)rl_wait_ms(&rl) / 1000.0;
        }
    }
    /* 10 s at 1 MB/s, plus at most the first burst and one chunk */
    CHECK(taken >= 9.9e6 && taken <= 1e7 + rl.burst + 16384, "took %.0f",
          taken);
}

int main(void)
{
    RUN(test_unlimited_always_allows);
    RUN(test_burst_is_a_twentieth_of_a_second);
    RUN(test_debt_is_paid_before_the_next_chunk);
    RUN(test_greedy_reader_gets_the_rate);
    return ctest_result();
}
