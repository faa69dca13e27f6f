/*
 * ratelimit.c - one token bucket for the sum of all transfers.
 *
 * Pure: every function takes the current time as an argument, so it can be
 * reasoned about (and tested) without sleeping.  The bucket is small (a
 * twentieth of a second of traffic, at least 16 KiB) so that the sum stays
 * smooth: no full-speed burst followed by a long pause.  A chunk that curl
 * has already delivered is always taken whole, so tokens may go negative;
 * the debt is paid back before the next chunk is allowed.
 */
#include "engine.h"

#define RL_MIN_BURST 16384.0

void rl_set(struct ratelimit *rl, double rate, double now)
{
    rl->rate = rate > 0 ? rate : 0;
    rl->burst = rl->rate / 20.0;
    if (rl->burst < RL_MIN_BURST)
        rl->burst = RL_MIN_BURST;
    rl->tokens = rl->burst;
    rl->last = now;
}

void rl_refill(struct ratelimit *rl, double now)
{
    if (rl->rate <= 0)
        return;
    if (now > rl->last) {
        rl->tokens += (now - rl->last) * rl->rate;
        if (rl->tokens > rl->burst)
            rl->tokens = rl->burst;
    }
    rl->last = now;
}

int rl_allows(const struct ratelimit *rl)
{
    return rl->rate <= 0 || rl->tokens > 0;
}

void rl_take(struct ratelimit *rl, size_t n)
{
    if (rl->rate > 0)
        rl->tokens -= (double)n;
}

long rl_wait_ms(const struct ratelimit *rl)
{
    double need;
    if (rl_allows(rl))
        return 0;
    need = (1.0 - rl->tokens) / rl->rate;   /* seconds until tokens > 0 */
    return (long)(need * 1000.0) + 1;
}
