/*
 * test_adaptive.c - the connection controller (csrc/adaptive.c) against
 * synthetic links on a fake clock: a link one connection fills, a link
 * that gives each connection a fixed rate, pressure mid-way, noisy
 * samples, a host window, a partial gain, small files.
 */
#include <stdint.h>

#include "adaptive.h"
#include "ctest.h"

#define MB (1024.0 * 1024.0)
#define TICK 0.25                /* the engine samples four times a second */

struct link {
    double per_conn;    /* bytes/s each connection can carry */
    double cap;         /* the link's total, 0: none */
    int limit;          /* most connections that can run, 0: none */
    double noise;       /* uniform noise, +- this share of each sample */
    uint64_t rng;
};

struct sim {
    struct adaptive c;
    double now;
    double bytes;
    double size;        /* < 0: endless */
    int peak;           /* highest target */
    int low;            /* lowest target since sim_mark */
    int high;           /* highest target since sim_mark */
};

static double link_noise(struct link *l)
{
    /* xorshift: reproducible noise in [-1, 1) */
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    return (double)(l->rng >> 11) / 4503599627370496.0 - 1.0;
}

static double link_rate(struct link *l, int n)
{
    double r = l->per_conn * n;
    if (l->cap > 0 && r > l->cap)
        r = l->cap;
    return r * (1.0 + l->noise * link_noise(l));
}

static void sim_init(struct sim *s, double size)
{
    adaptive_init(&s->c, ADAPTIVE_MAX, 0.0);
    s->now = 0;
    s->bytes = 0;
    s->size = size;
    s->peak = s->low = s->high = 1;
}

static void sim_mark(struct sim *s)
{
    s->low = s->high = s->c.target;
}

static void sim_run(struct sim *s, struct link *l, double until)
{
    while (s->now < until && (s->size < 0 || s->bytes < s->size)) {
        int conns = s->c.target, t;
        if (l->limit && conns > l->limit)
            conns = l->limit;
        s->now += TICK;
        s->bytes += link_rate(l, conns) * TICK;
        if (s->size >= 0 && s->bytes > s->size)
            s->bytes = s->size;
        adaptive_sample(&s->c, s->now, (int64_t)s->bytes, conns);
        t = adaptive_decide(&s->c, s->now, s->size < 0 ? -1
                            : (int64_t)(s->size - s->bytes));
        if (t > s->peak)
            s->peak = t;
        if (t > s->high)
            s->high = t;
        if (t < s->low)
            s->low = t;
    }
}

static void test_saturating_link_stays_at_one(void)
{
    /* loopback nginx: one connection already fills the link */
    struct link l = {.per_conn = 900 * MB, .cap = 900 * MB, .rng = 1};
    struct sim s;
    sim_init(&s, -1);
    sim_run(&s, &l, 60);
    CHECK(s.peak <= 2, "peak %d", s.peak);
    CHECK(s.c.target == 1, "target %d", s.c.target);
    CHECK(s.c.stop == AS_NO_GAIN, "stop %s", adaptive_stop_name(s.c.stop));
    CHECK(s.c.nhist == 3 && s.c.hist[1] == 2 && s.c.hist[2] == 1,
          "history of %d", s.c.nhist);
}

static void test_linear_link_climbs_to_max_within_two_seconds(void)
{
    /* a server that throttles each connection to 2 MB/s: 1 -> 2, then x4
       while each step pays linearly */
    struct link l = {.per_conn = 2 * MB, .rng = 1};
    struct sim s;
    int want[] = {1, 2, 8, 16};
    sim_init(&s, -1);
    sim_run(&s, &l, 2.0);
    CHECK(s.c.target == ADAPTIVE_MAX, "target %d after %.1f s", s.c.target,
          s.now);
    CHECK(s.c.nhist == 4, "history of %d", s.c.nhist);
    for (int i = 0; i < 4 && i < s.c.nhist; i++)
        CHECK(s.c.hist[i] == want[i], "step %d: %d", i, s.c.hist[i]);
    sim_run(&s, &l, 60);
    CHECK(s.c.target == ADAPTIVE_MAX && s.peak == ADAPTIVE_MAX,
          "target %d peak %d", s.c.target, s.peak);
    CHECK(s.c.stop == AS_MAX, "stop %s", adaptive_stop_name(s.c.stop));
}

