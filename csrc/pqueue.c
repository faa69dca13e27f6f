/*
 * pqueue.c - a binary min-heap of tasks ordered by (priority, seq).
 *
 * Lower priority values run first; equal priorities run in submit order.
 * Each task remembers its index (heap_pos) so that it can be removed or
 * re-prioritised while queued.  Engine thread only.
 */
#include <stdlib.h>

#include "engine.h"

#define PQ_NONE ((size_t)-1)

static int pq_before(const struct task *a, const struct task *b)
{
    if (a->o.priority != b->o.priority)
        return a->o.priority < b->o.priority;
    return a->seq < b->seq;
}

static void pq_set(struct pqueue *q, size_t i, struct task *t)
{
    q->v[i] = t;
    t->heap_pos = i;
}

static void pq_sift_up(struct pqueue *q, size_t i)
{
    struct task *t = q->v[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pq_before(t, q->v[parent]))
            break;
        pq_set(q, i, q->v[parent]);
        i = parent;
    }
    pq_set(q, i, t);
}

static void pq_sift_down(struct pqueue *q, size_t i)
{
    struct task *t = q->v[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        const struct task *bt = t;
        if (l < q->len && pq_before(q->v[l], bt)) {
            best = l;
            bt = q->v[l];
        }
        if (r < q->len && pq_before(q->v[r], bt))
            best = r;
        if (best == i)
            break;
        pq_set(q, i, q->v[best]);
        i = best;
    }
    pq_set(q, i, t);
}

void pq_init(struct pqueue *q)
{
    q->v = NULL;
    q->len = q->cap = 0;
}

void pq_free(struct pqueue *q)
{
    free(q->v);
    pq_init(q);
}

int pq_push(struct pqueue *q, struct task *t)
{
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        struct task **v = realloc(q->v, cap * sizeof(*v));
        if (!v)
            return -1;
        q->v = v;
        q->cap = cap;
    }
    q->v[q->len] = t;
    t->heap_pos = q->len;
    q->len++;
    pq_sift_up(q, q->len - 1);
    return 0;
}

struct task *pq_peek(const struct pqueue *q)
{
    return q->len ? q->v[0] : NULL;
}

void pq_remove(struct pqueue *q, struct task *t)
{
    size_t i = t->heap_pos;
    if (i >= q->len || q->v[i] != t)
        return;
    q->len--;
    t->heap_pos = PQ_NONE;
    if (i == q->len)
        return;
    pq_set(q, i, q->v[q->len]);
    pq_sift_down(q, i);
    pq_sift_up(q, q->v[i]->heap_pos);
}

struct task *pq_pop(struct pqueue *q)
{
    struct task *t = pq_peek(q);
    if (t)
        pq_remove(q, t);
    return t;
}

void pq_update(struct pqueue *q, struct task *t)
{
    size_t i = t->heap_pos;
    if (i >= q->len || q->v[i] != t)
        return;
    pq_sift_down(q, i);
    pq_sift_up(q, t->heap_pos);
}
