/* conv2d on the host (see exec_host.h): im2col / col2im / layout changes on
 * the host workers, GEMMs on the host BLAS.  Layouts as in conv.cl: a group
 * of nc examples gives col[K, nc*ohw] with column n*ohw + oy*ow + ox, and
 * the channel-major t[cout, nc*ohw].
 *
 * Two schedules:
 *  - chunked: the device lowering's, step by step over a chunk of examples
 *    (im2col of the whole chunk, one large multi-threaded GEMM, layout
 *    change), each step a pass over memory;
 *  - blocked: each host worker takes groups of g examples (g*ohw >= ~256
 *    columns, col small enough for its cache) and runs im2col, a
 *    single-threaded GEMM and the scatter / col2im on its own slice of the
 *    workspace, so the im2col matrix never leaves the cache; the weight
 *    gradient is accumulated per worker and summed at the end (a fixed
 *    order: deterministic). */
#include "exec_host.h"

#include <string.h>

/* ---- one (example, input channel) plane ---- */

/* col rows of input channel ci for one example: dst = col + n*ohw (the
 * example's first column), ldc = the col row length */
static void im2col_plane(const conv_dims *d, const float *xp, float *dst, size_t ldc, int ci)
{
    for (int ki = 0; ki < d->kh; ki++)
        for (int kj = 0; kj < d->kw; kj++) {
            size_t k = ((size_t)ci * d->kh + ki) * d->kw + kj;
            float *row = dst + k * ldc;
            int ix0 = kj - d->pl;
            int lo = 0, hi = d->ow; /* ox range with 0 <= ix0 + ox < w (stride 1) */
            if (d->sw == 1) {
                lo = ix0 < 0 ? -ix0 : 0;
                hi = d->w - ix0 < d->ow ? d->w - ix0 : d->ow;
                if (hi < lo) hi = lo;
            }
            for (int oy = 0; oy < d->oh; oy++) {
                int iy = oy * d->sh - d->pt + ki;
                float *o = row + (size_t)oy * d->ow;
                if (iy < 0 || iy >= d->h) {
                    memset(o, 0, (size_t)d->ow * sizeof *o);
                    continue;
                }
                const float *s = xp + (size_t)iy * d->w;
                if (d->sw == 1) {
                    for (int ox = 0; ox < lo; ox++) o[ox] = 0.0f;
                    if (hi > lo) memcpy(o + lo, s + ix0 + lo, (size_t)(hi - lo) * sizeof *o);
                    for (int ox = hi; ox < d->ow; ox++) o[ox] = 0.0f;
                } else {
                    for (int ox = 0, ix = ix0; ox < d->ow; ox++, ix += d->sw)
                        o[ox] = ix >= 0 && ix < d->w ? s[ix] : 0.0f;
                }
            }
        }
}

/* dx plane (n, ci) = the sum of its col entries; src = col + n*ohw */
static void col2im_plane(const conv_dims *d, float *xp, const float *src, size_t ldc, int ci)
{
    memset(xp, 0, (size_t)d->h * d->w * sizeof *xp);
    for (int ki = 0; ki < d->kh; ki++)
        for (int kj = 0; kj < d->kw; kj++) {
            size_t k = ((size_t)ci * d->kh + ki) * d->kw + kj;
            const float *row = src + k * ldc;
            int ix0 = kj - d->pl;
            int lo = 0, hi = d->ow;
            if (d->sw == 1) {
                lo = ix0 < 0 ? -ix0 : 0;
                hi = d->w - ix0 < d->ow ? d->w - ix0 : d->ow;
            }
            for (int oy = 0; oy < d->oh; oy++) {
                int iy = oy * d->sh - d->pt + ki;
                if (iy < 0 || iy >= d->h) continue;
                float *o = xp + (size_t)iy * d->w;
                const float *s = row + (size_t)oy * d->ow;
                if (d->sw == 1) {
                    float *oo = o + ix0;
                    for (int ox = lo; ox < hi; ox++) oo[ox] += s[ox];
                } else {
                    for (int ox = 0, ix = ix0; ox < d->ow; ox++, ix += d->sw)
                        if (ix >= 0 && ix < d->w) o[ix] += s[ox];
                }
            }
        }
}

