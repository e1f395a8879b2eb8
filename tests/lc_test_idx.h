/* Small idx files in the official MNIST format for the device suites:
 * n images of 4x4 whose class (0..2) decides which pixels are bright. */
#ifndef LC_TEST_IDX_H
#define LC_TEST_IDX_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lc_core.h"

static inline void lc_test_put_be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* balanced: classes cycle 0, 1, 2 (a per-class draw always finds enough);
 * otherwise they are drawn at random. */
static inline void lc_test_write_idx(const char *folder, const char *name_img, const char *name_lab, int n,
                                     uint64_t seed, bool balanced)
{
    char p[4200];
    lc_rng r;
    lc_rng_seed(&r, seed);
    snprintf(p, sizeof p, "%s/%s", folder, name_img);
    FILE *fi = fopen(p, "wb");
    snprintf(p, sizeof p, "%s/%s", folder, name_lab);
    FILE *fl = fopen(p, "wb");
    ck_assert(fi && fl);
    lc_test_put_be32(fi, 0x803);
    lc_test_put_be32(fi, (uint32_t)n);
    lc_test_put_be32(fi, 4);
    lc_test_put_be32(fi, 4);
    lc_test_put_be32(fl, 0x801);
    lc_test_put_be32(fl, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        int c = balanced ? i % 3 : (int)lc_rng_below(&r, 3);
        for (int k = 0; k < 16; k++) {
            int v = (int)lc_rng_below(&r, 80);
            if (k / 6 == c) v += 150;
            fputc(v, fi);
        }
        fputc(c, fl);
    }
    fclose(fi);
    fclose(fl);
}

/* n images of side x side in `classes` classes (cycling 0, 1, ...): class c
 * brightens the c-th horizontal band of the image a little over seeded
 * noise (learnable, not at once). */
static inline void lc_test_write_idx_sized(const char *folder, const char *name_img, const char *name_lab, int n,
                                           uint64_t seed, int side, int classes)
{
    char p[4200];
    lc_rng r;
    lc_rng_seed(&r, seed);
    snprintf(p, sizeof p, "%s/%s", folder, name_img);
    FILE *fi = fopen(p, "wb");
    snprintf(p, sizeof p, "%s/%s", folder, name_lab);
    FILE *fl = fopen(p, "wb");
    ck_assert(fi && fl);
    lc_test_put_be32(fi, 0x803);
    lc_test_put_be32(fi, (uint32_t)n);
    lc_test_put_be32(fi, (uint32_t)side);
    lc_test_put_be32(fi, (uint32_t)side);
    lc_test_put_be32(fl, 0x801);
    lc_test_put_be32(fl, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        int c = i % classes;
        for (int k = 0; k < side * side; k++) {
            int v = (int)lc_rng_below(&r, 200);
            if ((k / side) * classes / side == c) v += 30;
            fputc(v, fi);
        }
        fputc(c, fl);
    }
    fclose(fi);
    fclose(fl);
}

/* A CIFAR-10 binary release in folder/cifar-10-batches-bin: five training
 * batches of per_batch records and a test batch of n_test, 10 classes
 * (cycling), each class a slightly brighter band in one colour channel. */
static inline void lc_test_write_cifar10(const char *folder, int per_batch, int n_test, uint64_t seed)
{
    char dir[4200], p[4300];
    snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", folder);
    ck_assert_int_eq(lc_mkdirs(dir), LC_OK);
    lc_rng r;
    lc_rng_seed(&r, seed);
    for (int b = 0; b < 6; b++) {
        if (b < 5) snprintf(p, sizeof p, "%s/data_batch_%d.bin", dir, b + 1);
        else snprintf(p, sizeof p, "%s/test_batch.bin", dir);
        FILE *f = fopen(p, "wb");
        ck_assert(f != NULL);
        int n = b < 5 ? per_batch : n_test;
        for (int i = 0; i < n; i++) {
            int c = (i + b) % 10;
            fputc(c, f);
            for (int k = 0; k < 3 * 1024; k++) {
                int ch = k / 1024, row = (k % 1024) / 32;
                int v = (int)lc_rng_below(&r, 200);
                if (ch == c % 3 && row / 8 == c / 3) v += 30;
                fputc(v, f);
            }
        }
        fclose(f);
    }
}

#endif
