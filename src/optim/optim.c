/* Device optimizers and Layca: the fused two-launch pass (kernel A: state,
 * step, per-chunk partial sums; kernel B: per-layer sums, projected and
 * normalised update), the one-launch plain step, the unfused per-tensor
 * path, rotation monitoring and the serialisable state.  Kernels:
 * cl_kernels/optim.cl, built once per configuration (inner optimizer,
 * Nesterov, momentum 0, weight decay, fp64 sums, work-group geometry). */
#include "lc_optim.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define G LC_OPTIM_GROUP

enum { MODE_NONE = 0, MODE_PLAIN = 1, MODE_LAYCA = 2 };

/* Chunking: a tensor is cut into chunks of at least CHUNK_MIN floats (whole
 * groups), at most max_chunks per tensor; one work-group per chunk. */
#define CHUNK_MIN 4096

struct lc_optim {
    lc_rt *rt;
    lc_optim_config cfg;
    lc_optim_tensor *t;
    int n;
    int64_t floats;
    cl_mem params, grads;
    cl_mem state[2];
    int n_state;
    cl_mem w0;             /* initial parameters (rotation reference) */
    cl_mem part, rot, tot; /* per chunk: 4 and 2 sums; per tensor: 4 sums (unfused) */
    cl_mem chunks, tens;   /* cl_int4 tables */
    cl_mem rates, n0buf;   /* per tensor floats */
    int *mode;             /* per tensor */
    int *first_chunk, *n_chunks; /* per tensor */
    int nchunks, nkern, nlayca, nplain;
    int ch_layca, ch_plain; /* chunks of Layca tensors (first in the table), then of plain ones */
    /* kernel geometry and build options */
    int wg, vec, max_chunks;
    bool fp64;             /* sums are doubles; else float (hi, lo) pairs */
    float *host_rates;
    double *n0;            /* per tensor, = ||w0|| */
    void *host_rot;        /* nchunks * 2 sums */
    cl_program prog;
    cl_kernel k_plain, k_a, k_b, k_rot, k_ustep, k_upart, k_utot, k_uupd;
    cl_kernel checked[8];   /* kernels whose argument count was checked (set_args) */
    int n_checked;
    int64_t steps;
    bool fused, rot_requested, rot_valid;
    int last_launches;
};

static const char *const kind_names[] = {"sgd", "sgd_amom", "adam", "rmsprop", "adagrad"};

const char *lc_optim_kind_name(lc_optim_kind k)
{
    return (unsigned)k < LC_COUNTOF(kind_names) ? kind_names[k] : "?";
}

lc_status lc_optim_kind_parse(const char *s, lc_optim_kind *out)
{
    for (size_t i = 0; i < LC_COUNTOF(kind_names); i++)
        if (!strcasecmp(s, kind_names[i])) { *out = (lc_optim_kind)i; return LC_OK; }
    return LC_ERR(LC_ERR_INVALID, "unknown optimizer '%s' (known: sgd, sgd_amom, adam, rmsprop, adagrad)", s);
}

void lc_optim_config_defaults(lc_optim_config *c, lc_optim_kind kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->momentum = kind == LC_OPTIM_SGD_AMOM ? 0.9 : 0.0;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->rho = 0.9;
    c->eps = 1e-7;
    c->layca_inner_lr = kind == LC_OPTIM_ADAGRAD                              ? 0.01
                        : kind == LC_OPTIM_SGD || kind == LC_OPTIM_SGD_AMOM ? 1.0 /* unused: forced to 1 */
                                                                            : 0.001;
    c->fuse = true;
}

static double layca_inner_lr(const lc_optim_config *c)
{
    if (c->kind == LC_OPTIM_SGD || c->kind == LC_OPTIM_SGD_AMOM) return 1.0;
    if (c->layca_inner_lr > 0) return c->layca_inner_lr;
    return c->kind == LC_OPTIM_ADAGRAD ? 0.01 : 0.001;
}

static void release_mem(cl_mem *m)
{
    if (*m) clReleaseMemObject(*m);
    *m = NULL;
}