/* y[n, ch, :] = t[ch, n*hw ...] + bias[ch] for n < nc (t row length ldt) */
static void cn_to_nc(const float *t, size_t ldt, float *y, int nc, int c, size_t hw, const float *bias, int ch)
{
    const float *s = t + (size_t)ch * ldt;
    float bv = bias ? bias[ch] : 0.0f;
    for (int n = 0; n < nc; n++) {
        float *o = y + ((size_t)n * c + ch) * hw;
        const float *sn = s + (size_t)n * hw;
        if (bias)
            for (size_t i = 0; i < hw; i++) o[i] = sn[i] + bv;
        else
            memcpy(o, sn, hw * sizeof *o);
    }
}

/* t[ch, n*hw ...] = y[n, ch, :] */
static void nc_to_cn(float *t, size_t ldt, const float *y, int nc, int c, size_t hw, int ch)
{
    float *o = t + (size_t)ch * ldt;
    for (int n = 0; n < nc; n++) memcpy(o + (size_t)n * hw, y + ((size_t)n * c + ch) * hw, hw * sizeof *o);
}

/* ---- the chunked schedule ---- */

typedef struct hc_ctx {
    const conv_dims *d;
    int nc;
    size_t ldc;          /* nc * ohw */
    const float *src;
    float *dst;
    const float *bias;
} hc_ctx;

static void im2col_task(void *p, int t)
{
    const hc_ctx *c = p;
    const conv_dims *d = c->d;
    int n = t / d->cin, ci = t - n * d->cin;
    im2col_plane(d, c->src + ((size_t)n * d->cin + ci) * (size_t)d->h * d->w, c->dst + (size_t)n * d->ohw, c->ldc,
                 ci);
}

static void col2im_task(void *p, int t)
{
    const hc_ctx *c = p;
    const conv_dims *d = c->d;
    int n = t / d->cin, ci = t - n * d->cin;
    col2im_plane(d, c->dst + ((size_t)n * d->cin + ci) * (size_t)d->h * d->w, c->src + (size_t)n * d->ohw, c->ldc,
                 ci);
}

static void cn_to_nc_task(void *p, int ch)
{
    const hc_ctx *c = p;
    cn_to_nc(c->src, c->ldc, c->dst, c->nc, c->d->cout, (size_t)c->d->ohw, c->bias, ch);
}

static void nc_to_cn_task(void *p, int ch)
{
    const hc_ctx *c = p;
    nc_to_cn(c->dst, c->ldc, c->src, c->nc, c->d->cout, (size_t)c->d->ohw, ch);
}

