/* Image folders (train/<class>/ and test/<class>/ images, or Tiny ImageNet's layout)
 * decoded into data sets, with a binary cache of each decoded split.
 *
 * Cache file (<cache>/<32 hex digits of the key>.lcimg), little-endian:
 *   0   "LCIMG\0\0\1"                  magic and version
 *   8   key, 16 bytes                  hash of layout, real folder path, split, class
 *                                      names, and every file's relative path, label,
 *                                      size and modification time
 *   24  n (u64), c, h, w, classes (u32 each)
 *   48  names_len (u64), then classes x (u32 length + bytes)
 *   ..  n labels (u32)
 *   ..  n*c*h*w pixels (u8, CHW per example)
 *   ..  checksum (u64) of every byte before it
 * An entry is used only if every field matches what the listing expects and
 * the checksum holds; otherwise it is decoded again and rewritten. */
#include "lc_data.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CACHE_MAGIC "LCIMG\0\0\1"
#define CACHE_HDR 56
#define PROGRESS_EVERY_S 5.0

/* ---- small growable containers ---- */

typedef struct strlist {
    char **v;
    int64_t n, cap;
} strlist;

static void strlist_free(strlist *l)
{
    for (int64_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static lc_status strlist_push(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        int64_t nc = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, (size_t)nc * sizeof *nv);
        if (!nv) return LC_ERR(LC_ERR_NOMEM, "out of memory listing files");
        l->v = nv;
        l->cap = nc;
    }
    size_t k = strlen(s);
    l->v[l->n] = malloc(k + 1);
    if (!l->v[l->n]) return LC_ERR(LC_ERR_NOMEM, "out of memory listing files");
    memcpy(l->v[l->n], s, k + 1);
    l->n++;
    return LC_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct bytebuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} bytebuf;

static void buf_put(bytebuf *b, const void *data, size_t k)
{
    if (b->oom) return;
    if (b->n + k > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + k) nc *= 2;
        uint8_t *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, data, k);
    b->n += k;
}

static void buf_u64(bytebuf *b, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++) t[i] = (uint8_t)(v >> (8 * i));
    buf_put(b, t, 8);
}

static void buf_str(bytebuf *b, const char *s)
{
    uint64_t k = strlen(s);
    buf_u64(b, k);
    buf_put(b, s, (size_t)k);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

/* A fast 64-bit checksum (8 bytes per step); not cryptographic, catches corruption. */
static uint64_t checksum(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h ^= w * 0xff51afd7ed558ccdULL;
        h = (h << 31 | h >> 33) * 0xc4ceb9fe1a85ec53ULL;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* ---- listing ---- */

/* out = a/b; an over-long path is an error. */
static lc_status join(char *out, size_t cap, const char *a, const char *b)
{
    int k = snprintf(out, cap, "%s/%s", a, b);
    if (k < 0 || (size_t)k >= cap) return LC_ERR(LC_ERR_INVALID, "%s/%s: path is too long", a, b);
    return LC_OK;
}

static bool is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return false;
    static const char *const ext[] = {".jpg", ".jpeg", ".png"};
    for (size_t i = 0; i < LC_COUNTOF(ext); i++) {
        const char *a = dot, *b = ext[i];
        while (*a && *b && (*a | 0x20) == *b) a++, b++;
        if (!*a && !*b) return true;
    }
    return false;
}

/* Sorted names in `path`: subfolders (dirs) or image files (!dirs); hidden names skipped. */
static lc_status list_names(const char *path, bool dirs, strlist *out)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(path);
    if (!d) return LC_ERR(errno == ENOENT ? LC_ERR_NOT_FOUND : LC_ERR_IO, "%s: cannot open folder: %s", path,
                          strerror(errno));
    lc_status st = LC_OK;
    struct dirent *e;
    char sub[4096];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (!dirs && !has_image_ext(e->d_name)) continue;
        int k = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (k < 0 || (size_t)k >= sizeof sub) {
            st = LC_ERR(LC_ERR_INVALID, "%s/%s: path is too long", path, e->d_name);
            break;
        }
        struct stat sb;
        if (stat(sub, &sb) != 0) continue; /* dangling link */
        if (dirs ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode)) continue;
        st = strlist_push(out, e->d_name);
        if (st != LC_OK) break;
    }
    closedir(d);
    if (st != LC_OK) {
        strlist_free(out);
        return st;
    }
    if (out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return LC_OK;
}

