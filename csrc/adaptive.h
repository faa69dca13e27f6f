/*
 * adaptive.h - how many connections one split file should use: a small
 * pure controller (no libcurl, no Python, no clock: the caller passes the
 * time, the byte count and the live connection count in).
 *
 * Ownership: a struct adaptive lives inside a segmented download's plan
 * (struct seg, where engine.h marks it "mu" and says so once): the engine
 * thread is its one writer and writes it under eng->mu; Python reads it
 * (Task.info, seg_note) under eng->mu.  These functions take no lock:
 * the caller holds it.
 *
 * The rule, in TCP's words (docs/adaptive.md has the numbers and why):
 *   - slow start: begin with one connection; after each change wait
 *     ADAPTIVE_SETTLE seconds, then measure the total rate for
 *     ADAPTIVE_MEASURE seconds; the first step doubles (1 -> 2); while a
 *     step pays nearly linearly (ADAPTIVE_QUAD of what linear scaling
 *     would give) grow x4, while it pays ADAPTIVE_DOUBLE of it, double;
 *   - a x4 step that does not pay is retried as a doubling from its base;
 *   - a step that brings less than ADAPTIVE_PAY of the linear gain (or
 *     less than ADAPTIVE_PAY_MIN of the total) is given back and growth
 *     stops (one connection already filled the link);
 *   - a step that pays partly is kept and growth stops;
 *   - pressure (429/503/403, a reset) halves the target (or returns to
 *     the last measured level when a step up is not measured yet) once
 *     per ADAPTIVE_BURST and sets the threshold above which growth is
 *     additive (+1 per measured step), after ADAPTIVE_CALM quiet seconds;
 *   - no probe when what is left would be done within ADAPTIVE_LEFT
 *     seconds (ADAPTIVE_LEFT_LINEAR after a linear step), nor above max or above the connections the
 *     engine could actually start (host window, pieces too small).
 */
#ifndef YTDLP_ASYNC_ADAPTIVE_H
#define YTDLP_ASYNC_ADAPTIVE_H

#include <stdint.h>

#define ADAPTIVE_MAX 16          /* per-file maximum under auto */
#define ADAPTIVE_SETTLE 0.2      /* s after a change before measuring: the
                                    window opens at the next engine tick
                                    (0.25 s), when a new connection's first
                                    bytes have arrived even at 100 ms per
                                    request */
#define ADAPTIVE_MEASURE 0.2     /* s of rate measured per level: one tick
                                    (0.25 s); a level lasts 0.5 s */
#define ADAPTIVE_QUAD 0.85       /* share of linear gain that earns x4 */
#define ADAPTIVE_DOUBLE 0.5      /* share of linear gain that earns a doubling */
#define ADAPTIVE_PAY 0.3         /* share of linear gain a step must bring */
#define ADAPTIVE_PAY_MIN 0.05    /* and least total gain (below: noise) */
#define ADAPTIVE_CALM 5.0        /* s without pressure before growing again */
#define ADAPTIVE_LEFT 3.0        /* no probe when less than this many
                                    seconds of bytes are left at the
                                    current rate */
#define ADAPTIVE_LEFT_LINEAR 1.0 /* the same after a step that paid
                                    linearly (ADAPTIVE_QUAD): a connection
                                    too many costs little there */
#define ADAPTIVE_BURST 1.5       /* s: pressure signals this close count
                                    as one */
#define ADAPTIVE_HIST 16         /* targets remembered for the report */

/* why growth stopped (the -v line says it) */
enum adaptive_stop {
    AS_NONE = 0,        /* still probing, or never measured */
    AS_MAX,             /* reached max */
    AS_NO_GAIN,         /* the last step added (almost) nothing: given back */
    AS_PARTIAL,         /* the last step paid only partly: kept */
    AS_LIMITED,         /* the engine could not start more (host window,
                           pieces too small, near the end) */
    AS_PRESSURE,        /* 429/503/403 or resets */
    AS_SMALL            /* too little left to measure a probe */
};

struct adaptive {
    int max;                /* the per-file maximum */
    int target;             /* connections wanted now */
    int ssthresh;           /* above it growth is +1, not doubling */
    int stop;               /* enum adaptive_stop */
    double since;           /* when target last changed */
    double last_trouble;    /* last pressure signal, or -1 */
    /* the measurement window of the current level */
    int win_open;
    double win_t, last_t;
    int64_t win_b, last_b;
    int win_conns;          /* most live connections seen in it */
    /* the level measured before, the baseline of the next step */
    int base_level;
    double base_rate;
    double rate;            /* the last measured total rate, bytes/s */
    int no_quad;            /* a x4 step overshot: only double from now */
    int hist[ADAPTIVE_HIST];
    int nhist;
};

void adaptive_init(struct adaptive *c, int max, double now);
/* a progress sample: bytes on disk in total, connections transferring */
void adaptive_sample(struct adaptive *c, double now, int64_t bytes,
                     int conns);
/* the target now; remaining: bytes still to fetch, -1 unknown */
int adaptive_decide(struct adaptive *c, double now, int64_t remaining);
void adaptive_on_backoff(struct adaptive *c, double now);
const char *adaptive_stop_name(int stop);

#endif
