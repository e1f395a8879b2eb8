/* CIFAR-10 and CIFAR-100 official binary releases, over bytes.
 *
 * CIFAR-10 (cifar-10-batches-bin): data_batch_1.bin .. data_batch_5.bin and
 * test_batch.bin, each a run of 3073-byte records: 1 label byte (0..9), then
 * 3072 pixel bytes: red plane, green plane, blue plane, 32x32 row-major each.
 * CIFAR-100 (cifar-100-binary): train.bin and test.bin, 3074-byte records:
 * coarse label (0..19), fine label (0..99), then the same 3072 pixel bytes.
 * The planes are already NCHW, so an example is copied as is (scaled to
 * [0, 1]). */
#include "lc_data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct cifar_kind {
    int label_bytes; /* 1 (CIFAR-10) or 2 (CIFAR-100) */
    int label_at;    /* which label byte to use */
    int classes;
    const char *label_name; /* "label", "fine label", "coarse label" */
} cifar_kind;

static const cifar_kind CIFAR10 = {1, 0, 10, "label"};
static const cifar_kind CIFAR100_FINE = {2, 1, 100, "fine label"};
static const cifar_kind CIFAR100_COARSE = {2, 0, 20, "coarse label"};

static lc_status cifar_parse(const uint8_t *bytes, size_t len, const char *where, const cifar_kind *k,
                             lc_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (!where) where = "<memory>";
    size_t rec = (size_t)k->label_bytes + LC_CIFAR_PIXELS;
    if (!bytes || len == 0)
        return LC_ERR(LC_ERR_FORMAT, "%s: empty file (expected %zu-byte CIFAR records)", where, rec);
    if (len % rec != 0)
        return LC_ERR(LC_ERR_FORMAT,
                      "%s: truncated or not a CIFAR-%d binary file: size %zu is not a multiple of the %zu-byte "
                      "record (%zu records and %zu bytes left over)",
                      where, k->label_bytes == 1 ? 10 : 100, len, rec, len / rec, len % rec);
    size_t n = len / rec;
    if (n > INT32_MAX)
        return LC_ERR(LC_ERR_FORMAT, "%s: %zu records is more than the supported %d", where, n, INT32_MAX);
    /* Check every label before allocating anything. */
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = bytes + i * rec;
        if (k->label_bytes == 2 && (r[0] >= 20 || r[1] >= 100))
            return LC_ERR(LC_ERR_FORMAT,
                          "%s: record %zu (at offset %zu): coarse label %d / fine label %d out of range "
                          "(0..19 / 0..99)",
                          where, i, i * rec, r[0], r[1]);
        if (r[k->label_at] >= k->classes)
            return LC_ERR(LC_ERR_FORMAT, "%s: record %zu (at offset %zu): %s %d is out of range (0..%d)", where, i,
                          i * rec, k->label_name, r[k->label_at], k->classes - 1);
    }
    LC_TRY(lc_dataset_alloc(out, (int64_t)n, 3, 32, 32, k->classes));
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = bytes + i * rec;
        out->y[i] = r[k->label_at];
        float *x = out->x + i * LC_CIFAR_PIXELS;
        const uint8_t *p = r + k->label_bytes;
        for (int j = 0; j < LC_CIFAR_PIXELS; j++) x[j] = (float)p[j] / 255.0f;
    }
    return LC_OK;
}

lc_status lc_cifar10_parse(const uint8_t *bytes, size_t len, const char *where, lc_dataset *out)
{
    return cifar_parse(bytes, len, where, &CIFAR10, out);
}

lc_status lc_cifar100_parse(const uint8_t *bytes, size_t len, const char *where, bool coarse, lc_dataset *out)
{
    return cifar_parse(bytes, len, where, coarse ? &CIFAR100_COARSE : &CIFAR100_FINE, out);
}

/* ---- folders ---- */

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The folder with the files: dir/sub when it exists (dir is the parent of
 * the extracted archive), else dir. */
static lc_status find_base(const char *dir, const char *sub, char *base, size_t cap)
{
    struct stat sb;
    if (stat(dir, &sb) != 0) return LC_ERR(LC_ERR_NOT_FOUND, "%s: cannot open data folder: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        size_t l = strlen(dir);
        if ((l > 7 && strcmp(dir + l - 7, ".tar.gz") == 0) || (l > 4 && strcmp(dir + l - 4, ".tgz") == 0))
            return LC_ERR(LC_ERR_INVALID, "%s: archives are not read; extract it first (tar xzf %s -C /some/dir)",
                          dir, dir);
        return LC_ERR(LC_ERR_INVALID, "%s: not a folder", dir);
    }
    int k = snprintf(base, cap, "%s/%s", dir, sub);
    if (k < 0 || (size_t)k >= cap) return LC_ERR(LC_ERR_INVALID, "%s: folder path is too long", dir);
    if (stat(base, &sb) == 0 && S_ISDIR(sb.st_mode)) return LC_OK;
    snprintf(base, cap, "%s", dir);
    return LC_OK;
}

/* Reads up to `count` newline-separated names (blank lines skipped) from
 * path into names; returns how many, or -1 if the file is absent/unreadable. */