void lc_optim_destroy(lc_optim *o)
{
    if (!o) return;
    cl_kernel ks[] = {o->k_plain, o->k_a, o->k_b, o->k_rot, o->k_ustep, o->k_upart, o->k_utot, o->k_uupd};
    for (size_t i = 0; i < LC_COUNTOF(ks); i++)
        if (ks[i]) clReleaseKernel(ks[i]);
    cl_mem *b[] = {&o->state[0], &o->state[1], &o->w0,    &o->part,  &o->rot,
                   &o->tot,      &o->chunks,   &o->tens,  &o->rates, &o->n0buf};
    for (size_t i = 0; i < LC_COUNTOF(b); i++) release_mem(b[i]);
    free(o->t);
    free(o->mode);
    free(o->first_chunk);
    free(o->n_chunks);
    free(o->host_rates);
    free(o->n0);
    free(o->host_rot);
    free(o); /* the program is owned by the rt */
}

static int cmp_off(const void *a, const void *b)
{
    const lc_optim_tensor *x = *(const lc_optim_tensor *const *)a, *y = *(const lc_optim_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static lc_status check_layout(const lc_optim_tensor *t, int n, int64_t floats)
{
    if (floats < 0 || floats % G)
        return LC_ERR(LC_ERR_INVALID, "parameter arena of %lld floats is not a multiple of %d", (long long)floats, G);
    if (n < 0) return LC_ERR(LC_ERR_INVALID, "negative tensor count %d", n);
    for (int i = 0; i < n; i++) {
        if (t[i].offset < 0 || t[i].offset % G)
            return LC_ERR(LC_ERR_INVALID, "tensor %d offset %lld is not aligned to %d floats", i,
                          (long long)t[i].offset, G);
        if (t[i].numel < 0 || t[i].offset + t[i].numel > floats)
            return LC_ERR(LC_ERR_INVALID, "tensor %d (offset %lld, %lld floats) does not fit the arena of %lld floats",
                          i, (long long)t[i].offset, (long long)t[i].numel, (long long)floats);
    }
    const lc_optim_tensor **p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    if (!p) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) p[i] = &t[i];
    qsort(p, (size_t)n, sizeof *p, cmp_off);
    lc_status st = LC_OK;
    for (int i = 0; i + 1 < n; i++)
        if (p[i]->numel > 0 && p[i]->offset + p[i]->numel > p[i + 1]->offset && p[i + 1]->numel > 0) {
            st = LC_ERR(LC_ERR_INVALID, "tensors at offsets %lld (%lld floats) and %lld overlap",
                        (long long)p[i]->offset, (long long)p[i]->numel, (long long)p[i + 1]->offset);
            break;
        }
    free(p);
    return st;
}

static lc_status alloc_zero(lc_rt *rt, size_t bytes, cl_mem *out)
{
    if (bytes == 0) bytes = 16;
    LC_TRY(lc_rt_alloc(rt, bytes, out));
    return lc_rt_fill_zero(rt, *out, 0, bytes);
}

/* Kernel geometry: PoCL's CPU devices (lc_rt_loop_workgroups) run one
 * work-item per work-group walking a contiguous chunk with 16-float vectors
 * (AVX-512); other devices, other CPU implementations, and CPUs in
 * device-only mode (lc_rt.device_only), 256 work-items (or as many as
 * the device allows) interleaved over float4 vectors; build_program lowers
 * the work-group size further when the built kernels allow less.  Sums are
 * doubles where the device has fp64.  cfg.geometry overrides (for tests). */
static void pick_geometry(lc_optim *o)
{
    const lc_device_info *d = &o->rt->info;
    const lc_optim_geometry_opts *ov = &o->cfg.geometry;
    bool cpu = lc_rt_loop_workgroups(d) && !o->rt->device_only;
    int maxwg = (int)lc_rt_wg_cap(o->rt, 256);
    o->wg = cpu ? 1 : maxwg;
    o->vec = cpu ? 16 : 4;
    if (ov->wg > 0 && ov->wg <= maxwg) o->wg = ov->wg;
    if (ov->vec) o->vec = ov->vec;
    o->fp64 = d->fp64 && !ov->no_fp64;
}

static lc_status check_geometry(const lc_optim_geometry_opts *g)
{
    if (g->wg < 0 || (g->wg & (g->wg - 1)) != 0)
        return LC_ERR(LC_ERR_INVALID, "optimizer geometry: %d work-items per group; want a power of two (0: automatic)",
                      g->wg);
    if (g->vec != 0 && g->vec != 4 && g->vec != 8 && g->vec != 16)
        return LC_ERR(LC_ERR_INVALID, "optimizer geometry: vector width %d; want 4, 8 or 16 (0: automatic)", g->vec);
    return LC_OK;
}

static const char *const kernel_names[] = {"lc_optim_plain", "lc_optim_fused_a", "lc_optim_fused_b",
                                           "lc_optim_rot_partials", "lc_optim_u_step", "lc_optim_u_partials",
                                           "lc_optim_u_total", "lc_optim_u_update"};

/* Builds the program for the configuration with the picked geometry; the
 * work-group size may come down to what the built kernels allow. */
static lc_status build_program(lc_optim *o)
{
    const lc_optim_config *cfg = &o->cfg;
    bool mom0 = cfg->kind == LC_OPTIM_SGD && cfg->momentum == 0.0;
    char opts[160];
    snprintf(opts, sizeof opts, "-DLC_KIND=%d -DLC_NESTEROV=%d -DLC_MOM0=%d -DLC_WD=%d -DLC_FP64=%d -DLC_V=%d",
             (int)cfg->kind, cfg->kind == LC_OPTIM_SGD && cfg->nesterov, mom0, cfg->weight_decay != 0.0, o->fp64,
             o->vec);
    size_t wg = 0;
    LC_TRY(lc_rt_program_wg(o->rt, "optim", opts, "LC_WG", (size_t)o->wg, kernel_names,
                            (int)LC_COUNTOF(kernel_names), &o->prog, &wg));
    o->wg = (int)wg;
    /* bounded partials per tensor: kernel B totals them in every chunk */
    o->max_chunks = o->wg == 1 ? 64 : o->wg;
    return LC_OK;
}

/* Chunks of a tensor of numel floats. */
static int64_t chunk_floats(const lc_optim *o, int64_t numel)
{
    int64_t per = (numel + o->max_chunks - 1) / o->max_chunks;
    per = (per + G - 1) / G * G;
    return per < CHUNK_MIN ? CHUNK_MIN : per;
}

lc_status lc_optim_create(lc_optim **out, lc_rt *rt, const lc_optim_config *cfg, const lc_optim_tensor *t, int n,
                          int64_t arena_floats, cl_mem params, cl_mem grads)
{
    *out = NULL;
    if ((unsigned)cfg->kind >= LC_COUNTOF(kind_names))
        return LC_ERR(LC_ERR_INVALID, "unknown optimizer kind %d", (int)cfg->kind);
    LC_TRY(check_geometry(&cfg->geometry));
    LC_TRY(check_layout(t, n, arena_floats));
    lc_optim *o = calloc(1, sizeof *o);
    if (!o) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    o->rt = rt;
    o->cfg = *cfg;
    o->n = n;
    o->floats = arena_floats;
    o->params = params;
    o->grads = grads;
    o->fused = cfg->fuse;
    o->n_state = cfg->kind == LC_OPTIM_ADAM ? 2 : 1;
    pick_geometry(o);
    lc_status st = build_program(o);
    if (st != LC_OK) {
        lc_optim_destroy(o);
        return st;
    }
    size_t nn = (size_t)(n > 0 ? n : 1);
    o->t = malloc(nn * sizeof *o->t);
    o->mode = calloc(nn, sizeof *o->mode);
    o->first_chunk = calloc(nn, sizeof *o->first_chunk);
    o->n_chunks = calloc(nn, sizeof *o->n_chunks);
    o->host_rates = calloc(nn, sizeof *o->host_rates);
    o->n0 = calloc(nn, sizeof *o->n0);
    cl_int4 *ht = calloc(nn, sizeof *ht);
    /* rows laid out as the kernels' long4, kept in a plain struct: calloc
     * does not promise cl_long4's 32-byte alignment */
    struct { cl_long s[4]; } *hc = NULL;
    if (!o->t || !o->mode || !o->first_chunk || !o->n_chunks || !o->host_rates || !o->n0 || !ht) {
        st = LC_ERR(LC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(o->t, t, (size_t)n * sizeof *t);

    /* modes and chunk counts */
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        int m = MODE_NONE;
        if (t[i].trainable && t[i].numel > 0) {
            if (!cfg->layca) m = MODE_PLAIN;
            else if (t[i].is_kernel) m = MODE_LAYCA;
            else m = cfg->layca_skip_non_kernel ? MODE_NONE : MODE_PLAIN;
        }
        o->mode[i] = m;
        o->nlayca += m == MODE_LAYCA;
        o->nplain += m == MODE_PLAIN;
        o->nkern += t[i].is_kernel;
        if (t[i].numel > 0 && (m != MODE_NONE || t[i].is_kernel)) {
            int64_t per = chunk_floats(o, t[i].numel);
            if (per > INT_MAX / 2) { /* the kernels count a chunk's elements in ints */
                st = LC_ERR(LC_ERR_UNSUPPORTED, "tensor %d of %lld floats is too large", i, (long long)t[i].numel);
                goto fail;
            }
            o->n_chunks[i] = (int)((t[i].numel + per - 1) / per);
            total += o->n_chunks[i];
            if (m == MODE_LAYCA) o->ch_layca += o->n_chunks[i];
            if (m == MODE_PLAIN) o->ch_plain += o->n_chunks[i];
        }
    }
    o->nchunks = (int)total;
    hc = calloc((size_t)(total > 0 ? total : 1), sizeof *hc);
    o->host_rot = calloc((size_t)(total > 0 ? total : 1) * 2, 8);
    if (!hc || !o->host_rot) { st = LC_ERR(LC_ERR_NOMEM, "out of memory"); goto fail; }
    /* the chunk table: Layca tensors, then plain ones, then frozen kernels,
     * each tensor's chunks consecutive, so every launch covers a prefix */
    int c = 0;
    static const int order[3] = {MODE_LAYCA, MODE_PLAIN, MODE_NONE};
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < n; i++) {
            if (o->mode[i] != order[pass]) continue;
            o->first_chunk[i] = c;
            int64_t per = chunk_floats(o, t[i].numel);
            for (int j = 0; j < o->n_chunks[i]; j++, c++) {
                hc[c].s[0] = (cl_long)(t[i].offset + (int64_t)j * per);
                hc[c].s[1] = (cl_long)(t[i].offset + LC_MIN((int64_t)(j + 1) * per, t[i].numel));
                hc[c].s[2] = i;
                hc[c].s[3] = 0;
            }
        }
    for (int i = 0; i < n; i++) {
        ht[i].s[0] = 0; /* unused */
        ht[i].s[1] = o->first_chunk[i];
        ht[i].s[2] = o->n_chunks[i];
        ht[i].s[3] = o->mode[i] | (t[i].is_kernel ? 4 : 0);
    }

    size_t bytes = (size_t)arena_floats * 4;
    for (int k = 0; k < o->n_state; k++)
        if ((st = alloc_zero(rt, bytes, &o->state[k])) != LC_OK) goto fail;
    if (!o->state[1]) { /* not Adam: a valid, unused kernel argument */
        o->state[1] = o->state[0];
        clRetainMemObject(o->state[0]);
    }
    if ((st = alloc_zero(rt, bytes, &o->w0)) != LC_OK) goto fail;
    if ((st = alloc_zero(rt, (size_t)total * 4 * 8, &o->part)) != LC_OK) goto fail;
    if ((st = alloc_zero(rt, (size_t)total * 2 * 8, &o->rot)) != LC_OK) goto fail;
    if ((st = alloc_zero(rt, nn * 4 * 8, &o->tot)) != LC_OK) goto fail;
    if ((st = alloc_zero(rt, (size_t)total * sizeof *hc, &o->chunks)) != LC_OK) goto fail;
    if (total && (st = lc_rt_write(rt, o->chunks, 0, (size_t)total * sizeof *hc, hc)) != LC_OK) goto fail;
    if ((st = alloc_zero(rt, nn * sizeof *ht, &o->tens)) != LC_OK) goto fail;
    if ((st = lc_rt_write(rt, o->tens, 0, nn * sizeof *ht, ht)) != LC_OK) goto fail;
    if ((st = alloc_zero(rt, nn * 4, &o->rates)) != LC_OK) goto fail;
    if ((st = alloc_zero(rt, nn * 4, &o->n0buf)) != LC_OK) goto fail;

    cl_kernel *ks[] = {&o->k_plain, &o->k_a, &o->k_b, &o->k_rot, &o->k_ustep, &o->k_upart, &o->k_utot, &o->k_uupd};
    for (size_t i = 0; i < LC_COUNTOF(ks); i++)
        if ((st = lc_rt_kernel(rt, o->prog, kernel_names[i], ks[i])) != LC_OK) goto fail;
    if ((st = lc_optim_reset_initial(o)) != LC_OK) goto fail;
    free(hc);
    free(ht);
    *out = o;
    return LC_OK;
fail:
    free(hc);
    free(ht);
    lc_optim_destroy(o);
    return st;
}

lc_status lc_optim_set_rates(lc_optim *o, const double *rate)
{
    for (int i = 0; i < o->n; i++) o->host_rates[i] = o->mode[i] == MODE_NONE ? 0.0f : (float)rate[i];
    if (o->n == 0) return LC_OK;
    return lc_rt_write(o->rt, o->rates, 0, (size_t)o->n * 4, o->host_rates);
}

/* The hyper-parameters of step t, laid out per kind as cl_kernels/optim.cl
 * documents. */
static void hyper(const lc_optim *o, int64_t t, cl_float8 *out)
{
    const lc_optim_config *c = &o->cfg;
    cl_float8 h;
    memset(&h, 0, sizeof h);
    switch (c->kind) {
    case LC_OPTIM_SGD: h.s[0] = (float)c->momentum; break;
    case LC_OPTIM_SGD_AMOM:
        h.s[0] = (float)c->momentum;
        h.s[1] = (float)(1.0 - c->momentum);
        break;
    case LC_OPTIM_ADAM:
        h.s[0] = (float)c->beta1;
        h.s[1] = (float)(1.0 - c->beta1);
        h.s[2] = (float)c->beta2;
        h.s[3] = (float)(1.0 - c->beta2);
        h.s[5] = (float)(sqrt(1.0 - pow(c->beta2, (double)t)) / (1.0 - pow(c->beta1, (double)t)));
        break;
    case LC_OPTIM_RMSPROP:
        h.s[0] = (float)c->rho;
        h.s[1] = (float)(1.0 - c->rho);
        break;
    default: break;
    }
    h.s[4] = (float)c->eps;
    h.s[7] = (float)(2.0 * c->weight_decay);
    *out = h;
}

/* Enqueues groups work-groups of k. */
static lc_status launch(lc_optim *o, cl_kernel k, int groups, const char *what)
{
    if (groups <= 0) return LC_OK;
    size_t lsz = (size_t)o->wg, global = (size_t)groups * lsz;
    LC_TRY(lc_rt_launch(o->rt, k, 1, &global, &lsz, what));
    o->last_launches++;
    return LC_OK;
}

/* The step's arguments of k: the count checked against the kernel's on its
 * first use, then set without asking the driver again. */
static lc_status set_args(lc_optim *o, cl_kernel k, const lc_arg *a, int n, const char *what)
{
    for (int i = 0; i < o->n_checked; i++)
        if (o->checked[i] == k) return lc_rt_reset_args(k, a, n, what);
    LC_TRY(lc_rt_set_args(k, a, n, what));
    if (o->n_checked < (int)LC_COUNTOF(o->checked)) o->checked[o->n_checked++] = k;
    return LC_OK;
}

static lc_status launch_rot(lc_optim *o)
{
    lc_arg a[] = {LC_ARG(o->params), LC_ARG(o->w0), LC_ARG(o->rot), LC_ARG(o->chunks), LC_ARG(o->tens)};
    LC_TRY(set_args(o, o->k_rot, a, (int)LC_COUNTOF(a), "lc_optim_rot_partials"));
    return launch(o, o->k_rot, o->nchunks, "lc_optim_rot_partials");
}

static lc_status step_fused(lc_optim *o, const cl_float8 *hp, float inner, cl_int monitor)
{
    if (!o->nlayca && !monitor) { /* the plain chunks come first */
        lc_arg a[] = {LC_ARG(o->params), LC_ARG(o->grads),  LC_ARG(o->state[0]), LC_ARG(o->state[1]),
                      LC_ARG(o->chunks), LC_ARG(o->rates), LC_ARG(*hp)};
        LC_TRY(set_args(o, o->k_plain, a, (int)LC_COUNTOF(a), "lc_optim_plain"));
        return launch(o, o->k_plain, o->ch_plain, "lc_optim_plain");
    }
    lc_arg a[] = {LC_ARG(o->params), LC_ARG(o->grads),  LC_ARG(o->state[0]), LC_ARG(o->state[1]), LC_ARG(o->w0),
                  LC_ARG(o->part),   LC_ARG(o->rot),    LC_ARG(o->chunks),   LC_ARG(o->tens),     LC_ARG(o->rates),
                  LC_ARG(*hp),       LC_ARG(inner),     LC_ARG(monitor)};
    LC_TRY(set_args(o, o->k_a, a, (int)LC_COUNTOF(a), "lc_optim_fused_a"));
    LC_TRY(launch(o, o->k_a, monitor ? o->nchunks : o->ch_layca + o->ch_plain, "lc_optim_fused_a"));
    if (!o->nlayca) return LC_OK;
    lc_arg b[] = {LC_ARG(o->params), LC_ARG(o->grads), LC_ARG(o->state[0]), LC_ARG(o->state[1]), LC_ARG(o->w0),
                  LC_ARG(o->part),   LC_ARG(o->rot),   LC_ARG(o->chunks),   LC_ARG(o->tens),     LC_ARG(o->rates),
                  LC_ARG(o->n0buf),  LC_ARG(*hp),      LC_ARG(inner),       LC_ARG(monitor)};
    LC_TRY(set_args(o, o->k_b, b, (int)LC_COUNTOF(b), "lc_optim_fused_b"));
    return launch(o, o->k_b, o->ch_layca, "lc_optim_fused_b");
}

static lc_status step_unfused(lc_optim *o, const cl_float8 *hp, float inner, cl_int monitor)
{
    for (int i = 0; i < o->n; i++) {
        int mode = o->mode[i];
        if (mode == MODE_NONE) continue;
        cl_int c0 = o->first_chunk[i], ti = i;
        int nc = o->n_chunks[i];
        lc_arg a[] = {LC_ARG(o->params), LC_ARG(o->grads), LC_ARG(o->state[0]), LC_ARG(o->state[1]),
                      LC_ARG(o->chunks), LC_ARG(o->tens),  LC_ARG(o->rates),    LC_ARG(*hp),
                      LC_ARG(inner),     LC_ARG(c0)};
        LC_TRY(set_args(o, o->k_ustep, a, (int)LC_COUNTOF(a), "lc_optim_u_step"));
        LC_TRY(launch(o, o->k_ustep, nc, "lc_optim_u_step"));
        if (mode != MODE_LAYCA) continue;
        lc_arg p[] = {LC_ARG(o->params), LC_ARG(o->grads), LC_ARG(o->state[0]), LC_ARG(o->state[1]), LC_ARG(o->part),
                      LC_ARG(o->chunks), LC_ARG(*hp),      LC_ARG(inner),       LC_ARG(c0)};
        LC_TRY(set_args(o, o->k_upart, p, (int)LC_COUNTOF(p), "lc_optim_u_partials"));
        LC_TRY(launch(o, o->k_upart, nc, "lc_optim_u_partials"));
        lc_arg s[] = {LC_ARG(o->part), LC_ARG(o->tot), LC_ARG(o->tens), LC_ARG(ti)};
        LC_TRY(set_args(o, o->k_utot, s, (int)LC_COUNTOF(s), "lc_optim_u_total"));
        LC_TRY(launch(o, o->k_utot, 1, "lc_optim_u_total"));
        lc_arg u[] = {LC_ARG(o->params), LC_ARG(o->grads), LC_ARG(o->state[0]), LC_ARG(o->state[1]),
                      LC_ARG(o->tot),    LC_ARG(o->chunks), LC_ARG(o->rates),   LC_ARG(o->n0buf),
                      LC_ARG(*hp),       LC_ARG(inner),     LC_ARG(c0)};
        LC_TRY(set_args(o, o->k_uupd, u, (int)LC_COUNTOF(u), "lc_optim_u_update"));
        LC_TRY(launch(o, o->k_uupd, nc, "lc_optim_u_update"));
    }
    if (monitor) LC_TRY(launch_rot(o));
    return LC_OK;
}

lc_status lc_optim_step(lc_optim *o)
{
    o->last_launches = 0;
    o->rot_valid = false;
    cl_int monitor = o->rot_requested && o->nkern > 0;
    o->rot_requested = false;
    cl_float8 hp;
    hyper(o, o->steps + 1, &hp);
    float inner = (float)layca_inner_lr(&o->cfg);
    if (o->nchunks > 0) LC_TRY(o->fused ? step_fused(o, &hp, inner, monitor) : step_unfused(o, &hp, inner, monitor));
    o->steps++;
    o->rot_valid = monitor != 0;
    return LC_OK;
}

int lc_optim_launches_per_step(const lc_optim *o)
{
    if (o->nchunks == 0) return 0;
    if (o->fused) return 1 + (o->nlayca > 0);
    return o->nplain + 4 * o->nlayca;
}

int lc_optim_launches_last_step(const lc_optim *o) { return o->last_launches; }
int64_t lc_optim_steps_done(const lc_optim *o) { return o->steps; }
void lc_optim_set_fused(lc_optim *o, bool fused) { o->fused = fused; }
bool lc_optim_fused(const lc_optim *o) { return o->fused; }
int lc_optim_kernel_count(const lc_optim *o) { return o->nkern; }
void lc_optim_request_rotation(lc_optim *o) { o->rot_requested = true; }

static lc_status upload_n0(lc_optim *o)
{
    if (o->n <= 0) return LC_OK;
    float *f = malloc((size_t)o->n * sizeof *f);
    if (!f) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < o->n; i++) f[i] = (float)o->n0[i];
    lc_status st = lc_rt_write(o->rt, o->n0buf, 0, (size_t)o->n * 4, f);
    free(f);
    return st;
}

