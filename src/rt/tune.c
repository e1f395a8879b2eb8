/* CLBlast tuning files: parse, write, locate and apply (see lc_rt.h).
 * The parser is a function over (bytes, length) with no global state. */
#include "lc_rt_internal.h"

#include <clblast_c.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const known_kernels[] = {"Xgemm", "XgemmDirect", "GemmRoutine", "Copy", "Pad", "Transpose",
                                            "Padtranspose"};

static bool known_kernel(const char *s)
{
    for (size_t i = 0; i < LC_COUNTOF(known_kernels); i++)
        if (!strcmp(s, known_kernels[i])) return true;
    return false;
}

static bool known_precision(long p) { return p == 16 || p == 32 || p == 64 || p == 3232 || p == 6464; }

/* One line without its end, trimmed of trailing blanks, into buf. */
static size_t next_line(const char *text, size_t len, size_t pos, char *buf, size_t cap, bool *too_long, bool *nul)
{
    size_t e = pos;
    while (e < len && text[e] != '\n') e++;
    size_t n = e - pos;
    *nul = memchr(text + pos, 0, n) != NULL;
    *too_long = n >= cap;
    if (n >= cap) n = cap - 1;
    memcpy(buf, text + pos, n);
    buf[n] = 0;
    while (n && (buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t')) buf[--n] = 0;
    return e < len ? e + 1 : e;
}

/* A parameter name: capitals, digits and underscores, starting with a capital. */
static bool param_name_ok(const char *s, size_t n)
{
    if (n == 0 || n >= 32 || !isupper((unsigned char)s[0])) return false;
    for (size_t i = 0; i < n; i++)
        if (!isupper((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_') return false;
    return true;
}

static lc_status parse_kernel(char *rest, const char *name, int line, lc_tune_kernel *k)
{
    memset(k, 0, sizeof *k);
    char *save = NULL;
    char *kn = strtok_r(rest, " \t", &save);
    if (!kn) return LC_ERR(LC_ERR_FORMAT, "%s:%d: 'kernel' needs a kernel name, a precision and NAME=VALUE parameters", name, line);
    if (!known_kernel(kn))
        return LC_ERR(LC_ERR_FORMAT,
                      "%s:%d: unknown CLBlast kernel '%s' (expected Xgemm, XgemmDirect, GemmRoutine, Copy, Pad, "
                      "Transpose or Padtranspose)", name, line, kn);
    snprintf(k->name, sizeof k->name, "%s", kn);
    char *ps = strtok_r(NULL, " \t", &save);
    char *end = NULL;
    long prec = ps ? strtol(ps, &end, 10) : 0;
    if (!ps || *end || !known_precision(prec))
        return LC_ERR(LC_ERR_FORMAT, "%s:%d: kernel %s: precision '%s' is not one of 16, 32, 64, 3232, 6464", name,
                      line, kn, ps ? ps : "");
    k->precision = (int)prec;
    char *tok;
    while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
        char *eq = strchr(tok, '=');
        if (!eq) return LC_ERR(LC_ERR_FORMAT, "%s:%d: kernel %s: '%s' is not NAME=VALUE", name, line, kn, tok);
        if (!param_name_ok(tok, (size_t)(eq - tok)))
            return LC_ERR(LC_ERR_FORMAT, "%s:%d: kernel %s: bad parameter name in '%s' (capitals, digits, '_')", name,
                          line, kn, tok);
        *eq = 0;
        const char *vs = eq + 1;
        if (!isdigit((unsigned char)vs[0]))
            return LC_ERR(LC_ERR_FORMAT, "%s:%d: kernel %s: %s='%s' is not a non-negative integer", name, line, kn,
                          tok, vs);
        errno = 0;
        unsigned long long v = strtoull(vs, &end, 10);
        if (*end || errno || v > (1ull << 40))
            return LC_ERR(LC_ERR_FORMAT, "%s:%d: kernel %s: %s='%s' is not a non-negative integer below 2^40", name,
                          line, kn, tok, vs);
        for (int i = 0; i < k->n; i++)
            if (!strcmp(k->param[i], tok))
                return LC_ERR(LC_ERR_FORMAT, "%s:%d: kernel %s: parameter %s given twice", name, line, kn, tok);
        if (k->n == LC_TUNE_MAX_PARAMS)
            return LC_ERR(LC_ERR_FORMAT, "%s:%d: kernel %s: more than %d parameters", name, line, kn,
                          LC_TUNE_MAX_PARAMS);
        snprintf(k->param[k->n], sizeof k->param[k->n], "%s", tok);
        k->value[k->n++] = (size_t)v;
    }
    if (k->n == 0) return LC_ERR(LC_ERR_FORMAT, "%s:%d: kernel %s: no parameters", name, line, kn);
    return LC_OK;
}

lc_status lc_rt_tune_set(lc_tune_file *t, const lc_tune_kernel *k)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->kernel[i].name, k->name) && t->kernel[i].precision == k->precision) {
            t->kernel[i] = *k;
            return LC_OK;
        }
    if (t->n == LC_TUNE_MAX_KERNELS)
        return LC_ERR(LC_ERR_INVALID, "tuning file: more than %d kernels", LC_TUNE_MAX_KERNELS);
    t->kernel[t->n++] = *k;
    return LC_OK;
}

lc_status lc_rt_tune_parse(const char *text, size_t len, const char *name, lc_tune_file *out)
{
    memset(out, 0, sizeof *out);
    if (!name) name = "tuning file";
    if (!text) len = 0;
    char buf[2048];
    size_t pos = 0;
    int line = 0;
    bool header = false;
    while (pos < len) {
        bool too_long, nul;
        pos = next_line(text, len, pos, buf, sizeof buf, &too_long, &nul);
        line++;
        if (too_long) return LC_ERR(LC_ERR_FORMAT, "%s:%d: line longer than %zu bytes", name, line, sizeof buf - 1);
        if (nul) return LC_ERR(LC_ERR_FORMAT, "%s:%d: a NUL byte (not a text file)", name, line);
        const char *p = buf;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == 0 || *p == '#') continue;
        if (!header) {
            if (strncmp(p, "layca-clblast-tuning", 20) != 0 || (p[20] != ' ' && p[20] != '\t'))
                return LC_ERR(LC_ERR_FORMAT, "%s:%d: not a layca CLBlast tuning file (expected 'layca-clblast-tuning 1')",
                              name, line);
            const char *v = p + 21;
            while (*v == ' ') v++;
            if (strcmp(v, "1") != 0)
                return LC_ERR(LC_ERR_FORMAT, "%s:%d: tuning file version '%s' is not supported (this layca reads 1)",
                              name, line, v);
            header = true;
            continue;
        }
        size_t kw = strcspn(p, " \t");
        const char *rest = p + kw;
        while (*rest == ' ' || *rest == '\t') rest++;
        char *field = NULL;
        size_t cap = 0;
        if (kw == 6 && !strncmp(p, "device", 6)) field = out->device, cap = sizeof out->device;
        else if (kw == 6 && !strncmp(p, "driver", 6)) field = out->driver, cap = sizeof out->driver;
        else if (kw == 8 && !strncmp(p, "platform", 8)) field = out->platform, cap = sizeof out->platform;
        if (field) {
            if (field[0]) return LC_ERR(LC_ERR_FORMAT, "%s:%d: '%.*s' given twice", name, line, (int)kw, p);
            if (!*rest) return LC_ERR(LC_ERR_FORMAT, "%s:%d: '%.*s' needs a value", name, line, (int)kw, p);
            if (strlen(rest) >= cap) return LC_ERR(LC_ERR_FORMAT, "%s:%d: '%.*s' value too long", name, line, (int)kw, p);
            snprintf(field, cap, "%s", rest);
            continue;
        }
        if (kw == 6 && !strncmp(p, "kernel", 6)) {
            char tmp[2048];
            snprintf(tmp, sizeof tmp, "%s", rest);
            lc_tune_kernel k;
            LC_TRY(parse_kernel(tmp, name, line, &k));
            for (int i = 0; i < out->n; i++)
                if (!strcmp(out->kernel[i].name, k.name) && out->kernel[i].precision == k.precision)
                    return LC_ERR(LC_ERR_FORMAT, "%s:%d: kernel %s precision %d given twice", name, line, k.name,
                                  k.precision);
            if (out->n == LC_TUNE_MAX_KERNELS)
                return LC_ERR(LC_ERR_FORMAT, "%s:%d: more than %d kernels", name, line, LC_TUNE_MAX_KERNELS);
            out->kernel[out->n++] = k;
            continue;
        }
        return LC_ERR(LC_ERR_FORMAT, "%s:%d: unknown entry '%.*s' (expected device, driver, platform or kernel)", name,
                      line, (int)(kw > 40 ? 40 : kw), p);
    }
    if (!header) return LC_ERR(LC_ERR_FORMAT, "%s: empty (expected 'layca-clblast-tuning 1')", name);
    if (!out->device[0]) return LC_ERR(LC_ERR_FORMAT, "%s: no 'device' line", name);
    if (!out->driver[0]) return LC_ERR(LC_ERR_FORMAT, "%s: no 'driver' line", name);
    if (out->n == 0) return LC_ERR(LC_ERR_FORMAT, "%s: no 'kernel' line", name);
    return LC_OK;
}

