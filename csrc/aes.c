/*
 * aes.c - AES-128-CBC decryption of HLS segments (EXT-X-KEY METHOD=AES-128)
 * with OpenSSL's libcrypto, which libcurl already links.  No global state;
 * no Python: module.c calls it with the GIL released.
 *
 * The padding is removed the way yt-dlp does it (the last byte says how
 * many bytes to drop), so that the output is byte-identical to yt-dlp's.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "engine.h"

int aes128_cbc_decrypt(const unsigned char *in, size_t n,
                       const unsigned char *key, const unsigned char *iv,
                       int unpad, unsigned char *out, size_t *outlen,
                       char *err, size_t errlen)
{
    EVP_CIPHER_CTX *ctx;
    int len1 = 0, len2 = 0, ok;

    if (n % 16 != 0) {
        snprintf(err, errlen, "encrypted data is %zu bytes, not a multiple "
                 "of the AES block size (16)", n);
        return -1;
    }
    if (n > (size_t)0x7fffffff) {
        snprintf(err, errlen, "encrypted segment too large (%zu bytes)", n);
        return -1;
    }
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ok = EVP_DecryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv) == 1
        && EVP_CIPHER_CTX_set_padding(ctx, 0) == 1
        && EVP_DecryptUpdate(ctx, out, &len1, in, (int)n) == 1
        && EVP_DecryptFinal_ex(ctx, out + len1, &len2) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        snprintf(err, errlen, "AES-128-CBC decryption failed");
        return -1;
    }
    *outlen = (size_t)len1 + (size_t)len2;
    if (unpad && *outlen > 0) {
        size_t pad = out[*outlen - 1];
        *outlen = pad <= *outlen ? *outlen - pad : 0;
    }
    return 0;
}