/* Norms are read back in pieces of this many floats (bounded host memory
 * for any arena). */
#define NORM_PIECE ((int64_t)1 << 22)

lc_status lc_optim_reset_initial(lc_optim *o)
{
    o->rot_valid = false;
    if (o->floats == 0) return LC_OK;
    LC_TRY(lc_rt_copy(o->rt, o->w0, 0, o->params, 0, (size_t)o->floats * 4));
    float *w = malloc((size_t)LC_MIN(NORM_PIECE, o->floats) * 4);
    if (!w) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    lc_status st = LC_OK;
    for (int i = 0; i < o->n && st == LC_OK; i++) {
        double s = 0;
        for (int64_t j0 = 0; j0 < o->t[i].numel && st == LC_OK; j0 += NORM_PIECE) {
            int64_t m = LC_MIN(NORM_PIECE, o->t[i].numel - j0);
            st = lc_rt_read(o->rt, o->params, (size_t)(o->t[i].offset + j0) * 4, (size_t)m * 4, w);
            for (int64_t j = 0; j < m && st == LC_OK; j++) s += (double)w[j] * w[j];
        }
        o->n0[i] = sqrt(s);
    }
    free(w);
    if (st == LC_OK) st = upload_n0(o);
    return st;
}

int lc_optim_arenas(lc_optim_kind kind) { return (kind == LC_OPTIM_ADAM ? 2 : 1) + 1; }