void lc_rt_tune_format(const lc_tune_file *t, const char *comment, lc_strbuf *out)
{
    lc_strbuf_printf(out, "layca-clblast-tuning 1\n");
    if (comment && *comment) {
        const char *p = comment;
        while (*p) {
            size_t n = strcspn(p, "\n");
            lc_strbuf_printf(out, "# %.*s\n", (int)n, p);
            p += n;
            if (*p) p++;
        }
    }
    lc_strbuf_printf(out, "device %s\ndriver %s\n", t->device, t->driver);
    if (t->platform[0]) lc_strbuf_printf(out, "platform %s\n", t->platform);
    for (int i = 0; i < t->n; i++) {
        const lc_tune_kernel *k = &t->kernel[i];
        lc_strbuf_printf(out, "kernel %s %d", k->name, k->precision);
        for (int j = 0; j < k->n; j++) lc_strbuf_printf(out, " %s=%zu", k->param[j], k->value[j]);
        lc_strbuf_printf(out, "\n");
    }
}

void lc_rt_tune_path(const lc_device_info *d, char *out, size_t cap)
{
    char dir[1024];
    lc_cache_dir(dir, sizeof dir);
    if (!dir[0]) {
        if (cap) out[0] = 0;
        return;
    }
    char key[1024];
    snprintf(key, sizeof key, "%s|%s|%s|clblast-tuning-1", d->name, d->driver_version, d->platform_version);
    snprintf(out, cap, "%s/clblast-tuning-%016llx.txt", dir, (unsigned long long)lc_hash64(key, strlen(key), 0x7475));
}