static lc_status chunked(lc_rt *rt, int kind, const conv_dims *d, int nb, int chunk, const float *a, const float *b,
                         const float *bias, float *out, float *ws)
{
    size_t hw = (size_t)d->h * d->w, ohw = (size_t)d->ohw;
    for (int n0 = 0; n0 < nb; n0 += chunk) {
        int nc = nb - n0 < chunk ? nb - n0 : chunk;
        size_t cols = (size_t)nc * ohw;
        float *col = ws, *t = ws + (size_t)d->K * cols;
        hc_ctx c = {.d = d, .nc = nc, .ldc = cols};
        if (kind == HC_FWD) {
            c.src = a + (size_t)n0 * d->cin * hw;
            c.dst = col;
            lc_rt_host_parallel(rt, nc * d->cin, im2col_task, &c);
            LC_TRY(lc_rt_host_sgemm(false, false, (size_t)d->cout, cols, (size_t)d->K, 1.0f, b, (size_t)d->K, col,
                                    cols, 0.0f, t, cols));
            c.src = t;
            c.dst = out + (size_t)n0 * d->cout * ohw;
            c.bias = bias;
            lc_rt_host_parallel(rt, d->cout, cn_to_nc_task, &c);
        } else if (kind == HC_DX) {
            c.src = a + (size_t)n0 * d->cout * ohw;
            c.dst = t;
            lc_rt_host_parallel(rt, d->cout, nc_to_cn_task, &c);
            LC_TRY(lc_rt_host_sgemm(true, false, (size_t)d->K, cols, (size_t)d->cout, 1.0f, b, (size_t)d->K, t, cols,
                                    0.0f, col, cols));
            c.src = col;
            c.dst = out + (size_t)n0 * d->cin * hw;
            lc_rt_host_parallel(rt, nc * d->cin, col2im_task, &c);
        } else {
            c.src = a + (size_t)n0 * d->cout * ohw;
            c.dst = t;
            lc_rt_host_parallel(rt, d->cout, nc_to_cn_task, &c);
            c.src = b + (size_t)n0 * d->cin * hw;
            c.dst = col;
            lc_rt_host_parallel(rt, nc * d->cin, im2col_task, &c);
            LC_TRY(lc_rt_host_sgemm(false, true, (size_t)d->cout, (size_t)d->K, cols, 1.0f, t, cols, col, cols,
                                    n0 ? 1.0f : 0.0f, out, (size_t)d->K));
        }
    }
    return LC_OK;
}

/* ---- the blocked schedule ---- */

/* Examples per group: at least ~256 GEMM columns, the group's col within
 * ~1 MiB, and at most nb / threads so every worker has work. */
static int group_size(const conv_dims *d, int nb, int threads)
{
    int g = (256 + d->ohw - 1) / d->ohw;
    int cap = (int)(((size_t)1 << 18) / ((size_t)d->K * (size_t)d->ohw));
    if (g > cap) g = cap;
    int per = (nb + threads - 1) / threads;
    if (g > per) g = per;
    return g < 1 ? 1 : g;
}

/* floats of one worker's slice: col and t for g examples, and the weight
 * gradient accumulator */
/* col and t rows are ROW_PAD floats longer than their g*ohw columns: row
 * strides of a multiple of 4 KiB would put the rows im2col writes together
 * in the same cache set */
#define ROW_PAD 16

static size_t slot_floats(const conv_dims *d, int g, int kind)
{
    size_t s = ((size_t)d->K + (size_t)d->cout) * ((size_t)g * (size_t)d->ohw + ROW_PAD);
    if (kind == HC_DW) s += (size_t)d->cout * (size_t)d->K;
    return (s + 63) & ~(size_t)63;
}

int lc_host_conv_blocked_threads(const conv_dims *d, int nb, int kind, int threads, size_t ws_floats)
{
    for (int t = threads; t >= 1; t--)
        if ((size_t)t * slot_floats(d, group_size(d, nb, t), kind) <= ws_floats) return t;
    return 0;
}

typedef struct blk_ctx {
    const conv_dims *d;
    int kind, nb, g, tasks;
    const float *a, *b, *bias;
    float *out, *ws;
    size_t slot;
    int used[64];        /* HC_DW: groups accumulated per task */
} blk_ctx;