static void test_pressure_halves_then_grows_additively(void)
{
    struct link l = {.per_conn = 2 * MB, .rng = 1};
    struct sim s;
    sim_init(&s, -1);
    int mark;
    sim_run(&s, &l, 15);
    CHECK(s.c.target == 16, "target %d", s.c.target);
    mark = s.c.nhist;
    /* a 429, and three more from the same burst */
    adaptive_on_backoff(&s.c, s.now);
    adaptive_on_backoff(&s.c, s.now + 0.1);
    adaptive_on_backoff(&s.c, s.now + 0.2);
    CHECK(s.c.target == 8, "one halving per burst, target %d", s.c.target);
    sim_mark(&s);
    sim_run(&s, &l, s.now + ADAPTIVE_CALM - 0.5);
    CHECK(s.high == 8, "grew within the calm period: %d", s.high);
    /* calm again: +1 per measured step, not doubling */
    sim_mark(&s);
    sim_run(&s, &l, s.now + 0.5 * 4 + 0.1);
    CHECK(s.c.target > 8 && s.c.target < 16, "target %d", s.c.target);
    for (int i = mark; i < s.c.nhist - 1; i++)
        if (s.c.hist[i + 1] > s.c.hist[i])
            CHECK(s.c.hist[i + 1] == s.c.hist[i] + 1, "step %d -> %d",
                  s.c.hist[i], s.c.hist[i + 1]);
    /* a second burst later halves again */
    adaptive_on_backoff(&s.c, s.now);
    CHECK(s.c.target <= 7 && s.c.target >= 4, "target %d", s.c.target);
}

static void test_pressure_in_a_x4_step_returns_to_its_base(void)
{
    /* 1 -> 2 -> 8, and the server refuses the new connections at once */
    struct link l = {.per_conn = 2 * MB, .rng = 1};
    struct sim s;
    sim_init(&s, -1);
    while (s.c.target < 8 && s.now < 5)
        sim_run(&s, &l, s.now + TICK);
    CHECK(s.c.target == 8 && s.c.nhist == 3, "target %d", s.c.target);
    adaptive_on_backoff(&s.c, s.now + 0.1);
    CHECK(s.c.target == 2 && s.c.ssthresh == 2, "target %d ssthresh %d",
          s.c.target, s.c.ssthresh);
}

static void test_pressure_at_one_stays_at_one(void)
{
    struct link l = {.per_conn = 2 * MB, .rng = 1};
    struct sim s;
    sim_init(&s, -1);
    adaptive_on_backoff(&s.c, 0.1);
    sim_run(&s, &l, ADAPTIVE_CALM - 0.2);
    CHECK(s.peak == 1, "peak %d during the calm period", s.peak);
    CHECK(s.c.stop == AS_PRESSURE, "stop %s", adaptive_stop_name(s.c.stop));
    sim_run(&s, &l, 20);
    CHECK(s.c.target > 1, "never grew again: %d", s.c.target);
}

static void test_noise_neither_stops_a_climb_nor_starts_one(void)
{
    struct link lin = {.per_conn = 2 * MB, .noise = 0.10, .rng = 7};
    struct link sat = {.per_conn = 50 * MB, .cap = 50 * MB, .noise = 0.10,
                       .rng = 7};
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct sim s;
        lin.rng = seed * 7919;
        sim_init(&s, -1);
        sim_run(&s, &lin, 30);
        CHECK(s.c.target == 16, "seed %llu: linear link at %d",
              (unsigned long long)seed, s.c.target);
        sat.rng = seed * 104729;
        sim_init(&s, -1);
        sim_run(&s, &sat, 60);
        CHECK(s.peak <= 2, "seed %llu: saturated link peaked at %d",
              (unsigned long long)seed, s.peak);
        CHECK(s.c.target <= 2, "seed %llu: saturated link at %d",
              (unsigned long long)seed, s.c.target);
    }
}