lc_status lc_rt_tune_apply(lc_rt *rt, const lc_tune_file *t)
{
    if (strcmp(t->device, rt->info.name) != 0 || strcmp(t->driver, rt->info.driver_version) != 0)
        return LC_ERR(LC_ERR_INVALID, "tuned for device '%s' driver '%s', not for '%s' driver '%s'", t->device,
                      t->driver, rt->info.name, rt->info.driver_version);
    for (int i = 0; i < t->n; i++) {
        const lc_tune_kernel *k = &t->kernel[i];
        const char *names[LC_TUNE_MAX_PARAMS];
        for (int j = 0; j < k->n; j++) names[j] = k->param[j];
        CLBlastStatusCode s = CLBlastOverrideParameters(rt->device, k->name, (CLBlastPrecision)k->precision,
                                                        (size_t)k->n, names, k->value);
        if (s != CLBlastSuccess)
            return LC_ERR(LC_ERR_DEVICE, "kernel %s precision %d: CLBlastOverrideParameters failed: %s (%d)%s", k->name,
                          k->precision, lc_rt_clblast_status_name((int)s), (int)s,
                          s == CLBlastMissingOverrideParameter ? " (a full parameter set is needed)" : "");
    }
    lc_rt_gemm_forget_temp_sizes(lc_rt_impl_of(rt));
    return LC_OK;
}

lc_status lc_rt_tune_apply_file(lc_rt *rt, const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    LC_TRY(lc_file_read(path, &data, &len));
    lc_tune_file *t = malloc(sizeof *t);
    if (!t) { free(data); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    lc_status st = lc_rt_tune_parse((const char *)data, len, path, t);
    free(data);
    if (st == LC_OK && (st = lc_rt_tune_apply(rt, t)) != LC_OK) lc_error_prefix(st, "%s", path);
    free(t);
    return st;
}

void lc_rt_tune_load(lc_rt *rt)
{
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    snprintf(impl->tune_state, sizeof impl->tune_state, "default");
    char path[1200];
    lc_rt_tune_path(&rt->info, path, sizeof path);
    if (!path[0]) return;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    fclose(f);
    if (lc_rt_tune_apply_file(rt, path) == LC_OK) {
        snprintf(impl->tune_state, sizeof impl->tune_state, "tuned (%s)", path);
        LC_DEBUG("CLBlast parameters from %s", path);
    } else {
        snprintf(impl->tune_state, sizeof impl->tune_state, "ignored %.1200s", lc_error_message());
        LC_WARN("CLBlast tuning file ignored, using CLBlast's defaults: %s (run 'layca tune' again or delete it)",
                lc_error_message());
        lc_error_clear();
    }
}

const char *lc_rt_tune_state(const lc_rt *rt)
{
    const lc_rt_impl *impl = (const lc_rt_impl *)rt;
    return impl->tune_state[0] ? impl->tune_state : "default";
}