static void blk_task(void *p, int task)
{
    blk_ctx *c = p;
    const conv_dims *d = c->d;
    size_t hw = (size_t)d->h * d->w, ohw = (size_t)d->ohw, K = (size_t)d->K, co = (size_t)d->cout;
    size_t rl = (size_t)c->g * ohw + ROW_PAD; /* row length in the slot */
    float *col = c->ws + (size_t)task * c->slot, *t = col + K * rl;
    float *acc = t + co * rl;
    for (int n0 = task * c->g; n0 < c->nb; n0 += c->tasks * c->g) {
        int ng = c->nb - n0 < c->g ? c->nb - n0 : c->g;
        size_t cols = (size_t)ng * ohw, ld = cols + ROW_PAD;
        if (c->kind == HC_FWD) {
            const float *x = c->a + (size_t)n0 * d->cin * hw;
            for (int n = 0; n < ng; n++)
                for (int ci = 0; ci < d->cin; ci++)
                    im2col_plane(d, x + ((size_t)n * d->cin + ci) * hw, col + (size_t)n * ohw, ld, ci);
            float *y = c->out + (size_t)n0 * co * ohw;
            if (ng == 1) { /* straight into the NCHW planes */
                lc_rt_host_sgemm(false, false, co, ohw, K, 1.0f, c->b, K, col, ld, 0.0f, y, ohw);
                if (c->bias)
                    for (size_t ch = 0; ch < co; ch++) {
                        float bv = c->bias[ch], *o = y + ch * ohw;
                        for (size_t i = 0; i < ohw; i++) o[i] += bv;
                    }
            } else {
                lc_rt_host_sgemm(false, false, co, cols, K, 1.0f, c->b, K, col, ld, 0.0f, t, ld);
                for (int ch = 0; ch < d->cout; ch++) cn_to_nc(t, ld, y, ng, d->cout, ohw, c->bias, ch);
            }
        } else if (c->kind == HC_DX) {
            const float *dy = c->a + (size_t)n0 * co * ohw;
            if (ng == 1) {
                lc_rt_host_sgemm(true, false, K, ohw, co, 1.0f, c->b, K, dy, ohw, 0.0f, col, ld);
            } else {
                for (int ch = 0; ch < d->cout; ch++) nc_to_cn(t, ld, dy, ng, d->cout, ohw, ch);
                lc_rt_host_sgemm(true, false, K, cols, co, 1.0f, c->b, K, t, ld, 0.0f, col, ld);
            }
            float *dx = c->out + (size_t)n0 * d->cin * hw;
            for (int n = 0; n < ng; n++)
                for (int ci = 0; ci < d->cin; ci++)
                    col2im_plane(d, dx + ((size_t)n * d->cin + ci) * hw, col + (size_t)n * ohw, ld, ci);
        } else {
            const float *dy = c->a + (size_t)n0 * co * ohw, *x = c->b + (size_t)n0 * d->cin * hw;
            for (int n = 0; n < ng; n++)
                for (int ci = 0; ci < d->cin; ci++)
                    im2col_plane(d, x + ((size_t)n * d->cin + ci) * hw, col + (size_t)n * ohw, ld, ci);
            const float *g = dy;
            size_t ldg = ohw;
            if (ng > 1) {
                for (int ch = 0; ch < d->cout; ch++) nc_to_cn(t, ld, dy, ng, d->cout, ohw, ch);
                g = t;
                ldg = ld;
            }
            lc_rt_host_sgemm(false, true, co, K, cols, 1.0f, g, ldg, col, ld, c->used[task] ? 1.0f : 0.0f, acc, K);
            c->used[task]++;
        }
    }
}

