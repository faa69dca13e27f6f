/*
 * test_task_opts.c - task_opts_copy and task_opts_clear (csrc/task.c),
 * under ASan: every owned string of TASK_OPTS_STRINGS, the headers and
 * the cookies set, copied, then both sides freed.  A pointer the copy
 * shared with its source is freed twice (ASan stops the run), one it
 * leaked is reported by LeakSanitizer; the checks below say which field.
 * A pointer field outside the list is caught by tests/test_c_lint.py.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "ctest.h"

/* what task.c calls that this test never reaches (task_decref's
   engine-side cleanup, task_new's clock) */
void xfer_release(struct task *t) { (void)t; }
void seg_free(struct task *t) { (void)t; }
void frag_mem_account(struct eng *e, int64_t delta) { (void)e; (void)delta; }
double eng_now(void) { return 0; }

static void fill(struct task_opts *o)
{
    memset(o, 0, sizeof(*o));
#define SET(f, copied) o->f = strdup(#f);
    TASK_OPTS_STRINGS(SET)
#undef SET
    o->headers = curl_slist_append(NULL, "A: 1");
    o->headers = curl_slist_append(o->headers, "B: 2");
    o->cookies = calloc(2, sizeof(char *));
    o->cookies[0] = strdup("c0");
    o->cookies[1] = strdup("c1");
    o->ncookies = 2;
    o->truncate = 1;
    o->hold_new_validator = 1;
    o->range_start = 7;
    o->max_request = 1 << 20;
    o->connections = 4;
}

static void test_copy_owns_every_string(void)
{
    struct task_opts src, dst;
    fill(&src);
    CHECK(task_opts_copy(&dst, &src) == 0, "copy failed");
#define SAME(f, copied)                                                  \
    if (copied) {                                                        \
        CHECK(dst.f && dst.f != src.f && strcmp(dst.f, src.f) == 0,      \
              "%s: not a copy of its own", #f);                          \
    } else {                                                             \
        CHECK(dst.f == NULL, "%s: must not be copied", #f);              \
    }
    TASK_OPTS_STRINGS(SAME)
#undef SAME
    CHECK(dst.headers && dst.headers != src.headers
          && strcmp(dst.headers->data, "A: 1") == 0
          && dst.headers->next && strcmp(dst.headers->next->data, "B: 2") == 0
          && !dst.headers->next->next, "headers");
    CHECK(dst.ncookies == 2 && dst.cookies != src.cookies
          && dst.cookies[0] != src.cookies[0]
          && strcmp(dst.cookies[1], "c1") == 0, "cookies");
    CHECK(dst.truncate == 0 && dst.hold_new_validator == 0,
          "truncate and hold are the parent's");
    CHECK(dst.range_start == 7 && dst.max_request == 1 << 20
          && dst.connections == 4, "scalars");
    task_opts_clear(&src);
    task_opts_clear(&dst);
}

static void test_clear_empties(void)
{
    struct task_opts o, zero;
    fill(&o);
    task_opts_clear(&o);
    memset(&zero, 0, sizeof(zero));
    CHECK(memcmp(&o, &zero, sizeof(o)) == 0, "cleared opts not zero");
    task_opts_clear(&o);    /* twice is harmless */
}

int main(void)
{
    RUN(test_copy_owns_every_string);
    RUN(test_clear_empties);
    return ctest_result();
}
