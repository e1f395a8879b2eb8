/* idx readers (MNIST format), raw or gzip, over bytes.
 *
 * Format: a 4-byte big-endian magic 0x0000TTDD (TT = 0x08 unsigned bytes,
 * DD = number of dimensions), DD big-endian uint32 sizes, then the data in
 * row-major order.  Images: 0x00000803, dims n, h, w.  Labels: 0x00000801,
 * dim n.
 *
 * gzip input is decompressed as a stream: the header is read first, and the
 * payload buffer grows only as decompressed data actually arrives, so a forged
 * header cannot make the parser allocate more than the data backs. */
#include "lc_data.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

/* ---- byte source: raw bytes or an inflating gzip stream ---- */

typedef struct idx_src {
    const uint8_t *bytes;
    size_t len;
    const char *where;
    bool gz;
    size_t pos;       /* raw: next byte; gzip: bytes handed to zlib so far */
    size_t produced;  /* bytes delivered to the reader */
    bool ended;       /* gzip: final member finished */
    bool zinit;
    z_stream zs;
} idx_src;

static bool is_gzip(const uint8_t *b, size_t len) { return len >= 2 && b[0] == 0x1f && b[1] == 0x8b; }

static lc_status src_open(idx_src *s, const uint8_t *bytes, size_t len, const char *where)
{
    memset(s, 0, sizeof *s);
    s->bytes = bytes;
    s->len = len;
    s->where = where;
    s->gz = is_gzip(bytes, len);
    if (!s->gz) return LC_OK;
    /* 16 + MAX_WBITS: gzip wrapper only (header and CRC-32 trailer checked). */
    int r = inflateInit2(&s->zs, 16 + MAX_WBITS);
    if (r != Z_OK)
        return LC_ERR(r == Z_MEM_ERROR ? LC_ERR_NOMEM : LC_ERR_FORMAT, "%s: inflateInit2 failed (zlib %d)",
                      where, r);
    s->zinit = true;
    return LC_OK;
}

static void src_close(idx_src *s)
{
    if (s->zinit) inflateEnd(&s->zs);
    s->zinit = false;
}

/* Reads up to n bytes into buf; *got < n only at the end of the data. */
static lc_status src_read(idx_src *s, uint8_t *buf, size_t n, size_t *got)
{
    *got = 0;
    if (!s->gz) {
        size_t k = LC_MIN(n, s->len - s->pos);
        memcpy(buf, s->bytes + s->pos, k);
        s->pos += k;
        s->produced += k;
        *got = k;
        return LC_OK;
    }
    /* zlib counts in uInt, so feed input and take output in chunks. */
    const size_t chunk = (size_t)1 << 30;
    while (*got < n && !s->ended) {
        if (s->zs.avail_in == 0 && s->pos < s->len) {
            size_t k = LC_MIN(chunk, s->len - s->pos);
            s->zs.next_in = (Bytef *)(uintptr_t)(s->bytes + s->pos);
            s->zs.avail_in = (uInt)k;
            s->pos += k;
        }
        size_t want = LC_MIN(chunk, n - *got);
        s->zs.next_out = buf + *got;
        s->zs.avail_out = (uInt)want;
        int r = inflate(&s->zs, Z_NO_FLUSH);
        size_t made = want - s->zs.avail_out;
        *got += made;
        s->produced += made;
        size_t consumed = s->pos - s->zs.avail_in; /* offset of the next unread compressed byte */
        if (r == Z_STREAM_END) {
            /* A gzip file may hold several members back to back. */
            if (is_gzip(s->bytes + consumed, s->len - consumed)) {
                inflateReset(&s->zs);
                continue;
            }
            if (consumed < s->len)
                return LC_ERR(LC_ERR_FORMAT, "%s: %zu trailing bytes after the gzip stream (at offset %zu)",
                              s->where, s->len - consumed, consumed);
            s->ended = true;
            break;
        }
        if (r == Z_OK) continue;
        if (r == Z_BUF_ERROR && s->zs.avail_in == 0 && s->pos == s->len)
            return LC_ERR(LC_ERR_FORMAT,
                          "%s: gzip stream is truncated (the %zu compressed bytes end before the stream does, "
                          "after %zu decompressed bytes)",
                          s->where, s->len, s->produced);
        if (r == Z_MEM_ERROR) return LC_ERR(LC_ERR_NOMEM, "%s: out of memory in inflate", s->where);
        return LC_ERR(LC_ERR_FORMAT, "%s: corrupt gzip stream at compressed offset %zu: %s (zlib %d)", s->where,
                      consumed, s->zs.msg ? s->zs.msg : "no detail", r);
    }
    return LC_OK;
}