/* One split: full paths and labels, in load order. */
typedef struct split_list {
    const char *name;  /* "train", "test" */
    strlist paths;
    int32_t *labels;
    int64_t cap;
    bytebuf key;       /* bytes hashed into the cache key */
} split_list;

static void split_free(split_list *s)
{
    strlist_free(&s->paths);
    free(s->labels);
    free(s->key.p);
    memset(s, 0, sizeof *s);
}

static lc_status split_add(split_list *s, const char *root, const char *path, int32_t label)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return LC_ERR(LC_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (s->paths.n == s->cap) {
        int64_t nc = s->cap ? s->cap * 2 : 256;
        int32_t *nl = realloc(s->labels, (size_t)nc * sizeof *nl);
        if (!nl) return LC_ERR(LC_ERR_NOMEM, "out of memory listing files");
        s->labels = nl;
        s->cap = nc;
    }
    LC_TRY(strlist_push(&s->paths, path));
    s->labels[s->paths.n - 1] = label;
    size_t rl = strlen(root);
    buf_str(&s->key, strncmp(path, root, rl) == 0 ? path + rl : path);
    buf_u64(&s->key, (uint64_t)label);
    buf_u64(&s->key, (uint64_t)sb.st_size);
    buf_u64(&s->key, (uint64_t)sb.st_mtim.tv_sec);
    buf_u64(&s->key, (uint64_t)sb.st_mtim.tv_nsec);
    if (s->key.oom) return LC_ERR(LC_ERR_NOMEM, "out of memory listing files");
    return LC_OK;
}

/* Adds the image files of folder `path` with `label`; an empty one is an error. */
static lc_status add_class_folder(split_list *s, const char *root, const char *path, int32_t label,
                                  const char *class_name)
{
    strlist files;
    LC_TRY(list_names(path, false, &files));
    lc_status st = LC_OK;
    if (files.n == 0)
        st = LC_ERR(LC_ERR_INVALID, "%s: class folder '%s' of the %s split holds no images (*.jpg, *.jpeg, *.png)",
                    path, class_name, s->name);
    char p[8192];
    for (int64_t i = 0; i < files.n && st == LC_OK; i++) {
        st = join(p, sizeof p, path, files.v[i]);
        if (st == LC_OK) st = split_add(s, root, p, label);
    }
    strlist_free(&files);
    return st;
}

