/* Device optimizers and Layca (reference/layca-paper.md sections 1-4).
 *
 * Built once per optimizer configuration (src/optim/optim.c picks the
 * options; every one has a default below so the file compiles alone):
 *   LC_KIND      inner optimizer: 0 SGD, 1 SGD_AMom, 2 Adam, 3 RMSprop, 4 Adagrad
 *   LC_NESTEROV  SGD: Nesterov momentum
 *   LC_MOM0      SGD with momentum 0: no state is read or written
 *   LC_WD        weight decay on (g += 2 wd w)
 *   LC_FP64      sums in double (exact products); 0: double-float pairs of
 *                floats (exact products by fma), for devices without fp64
 *   LC_WG        work-items per work-group (1 on CPUs: one work-item walks a
 *                contiguous chunk; 64-256 on GPUs and in device-only mode:
 *                interleaved, coalesced; at most what the device and the
 *                built kernels allow)
 *   LC_V         floats per vector (16 on AVX-512 CPUs, 4 on GPUs)
 * so the hot loops carry no runtime switch: each work-item loads and stores
 * whole floatV vectors and keeps its sums in per-lane vector accumulators.
 *
 * Layout: the parameter arena, the gradient arena, the optimizer state
 * arenas and the w0 arena all share one layout: tensors at offsets aligned
 * to 256 floats, so a vector that starts inside a tensor never leaves the
 * arena.  The tail vector of a tensor is masked: lanes past its end are
 * read but stored back unchanged and never summed.  The host cuts
 * every tensor into CHUNKS of consecutive elements (whole 256-float groups
 * except at the tensor's end, a bounded number per tensor); one work-group
 * handles one chunk, so it belongs to exactly one tensor, and a tensor's
 * chunks are consecutive in the chunk table.  The table lists Layca tensors'
 * chunks first, then plain tensors', then those of frozen kernels, so each
 * launch covers a prefix of it.
 *
 *   chunks[c] = (first element, end element, tensor, 0)  (long4: arenas may
 *               hold more than 2^31 floats; a chunk itself fewer)
 *   tens[t]   = (unused, first chunk, chunk count,
 *                mode | is_kernel << 2)      mode: 0 untouched, 1 plain, 2 Layca
 *   rates[t]  = lr (plain) or rho (Layca);   n0[t] = initial norm
 *
 * Sums: per lane, in double (LC_FP64, float products are exact there) or as
 * double-float pairs with error-free products and additions; then a fixed
 * order over lanes, work-items (local tree) and chunks (kernel B, in chunk
 * order).  No atomics: results are deterministic, and a layer's <s,w>,
 * ||s||^2, ||w||^2 are close to exact, so Layca's projected norm
 * ||s||^2 - <s,w>^2/||w||^2 stays accurate even when s is nearly parallel
 * to w.
 *
 * Partials (lc_pt: double, or float2 = (hi, lo)): part[c*4 + 0..2] = <s,w>,
 * ||s||^2, ||w||^2 of chunk c before the update; rot[c*2 + 0..1] = <w,w0>,
 * ||w||^2 of chunk c after the update (rotation monitoring).
 *
 * Hyperparameters hp (float8), by kind:
 *   SGD:      s0 momentum
 *   SGD_AMom: s0 beta, s1 1-beta
 *   Adam:     s0 beta1, s1 1-beta1, s2 beta2, s3 1-beta2, s4 eps,
 *             s5 bias correction sqrt(1-b2^t)/(1-b1^t)
 *   RMSprop:  s0 rho, s1 1-rho, s4 eps
 *   Adagrad:  s4 eps
 *   all:      s7 2*weight_decay */
#pragma OPENCL FP_CONTRACT OFF

#ifndef LC_KIND
#define LC_KIND 0
#endif
#ifndef LC_NESTEROV
#define LC_NESTEROV 0
#endif
#ifndef LC_MOM0
#define LC_MOM0 0
#endif
#ifndef LC_WD
#define LC_WD 1
#endif
#ifndef LC_FP64
#define LC_FP64 0
#endif
#ifndef LC_WG
#define LC_WG 1
#endif
#ifndef LC_V
#define LC_V 16
#endif

#if LC_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#define LC_MODE_NONE 0
#define LC_MODE_PLAIN 1
#define LC_MODE_LAYCA 2

