/*
 * fragstream.c - one HLS/DASH fragment from engine memory to the output.
 *
 * A fragment task (o.to_memory) ends with its body in t->mem.  The fragment
 * pipeline (fragment_pipeline.py) decides the order; this file moves the
 * bytes, so that they never become a Python object:
 *
 *   1. --keep-fragments: the body as received (still encrypted) goes to
 *      NAME.part-FragN, the file yt-dlp would leave;
 *   2. AES-128-CBC: the body is decrypted in place, its padding removed as
 *      yt-dlp removes it (aes.c);
 *   3. the result is appended to the output descriptor (the .part file, or
 *      stdout), with every short write continued.
 *
 * Plain C, no Python: module.c calls frag_append() with the GIL released.
 * Ownership: the caller owns body (detached from its task) and frees it;
 * nothing here keeps state between calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* write all n bytes to fd; 0, or -1 with errno */
static int frag_write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int frag_keep(const char *path, const unsigned char *body, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    int saved;
    if (fd < 0)
        return -1;
    if (frag_write_all(fd, body, n) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return close(fd);
}

void frag_mem_account(struct eng *e, int64_t delta)
{
    int64_t now, peak;
    if (!e || delta == 0)
        return;
    now = __atomic_add_fetch(&e->body_mem, delta, __ATOMIC_RELAXED);
    peak = __atomic_load_n(&e->body_mem_peak, __ATOMIC_RELAXED);
    while (now > peak
           && !__atomic_compare_exchange_n(&e->body_mem_peak, &peak, now, 1,
                                           __ATOMIC_RELAXED,
                                           __ATOMIC_RELAXED))
        ;
}

int frag_append(unsigned char *body, size_t n, int out_fd,
                const unsigned char *key, const unsigned char *iv,
                const char *keep_path, size_t *appended,
                char *err, size_t errlen)
{
    size_t len = n;
    *appended = 0;
    if (n == 0)
        return FRAG_OK;     /* nothing arrived: the caller skips it */
    if (keep_path && frag_keep(keep_path, body, n) < 0)
        return FRAG_EKEEP;
    if (key) {
        /* CBC decryption in place: OpenSSL allows out == in */
        if (aes128_cbc_decrypt(body, n, key, iv, 1, body, &len,
                               err, errlen) < 0)
            return FRAG_EAES;
    }
    if (len > 0 && frag_write_all(out_fd, body, len) < 0)
        return FRAG_EOUT;
    *appended = len;
    return FRAG_OK;
}