static int find_name(const strlist *sorted, const char *name)
{
    int64_t lo = 0, hi = sorted->n - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        int c = strcmp(sorted->v[mid], name);
        if (c == 0) return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* "a, b, c" (at most ~20 names) for messages. */
static void names_str(const strlist *l, char *buf, size_t cap)
{
    size_t at = 0;
    buf[0] = 0;
    for (int64_t i = 0; i < l->n && at + 1 < cap; i++) {
        if (i == 20) {
            snprintf(buf + at, cap - at, ", ... (%lld in all)", (long long)l->n);
            return;
        }
        int k = snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", l->v[i]);
        if (k < 0) return;
        at += (size_t)k;
    }
}

static lc_status list_folders_layout(const char *dir, const char *root, const strlist *classes, split_list *tr,
                                     split_list *te)
{
    char p[8192], q[8192], known[1024];
    snprintf(q, sizeof q, "%s/test", dir);
    if (!is_dir(q)) {
        snprintf(p, sizeof p, "%s/val/val_annotations.txt", dir);
        struct stat sb;
        if (stat(p, &sb) == 0)
            return LC_ERR(LC_ERR_NOT_FOUND, "%s: no test folder, but %s exists: for Tiny ImageNet use tinyimagenet:%s",
                          dir, p, dir);
        return LC_ERR(LC_ERR_NOT_FOUND, "%s: missing the test folder %s (expected test/<class>/ images)", dir, q);
    }
    for (int64_t c = 0; c < classes->n; c++) {
        snprintf(p, sizeof p, "%s/train/%s", dir, classes->v[c]);
        LC_TRY(add_class_folder(tr, root, p, (int32_t)c, classes->v[c]));
    }
    strlist tc;
    LC_TRY(list_names(q, true, &tc));
    names_str(classes, known, sizeof known);
    lc_status st = LC_OK;
    for (int64_t i = 0; i < tc.n && st == LC_OK; i++)
        if (find_name(classes, tc.v[i]) < 0)
            st = LC_ERR(LC_ERR_INVALID, "%s/%s: unknown class folder '%s' in test (the train classes are: %s)", q,
                        tc.v[i], tc.v[i], known);
    for (int64_t c = 0; c < classes->n && st == LC_OK; c++) {
        if (find_name(&tc, classes->v[c]) < 0) {
            st = LC_ERR(LC_ERR_NOT_FOUND, "%s: missing class folder '%s' in test (train has %s/train/%s)", q,
                        classes->v[c], dir, classes->v[c]);
            break;
        }
        st = join(p, sizeof p, q, classes->v[c]);
        if (st == LC_OK) st = add_class_folder(te, root, p, (int32_t)c, classes->v[c]);
    }
    strlist_free(&tc);
    return st;
}

/* Tiny ImageNet: train/<wnid>/images/, val/images/ + val/val_annotations.txt. */
typedef struct annot {
    char *file;
    int32_t label;
    int line;
} annot;

static int cmp_annot(const void *a, const void *b) { return strcmp(((const annot *)a)->file, ((const annot *)b)->file); }

static lc_status list_tiny_layout(const char *dir, const char *root, const strlist *classes, split_list *tr,
                                  split_list *te)
{
    char p[8192], known[1024];
    for (int64_t c = 0; c < classes->n; c++) {
        snprintf(p, sizeof p, "%s/train/%s/images", dir, classes->v[c]);
        if (!is_dir(p))
            return LC_ERR(LC_ERR_NOT_FOUND, "%s: missing folder (Tiny ImageNet keeps train/<wnid>/images/)", p);
        LC_TRY(add_class_folder(tr, root, p, (int32_t)c, classes->v[c]));
    }
    char ap[8192];
    snprintf(ap, sizeof ap, "%s/val/val_annotations.txt", dir);
    uint8_t *b;
    size_t len;
    lc_status st = lc_file_read(ap, &b, &len);
    if (st != LC_OK)
        return LC_ERR(LC_ERR_NOT_FOUND, "%s: missing val/val_annotations.txt for the Tiny ImageNet test split (%s)",
                      dir, lc_error_message());
    names_str(classes, known, sizeof known);
    annot *an = NULL;
    int64_t na = 0, cap = 0;
    size_t i = 0;
    int line = 0;
    while (i < len && st == LC_OK) {
        size_t j = i;
        while (j < len && b[j] != '\n') j++;
        line++;
        size_t e = j;
        while (e > i && (b[e - 1] == '\r' || b[e - 1] == ' ')) e--;
        if (e > i) {
            /* file \t wnid [\t ...] */
            size_t t1 = i;
            while (t1 < e && b[t1] != '\t') t1++;
            size_t t2 = t1 < e ? t1 + 1 : e;
            while (t2 < e && b[t2] != '\t') t2++;
            if (t1 == i || t1 >= e || t2 == t1 + 1) {
                st = LC_ERR(LC_ERR_FORMAT, "%s:%d: expected 'file<TAB>wnid...'", ap, line);
                break;
            }
            char wnid[256];
            size_t wl = LC_MIN(t2 - t1 - 1, sizeof wnid - 1);
            memcpy(wnid, b + t1 + 1, wl);
            wnid[wl] = 0;
            int label = find_name(classes, wnid);
            if (label < 0) {
                st = LC_ERR(LC_ERR_FORMAT, "%s:%d: class '%s' is not a folder of train/ (the train classes are: %s)",
                            ap, line, wnid, known);
                break;
            }
            if (na == cap) {
                cap = cap ? cap * 2 : 1024;
                annot *nn = realloc(an, (size_t)cap * sizeof *an);
                if (!nn) {
                    st = LC_ERR(LC_ERR_NOMEM, "%s: out of memory", ap);
                    break;
                }
                an = nn;
            }
            an[na].file = malloc(t1 - i + 1);
            if (!an[na].file) {
                st = LC_ERR(LC_ERR_NOMEM, "%s: out of memory", ap);
                break;
            }
            memcpy(an[na].file, b + i, t1 - i);
            an[na].file[t1 - i] = 0;
            an[na].label = (int32_t)label;
            an[na].line = line;
            na++;
        }
        i = j + 1;
    }
    free(b);
    strlist files = {0};
    if (st == LC_OK && na == 0)
        st = LC_ERR(LC_ERR_FORMAT, "%s: lists no images (expected lines 'file<TAB>wnid...' for val/images/)", ap);
    if (st == LC_OK) {
        qsort(an, (size_t)na, sizeof *an, cmp_annot);
        for (int64_t k = 1; k < na && st == LC_OK; k++)
            if (strcmp(an[k - 1].file, an[k].file) == 0)
                st = LC_ERR(LC_ERR_FORMAT, "%s:%d: '%s' is annotated twice (also line %d)", ap, an[k].line,
                            an[k].file, an[k - 1].line);
    }
    if (st == LC_OK) {
        snprintf(p, sizeof p, "%s/val/images", dir);
        st = list_names(p, false, &files);
        if (st == LC_OK && files.n == 0) st = LC_ERR(LC_ERR_INVALID, "%s: holds no images", p);
    }
    for (int64_t k = 0; k < files.n && st == LC_OK; k++) {
        annot key = {.file = files.v[k]};
        annot *hit = bsearch(&key, an, (size_t)na, sizeof *an, cmp_annot);
        char fp[8192];
        st = join(fp, sizeof fp, p, files.v[k]);
        if (st != LC_OK) break;
        if (!hit) {
            st = LC_ERR(LC_ERR_FORMAT, "%s: not listed in %s", fp, ap);
            break;
        }
        st = split_add(te, root, fp, hit->label);
    }
    strlist_free(&files);
    for (int64_t k = 0; k < na; k++) free(an[k].file);
    free(an);
    return st;
}

/* ---- cache ---- */

static lc_status cache_folder(const lc_images_opts *o, char *out, size_t cap)
{
    out[0] = 0;
    if (o->no_cache) return LC_OK;
    int k;
    if (o->cache_dir && *o->cache_dir)
        k = snprintf(out, cap, "%s", o->cache_dir);
    else {
        char base[4096];
        lc_cache_dir(base, sizeof base); /* the folder the program cache uses too */
        if (!base[0]) return LC_OK;      /* off, or nowhere to cache */
        k = snprintf(out, cap, "%s/data", base);
    }
    if (k < 0 || (size_t)k >= cap) out[0] = 0;
    return LC_OK;
}

static void split_cache_key(const split_list *s, uint8_t key[16])
{
    uint64_t a = lc_hash64(s->key.p, s->key.n, 0x6c63696d67ULL), b = lc_hash64(s->key.p, s->key.n, a ^ 0x9e3779b97f4a7c15ULL);
    put_u64(key, a);
    put_u64(key + 8, b);
}

/* Layout of a cache file of n examples, h x w, with the names block. */
static size_t names_block(const strlist *classes)
{
    size_t k = 0;
    for (int64_t c = 0; c < classes->n; c++) k += 4 + strlen(classes->v[c]);
    return k;
}

/* Checks a cache file against the expected listing; on success *pix points at the pixels. */
static bool cache_valid(const uint8_t *b, size_t len, const uint8_t key[16], const split_list *s,
                        const strlist *classes, int *h, int *w, const uint8_t **pix, const char **why)
{
    *why = "too short";
    if (len < CACHE_HDR + 8) return false;
    *why = "bad magic";
    if (memcmp(b, CACHE_MAGIC, 8) != 0) return false;
    *why = "key mismatch";
    if (memcmp(b + 8, key, 16) != 0) return false;
    uint64_t n = get_u64(b + 24);
    uint32_t c = get_u32(b + 32), hh = get_u32(b + 36), ww = get_u32(b + 40), nc = get_u32(b + 44);
    uint64_t nl = get_u64(b + 48);
    *why = "header mismatch";
    if (n != (uint64_t)s->paths.n || c != 3 || hh == 0 || ww == 0 || hh > 16384 || ww > 16384 ||
        nc != (uint32_t)classes->n || nl != names_block(classes))
        return false;
    uint64_t per = 3ULL * hh * ww;
    if (per != 0 && n > (SIZE_MAX - 4096) / (per + 4)) return false;
    size_t want = CACHE_HDR + (size_t)nl + (size_t)n * 4 + (size_t)(n * per) + 8;
    *why = "size mismatch";
    if (len != want) return false;
    *why = "checksum mismatch";
    if (checksum(b, len - 8) != get_u64(b + len - 8)) return false;
    *why = "class names differ";
    const uint8_t *p = b + CACHE_HDR;
    for (int64_t i = 0; i < classes->n; i++) {
        uint32_t k = get_u32(p);
        if (k != strlen(classes->v[i]) || memcmp(p + 4, classes->v[i], k) != 0) return false;
        p += 4 + k;
    }
    *why = "labels differ";
    for (uint64_t i = 0; i < n; i++)
        if (get_u32(p + 4 * i) != (uint32_t)s->labels[i]) return false;
    *h = (int)hh;
    *w = (int)ww;
    *pix = p + 4 * n;
    return true;
}

/* ---- decoding a split ---- */

static lc_status to_dataset(const uint8_t *pix, int64_t n, int h, int w, const split_list *s, int classes,
                            lc_dataset *out)
{
    LC_TRY(lc_dataset_alloc(out, n, 3, h, w, classes));
    size_t total = (size_t)n * 3 * (size_t)h * (size_t)w;
    for (size_t i = 0; i < total; i++) out->x[i] = (float)pix[i] / 255.0f;
    memcpy(out->y, s->labels, (size_t)n * sizeof(int32_t));
    return LC_OK;
}

/* Decodes every file of the split into a cache image (header + pixels +
 * checksum) in *file; the pixels are at *pix. */
static lc_status decode_split(const split_list *s, const strlist *classes, const uint8_t key[16], bool quiet,
                              uint8_t **file, size_t *file_len, const uint8_t **pix, int *oh, int *ow)
{
    *file = NULL;
    int64_t n = s->paths.n;
    size_t nb = names_block(classes), pix_at = CACHE_HDR + nb + (size_t)n * 4;
    uint8_t *b = NULL;
    int h = 0, w = 0;
    size_t per = 0, len = 0;
    double t0 = lc_now_s(), last = t0;
    bool reported = false;
    lc_status st = LC_OK;
    for (int64_t i = 0; i < n; i++) {
        const char *path = s->paths.v[i];
        uint8_t *bytes;
        size_t blen;
        st = lc_file_read(path, &bytes, &blen);
        if (st != LC_OK) break;
        lc_image im;
        st = lc_image_decode(bytes, blen, path, &im);
        free(bytes);
        if (st != LC_OK) break;
        if (i == 0) {
            h = im.h;
            w = im.w;
            per = 3 * (size_t)h * (size_t)w;
            if ((size_t)n > (SIZE_MAX - pix_at - 8) / per) {
                lc_image_deinit(&im);
                st = LC_ERR(LC_ERR_NOMEM, "%s split: %lld images of %dx%d are too large", s->name, (long long)n, w, h);
                break;
            }
            len = pix_at + (size_t)n * per + 8;
            b = malloc(len);
            if (!b) {
                lc_image_deinit(&im);
                st = LC_ERR(LC_ERR_NOMEM, "%s split: out of memory for %lld images of %dx%d (%zu bytes)", s->name,
                            (long long)n, w, h, len);
                break;
            }
        } else if (im.w != w || im.h != h) {
            st = LC_ERR(LC_ERR_FORMAT,
                        "%s: image is %dx%d (width x height) but the %s split's first image %s is %dx%d; all images "
                        "of a split must have one size",
                        path, im.w, im.h, s->name, s->paths.v[0], w, h);
            lc_image_deinit(&im);
            break;
        }
        /* HWC -> CHW */
        uint8_t *dst = b + pix_at + (size_t)i * per;
        size_t hw = (size_t)h * (size_t)w;
        for (size_t k = 0; k < hw; k++) {
            dst[k] = im.rgb[3 * k];
            dst[hw + k] = im.rgb[3 * k + 1];
            dst[2 * hw + k] = im.rgb[3 * k + 2];
        }
        lc_image_deinit(&im);
        double now = lc_now_s();
        if (!quiet && now - last >= PROGRESS_EVERY_S) {
            LC_INFO("decoding %s: %lld/%lld images", s->name, (long long)(i + 1), (long long)n);
            last = now;
            reported = true;
        }
    }
    if (st != LC_OK) {
        free(b);
        return st;
    }
    if (!quiet && reported) LC_INFO("decoded %s: %lld images in %.1f s", s->name, (long long)n, lc_now_s() - t0);
    memcpy(b, CACHE_MAGIC, 8);
    memcpy(b + 8, key, 16);
    put_u64(b + 24, (uint64_t)n);
    put_u32(b + 32, 3);
    put_u32(b + 36, (uint32_t)h);
    put_u32(b + 40, (uint32_t)w);
    put_u32(b + 44, (uint32_t)classes->n);
    put_u64(b + 48, nb);
    uint8_t *p = b + CACHE_HDR;
    for (int64_t c = 0; c < classes->n; c++) {
        uint32_t k = (uint32_t)strlen(classes->v[c]);
        put_u32(p, k);
        memcpy(p + 4, classes->v[c], k);
        p += 4 + k;
    }
    for (int64_t i = 0; i < n; i++) put_u32(p + 4 * i, (uint32_t)s->labels[i]);
    put_u64(b + len - 8, checksum(b, len - 8));
    *file = b;
    *file_len = len;
    *pix = b + pix_at;
    *oh = h;
    *ow = w;
    return LC_OK;
}

static lc_status load_split(const split_list *s, const strlist *classes, const char *cache_dir, bool quiet,
                            lc_dataset *out, int *from_cache, char *cache_path, size_t cp_cap)
{
    *from_cache = 0;
    cache_path[0] = 0;
    uint8_t key[16];
    split_cache_key(s, key);
    if (cache_dir[0]) {
        char hex[33];
        for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", key[i]);
        int k = snprintf(cache_path, cp_cap, "%s/%s.lcimg", cache_dir, hex);
        if (k < 0 || (size_t)k >= cp_cap) cache_path[0] = 0;
    }
    if (cache_path[0]) {
        struct stat sb;
        if (stat(cache_path, &sb) == 0) {
            uint8_t *b;
            size_t len;
            if (lc_file_read(cache_path, &b, &len) == LC_OK) {
                int h, w;
                const uint8_t *pix;
                const char *why;
                if (cache_valid(b, len, key, s, classes, &h, &w, &pix, &why)) {
                    lc_status st = to_dataset(pix, s->paths.n, h, w, s, (int)classes->n, out);
                    free(b);
                    if (st == LC_OK) *from_cache = 1;
                    return st;
                }
                free(b);
                if (!quiet) LC_WARN("%s: cache entry is unusable (%s); decoding the %s split again", cache_path, why,
                                    s->name);
            } else {
                lc_error_clear();
            }
        }
    }
    uint8_t *file;
    size_t len;
    const uint8_t *pix;
    int h, w;
    LC_TRY(decode_split(s, classes, key, quiet, &file, &len, &pix, &h, &w));
    if (cache_path[0]) {
        lc_status cst = lc_mkdirs(cache_dir);
        if (cst == LC_OK) cst = lc_file_write_atomic(cache_path, file, len);
        if (cst != LC_OK) {
            /* A cache that cannot be written costs time, not correctness. */
            LC_WARN("cannot write the decode cache (%s); continuing without it", lc_error_message());
            lc_error_clear();
            cache_path[0] = 0;
        }
    }
    lc_status st = to_dataset(pix, s->paths.n, h, w, s, (int)classes->n, out);
    free(file);
    return st;
}

lc_status lc_images_load_dir(const char *dir, lc_images_layout layout, const lc_images_opts *opts,
                             lc_dataset *train, lc_dataset *test, lc_images_info *info)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (info) memset(info, 0, sizeof *info);
    lc_images_opts o = {0};
    if (opts) o = *opts;
    if (!dir || !*dir) return LC_ERR(LC_ERR_INVALID, "image folder: empty path");
    struct stat sb;
    if (stat(dir, &sb) != 0) return LC_ERR(LC_ERR_NOT_FOUND, "%s: cannot open image folder: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        size_t l = strlen(dir);
        if ((l > 7 && strcmp(dir + l - 7, ".tar.gz") == 0) || (l > 4 && strcmp(dir + l - 4, ".tgz") == 0) ||
            (l > 4 && strcmp(dir + l - 4, ".zip") == 0))
            return LC_ERR(LC_ERR_INVALID,
                          "%s: archives are not read; extract it first (e.g. tar xzf %s -C /some/dir, or "
                          "tools/datasets.sh cifar10-jpeg DIR) and give the folder",
                          dir, dir);
        return LC_ERR(LC_ERR_INVALID, "%s: not a folder", dir);
    }
    char root[PATH_MAX + 1], p[8192];
    if (!realpath(dir, root)) snprintf(root, sizeof root, "%s", dir);

    snprintf(p, sizeof p, "%s/train", dir);
    if (!is_dir(p))
        return LC_ERR(LC_ERR_NOT_FOUND, "%s: missing the train folder %s (expected %s)", dir, p,
                      layout == LC_IMAGES_TINYIMAGENET ? "train/<wnid>/images/" : "train/<class>/ images");
    strlist classes;
    LC_TRY(list_names(p, true, &classes));
    if (classes.n == 0) {
        strlist_free(&classes);
        return LC_ERR(LC_ERR_INVALID, "%s: no class folders in train/", dir);
    }
    if (classes.n > INT32_MAX / 2) {
        strlist_free(&classes);
        return LC_ERR(LC_ERR_INVALID, "%s: too many class folders", dir);
    }
    split_list tr = {.name = "train"}, te = {.name = layout == LC_IMAGES_TINYIMAGENET ? "val" : "test"};
    /* The key's common part: format, layout, folder, split, classes. */
    for (int k = 0; k < 2; k++) {
        split_list *s = k ? &te : &tr;
        buf_str(&s->key, "layca-image-cache/1");
        buf_u64(&s->key, (uint64_t)layout);
        buf_str(&s->key, root);
        buf_str(&s->key, s->name);
        for (int64_t c = 0; c < classes.n; c++) buf_str(&s->key, classes.v[c]);
    }
    lc_status st = layout == LC_IMAGES_TINYIMAGENET ? list_tiny_layout(dir, root, &classes, &tr, &te)
                                                    : list_folders_layout(dir, root, &classes, &tr, &te);
    char cdir[4096];
    if (st == LC_OK) st = cache_folder(&o, cdir, sizeof cdir);
    lc_images_info local;
    lc_images_info *inf = info ? info : &local;
    if (st == LC_OK)
        st = load_split(&tr, &classes, cdir, o.quiet, train, &inf->from_cache[0], inf->cache_path[0],
                        sizeof inf->cache_path[0]);
    if (st == LC_OK)
        st = load_split(&te, &classes, cdir, o.quiet, test, &inf->from_cache[1], inf->cache_path[1],
                        sizeof inf->cache_path[1]);
    if (st == LC_OK && (test->h != train->h || test->w != train->w))
        st = LC_ERR(LC_ERR_FORMAT, "%s: %s images are %dx%d (first: %s) but train images are %dx%d (first: %s)", dir,
                    te.name, test->w, test->h, te.paths.v[0], train->w, train->h, tr.paths.v[0]);
    if (st == LC_OK) st = lc_dataset_set_class_names(train, (const char *const *)classes.v, (int)classes.n);
    if (st == LC_OK) st = lc_dataset_set_class_names(test, (const char *const *)classes.v, (int)classes.n);
    split_free(&tr);
    split_free(&te);
    strlist_free(&classes);
    if (st != LC_OK) {
        lc_dataset_deinit(train);
        lc_dataset_deinit(test);
    }
    return st;
}