#define LC_CAT_(a, b) a##b
#define LC_CAT(a, b) LC_CAT_(a, b)
#define floatV LC_CAT(float, LC_V)
#define intV LC_CAT(int, LC_V)
#define vloadV LC_CAT(vload, LC_V)
#define vstoreV LC_CAT(vstore, LC_V)
#if LC_V == 16
#define LC_IOTA ((int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#elif LC_V == 8
#define LC_IOTA ((int8)(0, 1, 2, 3, 4, 5, 6, 7))
#elif LC_V == 4
#define LC_IOTA ((int4)(0, 1, 2, 3))
#else
#error "LC_V must be 4, 8 or 16"
#endif

#if LC_WG == 1
#define LC_REQD __attribute__((reqd_work_group_size(1, 1, 1)))
#else
#define LC_REQD __attribute__((reqd_work_group_size(LC_WG, 1, 1)))
#endif

/* ---- double-float arithmetic ------------------------------------------------ */

float2 lc_two_sum(float a, float b)
{
    float s = a + b;
    float bb = s - a;
    float e = (a - (s - bb)) + (b - bb);
    return (float2)(s, e);
}

float2 lc_fast_two_sum(float a, float b)
{
    float s = a + b;
    float e = b - (s - a);
    return (float2)(s, e);
}

float2 lc_df_add(float2 x, float2 y)
{
    float2 s = lc_two_sum(x.x, y.x);
    return lc_fast_two_sum(s.x, s.y + x.y + y.y);
}

float2 lc_df_neg(float2 x) { return (float2)(-x.x, -x.y); }

float2 lc_df_mul(float2 x, float2 y)
{
    float p = x.x * y.x;
    float e = fma(x.x, y.x, -p);
    e += x.x * y.y + x.y * y.x;
    return lc_fast_two_sum(p, e);
}

float2 lc_df_div(float2 x, float2 y)
{
    float q1 = x.x / y.x;
    float p = y.x * q1;
    float pe = fma(y.x, q1, -p) + y.y * q1;
    float2 r = lc_df_add(x, lc_df_neg(lc_fast_two_sum(p, pe)));
    float q2 = r.x / y.x;
    return lc_fast_two_sum(q1, q2);
}

/* ---- sums: per-lane accumulators (lc_acc), their totals (lc_pt) ------------ */

#if LC_FP64
typedef double lc_pt;
#define LC_PT_ZERO 0.0
#define doubleV LC_CAT(double, LC_V)
#define convert_doubleV LC_CAT(convert_double, LC_V)
typedef doubleV lc_acc;

lc_pt lc_pt_add(lc_pt a, lc_pt b) { return a + b; }
lc_acc lc_acc_zero(void) { return (doubleV)(0.0); }
/* a += x*y per lane; the product of two floats is exact in double */
lc_acc lc_acc_add(lc_acc a, floatV x, floatV y) { return fma(convert_doubleV(x), convert_doubleV(y), a); }
lc_pt lc_acc_total(lc_acc a)
{
    double t[LC_V];
    vstoreV(a, 0, t);
    double s = t[0];
    for (int k = 1; k < LC_V; k++) s += t[k];
    return s;
}
#else
typedef float2 lc_pt;
#define LC_PT_ZERO ((float2)(0.0f))
typedef struct lc_acc { floatV h, l; } lc_acc;

lc_pt lc_pt_add(lc_pt a, lc_pt b) { return lc_df_add(a, b); }
lc_acc lc_acc_zero(void)
{
    lc_acc a;
    a.h = (floatV)(0.0f);
    a.l = (floatV)(0.0f);
    return a;
}
/* a += x*y per lane, exactly up to the final rounding of the pair; a.l is
 * left unnormalised (lc_acc_total normalises each lane). */
lc_acc lc_acc_add(lc_acc a, floatV x, floatV y)
{
    floatV p = x * y;
    floatV pe = fma(x, y, -p);
    floatV s = a.h + p;
    floatV bb = s - a.h;
    floatV e = (a.h - (s - bb)) + (p - bb);
    a.h = s;
    a.l = a.l + e + pe;
    return a;
}
lc_pt lc_acc_total(lc_acc a)
{
    float h[LC_V], l[LC_V];
    vstoreV(a.h, 0, h);
    vstoreV(a.l, 0, l);
    float2 s = lc_fast_two_sum(h[0], l[0]);
    for (int k = 1; k < LC_V; k++) s = lc_df_add(s, lc_fast_two_sum(h[k], l[k]));
    return s;
}
#endif

/* Work-group tree of three totals (fixed order); every work-item gets them.
 * With one work-item per group there is nothing to do. */