static lc_status blocked(lc_rt *rt, int kind, const conv_dims *d, int nb, const float *a, const float *b,
                         const float *bias, float *out, float *ws, size_t ws_floats)
{
    int threads = lc_rt_host_threads(rt);
    if (threads > 64) threads = 64;
    int tasks = lc_host_conv_blocked_threads(d, nb, kind, threads, ws_floats);
    if (tasks < 1) return LC_ERR(LC_ERR_INVALID, "conv workspace too small for the blocked schedule");
    int g = group_size(d, nb, tasks);
    int groups = (nb + g - 1) / g;
    if (tasks > groups) tasks = groups;
    blk_ctx c = {.d = d, .kind = kind, .nb = nb, .g = g, .tasks = tasks, .a = a, .b = b, .bias = bias, .out = out,
                 .ws = ws, .slot = slot_floats(d, g, kind)};
    int old = lc_rt_host_blas_threads(1);
    lc_rt_host_parallel(rt, tasks, blk_task, &c);
    lc_rt_host_blas_threads(old);
    if (kind == HC_DW) { /* dW = the sum of the workers' accumulators, in task order */
        size_t n = (size_t)d->cout * (size_t)d->K,
               off = ((size_t)d->K + (size_t)d->cout) * ((size_t)g * d->ohw + ROW_PAD);
        bool first = true;
        for (int t = 0; t < tasks; t++) {
            if (!c.used[t]) continue;
            const float *acc = ws + (size_t)t * c.slot + off;
            if (first) memcpy(out, acc, n * sizeof *out);
            else
                for (size_t i = 0; i < n; i++) out[i] += acc[i];
            first = false;
        }
        if (first) memset(out, 0, n * sizeof *out);
    }
    return LC_OK;
}

/* ---- pointwise (1x1, stride 1, no padding): a GEMM per example ---- */

typedef struct bias_ctx { float *y; const float *b; int c; size_t hw; } bias_ctx;
static void bias_task(void *p, int pl)
{
    const bias_ctx *c = p;
    float *o = c->y + (size_t)pl * c->hw;
    float bv = c->b[pl % c->c];
    for (size_t i = 0; i < c->hw; i++) o[i] += bv;
}

static lc_status pointwise(lc_rt *rt, int kind, const conv_dims *d, int nb, const float *a, const float *b,
                           const float *bias, float *out)
{
    size_t hw = (size_t)d->h * d->w;
    for (int n = 0; n < nb; n++) {
        if (kind == HC_FWD) /* y_n = W x_n */
            LC_TRY(lc_rt_host_sgemm(false, false, (size_t)d->cout, hw, (size_t)d->cin, 1.0f, b, (size_t)d->cin,
                                    a + (size_t)n * d->cin * hw, hw, 0.0f, out + (size_t)n * d->cout * hw, hw));
        else if (kind == HC_DX) /* dx_n = W^T dy_n */
            LC_TRY(lc_rt_host_sgemm(true, false, (size_t)d->cin, hw, (size_t)d->cout, 1.0f, b, (size_t)d->cin,
                                    a + (size_t)n * d->cout * hw, hw, 0.0f, out + (size_t)n * d->cin * hw, hw));
        else /* dW (+)= dy_n x_n^T */
            LC_TRY(lc_rt_host_sgemm(false, true, (size_t)d->cout, (size_t)d->cin, hw, 1.0f,
                                    a + (size_t)n * d->cout * hw, hw, b + (size_t)n * d->cin * hw, hw,
                                    n ? 1.0f : 0.0f, out, (size_t)d->cin));
    }
    if (kind == HC_FWD && bias) {
        bias_ctx c = {out, bias, d->cout, hw};
        lc_rt_host_parallel(rt, nb * d->cout, bias_task, &c);
    }
    return LC_OK;
}

lc_status lc_host_conv(lc_rt *rt, int kind, int schedule, const conv_dims *d, int nb, int chunk, bool pw,
                       const float *a, const float *b, const float *bias, float *out, float *ws, size_t ws_floats)
{
    if (!lc_rt_host_sgemm_available()) return LC_ERR(LC_ERR_UNSUPPORTED, "no host BLAS in this build");
    if (pw) return pointwise(rt, kind, d, nb, a, b, bias, out);
    if (schedule == HC_WINO || schedule == HC_WINO4)
        return lc_host_wino(rt, kind, schedule == HC_WINO ? 2 : 4, d, nb, a, b, bias, out, ws, ws_floats);
    if (schedule == HC_BLOCKED) return blocked(rt, kind, d, nb, a, b, bias, out, ws, ws_floats);
    return chunked(rt, kind, d, nb, chunk, a, b, bias, out, ws);
}