/* ---- idx header and payload ---- */

typedef struct idx_kind {
    uint32_t magic;
    int ndims;
    const char *what; /* "an image file" */
    const char *noun; /* "images" */
} idx_kind;

static const idx_kind IDX_IMAGES = {LC_IDX_MAGIC_IMAGES, 3, "an image file", "images"};
static const idx_kind IDX_LABELS = {LC_IDX_MAGIC_LABELS, 1, "a label file", "labels"};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads and checks the header, then the whole payload.  On success *payload
 * points either into `bytes` (raw input, *owned = NULL) or to a buffer the
 * caller frees (*owned). */
static lc_status idx_read(const uint8_t *bytes, size_t len, const char *where, const idx_kind *k, uint32_t dims[3],
                          const uint8_t **payload, uint8_t **owned, size_t *payload_len)
{
    *payload = NULL;
    *owned = NULL;
    *payload_len = 0;
    if (!where) where = "<memory>";
    if (!bytes || len == 0) return LC_ERR(LC_ERR_FORMAT, "%s: empty file (expected an idx header)", where);

    idx_src s;
    lc_status st = src_open(&s, bytes, len, where);
    if (st != LC_OK) return st;

    uint8_t hdr[16];
    size_t hdr_len = 4 + 4 * (size_t)k->ndims, got = 0;
    st = src_read(&s, hdr, 4, &got);
    if (st != LC_OK) goto fail;
    if (got < 4) {
        st = LC_ERR(LC_ERR_FORMAT, "%s: %zu%s bytes is too short for an idx header (needs %zu)", where, got,
                    s.gz ? " decompressed" : "", hdr_len);
        goto fail;
    }
    uint32_t magic = be32(hdr);
    if (magic != k->magic) {
        st = LC_ERR(LC_ERR_FORMAT, "%s: idx magic 0x%08x is not %s (expected 0x%08x)", where, magic, k->what,
                    k->magic);
        goto fail;
    }
    st = src_read(&s, hdr + 4, hdr_len - 4, &got);
    if (st != LC_OK) goto fail;
    if (got < hdr_len - 4) {
        st = LC_ERR(LC_ERR_FORMAT, "%s: idx header is truncated (%zu of %zu bytes)", where, 4 + got, hdr_len);
        goto fail;
    }
    for (int i = 0; i < k->ndims; i++) dims[i] = be32(hdr + 4 + 4 * i);

    /* Validate the dimensions before sizing anything. */
    if (dims[0] == 0) {
        st = LC_ERR(LC_ERR_FORMAT, "%s: header declares zero examples", where);
        goto fail;
    }
    if (dims[0] > INT32_MAX) {
        st = LC_ERR(LC_ERR_FORMAT, "%s: header declares %u examples, more than the supported %d", where, dims[0],
                    INT32_MAX);
        goto fail;
    }
    uint64_t per = 1;
    if (k->ndims == 3) {
        if (dims[1] == 0 || dims[2] == 0 || dims[1] > INT32_MAX || dims[2] > INT32_MAX) {
            st = LC_ERR(LC_ERR_FORMAT, "%s: header declares an invalid image size %ux%u", where, dims[1], dims[2]);
            goto fail;
        }
        per = (uint64_t)dims[1] * dims[2];
    }
    /* Floats for the whole set must be addressable: n * per * 4 <= SIZE_MAX. */
    if (per > (uint64_t)INT32_MAX || per > (uint64_t)(SIZE_MAX / sizeof(float)) / dims[0]) {
        st = LC_ERR(LC_ERR_FORMAT, "%s: header declares %u %s of %llu bytes each, too large", where, dims[0],
                    k->noun, (unsigned long long)per);
        goto fail;
    }
    size_t need = (size_t)(per * dims[0]);

    if (!s.gz) {
        /* Raw: the file length is known, check it exactly and use the bytes in place. */
        size_t have = len - hdr_len;
        if (have != need) {
            st = LC_ERR(LC_ERR_FORMAT, "%s: %s: header declares %u %s (%zu bytes of data, file size %zu) but the file has %zu",
                        where, have < need ? "truncated" : "too long", dims[0], k->noun, need, hdr_len + need, len);
            goto fail;
        }
        *payload = bytes + hdr_len;
        *payload_len = need;
        src_close(&s);
        return LC_OK;
    }

    /* gzip: grow the buffer as data arrives (never beyond what the header declares). */
    size_t cap = LC_MIN(need, (size_t)1 << 20), have = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        st = LC_ERR(LC_ERR_NOMEM, "%s: out of memory (%zu bytes)", where, cap);
        goto fail;
    }
    for (;;) {
        st = src_read(&s, buf + have, cap - have, &got);
        have += got;
        if (st != LC_OK) break;
        if (have < cap) break; /* end of data */
        if (have == need) break;
        size_t ncap = cap > need / 2 ? need : cap * 2;
        uint8_t *nb = realloc(buf, ncap);
        if (!nb) {
            st = LC_ERR(LC_ERR_NOMEM, "%s: out of memory (%zu bytes)", where, ncap);
            break;
        }
        buf = nb;
        cap = ncap;
    }
    if (st == LC_OK && have < need)
        st = LC_ERR(LC_ERR_FORMAT,
                    "%s: truncated: header declares %u %s (%zu bytes of data, %zu decompressed) but the gzip data "
                    "holds %zu",
                    where, dims[0], k->noun, need, hdr_len + need, hdr_len + have);
    if (st == LC_OK) {
        /* Drive the stream to its end: verifies the CRC trailer and finds extra data. */
        uint8_t extra[4096];
        st = src_read(&s, extra, sizeof extra, &got);
        if (st == LC_OK && got > 0) {
            size_t total = hdr_len + need + got;
            while (st == LC_OK && got == sizeof extra) {
                st = src_read(&s, extra, sizeof extra, &got);
                total += got;
            }
            if (st == LC_OK)
                st = LC_ERR(LC_ERR_FORMAT,
                            "%s: too long: header declares %u %s (%zu bytes decompressed) but the gzip data holds %zu",
                            where, dims[0], k->noun, hdr_len + need, total);
        }
    }
    if (st != LC_OK) {
        free(buf);
        goto fail;
    }
    *payload = buf;
    *owned = buf;
    *payload_len = need;
    src_close(&s);
    return LC_OK;