static int read_names(const char *path, char **names, int count)
{
    uint8_t *b;
    size_t len;
    if (!is_file(path) || lc_file_read(path, &b, &len) != LC_OK) {
        lc_error_clear();
        return -1;
    }
    int k = 0;
    size_t i = 0;
    while (i < len && k < count) {
        size_t j = i;
        while (j < len && b[j] != '\n') j++;
        size_t e = j;
        while (e > i && (b[e - 1] == '\r' || b[e - 1] == ' ' || b[e - 1] == '\t')) e--;
        if (e > i) {
            names[k] = malloc(e - i + 1);
            if (!names[k]) break;
            memcpy(names[k], b + i, e - i);
            names[k][e - i] = 0;
            k++;
        }
        i = j + 1;
    }
    free(b);
    return k;
}

/* Class names from a meta file if it lists exactly `classes` names, else the fallback (may be NULL). */
static lc_status set_names(lc_dataset *tr, lc_dataset *te, const char *meta_path, int classes,
                           const char *const *fallback)
{
    char *names[100] = {0};
    int k = read_names(meta_path, names, classes);
    lc_status st = LC_OK;
    const char *const *use = k == classes ? (const char *const *)names : fallback;
    if (k >= 0 && k != classes)
        LC_WARN("%s: lists %d class names, expected %d; ignoring it", meta_path, k, classes);
    if (use) {
        st = lc_dataset_set_class_names(tr, use, classes);
        if (st == LC_OK) st = lc_dataset_set_class_names(te, use, classes);
    }
    for (int i = 0; i < LC_MAX(k, 0); i++) free(names[i]);
    return st;
}

/* Parses the files into one data set (concatenated in order). */
static lc_status load_files(char paths[][4200], int count, const cifar_kind *k, lc_dataset *out)
{
    memset(out, 0, sizeof *out);
    lc_dataset parts[5] = {{0}};
    lc_status st = LC_OK;
    int64_t total = 0;
    for (int i = 0; i < count && st == LC_OK; i++) {
        uint8_t *b;
        size_t len;
        st = lc_file_read(paths[i], &b, &len);
        if (st != LC_OK) break;
        st = cifar_parse(b, len, paths[i], k, &parts[i]);
        free(b);
        total += parts[i].n;
    }
    if (st == LC_OK) {
        if (count == 1) {
            *out = parts[0];
            return LC_OK;
        }
        st = lc_dataset_alloc(out, total, 3, 32, 32, k->classes);
        int64_t at = 0;
        for (int i = 0; i < count && st == LC_OK; i++) {
            memcpy(out->x + at * LC_CIFAR_PIXELS, parts[i].x, (size_t)parts[i].n * LC_CIFAR_PIXELS * sizeof(float));
            memcpy(out->y + at, parts[i].y, (size_t)parts[i].n * sizeof(int32_t));
            at += parts[i].n;
        }
    }
    for (int i = 0; i < count; i++) lc_dataset_deinit(&parts[i]);
    return st;
}

static const char *const CIFAR10_NAMES[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                              "dog",      "frog",       "horse", "ship", "truck"};

/* Finds every file first so that a missing one is reported before any parsing. */
static lc_status check_files(const char *dir, const char *base, char paths[][4200], const char *const *names,
                             int count)
{
    for (int i = 0; i < count; i++) {
        snprintf(paths[i], 4200, "%s/%s", base, names[i]);
        if (!is_file(paths[i])) {
            struct stat sb;
            if (stat(paths[i], &sb) == 0)
                return LC_ERR(LC_ERR_INVALID, "%s: is not a regular file (a FIFO, device or folder); layca reads "
                              "regular files only", paths[i]);
            return LC_ERR(LC_ERR_NOT_FOUND, "%s: missing %s (looked for %s)", dir, names[i], paths[i]);
        }
    }
    return LC_OK;
}

lc_status lc_cifar10_load_dir(const char *dir, lc_dataset *train, lc_dataset *test)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    char base[4096];
    LC_TRY(find_base(dir, "cifar-10-batches-bin", base, sizeof base));
    static const char *const files[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                         "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    char paths[6][4200];
    LC_TRY(check_files(dir, base, paths, files, 6));
    LC_TRY(load_files(paths, 5, &CIFAR10, train));
    lc_status st = load_files(paths + 5, 1, &CIFAR10, test);
    if (st == LC_OK) {
        char meta[4200];
        snprintf(meta, sizeof meta, "%s/batches.meta.txt", base);
        st = set_names(train, test, meta, 10, CIFAR10_NAMES);
    }
    if (st != LC_OK) {
        lc_dataset_deinit(train);
        lc_dataset_deinit(test);
    }
    return st;
}

lc_status lc_cifar100_load_dir(const char *dir, bool coarse, lc_dataset *train, lc_dataset *test)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    char base[4096];
    LC_TRY(find_base(dir, "cifar-100-binary", base, sizeof base));
    static const char *const files[2] = {"train.bin", "test.bin"};
    char paths[2][4200];
    LC_TRY(check_files(dir, base, paths, files, 2));
    const cifar_kind *k = coarse ? &CIFAR100_COARSE : &CIFAR100_FINE;
    LC_TRY(load_files(paths, 1, k, train));
    lc_status st = load_files(paths + 1, 1, k, test);
    if (st == LC_OK) {
        char meta[4200];
        snprintf(meta, sizeof meta, "%s/%s", base, coarse ? "coarse_label_names.txt" : "fine_label_names.txt");
        st = set_names(train, test, meta, k->classes, NULL);
    }
    if (st != LC_OK) {
        lc_dataset_deinit(train);
        lc_dataset_deinit(test);
    }
    return st;
}