#if LC_WG > 1
#define LC_LOCALS __local lc_pt lc_r0[LC_WG], lc_r1[LC_WG], lc_r2[LC_WG]
#define LC_REDUCE3(a0, a1, a2) lc_tree3(lc_r0, lc_r1, lc_r2, &(a0), &(a1), &(a2), lid)
void lc_tree3(__local lc_pt *r0, __local lc_pt *r1, __local lc_pt *r2, lc_pt *a0, lc_pt *a1, lc_pt *a2, int lid)
{
    barrier(CLK_LOCAL_MEM_FENCE); /* earlier readers of r*[0] are done */
    r0[lid] = *a0;
    r1[lid] = *a1;
    r2[lid] = *a2;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = LC_WG / 2; h > 0; h >>= 1) {
        if (lid < h) {
            r0[lid] = lc_pt_add(r0[lid], r0[lid + h]);
            r1[lid] = lc_pt_add(r1[lid], r1[lid + h]);
            r2[lid] = lc_pt_add(r2[lid], r2[lid + h]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    *a0 = r0[0];
    *a1 = r1[0];
    *a2 = r2[0];
}
#else
#define LC_LOCALS
#define LC_REDUCE3(a0, a1, a2) ((void)0)
#endif

/* The vectors of elements [start, end) of this work-group's chunk: full
 * vectors interleaved over the work-items (contiguous with one work-item),
 * then the masked tail vector.  BODY sees i (first element), masked (0 or
 * 1, a constant of each copy) and mask (lanes inside the chunk). */
#define LC_FOR_VECTORS(start, end, ...)                                                                          \
    do {                                                                                                         \
        int n_ = (int)((end) - (start)), nf_ = n_ / LC_V, rem_ = n_ % LC_V;                                      \
        for (int k_ = lid; k_ < nf_; k_ += LC_WG) {                                                              \
            const long i = (start) + (long)k_ * LC_V;                                                           \
            const int masked = 0;                                                                                \
            const intV mask = (intV)(-1);                                                                        \
            __VA_ARGS__;                                                                                         \
        }                                                                                                        \
        if (rem_ && lid == nf_ % LC_WG) {                                                                        \
            const long i = (start) + (long)nf_ * LC_V;                                                          \
            const int masked = 1;                                                                                \
            const intV mask = LC_IOTA < (intV)(rem_);                                                            \
            __VA_ARGS__;                                                                                         \
        }                                                                                                        \
    } while (0)

#define LC_ZERO ((floatV)(0.0f))

void lc_store(floatV v, floatV old, __global float *p, long i, int masked, intV mask)
{
    vstoreV(masked ? select(old, v, mask) : v, 0, p + i);
}

/* ---- the inner optimizers ------------------------------------------------------
 * Keras 2.1.2 forms (reference 1.3), with g = grad + 2 wd w (Keras l2) and a
 * non-finite gradient entry counted as 0:
 *   SGD       m <- mu m - lr g; s = -m; Nesterov s = -(mu m - lr g)
 *   SGD_AMom  m <- beta m - (1-beta) g; s = -lr m
 *   Adam      m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2; s = lr ct m / (sqrt(v) + eps)
 *   RMSprop   a <- rho a + (1-rho) g^2; s = lr g / (sqrt(a) + eps)
 *   Adagrad   a <- a + g^2; s = lr g / (sqrt(a) + eps)
 * w -= s; a non-finite step becomes 0.  SGD with momentum 0 keeps no state
 * (m would be -lr g, never read again).  The step is a function of the
 * ADVANCED state, g and w (lc_step_of), so Layca's second pass recomputes it
 * bit for bit from what the first pass stored instead of a scratch arena. */
#define LC_STATE1 (LC_KIND != 0 || !LC_MOM0)
#define LC_STATE2 (LC_KIND == 2)
#define LC_STEP_NEEDS_G ((LC_KIND == 0 && (LC_MOM0 || LC_NESTEROV)) || LC_KIND == 3 || LC_KIND == 4)

floatV lc_grad(floatV w, floatV g, float8 hp)
{
    g = select(LC_ZERO, g, isfinite(g));
#if LC_WD
    g = g + hp.s7 * w;
#endif
    return g;
}

/* s from the advanced state m (a for RMSprop/Adagrad), v and g. */
floatV lc_step_of(floatV m, floatV v, floatV g, float lr, float8 hp)
{
#if LC_KIND == 0
#if LC_MOM0
    floatV s = lr * g;
#elif LC_NESTEROV
    floatV s = -(hp.s0 * m - lr * g);
#else
    floatV s = -m;
#endif
#elif LC_KIND == 1
    floatV s = -lr * m;
#elif LC_KIND == 2
    floatV s = (lr * hp.s5) * m / (sqrt(v) + hp.s4);
#else
    floatV s = lr * g / (sqrt(m) + hp.s4);
#endif
    return select(LC_ZERO, s, isfinite(s));
}

/* Advances the state of elements [i, i+LC_V) from the raw gradient and
 * returns the step. */
floatV lc_inner(floatV w, floatV graw, __global float *s1, __global float *s2, long i, float lr, float8 hp,
                int masked, intV mask)
{
    floatV g = lc_grad(w, graw, hp);
    floatV m = LC_ZERO, v = LC_ZERO;
#if LC_STATE1
    floatV mo = vloadV(0, s1 + i);
#endif
#if LC_KIND == 0 && !LC_MOM0
    m = hp.s0 * mo - lr * g;
#elif LC_KIND == 1
    m = hp.s0 * mo - hp.s1 * g;
#elif LC_KIND == 2
    floatV vo = vloadV(0, s2 + i);
    m = hp.s0 * mo + hp.s1 * g;
    v = hp.s2 * vo + hp.s3 * (g * g);
    lc_store(v, vo, s2, i, masked, mask);
#elif LC_KIND == 3
    m = hp.s0 * mo + hp.s1 * (g * g);
#elif LC_KIND == 4
    m = mo + g * g;
#endif
#if LC_STATE1
    lc_store(m, mo, s1, i, masked, mask);
#endif
    return lc_step_of(m, v, g, lr, hp);
}

/* The step of elements [i, i+LC_V) again, from the state lc_inner stored
 * (w: the weights it saw). */
floatV lc_step_again(floatV w, __global const float *graw, __global const float *s1, __global const float *s2,
                     long i, float lr, float8 hp)
{
    floatV g = LC_ZERO, m = LC_ZERO, v = LC_ZERO;
#if LC_STEP_NEEDS_G
    g = lc_grad(w, vloadV(0, graw + i), hp);
#endif
#if LC_STATE1
    m = vloadV(0, s1 + i);
#endif
#if LC_STATE2
    v = vloadV(0, s2 + i);
#endif
    return lc_step_of(m, v, g, lr, hp);
}

/* ---- per-vector bodies ------------------------------------------------------- */

/* Plain step: w -= s (an update that would make w non-finite is dropped);
 * with mon, the updated w's <w,w0>, ||w||^2 go to a0, a1. */
void lc_v_plain(__global float *w, __global const float *g, __global float *s1, __global float *s2,
                __global const float *w0, long i, float lr, float8 hp, int masked, intV mask, int mon, lc_acc *a0,
                lc_acc *a1)
{
    floatV wi = vloadV(0, w + i);
    floatV si = lc_inner(wi, vloadV(0, g + i), s1, s2, i, lr, hp, masked, mask);
    floatV nw = wi - si;
    nw = select(wi, nw, isfinite(nw));
    lc_store(nw, wi, w, i, masked, mask);
    if (mon) {
        floatV r = vloadV(0, w0 + i);
        if (masked) {
            nw = select(LC_ZERO, nw, mask);
            r = select(LC_ZERO, r, mask);
        }
        *a0 = lc_acc_add(*a0, nw, r);
        *a1 = lc_acc_add(*a1, nw, nw);
    }
}

/* Layca's first pass: advances the state; with sums, <s,w>, ||s||^2,
 * ||w||^2 to a0..a2. */
void lc_v_layca_step(__global const float *w, __global const float *g, __global float *s1, __global float *s2,
                     long i, float lr, float8 hp, int masked, intV mask, int sums, lc_acc *a0, lc_acc *a1, lc_acc *a2)
{
    floatV wi = vloadV(0, w + i);
    floatV si = lc_inner(wi, vloadV(0, g + i), s1, s2, i, lr, hp, masked, mask);
    if (sums) {
        if (masked) {
            wi = select(LC_ZERO, wi, mask);
            si = select(LC_ZERO, si, mask);
        }
        *a0 = lc_acc_add(*a0, si, wi);
        *a1 = lc_acc_add(*a1, si, si);
        *a2 = lc_acc_add(*a2, wi, wi);
    }
}

/* <s,w>, ||s||^2, ||w||^2 of the step the state holds (unfused path). */
void lc_v_step_sums(__global const float *w, __global const float *g, __global const float *s1,
                    __global const float *s2, long i, float lr, float8 hp, int masked, intV mask, lc_acc *a0,
                    lc_acc *a1, lc_acc *a2)
{
    floatV wi = vloadV(0, w + i);
    floatV si = lc_step_again(wi, g, s1, s2, i, lr, hp);
    if (masked) {
        wi = select(LC_ZERO, wi, mask);
        si = select(LC_ZERO, si, mask);
    }
    *a0 = lc_acc_add(*a0, si, wi);
    *a1 = lc_acc_add(*a1, si, si);
    *a2 = lc_acc_add(*a2, wi, wi);
}

/* <w,w0>, ||w||^2 of the current weights. */
void lc_v_rot(__global const float *w, __global const float *w0, long i, int masked, intV mask, lc_acc *a0, lc_acc *a1)
{
    floatV wi = vloadV(0, w + i), r = vloadV(0, w0 + i);
    if (masked) {
        wi = select(LC_ZERO, wi, mask);
        r = select(LC_ZERO, r, mask);
    }
    *a0 = lc_acc_add(*a0, wi, r);
    *a1 = lc_acc_add(*a1, wi, wi);
}

/* Layca's second pass: s again from the state, w'' = k w - beta (s - c w),
 * dropped where not finite; with mon, the new w's <w,w0>, ||w||^2 go to
 * a0, a1. */
void lc_v_layca_apply(__global float *w, __global const float *g, __global const float *s1,
                      __global const float *s2, __global const float *w0, long i, float lr, float8 hp, float c,
                      float k, float beta, int masked, intV mask, int mon, lc_acc *a0, lc_acc *a1)
{
    floatV wi = vloadV(0, w + i);
    floatV u = fma(-c, wi, lc_step_again(wi, g, s1, s2, i, lr, hp));
    floatV nw = fma(-beta, u, k * wi);
    nw = select(wi, nw, isfinite(nw));
    lc_store(nw, wi, w, i, masked, mask);
    if (mon) {
        floatV r = vloadV(0, w0 + i);
        if (masked) {
            nw = select(LC_ZERO, nw, mask);
            r = select(LC_ZERO, r, mask);
        }
        *a0 = lc_acc_add(*a0, nw, r);
        *a1 = lc_acc_add(*a1, nw, nw);
    }
}

/* ---- Layca's per-layer coefficients ----------------------------------------------
 * From <s,w>, ||s||^2, ||w||^2 (V2/TOOLS form, reference 1.2):
 *   c = <s,w>/||w||^2, u = s - c w (tangent), ||u||^2 = ||s||^2 - <s,w> c,
 *   s_hat = u ||w||/||u||, w' = w - rho s_hat, ||w'||^2 = ||w||^2 (1 + rho^2),
 *   w'' = w' n0/||w'|| = k w - beta u,  k = n0/(||w|| sqrt(1+rho^2)),
 *   beta = k rho ||w||/||u||.
 * Returns 0 (zero step, w untouched) when ||w|| is zero or not finite, when
 * ||u|| <= 1e-7 (Keras epsilon, as the reference), or when u is below float
 * resolution (||u||^2 <= 1e-10 ||s||^2: s parallel to w within 1e-5 rad,
 * where the elementwise tangent cannot be formed in float). */
#if LC_FP64
int lc_layca_coef(lc_pt sw, lc_pt ss, lc_pt ww, float rho, float n0, float *c, float *k, float *beta)
{
    if (!(ww > 0.0) || !isfinite(ww) || !isfinite(ss) || !isfinite(sw)) return 0;
    double q = sw / ww;
    double p2 = ss - sw * q;
    if (!(p2 > 1e-10 * ss)) return 0;
    double un = sqrt(p2);
    if (!(un > 1e-7) || !isfinite(un)) return 0;
    double wn = sqrt(ww), r = rho;
    double kk = (double)n0 / (wn * sqrt(1.0 + r * r));
    double bb = kk * r * (wn / un);
    float fq = (float)q, fk = (float)kk, fb = (float)bb;
    if (!isfinite(fk) || !isfinite(fb) || !isfinite(fq)) return 0;
    *c = fq;
    *k = fk;
    *beta = fb;
    return 1;
}
#else
int lc_layca_coef(lc_pt sw, lc_pt ss, lc_pt ww, float rho, float n0, float *c, float *k, float *beta)
{
    float wwf = ww.x + ww.y, ssf = ss.x + ss.y;
    if (!(wwf > 0.0f) || !isfinite(wwf) || !isfinite(ssf) || !isfinite(sw.x)) return 0;
    float2 q = lc_df_div(sw, ww);
    float2 perp = lc_df_add(ss, lc_df_neg(lc_df_mul(sw, q)));
    float p2 = perp.x + perp.y;
    if (!(p2 > 1e-10f * ssf)) return 0;
    float un = sqrt(p2);
    if (!(un > 1e-7f) || !isfinite(un)) return 0;
    float wn = sqrt(wwf);
    float kk = n0 / (wn * sqrt(1.0f + rho * rho));
    float bb = kk * rho * (wn / un);
    if (!isfinite(kk) || !isfinite(bb) || !isfinite(q.x)) return 0;
    *c = q.x;
    *k = kk;
    *beta = bb;
    return 1;
}
#endif

/* A tensor's <s,w>, ||s||^2, ||w||^2 from its chunks' partials, in chunk
 * order per work-item (then the caller's tree): the same order wherever it
 * is computed, so every chunk of a tensor agrees. */
void lc_layer_totals(__global const lc_pt *part, int first, int count, int lid, lc_pt *t0, lc_pt *t1, lc_pt *t2)
{
    lc_pt a0 = LC_PT_ZERO, a1 = LC_PT_ZERO, a2 = LC_PT_ZERO;
    for (int j = lid; j < count; j += LC_WG) {
        __global const lc_pt *p = part + (size_t)(first + j) * 4;
        a0 = lc_pt_add(a0, p[0]);
        a1 = lc_pt_add(a1, p[1]);
        a2 = lc_pt_add(a2, p[2]);
    }
    *t0 = a0;
    *t1 = a1;
    *t2 = a2;
}

/* ---- fused path: one launch per plain step, two per Layca step ------------- */

/* Plain optimizers, no monitoring: chunks [0, launched) are all plain. */
__kernel LC_REQD void lc_optim_plain(__global float *w, __global const float *g, __global float *s1,
                                     __global float *s2, __global const long4 *chunks, __global const float *rates,
                                     float8 hp)
{
    int c = get_group_id(0), lid = get_local_id(0);
    long4 ch = chunks[c];
    float lr = rates[ch.z];
    lc_acc a0 = lc_acc_zero(), a1 = lc_acc_zero();
    LC_FOR_VECTORS(ch.x, ch.y, lc_v_plain(w, g, s1, s2, w, i, lr, hp, masked, mask, 0, &a0, &a1));
}

/* Kernels with a work-group tree (LC_WG > 1) reach it unconditionally and
 * decide only the final write: no return before a barrier, even a uniform
 * one (PoCL's small work-group compilation mishandled that). */

/* Kernel A, one work-group per chunk: advances the inner optimizer state
 * from the raw gradient.  Plain tensors (mode 1) are updated here (w -= s).
 * Layca tensors (mode 2) get the chunk's partials <s,w>, ||s||^2, ||w||^2
 * written to part.  When monitor is set, kernel tensors not under Layca
 * (mode 0 and 1) also write their post-step <w,w0>, ||w||^2 to rot (Layca
 * tensors do so in kernel B). */
__kernel LC_REQD void lc_optim_fused_a(__global float *w, __global const float *g, __global float *s1,
                                       __global float *s2, __global const float *w0, __global lc_pt *part,
                                       __global lc_pt *rot, __global const long4 *chunks, __global const int4 *tens,
                                       __global const float *rates, float8 hp, float inner_lr, int monitor)
{
    LC_LOCALS;
    int c = get_group_id(0), lid = get_local_id(0);
    long4 ch = chunks[c];
    int mode = tens[ch.z].w & 3, mon = monitor && (tens[ch.z].w & 4) && mode != LC_MODE_LAYCA;
    lc_acc a0 = lc_acc_zero(), a1 = lc_acc_zero(), a2 = lc_acc_zero();
    if (mode == LC_MODE_LAYCA) {
        LC_FOR_VECTORS(ch.x, ch.y, lc_v_layca_step(w, g, s1, s2, i, inner_lr, hp, masked, mask, 1, &a0, &a1, &a2));
    } else if (mode == LC_MODE_PLAIN) {
        float lr = rates[ch.z];
        if (mon)
            LC_FOR_VECTORS(ch.x, ch.y, lc_v_plain(w, g, s1, s2, w0, i, lr, hp, masked, mask, 1, &a0, &a1));
        else
            LC_FOR_VECTORS(ch.x, ch.y, lc_v_plain(w, g, s1, s2, w0, i, lr, hp, masked, mask, 0, &a0, &a1));
    } else if (mon) {
        LC_FOR_VECTORS(ch.x, ch.y, lc_v_rot(w, w0, i, masked, mask, &a0, &a1));
    }
#if LC_WG == 1
    if (mode != LC_MODE_LAYCA && !mon) return;
#endif
    lc_pt p0 = lc_acc_total(a0), p1 = lc_acc_total(a1), p2 = lc_acc_total(a2);
    LC_REDUCE3(p0, p1, p2);
    if (lid != 0) return;
    if (mode == LC_MODE_LAYCA) {
        __global lc_pt *p = part + (size_t)c * 4;
        p[0] = p0;
        p[1] = p1;
        p[2] = p2;
    } else if (mon) {
        rot[(size_t)c * 2] = p0;
        rot[(size_t)c * 2 + 1] = p1;
    }
}

/* Kernel B, one work-group per Layca chunk (chunks [0, launched) are the
 * Layca ones): finishes the tensor's sums from its chunks' partials (every
 * chunk of a tensor does the same fixed-order reduction, so all agree),
 * recomputes the step from the state kernel A stored, then applies the
 * projected, normalised update and the rescale to n0 elementwise; with
 * monitor, writes the chunk's post-update <w,w0>, ||w||^2 to rot. */
__kernel LC_REQD void lc_optim_fused_b(__global float *w, __global const float *g, __global const float *s1,
                                       __global const float *s2, __global const float *w0,
                                       __global const lc_pt *part, __global lc_pt *rot,
                                       __global const long4 *chunks, __global const int4 *tens,
                                       __global const float *rates, __global const float *n0, float8 hp,
                                       float inner_lr, int monitor)
{
    LC_LOCALS;
    int c = get_group_id(0), lid = get_local_id(0);
    long4 ch = chunks[c];
    int4 ti = tens[ch.z];
    lc_pt t0, t1, t2;
    lc_layer_totals(part, ti.y, ti.z, lid, &t0, &t1, &t2);
    LC_REDUCE3(t0, t1, t2);
    float cc = 0.0f, kk = 1.0f, beta = 0.0f;
    int go = lc_layca_coef(t0, t1, t2, rates[ch.z], n0[ch.z], &cc, &kk, &beta);
    lc_acc a0 = lc_acc_zero(), a1 = lc_acc_zero();
    if (go && monitor)
        LC_FOR_VECTORS(ch.x, ch.y,
                       lc_v_layca_apply(w, g, s1, s2, w0, i, inner_lr, hp, cc, kk, beta, masked, mask, 1, &a0, &a1));
    else if (go)
        LC_FOR_VECTORS(ch.x, ch.y,
                       lc_v_layca_apply(w, g, s1, s2, w0, i, inner_lr, hp, cc, kk, beta, masked, mask, 0, &a0, &a1));
    else if (monitor)
        LC_FOR_VECTORS(ch.x, ch.y, lc_v_rot(w, w0, i, masked, mask, &a0, &a1));
#if LC_WG == 1
    if (!monitor) return;
#endif
    lc_pt p0 = lc_acc_total(a0), p1 = lc_acc_total(a1), p2 = LC_PT_ZERO;
    LC_REDUCE3(p0, p1, p2);
    if (lid == 0 && monitor) {
        rot[(size_t)c * 2] = p0;
        rot[(size_t)c * 2 + 1] = p1;
    }
}

/* Rotation partials of the current weights, one work-group per chunk of a
 * kernel tensor: rot[c] = <w,w0>, ||w||^2. */
__kernel LC_REQD void lc_optim_rot_partials(__global const float *w, __global const float *w0, __global lc_pt *rot,
                                            __global const long4 *chunks, __global const int4 *tens)
{
    LC_LOCALS;
    int c = get_group_id(0), lid = get_local_id(0);
    long4 ch = chunks[c];
    int kern = tens[ch.z].w & 4;
    lc_acc a0 = lc_acc_zero(), a1 = lc_acc_zero();
    if (kern) LC_FOR_VECTORS(ch.x, ch.y, lc_v_rot(w, w0, i, masked, mask, &a0, &a1));
    lc_pt p0 = lc_acc_total(a0), p1 = lc_acc_total(a1), p2 = LC_PT_ZERO;
    LC_REDUCE3(p0, p1, p2);
    if (lid == 0 && kern) {
        rot[(size_t)c * 2] = p0;
        rot[(size_t)c * 2 + 1] = p1;
    }
}

/* ---- unfused path: per tensor, for checking and benchmarking -------------------
 * Plain tensor: u_step (1 launch).  Layca tensor: u_step, u_partials,
 * u_total, u_update (4 launches).  Each launch covers the tensor's chunks,
 * chunk c0 onwards; the sums are formed in the same order as in the fused
 * path, so both paths give the same weights. */

/* Advances the state; mode 1: w -= s. */
__kernel LC_REQD void lc_optim_u_step(__global float *w, __global const float *g, __global float *s1,
                                      __global float *s2, __global const long4 *chunks, __global const int4 *tens,
                                      __global const float *rates, float8 hp, float inner_lr, int c0)
{
    int c = c0 + (int)get_group_id(0), lid = get_local_id(0);
    long4 ch = chunks[c];
    int mode = tens[ch.z].w & 3;
    lc_acc a0 = lc_acc_zero(), a1 = lc_acc_zero(), a2 = lc_acc_zero();
    if (mode == LC_MODE_PLAIN) {
        float lr = rates[ch.z];
        LC_FOR_VECTORS(ch.x, ch.y, lc_v_plain(w, g, s1, s2, w, i, lr, hp, masked, mask, 0, &a0, &a1));
    } else if (mode == LC_MODE_LAYCA) {
        LC_FOR_VECTORS(ch.x, ch.y, lc_v_layca_step(w, g, s1, s2, i, inner_lr, hp, masked, mask, 0, &a0, &a1, &a2));
    }
}

/* part[c*4 + 0..2] = <s,w>, ||s||^2, ||w||^2 of chunk c. */
__kernel LC_REQD void lc_optim_u_partials(__global const float *w, __global const float *g, __global const float *s1,
                                          __global const float *s2, __global lc_pt *part, __global const long4 *chunks,
                                          float8 hp, float inner_lr, int c0)
{
    LC_LOCALS;
    int c = c0 + (int)get_group_id(0), lid = get_local_id(0);
    long4 ch = chunks[c];
    lc_acc a0 = lc_acc_zero(), a1 = lc_acc_zero(), a2 = lc_acc_zero();
    LC_FOR_VECTORS(ch.x, ch.y, lc_v_step_sums(w, g, s1, s2, i, inner_lr, hp, masked, mask, &a0, &a1, &a2));
    lc_pt p0 = lc_acc_total(a0), p1 = lc_acc_total(a1), p2 = lc_acc_total(a2);
    LC_REDUCE3(p0, p1, p2);
    if (lid == 0) {
        __global lc_pt *p = part + (size_t)c * 4;
        p[0] = p0;
        p[1] = p1;
        p[2] = p2;
    }
}

/* One work-group: tot[t*4 + 0..2] = tensor t's sums from its chunks' partials. */
__kernel LC_REQD void lc_optim_u_total(__global const lc_pt *part, __global lc_pt *tot, __global const int4 *tens,
                                       int t)
{
    LC_LOCALS;
    int lid = get_local_id(0);
    int4 ti = tens[t];
    lc_pt t0, t1, t2;
    lc_layer_totals(part, ti.y, ti.z, lid, &t0, &t1, &t2);
    LC_REDUCE3(t0, t1, t2);
    if (lid == 0) {
        __global lc_pt *p = tot + (size_t)t * 4;
        p[0] = t0;
        p[1] = t1;
        p[2] = t2;
    }
}

/* Layca update of chunk c from tot[its tensor]. */
__kernel LC_REQD void lc_optim_u_update(__global float *w, __global const float *g, __global const float *s1,
                                        __global const float *s2, __global const lc_pt *tot,
                                        __global const long4 *chunks, __global const float *rates,
                                        __global const float *n0, float8 hp, float inner_lr, int c0)
{
    int c = c0 + (int)get_group_id(0), lid = get_local_id(0);
    long4 ch = chunks[c];
    __global const lc_pt *p = tot + (size_t)ch.z * 4;
    float cc, kk, beta;
    if (!lc_layca_coef(p[0], p[1], p[2], rates[ch.z], n0[ch.z], &cc, &kk, &beta)) return;
    lc_acc a0 = lc_acc_zero(), a1 = lc_acc_zero();
    LC_FOR_VECTORS(ch.x, ch.y,
                   lc_v_layca_apply(w, g, s1, s2, w, i, inner_lr, hp, cc, kk, beta, masked, mask, 0, &a0, &a1));
}