fail:
    src_close(&s);
    return st;
}

lc_status lc_idx_parse_images(const uint8_t *bytes, size_t len, const char *where, lc_dataset *out)
{
    memset(out, 0, sizeof *out);
    uint32_t dims[3] = {0, 0, 0};
    const uint8_t *p;
    uint8_t *owned;
    size_t plen;
    LC_TRY(idx_read(bytes, len, where, &IDX_IMAGES, dims, &p, &owned, &plen));
    float *x = malloc(plen * sizeof *x);
    if (!x) {
        free(owned);
        return LC_ERR(LC_ERR_NOMEM, "%s: out of memory (%zu floats)", where ? where : "<memory>", plen);
    }
    for (size_t i = 0; i < plen; i++) x[i] = (float)p[i] / 255.0f;
    free(owned);
    out->n = dims[0];
    out->c = 1;
    out->h = (int)dims[1];
    out->w = (int)dims[2];
    out->x = x;
    return LC_OK;
}

lc_status lc_idx_parse_labels(const uint8_t *bytes, size_t len, const char *where, int32_t **labels, int64_t *n)
{
    *labels = NULL;
    *n = 0;
    uint32_t dims[3] = {0, 0, 0};
    const uint8_t *p;
    uint8_t *owned;
    size_t plen;
    LC_TRY(idx_read(bytes, len, where, &IDX_LABELS, dims, &p, &owned, &plen));
    int32_t *y = malloc(plen * sizeof *y);
    if (!y) {
        free(owned);
        return LC_ERR(LC_ERR_NOMEM, "%s: out of memory (%zu labels)", where ? where : "<memory>", plen);
    }
    for (size_t i = 0; i < plen; i++) y[i] = p[i];
    free(owned);
    *labels = y;
    *n = (int64_t)plen;
    return LC_OK;
}