static void test_host_window_limits(void)
{
    struct link l = {.per_conn = 2 * MB, .limit = 4, .rng = 1};
    struct sim s;
    sim_init(&s, -1);
    sim_run(&s, &l, 30);
    CHECK(s.c.target == 4, "target %d", s.c.target);
    CHECK(s.c.stop == AS_LIMITED, "stop %s", adaptive_stop_name(s.c.stop));
    CHECK(s.peak <= 8, "peak %d", s.peak);
}

static void test_partial_gain_holds(void)
{
    /* the link is full at three connections */
    struct link l = {.per_conn = 2 * MB, .cap = 6 * MB, .rng = 1};
    struct sim s;
    sim_init(&s, -1);
    sim_run(&s, &l, 40);
    CHECK(s.c.target == 4, "target %d", s.c.target);
    CHECK(s.peak <= 8, "peak %d", s.peak);
    CHECK(s.c.stop == AS_NO_GAIN || s.c.stop == AS_PARTIAL, "stop %s",
          adaptive_stop_name(s.c.stop));
}

static void test_tiny_files_are_not_probed(void)
{
    struct link l = {.per_conn = 2 * MB, .rng = 1};
    struct sim s;
    /* done before the first measurement */
    sim_init(&s, 0.4 * MB);
    sim_run(&s, &l, 60);
    CHECK(s.peak == 1, "1 MiB: peak %d", s.peak);
    CHECK(s.c.stop == AS_NONE, "stop %s", adaptive_stop_name(s.c.stop));
    /* measured once, but what is left would be gone before a probe is */
    sim_init(&s, 6 * MB);
    sim_run(&s, &l, 60);
    CHECK(s.peak == 1, "6 MiB: peak %d", s.peak);
    CHECK(s.c.stop == AS_SMALL, "stop %s", adaptive_stop_name(s.c.stop));
    /* big enough: probes, and stops probing near the end (1 -> 2 -> 8,
       then too little left even after a linear step) */
    sim_init(&s, 20 * MB);
    sim_run(&s, &l, 60);
    CHECK(s.peak == 8, "20 MiB: peak %d", s.peak);
    CHECK(s.c.stop == AS_SMALL, "stop %s", adaptive_stop_name(s.c.stop));
}

static void test_history_keeps_the_last_change(void)
{
    struct adaptive c;
    double now = 0;
    adaptive_init(&c, 16, now);
    int last = 0;
    for (int i = 0; i < 40; i++) {
        now += 10;
        c.target = i % 2 ? 4 : 12;   /* a change each time: 2 or 6 */
        adaptive_on_backoff(&c, now);
        last = c.target;
    }
    CHECK(last == 2, "last target %d", last);
    CHECK(c.nhist == ADAPTIVE_HIST, "nhist %d", c.nhist);
    CHECK(c.hist[0] == 1 && c.hist[1] == 6, "first %d %d", c.hist[0],
          c.hist[1]);
    CHECK(c.hist[ADAPTIVE_HIST - 1] == 2, "last %d",
          c.hist[ADAPTIVE_HIST - 1]);
}

static void test_max_one_never_grows(void)
{
    struct link l = {.per_conn = 2 * MB, .rng = 1};
    struct sim s;
    sim_init(&s, -1);
    adaptive_init(&s.c, 1, 0.0);
    sim_run(&s, &l, 20);
    CHECK(s.peak == 1, "peak %d", s.peak);
    CHECK(s.c.stop == AS_MAX, "stop %s", adaptive_stop_name(s.c.stop));
}

int main(void)
{
    RUN(test_saturating_link_stays_at_one);
    RUN(test_linear_link_climbs_to_max_within_two_seconds);
    RUN(test_pressure_halves_then_grows_additively);
    RUN(test_pressure_in_a_x4_step_returns_to_its_base);
    RUN(test_pressure_at_one_stays_at_one);
    RUN(test_noise_neither_stops_a_climb_nor_starts_one);
    RUN(test_host_window_limits);
    RUN(test_partial_gain_holds);
    RUN(test_tiny_files_are_not_probed);
    RUN(test_history_keeps_the_last_change);
    RUN(test_max_one_never_grows);
    return ctest_result();
}