void lc_optim_geometry(const lc_optim *o, int *wg, int *vec, bool *fp64)
{
    if (wg) *wg = o->wg;
    if (vec) *vec = o->vec;
    if (fp64) *fp64 = o->fp64;
}

lc_status lc_optim_rotation(lc_optim *o, double *cos_dist, double *norms)
{
    if (o->nkern == 0) return LC_OK;
    if (!o->rot_valid) LC_TRY(launch_rot(o));
    LC_TRY(lc_rt_read(o->rt, o->rot, 0, (size_t)o->nchunks * 16, o->host_rot));
    const double *pd = o->host_rot;
    const float *pf = o->host_rot;
    int l = 0;
    for (int i = 0; i < o->n; i++) {
        if (!o->t[i].is_kernel) continue;
        double dot = 0, ww = 0;
        for (int c = o->first_chunk[i]; c < o->first_chunk[i] + o->n_chunks[i]; c++) {
            if (o->fp64) {
                dot += pd[(size_t)c * 2];
                ww += pd[(size_t)c * 2 + 1];
            } else {
                dot += (double)pf[(size_t)c * 4] + (double)pf[(size_t)c * 4 + 1];
                ww += (double)pf[(size_t)c * 4 + 2] + (double)pf[(size_t)c * 4 + 3];
            }
        }
        double wn = sqrt(ww > 0 ? ww : 0), d = wn * o->n0[i];
        if (cos_dist) cos_dist[l] = d == 0.0 ? NAN : 1.0 - dot / d;
        if (norms) norms[l] = wn;
        l++;
    }
    return LC_OK;
}

