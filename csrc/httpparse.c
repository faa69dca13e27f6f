/*
 * httpparse.c - pure parsers of the bytes a server sends back: finding a
 * header in the raw block, the status line's reason phrase, Content-Range
 * and Retry-After.
 *
 * No task, no lock, no clock (the time is passed in): the fuzzers in
 * tests/fuzz/ build this file alone.  Every input is untrusted.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine.h"

/* The value of header NAME (case-insensitive) in the raw block HDR of LEN
   bytes, without surrounding blanks; NULL when absent. */
const char *hdr_find(const char *hdr, size_t len, const char *name,
                     size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = hdr, *end = hdr + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        if ((size_t)(line_end - p) > nlen && p[nlen] == ':'
            && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (v < line_end && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = line_end;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '
                              || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = line_end + 1;
    }
    return NULL;
}

/* "HTTP/1.1 404 Not Found\r\n" -> "Not Found"; NULL without one */
const char *http_reason_phrase(const char *hdr, size_t hlen, size_t *len)
{
    const char *eol, *p;
    if (!hdr || hlen < 12)
        return NULL;
    eol = memchr(hdr, '\n', hlen);
    if (!eol)
        return NULL;
    p = memchr(hdr, ' ', (size_t)(eol - hdr));
    if (!p)
        return NULL;
    p = memchr(p + 1, ' ', (size_t)(eol - p - 1));
    if (!p)
        return NULL;
    p++;
    *len = (size_t)(eol - p);
    while (*len && (p[*len - 1] == '\r' || p[*len - 1] == ' '))
        (*len)--;
    return p;
}

/* "bytes S-E/T" or "bytes S-E/star"; T is -1 when unknown.  0 or -1. */
int http_content_range(const char *v, size_t vlen, int64_t *s, int64_t *e,
                       int64_t *total)
{
    char buf[128];
    long long a, b;
    char tot[32];
    if (vlen >= sizeof(buf))
        return -1;
    memcpy(buf, v, vlen);
    buf[vlen] = 0;
    if (sscanf(buf, "bytes %lld-%lld/%31s", &a, &b, tot) != 3)
        return -1;
    if (a < 0 || b < a)
        return -1;
    *s = a;
    *e = b;
    if (tot[0] == '*') {
        *total = -1;
    } else {
        char *endp;
        long long tv = strtoll(tot, &endp, 10);
        if (*endp || tv <= b)
            return -1;
        *total = tv;
    }
    return 0;
}

/* Seconds a Retry-After value (delta-seconds or an HTTP date, judged
   against NOW) asks for: 0 when unusable, at most HTTP_RETRY_AFTER_MAX
   ("1e999" or a date in 2099 must not park a retry for ever). */
double http_retry_after(const char *v, size_t vlen, time_t now)
{
    char buf[64];
    double d;
    if (!v || vlen == 0 || vlen >= sizeof(buf))
        return 0;
    memcpy(buf, v, vlen);
    buf[vlen] = 0;
    if (isdigit((unsigned char)buf[0])) {
        d = strtod(buf, NULL);
    } else {
        time_t when = curl_getdate(buf, NULL);
        if (when < 0)
            return 0;
        d = difftime(when, now);
    }
    if (!(d > 0))
        return 0;
    return d < HTTP_RETRY_AFTER_MAX ? d : HTTP_RETRY_AFTER_MAX;
}
