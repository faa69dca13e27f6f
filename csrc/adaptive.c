/*
 * adaptive.c - the connection-count controller of a split file (see
 * adaptive.h for the rule, docs/adaptive.md for the reasons).
 *
 * Pure: no clock, no I/O, no allocation.  The engine feeds it progress
 * samples (time, total bytes on disk, live connections) about four times a
 * second and asks for the target after each; segment.c starts or sheds
 * connections to meet it.
 */
#include "adaptive.h"

static void adaptive_set(struct adaptive *c, int n, double now)
{
    if (n < 1)
        n = 1;
    if (n > c->max)
        n = c->max;
    if (n == c->target)
        return;
    c->target = n;
    c->since = now;
    c->win_open = 0;
    if (c->nhist < ADAPTIVE_HIST)
        c->hist[c->nhist++] = n;
    else
        c->hist[ADAPTIVE_HIST - 1] = n;   /* the last one always shows */
}

void adaptive_init(struct adaptive *c, int max, double now)
{
    *c = (struct adaptive){0};
    c->max = max < 1 ? 1 : max;
    c->target = 1;
    c->ssthresh = c->max;
    c->since = now;
    c->last_trouble = -1;
    c->hist[0] = 1;
    c->nhist = 1;
}

void adaptive_sample(struct adaptive *c, double now, int64_t bytes,
                     int conns)
{
    if (!c->win_open) {
        if (now - c->since < ADAPTIVE_SETTLE)
            return;
        c->win_open = 1;
        c->win_t = c->last_t = now;
        c->win_b = c->last_b = bytes;
        c->win_conns = conns;
        return;
    }
    if (now < c->last_t)
        return;
    c->last_t = now;
    c->last_b = bytes;
    if (conns > c->win_conns)
        c->win_conns = conns;
}

/* One step up, if nothing speaks against it; linear: the last step paid
   (nearly) linearly, which earns x4 and a probe closer to the end. */
static int adaptive_grow(struct adaptive *c, double now, int64_t remaining,
                         int linear)
{
    int next;
    double left = linear ? ADAPTIVE_LEFT_LINEAR : ADAPTIVE_LEFT;
    if (c->last_trouble >= 0 && now - c->last_trouble < ADAPTIVE_CALM) {
        c->stop = AS_PRESSURE;
        return c->target;
    }
    if (c->target >= c->max) {
        c->stop = AS_MAX;
        return c->target;
    }
    if (remaining >= 0 && (double)remaining < c->rate * left) {
        c->stop = AS_SMALL;
        return c->target;
    }
    if (c->target >= c->ssthresh)
        next = c->target + 1;
    else
        next = (linear && !c->no_quad ? 4 : 2) * c->target;
    if (c->target < c->ssthresh && next > c->ssthresh)
        next = c->ssthresh;
    c->stop = AS_NONE;
    adaptive_set(c, next, now);
    return c->target;
}

/* The level just measured is the base from now on.  Returns 1 when fewer
   connections started than were asked for: that is the limit (host window,
   --chunk-size), and the target comes down to it. */
static int adaptive_rebase(struct adaptive *c, int level, double now)
{
    c->base_level = level;
    c->base_rate = c->rate;
    if (level >= c->target)
        return 0;
    c->stop = AS_LIMITED;
    adaptive_set(c, level, now);
    return 1;
}

/* The last step went from base_level to level: keep it, double again, or
   give it back. */
static int adaptive_judge(struct adaptive *c, double now, int level,
                          int64_t remaining)
{
    double ideal = (double)(level - c->base_level) / c->base_level;
    double gain = c->base_rate > 0 ? (c->rate - c->base_rate) / c->base_rate
                                   : (c->rate > 0 ? ideal : 0);
    if (gain < ADAPTIVE_PAY * ideal || gain < ADAPTIVE_PAY_MIN) {
        if (level > 2 * c->base_level && !c->no_quad) {
            /* a x4 step overshot: try a doubling from the same base */
            c->no_quad = 1;
            c->stop = AS_NONE;
            adaptive_set(c, 2 * c->base_level, now);
            return c->target;
        }
        c->stop = AS_NO_GAIN;
        adaptive_set(c, c->base_level, now);
        return c->target;
    }
    if (adaptive_rebase(c, level, now))
        return c->target;
    if (gain < ADAPTIVE_DOUBLE * ideal) {
        c->stop = AS_PARTIAL;
        return c->target;
    }
    return adaptive_grow(c, now, remaining, gain >= ADAPTIVE_QUAD * ideal);
}

int adaptive_decide(struct adaptive *c, double now, int64_t remaining)
{
    int level;
    if (!c->win_open || c->last_t - c->win_t < ADAPTIVE_MEASURE)
        return c->target;
    c->rate = (double)(c->last_b - c->win_b) / (c->last_t - c->win_t);
    if (c->rate < 0)
        c->rate = 0;
    level = c->win_conns < c->target ? c->win_conns : c->target;
    if (level < 1)
        level = 1;
    /* the next window of this level starts where this one ended */
    c->win_t = c->last_t;
    c->win_b = c->last_b;
    c->win_conns = level;

    if (c->base_level == 0) {
        /* the first measurement, or the first after a backoff */
        if (adaptive_rebase(c, level, now))
            return c->target;
        return adaptive_grow(c, now, remaining, 0);
    }
    if (level > c->base_level)
        return adaptive_judge(c, now, level, remaining);
    if (adaptive_rebase(c, level, now))
        return c->target;
    if (c->stop == AS_PRESSURE)
        return adaptive_grow(c, now, remaining, 0);
    return c->target;
}

void adaptive_on_backoff(struct adaptive *c, double now)
{
    int recent = c->last_trouble >= 0
        && now - c->last_trouble < ADAPTIVE_BURST;
    c->stop = AS_PRESSURE;
    c->last_trouble = now;
    if (recent)
        return;           /* one decrease per burst of bad replies */
    c->ssthresh = c->target / 2 < 1 ? 1 : c->target / 2;
    /* in a step up not yet measured (2 -> 8): back to the level that
       was measured, when that is lower than half */
    if (c->base_level > 0 && c->base_level < c->ssthresh)
        c->ssthresh = c->base_level;
    c->base_level = 0;    /* measure the new level afresh */
    adaptive_set(c, c->ssthresh, now);
    c->win_open = 0;
    c->since = now;
}

const char *adaptive_stop_name(int stop)
{
    switch (stop) {
    case AS_MAX: return "max";
    case AS_NO_GAIN: return "no-gain";
    case AS_PARTIAL: return "partial-gain";
    case AS_LIMITED: return "limited";
    case AS_PRESSURE: return "pressure";
    case AS_SMALL: return "small";
    default: return "none";
    }
}