void lc_optim_state_free(lc_optim_state *st)
{
    if (!st) return;
    free(st->arena[0]);
    free(st->arena[1]);
    free(st->w0);
    free(st->n0);
    memset(st, 0, sizeof *st);
}

lc_status lc_optim_state_read(lc_optim *o, lc_optim_state *st)
{
    memset(st, 0, sizeof *st);
    st->steps = o->steps;
    st->floats = o->floats;
    st->n_tensors = o->n;
    st->n_arenas = o->n_state;
    size_t bytes = (size_t)o->floats * 4;
    for (int k = 0; k < o->n_state; k++) st->arena[k] = malloc(bytes ? bytes : 1);
    st->w0 = malloc(bytes ? bytes : 1);
    st->n0 = malloc((size_t)(o->n > 0 ? o->n : 1) * sizeof *st->n0);
    if (!st->arena[0] || (o->n_state > 1 && !st->arena[1]) || !st->w0 || !st->n0) {
        lc_optim_state_free(st);
        return LC_ERR(LC_ERR_NOMEM, "out of memory");
    }
    memcpy(st->n0, o->n0, (size_t)o->n * sizeof *st->n0);
    lc_status s = LC_OK;
    if (bytes) {
        for (int k = 0; k < o->n_state && s == LC_OK; k++) s = lc_rt_read(o->rt, o->state[k], 0, bytes, st->arena[k]);
        if (s == LC_OK) s = lc_rt_read(o->rt, o->w0, 0, bytes, st->w0);
    }
    if (s != LC_OK) lc_optim_state_free(st);
    return s;
}

lc_status lc_optim_state_write(lc_optim *o, const lc_optim_state *st)
{
    if (st->floats != o->floats || st->n_tensors != o->n || st->n_arenas != o->n_state)
        return LC_ERR(LC_ERR_INVALID,
                      "optimizer state of %lld floats, %d tensors, %d arenas does not fit this %s optimizer "
                      "(%lld floats, %d tensors, %d arenas)",
                      (long long)st->floats, st->n_tensors, st->n_arenas, lc_optim_kind_name(o->cfg.kind),
                      (long long)o->floats, o->n, o->n_state);
    if (st->steps < 0) return LC_ERR(LC_ERR_INVALID, "optimizer state with %lld steps", (long long)st->steps);
    size_t bytes = (size_t)o->floats * 4;
    if (bytes) {
        for (int k = 0; k < o->n_state; k++) LC_TRY(lc_rt_write(o->rt, o->state[k], 0, bytes, st->arena[k]));
        LC_TRY(lc_rt_write(o->rt, o->w0, 0, bytes, st->w0));
    }
    memcpy(o->n0, st->n0, (size_t)o->n * sizeof *o->n0);
    LC_TRY(upload_n0(o));
    o->steps = st->steps;
    o->rot_valid = false;
    return LC_OK;
}