lc_status lc_idx_load_pair(const char *images_path, const char *labels_path, int classes, lc_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (classes < 1 || classes > 256)
        return LC_ERR(LC_ERR_INVALID, "%s: classes = %d is out of range for byte labels (1..256)", labels_path,
                      classes);
    uint8_t *bytes;
    size_t len;
    lc_dataset d;
    LC_TRY(lc_file_read(images_path, &bytes, &len));
    lc_status st = lc_idx_parse_images(bytes, len, images_path, &d);
    free(bytes);
    if (st != LC_OK) return st;

    int32_t *y;
    int64_t ny;
    st = lc_file_read(labels_path, &bytes, &len);
    if (st != LC_OK) goto fail;
    st = lc_idx_parse_labels(bytes, len, labels_path, &y, &ny);
    free(bytes);
    if (st != LC_OK) goto fail;
    d.y = y;
    if (ny != d.n) {
        st = LC_ERR(LC_ERR_FORMAT, "%s has %lld images but %s has %lld labels", images_path, (long long)d.n,
                    labels_path, (long long)ny);
        goto fail;
    }
    for (int64_t i = 0; i < ny; i++) {
        if (y[i] >= classes) {
            st = LC_ERR(LC_ERR_FORMAT, "%s: label %d at index %lld is out of range (classes = %d)", labels_path,
                        (int)y[i], (long long)i, classes);
            goto fail;
        }
    }
    d.classes = classes;
    *out = d;
    return LC_OK;

fail:
    lc_dataset_deinit(&d);
    return st;
}

/* ---- MNIST folder ---- */

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Finds base (or its dotted variant), raw or .gz, in dir; writes the path. */
static lc_status find_idx(const char *dir, const char *base, char *path, size_t cap)
{
    /* "train-images-idx3-ubyte" -> "train-images.idx3-ubyte" (another common spelling). */
    char dotted[64];
    snprintf(dotted, sizeof dotted, "%s", base);
    char *dash = strstr(dotted, "-idx");
    if (dash) *dash = '.';
    const char *names[2] = {base, dotted};
    const char *sfx[2] = {"", ".gz"};
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++) {
            int k = snprintf(path, cap, "%s/%s%s", dir, names[i], sfx[j]);
            if (k < 0 || (size_t)k >= cap) return LC_ERR(LC_ERR_INVALID, "%s: folder path is too long", dir);
            if (is_file(path)) return LC_OK;
            struct stat sb;
            if (stat(path, &sb) == 0)
                return LC_ERR(LC_ERR_INVALID, "%s: is not a regular file (a FIFO, device or folder); layca reads "
                              "regular files only", path);
        }
    }
    return LC_ERR(LC_ERR_NOT_FOUND, "%s: missing %s (looked for %s/%s and %s/%s.gz)", dir, base, dir, base, dir,
                  base);
}

lc_status lc_mnist_load_dir(const char *dir, lc_dataset *train, lc_dataset *test)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    struct stat sb;
    if (stat(dir, &sb) != 0) return LC_ERR(LC_ERR_NOT_FOUND, "%s: cannot open data folder: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return LC_ERR(LC_ERR_INVALID, "%s: not a folder", dir);

    static const char *const bases[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    /* Find all four first so that a missing file is reported before any slow parsing. */
    char paths[4][4096];
    for (int i = 0; i < 4; i++) LC_TRY(find_idx(dir, bases[i], paths[i], sizeof paths[i]));
    LC_TRY(lc_idx_load_pair(paths[0], paths[1], 10, train));
    lc_status st = lc_idx_load_pair(paths[2], paths[3], 10, test);
    if (st != LC_OK) {
        lc_dataset_deinit(train);
        return st;
    }
    if (test->h != train->h || test->w != train->w) {
        st = LC_ERR(LC_ERR_FORMAT, "%s: test images are %dx%d but training images are %dx%d", paths[2], test->h,
                    test->w, train->h, train->w);
        lc_dataset_deinit(train);
        lc_dataset_deinit(test);
        return st;
    }
    return LC_OK;
}
