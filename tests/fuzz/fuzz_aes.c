/*
 * fuzz_aes.c - libFuzzer harness for aes128_cbc_decrypt() (csrc/aes.c),
 * which decrypts HLS segments a server sent.
 *
 * Input: 16 bytes of key, 16 of IV, one flag byte (unpad), then the
 * segment.  A length that is not a multiple of 16 is refused with a
 * message; otherwise the output, into a buffer of exactly the input's
 * size, encrypts back to the input, and unpadding drops exactly the number
 * of bytes the last decrypted byte names (all of them when it names more).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "engine.h"
#include "fuzz.h"

static void fz_encrypts_back(const unsigned char *key, const unsigned char *iv,
                             const unsigned char *plain, size_t n,
                             const unsigned char *cipher)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    unsigned char *again = malloc(n + 16);
    int l1 = 0, l2 = 0;
    FZ_CHECK(ctx && again);
    FZ_CHECK(EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv) == 1
             && EVP_CIPHER_CTX_set_padding(ctx, 0) == 1
             && EVP_EncryptUpdate(ctx, again, &l1, plain, (int)n) == 1
             && EVP_EncryptFinal_ex(ctx, again + l1, &l2) == 1);
    FZ_CHECK((size_t)(l1 + l2) == n && memcmp(again, cipher, n) == 0);
    EVP_CIPHER_CTX_free(ctx);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *key = data, *iv = data + 16, *in;
    unsigned char *out, *plain;
    size_t n, outlen = 12345, plainlen = 0;
    char err[256] = "";
    int unpad, rc;
    if (size < 33)
        return 0;
    unpad = data[32] & 1;
    in = data + 33;
    n = size - 33;
    /* exact sizes: ASan sees any write past what module.c allocates */
    out = malloc(n ? n : 1);
    plain = malloc(n ? n : 1);
    FZ_CHECK(out && plain);
    rc = aes128_cbc_decrypt(in, n, key, iv, unpad, out, &outlen, err,
                            sizeof(err));
    if (n % 16 != 0) {
        FZ_CHECK(rc == -1 && strstr(err, "multiple of the AES block size"));
    } else {
        FZ_CHECK(rc == 0);
        FZ_CHECK(aes128_cbc_decrypt(in, n, key, iv, 0, plain, &plainlen,
                                    err, sizeof(err)) == 0);
        FZ_CHECK(plainlen == n);
        fz_encrypts_back(key, iv, plain, n, in);
        if (!unpad || n == 0) {
            FZ_CHECK(outlen == n);
        } else {
            size_t pad = plain[n - 1];
            FZ_CHECK(outlen == (pad <= n ? n - pad : 0));
        }
        FZ_CHECK(memcmp(out, plain, outlen) == 0);
    }
    free(out);
    free(plain);
    return 0;
}
