/* 3x3 stride-1 conv2d on the host with Winograd's minimal filtering (Lavin
 * & Gray, 2016), F(m x m, 3 x 3) for m = 2 or 4: each m x m output tile is
 * A^T [U (.) V] A with V = B^T d B of the tile's a x a input patch (a =
 * m + 2) and U = G g G^T of the 3x3 kernel, so the channel sums become a*a
 * GEMMs (one per position xi of the transform domain) with a*a / (m*m)
 * multiplies per output instead of 9 (4 for m = 2, 2.25 for m = 4).
 *   forward: V from x, M[xi] = U[xi] V[xi] (cout x cin . cin x tiles),
 *            y = A^T M A (+ bias)
 *   dx:      the same pass on dy with every kernel rotated by 180 degrees
 *            and the channels swapped (a "full" correlation: padding
 *            2 - pad, output h x w)
 *   dW:      dU[xi] = sum over tiles of (A dY A^T)[xi] V[xi]^T, dW = G^T dU G
 * Each host worker takes groups of examples (a static assignment, so the
 * weight gradient's sum order is fixed) and keeps its transforms in its own
 * slice of the node's workspace; the GEMMs run single-threaded per worker.
 * Layouts: channels last in the transform domain, so the transforms run on
 * 8 channels at once with unit strides: per group V[xi][t][cin] and
 * M[xi][t][cout] with tile t = (example * th + ty) * tw + tx, and U[xi] the
 * pass's (Cin x Cout) operand: M[xi] = V[xi] U[xi]; the weight gradient
 * dU[xi] (cout x cin) += Mdy[xi]^T V[xi].  8 planes (channels) are first
 * interleaved into a zero-padded block of m phase planes (columns k, k + m,
 * k + 2m, ...) with the channel innermost; outputs are de-interleaved back. */
#include "exec_host.h"

#include <string.h>

#define SLOT_LIMIT ((size_t)1 << 20) /* floats of one worker's V and M */

typedef struct wgeo {
    int m, a, nt;        /* output tile, input tile (m + 2), transform positions (a * a) */
    int cin, cout;       /* channels in and out of this pass */
    int h, w, oh, ow;    /* input and output planes */
    int pt, pl;          /* padding (top, left) of the input */
    int th, tw;          /* tiles per plane: ceil(oh / m), ceil(ow / m) */
} wgeo;

static wgeo mk_geo(int m, int cin, int cout, int h, int w, int oh, int ow, int pt, int pl)
{
    return (wgeo){m, m + 2, (m + 2) * (m + 2), cin, cout, h, w, oh, ow, pt, pl, (oh + m - 1) / m, (ow + m - 1) / m};
}

static wgeo geo_of(const conv_dims *d, int kind, int m)
{
    if (kind == HC_DX) /* a forward pass over dy with padding 2 - pad giving h x w */
        return mk_geo(m, d->cout, d->cin, d->oh, d->ow, d->h, d->w, 2 - d->pt, 2 - d->pl);
    return mk_geo(m, d->cin, d->cout, d->h, d->w, d->oh, d->ow, d->pt, d->pl);
}

bool lc_host_wino_applies(const conv_dims *d)
{
    return d->kh == 3 && d->kw == 3 && d->sh == 1 && d->sw == 1 && d->pt >= 0 && d->pt <= 2 && d->pl >= 0 &&
           d->pl <= 2 && d->oh >= 1 && d->ow >= 1;
}

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

/* scratch for one example's channels in blocks of 8 planes: the m phase
 * planes of the padded input ((m th + 2) rows of tw + 1), or m x m phase
 * rows of tw for a tile row's outputs (or dy values), 8 lanes each */
static size_t plane_floats(const wgeo *g)
{
    size_t in = (size_t)((g->cin + 7) / 8) * g->m * (size_t)(g->m * g->th + 2) * (size_t)(g->tw + 1);
    size_t out = (size_t)((g->cout + 7) / 8) * g->m * g->m * (size_t)(g->tw + 1);
    return 8 * (in > out ? in : out);
}

static int group_examples(const wgeo *g, int nb, int tasks)
{
    size_t per_ex = (size_t)g->nt * (size_t)(g->cin + g->cout) * (size_t)g->th * g->tw;
    int e = (int)(SLOT_LIMIT / (per_ex ? per_ex : 1));
    int per = (nb + tasks - 1) / tasks;
    if (e > per) e = per;
    return e < 1 ? 1 : e;
}

/* The transform positions xi of V and M are XS_PAD floats further apart
 * than their T x C blocks: the transforms write (and read) the a*a
 * positions of a tile together, and strides of a multiple of 4 KiB would
 * put all of them in the same cache set. */
#define XS_PAD 16

/* xi stride of U and dU (padded as V and M) */
static size_t ustride(const conv_dims *d) { return (size_t)d->cout * d->cin + XS_PAD; }

/* one worker's slice: V, M and scratch, then (dW) its dU accumulator */
static size_t acc_offset(const wgeo *g, int ge)
{
    return up64((size_t)g->nt * ((size_t)(g->cin + g->cout) * (size_t)ge * g->th * g->tw + 2 * XS_PAD) +
                plane_floats(g));
}

static size_t slot_floats(const wgeo *g, int ge, int kind, const conv_dims *d)
{
    return acc_offset(g, ge) + (kind == HC_DW ? up64((size_t)g->nt * ustride(d)) : 0);
}

static size_t shared_floats(const wgeo *g, const conv_dims *d) { return up64((size_t)g->nt * ustride(d)); }

/* workers and examples per group within ws_floats: the most workers, then
 * the largest group (up to SLOT_LIMIT) that fits; 0 workers: no fit */
static int plan(const wgeo *g, const conv_dims *d, int nb, int kind, int threads, size_t ws_floats, int *ge_out)
{
    for (int t = threads; t >= 1; t--)
        for (int ge = group_examples(g, nb, t); ge >= 1; ge = ge > 8 ? ge * 3 / 4 : ge - 1)
            if (shared_floats(g, d) + (size_t)t * slot_floats(g, ge, kind, d) <= ws_floats) {
                if (ge_out) *ge_out = ge;
                return t;
            }
    return 0;
}

int lc_host_wino_threads(const conv_dims *d, int nb, int kind, int m, int threads, size_t ws_floats)
{
    if (!lc_host_wino_applies(d) || (m != 2 && m != 4)) return 0;
    wgeo g = geo_of(d, kind, m);
    return plan(&g, d, nb, kind, threads, ws_floats, NULL);
}

/* ---- the 1-D transforms, on scalars or on 8 tiles at once ---- */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LC_CLONES
#endif

typedef float v8f __attribute__((vector_size(32), aligned(4), may_alias)); /* unaligned loads and stores */

/* B^T d (a values), G g (3 -> a), A^T m (a -> m), A y (m -> a), G^T u (a -> 3) */
#define BT2(T, d, r)                                                           \
    do {                                                                       \
        r[0] = d[0] - d[2]; r[1] = d[1] + d[2]; r[2] = d[2] - d[1]; r[3] = d[1] - d[3]; \
    } while (0)
#define BT4(T, d, r)                                                           \
    do {                                                                       \
        T d4_ = d[4];                                                          \
        r[0] = 4.0f * d[0] - 5.0f * d[2] + d4_;                                \
        r[1] = d[3] + d4_ - 4.0f * (d[1] + d[2]);                              \
        r[2] = d4_ - d[3] + 4.0f * (d[1] - d[2]);                              \
        r[3] = d4_ - d[2] + 2.0f * (d[3] - d[1]);                              \
        r[4] = d4_ - d[2] - 2.0f * (d[3] - d[1]);                              \
        r[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];                               \
    } while (0)
#define AT2(T, s, y)                                                           \
    do {                                                                       \
        y[0] = s[0] + s[1] + s[2]; y[1] = s[1] - s[2] - s[3];                  \
    } while (0)
#define AT4(T, s, y)                                                           \
    do {                                                                       \
        T p1_ = s[1] + s[2], m1_ = s[1] - s[2], p2_ = s[3] + s[4], m2_ = s[3] - s[4]; \
        y[0] = s[0] + p1_ + p2_;                                               \
        y[1] = m1_ + 2.0f * m2_;                                               \
        y[2] = p1_ + 4.0f * p2_;                                               \
        y[3] = m1_ + 8.0f * m2_ + s[5];                                        \
    } while (0)
#define AY2(T, y, r)                                                           \
    do {                                                                       \
        r[0] = y[0]; r[1] = y[0] + y[1]; r[2] = y[0] - y[1]; r[3] = -y[1];     \
    } while (0)
#define AY4(T, y, r)                                                           \
    do {                                                                       \
        T ay_e = y[0] + y[2], ay_o = y[1] + y[3], ay_e4 = y[0] + 4.0f * y[2], ay_o4 = 2.0f * y[1] + 8.0f * y[3]; \
        r[0] = y[0]; r[1] = ay_e + ay_o; r[2] = ay_e - ay_o; r[3] = ay_e4 + ay_o4; r[4] = ay_e4 - ay_o4; r[5] = y[3]; \
    } while (0)

static void g_row(int m, const float *g, float *u)
{
    if (m == 2) {
        u[0] = g[0];
        u[1] = 0.5f * (g[0] + g[1] + g[2]);
        u[2] = 0.5f * (g[0] - g[1] + g[2]);
        u[3] = g[2];
    } else {
        const float s6 = 1.0f / 6.0f, s12 = 1.0f / 12.0f, s24 = 1.0f / 24.0f; /* multiplies, not divisions */
        u[0] = 0.25f * g[0];
        u[1] = -s6 * (g[0] + g[1] + g[2]);
        u[2] = -s6 * (g[0] - g[1] + g[2]);
        u[3] = s24 * g[0] + s12 * g[1] + s6 * g[2];
        u[4] = s24 * g[0] - s12 * g[1] + s6 * g[2];
        u[5] = g[2];
    }
}

static void gt_row(int m, const float *u, float *w)
{
    if (m == 2) {
        w[0] = u[0] + 0.5f * (u[1] + u[2]);
        w[1] = 0.5f * (u[1] - u[2]);
        w[2] = 0.5f * (u[1] + u[2]) + u[3];
    } else {
        const float s6 = 1.0f / 6.0f, s12 = 1.0f / 12.0f, s24 = 1.0f / 24.0f;
        w[0] = 0.25f * u[0] - s6 * (u[1] + u[2]) + s24 * (u[3] + u[4]);
        w[1] = -s6 * (u[1] - u[2]) + s12 * (u[3] - u[4]);
        w[2] = -s6 * (u[1] + u[2]) + s6 * (u[3] + u[4]) + u[5];
    }
}

/* ---- weights ---- */

/* U[xi][ci][co] = G g G^T (forward), or for dx U[xi][co][ci] = G rot(g) G^T;
 * one task per row of U (ci forward, co for dx), so that each task writes
 * its rows of U contiguously */
typedef struct wt_ctx { const float *w; float *u; int cout, cin, m; bool dx; size_t s; } wt_ctx;
static void weights_task(void *p, int row)
{
    const wt_ctx *c = p;
    int a = c->m + 2;
    size_t s = c->s;
    int ncol = c->dx ? c->cin : c->cout;
    for (int cc = 0; cc < ncol; cc++) {
        int co = c->dx ? row : cc, ci = c->dx ? cc : row;
        const float *g0 = c->w + ((size_t)co * c->cin + ci) * 9;
        float g[9], col[3], t[6][3], u[6];
        for (int k = 0; k < 9; k++) g[k] = c->dx ? g0[8 - k] : g0[k];
        for (int j = 0; j < 3; j++) { /* G g: each kernel column */
            col[0] = g[j];
            col[1] = g[3 + j];
            col[2] = g[6 + j];
            g_row(c->m, col, u);
            for (int i = 0; i < a; i++) t[i][j] = u[i];
        }
        /* the pass's GEMM operand (pass Cin x pass Cout): [ci][co] forward, [co][ci] for dx */
        float *dst = c->u + (c->dx ? (size_t)co * c->cin + ci : (size_t)ci * c->cout + co);
        for (int i = 0; i < a; i++) { /* (G g) G^T: each row */
            g_row(c->m, t[i], u);
            for (int k = 0; k < a; k++) dst[(size_t)(i * a + k) * s] = u[k];
        }
    }
}

/* dW[co][ci] = G^T dU G; one task per output channel */
typedef struct wg_ctx { const float *du; float *dw; int cout, cin, m; size_t s; } wg_ctx;
static void wgrad_task(void *p, int co)
{
    const wg_ctx *c = p;
    int a = c->m + 2;
    size_t s = c->s;
    for (int ci = 0; ci < c->cin; ci++) {
        const float *u = c->du + (size_t)co * c->cin + ci;
        float col[6], t[3][6], w[3];
        for (int j = 0; j < a; j++) { /* G^T dU: each column */
            for (int i = 0; i < a; i++) col[i] = u[(size_t)(i * a + j) * s];
            gt_row(c->m, col, w);
            for (int k = 0; k < 3; k++) t[k][j] = w[k];
        }
        float *g = c->dw + ((size_t)co * c->cin + ci) * 9;
        for (int k = 0; k < 3; k++) { /* (G^T dU) G: each row */
            gt_row(c->m, t[k], w);
            for (int j = 0; j < 3; j++) g[k * 3 + j] = w[j];
        }
    }
}

/* ---- planes, 8 channels (lanes) at a time ---- */

#define LD8(p) (*(const v8f *)(p))
#define ST8(p, x) (*(v8f *)(p) = (x))

/* Two-vector shuffles with constant lane lists: GCC's __builtin_shuffle
 * takes a mask vector, clang's __builtin_shufflevector the lanes. */
#if defined(__clang__)
#define SHUF8(x, y, a, b, c, d, e, f, g, h) __builtin_shufflevector(x, y, a, b, c, d, e, f, g, h)
#else
typedef int v8i __attribute__((vector_size(32)));
#define SHUF8(x, y, a, b, c, d, e, f, g, h) __builtin_shuffle(x, y, (v8i){a, b, c, d, e, f, g, h})
#endif

/* r[i][j] -> r[j][i] */
static inline void transpose8(v8f r[8])
{
    v8f a[8], b[8];
    for (int i = 0; i < 4; i++) {
        a[2 * i] = SHUF8(r[2 * i], r[2 * i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        a[2 * i + 1] = SHUF8(r[2 * i], r[2 * i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++) {
            b[4 * i + 2 * k] = SHUF8(a[4 * i + k], a[4 * i + 2 + k], 0, 1, 8, 9, 4, 5, 12, 13);
            b[4 * i + 2 * k + 1] = SHUF8(a[4 * i + k], a[4 * i + 2 + k], 2, 3, 10, 11, 6, 7, 14, 15);
        }
    for (int k = 0; k < 4; k++) {
        r[k] = SHUF8(b[k], b[4 + k], 0, 1, 2, 3, 8, 9, 10, 11);
        r[k + 4] = SHUF8(b[k], b[4 + k], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

/* ph[k][r][j][l] = P_l[r][m j + k] for the nl <= 8 planes x + l * pstride
 * (lanes past nl are 0); P[r][c] = x[r - pt][c - pl], 0 outside.  8 pixels
 * of 8 planes at a time through a register transpose. */
LC_CLONES static void split_block(const wgeo *g, const float *x, size_t pstride, int nl, float *ph)
{
    int m = g->m, rows = m * g->th + 2, n = g->tw + 1;
    memset(ph, 0, (size_t)m * rows * n * 8 * sizeof *ph);
    for (int r = 0; r < rows; r++) {
        int iy = r - g->pt;
        if (iy < 0 || iy >= g->h) continue;
        const float *s = x + (size_t)iy * g->w;
        int ix0 = 0;
        for (; ix0 + 8 <= g->w; ix0 += 8) {
            v8f q[8];
            for (int l = 0; l < 8; l++) q[l] = l < nl ? LD8(s + (size_t)l * pstride + ix0) : (v8f){0};
            transpose8(q);
            for (int j = 0; j < 8; j++) {
                int c = ix0 + j + g->pl, k = c % m, jj = c / m;
                if (jj < n) ST8(ph + (((size_t)k * rows + r) * n + jj) * 8, q[j]);
            }
        }
        for (int ix = ix0; ix < g->w; ix++) {
            int c = ix + g->pl, k = c % m, jj = c / m;
            if (jj >= n) break;
            float *o = ph + (((size_t)k * rows + r) * n + jj) * 8;
            for (int l = 0; l < nl; l++) o[l] = s[(size_t)l * pstride + ix];
        }
    }
}

/* V[xi][t][c0 + l] of every tile of the block (v points at V + t0 * ld + c0
 * for the example's first tile; xi strides xs = T * ld) */
#define IN_TILE(BT, A)                                                         \
    do {                                                                       \
        v8f d_[A][A], r_[A][A], c_[A], o_[A];                                  \
        for (int i = 0; i < A; i++)                                            \
            for (int j = 0; j < A; j++)                                        \
                d_[i][j] = LD8(ph + (((size_t)(j % M_) * rows + M_ * ty + i) * n + tx + j / M_) * 8); \
        for (int j = 0; j < A; j++) {                                          \
            for (int i = 0; i < A; i++) c_[i] = d_[i][j];                      \
            BT(v8f, c_, o_);                                                   \
            for (int i = 0; i < A; i++) r_[i][j] = o_[i];                      \
        }                                                                      \
        size_t t_ = (size_t)ty * g->tw + tx;                                   \
        for (int i = 0; i < A; i++) {                                          \
            BT(v8f, r_[i], o_);                                                \
            for (int k = 0; k < A; k++) {                                      \
                float *q_ = v + (size_t)(i * A + k) * xs + t_ * ld;            \
                if (nl == 8) ST8(q_, o_[k]);                                   \
                else for (int l = 0; l < nl; l++) q_[l] = o_[k][l];            \
            }                                                                  \
        }                                                                      \
    } while (0)

/* V of all C channels of one example: the channels' blocks of 8 are split
 * first (scratch: one block after the other), then each tile is transformed
 * for every block in turn, so each V row (xi, t) is written whole */
#define IN_EXAMPLE(BT, A, MM)                                                  \
    do {                                                                       \
        enum { M_ = MM };                                                      \
        int rows = M_ * g->th + 2, n = g->tw + 1, nbk = (C + 7) / 8;           \
        size_t bs = (size_t)M_ * rows * n * 8;                                 \
        for (int cb = 0; cb < nbk; cb++)                                       \
            split_block(g, x + (size_t)cb * 8 * pstride, pstride, C - 8 * cb < 8 ? C - 8 * cb : 8, scr + cb * bs); \
        for (int ty = 0; ty < g->th; ty++)                                     \
            for (int tx = 0; tx < g->tw; tx++)                                 \
                for (int cb = 0; cb < nbk; cb++) {                             \
                    const float *ph = scr + cb * bs;                           \
                    float *v = vx + 8 * cb;                                    \
                    int nl = C - 8 * cb < 8 ? C - 8 * cb : 8;                  \
                    IN_TILE(BT, A);                                            \
                }                                                              \
    } while (0)

LC_CLONES static void input_example2(const wgeo *g, const float *x, size_t pstride, int C, float *vx, size_t ld,
                                     size_t xs, float *scr)
{
    IN_EXAMPLE(BT2, 4, 2);
}

LC_CLONES static void input_example4(const wgeo *g, const float *x, size_t pstride, int C, float *vx, size_t ld,
                                     size_t xs, float *scr)
{
    IN_EXAMPLE(BT4, 6, 4);
}

static void input_example(const wgeo *g, const float *x, size_t pstride, int C, float *vx, size_t ld, size_t xs,
                          float *scr)
{
    if (g->m == 2) input_example2(g, x, pstride, C, vx, ld, xs, scr);
    else input_example4(g, x, pstride, C, vx, ld, xs, scr);
}

/* outputs of a tile row: ob[r][c][tx][l] = y_l[m ty + r][m tx + c] */
#define OUT_TILE(AT, A, M)                                                     \
    do {                                                                       \
        v8f q_[A][A], s_[M][A], c_[A], o_[M];                                  \
        size_t t_ = (size_t)ty * g->tw + tx;                                   \
        for (int i = 0; i < A; i++)                                            \
            for (int k = 0; k < A; k++) {                                      \
                const float *p_ = mv + (size_t)(i * A + k) * xs + t_ * ld;     \
                if (nl == 8) q_[i][k] = LD8(p_);                               \
                else {                                                         \
                    q_[i][k] = (v8f){0};                                       \
                    for (int l = 0; l < nl; l++) q_[i][k][l] = p_[l];          \
                }                                                              \
            }                                                                  \
        for (int j = 0; j < A; j++) {                                          \
            for (int i = 0; i < A; i++) c_[i] = q_[i][j];                      \
            AT(v8f, c_, o_);                                                   \
            for (int r = 0; r < M; r++) s_[r][j] = o_[r];                      \
        }                                                                      \
        for (int r = 0; r < M; r++) {                                          \
            AT(v8f, s_[r], o_);                                                \
            for (int c = 0; c < M; c++) ST8(ob + (((size_t)(r * M + c)) * g->tw + tx) * 8, o_[c]); \
        }                                                                      \
    } while (0)

/* y_l rows of tile row ty from ob, + bias_l: 8 pixels of 8 planes at a time
 * through a register transpose */
LC_CLONES static void scatter_block(const wgeo *g, const float *ob, int ty, float *y, size_t pstride, int nl,
                                    const float *bias)
{
    int m = g->m;
    v8f bv = {0};
    for (int l = 0; l < nl; l++) bv[l] = bias ? bias[l] : 0.0f;
    for (int r = 0; r < m; r++) {
        int oy = m * ty + r;
        if (oy >= g->oh) break;
        float *yr = y + (size_t)oy * g->ow;
        int ox0 = 0;
        for (; ox0 + 8 <= g->ow; ox0 += 8) {
            v8f q[8];
            for (int j = 0; j < 8; j++) {
                int ox = ox0 + j;
                q[j] = LD8(ob + (((size_t)(r * m + ox % m)) * g->tw + ox / m) * 8) + bv;
            }
            transpose8(q);
            for (int l = 0; l < nl; l++) ST8(yr + (size_t)l * pstride + ox0, q[l]);
        }
        for (int ox = ox0; ox < g->ow; ox++) {
            const float *s = ob + (((size_t)(r * m + ox % m)) * g->tw + ox / m) * 8;
            for (int l = 0; l < nl; l++) yr[(size_t)l * pstride + ox] = s[l] + bv[l];
        }
    }
}

/* y of all C output channels of one example: each tile row is transformed
 * for every block of 8 channels (reading each M row (xi, t) whole), then
 * scattered block by block */
#define OUT_EXAMPLE(AT, A, MM)                                                 \
    do {                                                                       \
        int nbk = (C + 7) / 8;                                                 \
        size_t obs = (size_t)MM * MM * g->tw * 8;                              \
        for (int ty = 0; ty < g->th; ty++) {                                   \
            for (int tx = 0; tx < g->tw; tx++)                                 \
                for (int cb = 0; cb < nbk; cb++) {                             \
                    const float *mv = mx + 8 * cb;                             \
                    float *ob = scr + cb * obs;                                \
                    int nl = C - 8 * cb < 8 ? C - 8 * cb : 8;                  \
                    OUT_TILE(AT, A, MM);                                       \
                }                                                              \
            for (int cb = 0; cb < nbk; cb++)                                   \
                scatter_block(g, scr + cb * obs, ty, y + (size_t)cb * 8 * pstride, pstride,            \
                              C - 8 * cb < 8 ? C - 8 * cb : 8, bias ? bias + 8 * cb : NULL);          \
        }                                                                      \
    } while (0)

LC_CLONES static void output_example2(const wgeo *g, const float *mx, size_t ld, size_t xs, int C, float *y,
                                      size_t pstride, const float *bias, float *scr)
{
    OUT_EXAMPLE(AT2, 4, 2);
}

LC_CLONES static void output_example4(const wgeo *g, const float *mx, size_t ld, size_t xs, int C, float *y,
                                      size_t pstride, const float *bias, float *scr)
{
    OUT_EXAMPLE(AT4, 6, 4);
}

static void output_example(const wgeo *g, const float *mx, size_t ld, size_t xs, int C, float *y, size_t pstride,
                           const float *bias, float *scr)
{
    if (g->m == 2) output_example2(g, mx, ld, xs, C, y, pstride, bias, scr);
    else output_example4(g, mx, ld, xs, C, y, pstride, bias, scr);
}

/* db[r][c][tx][l] = dy_l[m ty + r][m tx + c] (0 beyond oh x ow), through
 * register transposes */
LC_CLONES static void gather_block(const wgeo *g, const float *dy, size_t pstride, int nl, int ty, float *db)
{
    int m = g->m;
    memset(db, 0, (size_t)m * m * g->tw * 8 * sizeof *db);
    for (int r = 0; r < m; r++) {
        int oy = m * ty + r;
        if (oy >= g->oh) break;
        const float *s = dy + (size_t)oy * g->ow;
        int ox0 = 0;
        for (; ox0 + 8 <= g->ow; ox0 += 8) {
            v8f q[8];
            for (int l = 0; l < 8; l++) q[l] = l < nl ? LD8(s + (size_t)l * pstride + ox0) : (v8f){0};
            transpose8(q);
            for (int j = 0; j < 8; j++) {
                int ox = ox0 + j;
                ST8(db + (((size_t)(r * m + ox % m)) * g->tw + ox / m) * 8, q[j]);
            }
        }
        for (int ox = ox0; ox < g->ow; ox++) {
            float *o = db + (((size_t)(r * m + ox % m)) * g->tw + ox / m) * 8;
            for (int l = 0; l < nl; l++) o[l] = s[(size_t)l * pstride + ox];
        }
    }
}

/* Mdy[xi][t][c0 + l] = A dY A^T of every tile of the block */
#define DY_TILE(AY, A, M)                                                      \
    do {                                                                       \
        v8f y_[M][M], t_[A][M], c_[M], o_[A];                                  \
        for (int r = 0; r < M; r++)                                            \
            for (int c = 0; c < M; c++) y_[r][c] = LD8(db + (((size_t)(r * M + c)) * g->tw + tx) * 8); \
        for (int c = 0; c < M; c++) {                                          \
            for (int r = 0; r < M; r++) c_[r] = y_[r][c];                      \
            AY(v8f, c_, o_);                                                   \
            for (int i = 0; i < A; i++) t_[i][c] = o_[i];                      \
        }                                                                      \
        size_t tt_ = (size_t)ty * g->tw + tx;                                  \
        for (int i = 0; i < A; i++) {                                          \
            AY(v8f, t_[i], o_);                                                \
            for (int k = 0; k < A; k++) {                                      \
                float *q_ = mv + (size_t)(i * A + k) * xs + tt_ * ld;          \
                if (nl == 8) ST8(q_, o_[k]);                                   \
                else for (int l = 0; l < nl; l++) q_[l] = o_[k][l];            \
            }                                                                  \
        }                                                                      \
    } while (0)

/* Mdy of all C channels of one example, tile row by tile row */
#define DY_EXAMPLE(AY, A, MM)                                                  \
    do {                                                                       \
        int nbk = (C + 7) / 8;                                                 \
        size_t dbs = (size_t)MM * MM * g->tw * 8;                              \
        for (int ty = 0; ty < g->th; ty++) {                                   \
            for (int cb = 0; cb < nbk; cb++)                                   \
                gather_block(g, dy + (size_t)cb * 8 * pstride, pstride, C - 8 * cb < 8 ? C - 8 * cb : 8, ty, \
                             scr + cb * dbs);                                  \
            for (int tx = 0; tx < g->tw; tx++)                                 \
                for (int cb = 0; cb < nbk; cb++) {                             \
                    const float *db = scr + cb * dbs;                          \
                    float *mv = mx + 8 * cb;                                   \
                    int nl = C - 8 * cb < 8 ? C - 8 * cb : 8;                  \
                    DY_TILE(AY, A, MM);                                        \
                }                                                              \
        }                                                                      \
    } while (0)

LC_CLONES static void dy_example2(const wgeo *g, const float *dy, size_t pstride, int C, float *mx, size_t ld,
                                  size_t xs, float *scr)
{
    DY_EXAMPLE(AY2, 4, 2);
}

LC_CLONES static void dy_example4(const wgeo *g, const float *dy, size_t pstride, int C, float *mx, size_t ld,
                                  size_t xs, float *scr)
{
    DY_EXAMPLE(AY4, 6, 4);
}

static void dy_example(const wgeo *g, const float *dy, size_t pstride, int C, float *mx, size_t ld, size_t xs,
                       float *scr)
{
    if (g->m == 2) dy_example2(g, dy, pstride, C, mx, ld, xs, scr);
    else dy_example4(g, dy, pstride, C, mx, ld, xs, scr);
}

/* ---- the GEMMs ----
 * The transform-domain GEMMs are small (K and N are channel counts, 32 to
 * 256) and their operands are in cache; a BLAS's packing costs as much as
 * the multiply there.  On AVX-512 a register-blocked kernel (6 rows x 64
 * columns of C in 24 registers, B rows shared by the 6 rows, A elements
 * broadcast) reads the operands in place at twice OpenBLAS's rate on these
 * shapes; elsewhere, and for N not a multiple of 16, the host BLAS runs. */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LC_HAVE_MK 1
typedef float v16f __attribute__((vector_size(64), aligned(4), may_alias));

/* C[T x N] (= or +=) A B with A[r][k] = a[r * ars + k * aks], B row-major
 * (ldb), N a multiple of 16 */
__attribute__((target("avx512f"))) static void mk_gemm(int T, int N, int K, const float *a, size_t ars, size_t aks,
                                                       const float *b, size_t ldb, bool acc_c, float *c, size_t ldc)
{
    enum { R = 6 };
    for (int n0 = 0; n0 < N; n0 += 64) {
        int nb = N - n0 < 64 ? (N - n0) / 16 : 4;
        int t0 = 0;
        for (; t0 < T; t0 += R) {
            int rr = T - t0 < R ? T - t0 : R;
            v16f acc[R][4];
            for (int r = 0; r < R; r++)
                for (int j = 0; j < 4; j++) acc[r][j] = (v16f){0};
            const float *ap = a + (size_t)t0 * ars, *bp = b + n0;
            if (nb == 4 && rr == R) {
                for (int k = 0; k < K; k++, bp += ldb) {
                    v16f b0 = *(const v16f *)bp, b1 = *(const v16f *)(bp + 16), b2 = *(const v16f *)(bp + 32),
                         b3 = *(const v16f *)(bp + 48);
                    const float *ak = ap + (size_t)k * aks;
                    for (int r = 0; r < R; r++) {
                        float x = ak[(size_t)r * ars];
                        acc[r][0] += x * b0;
                        acc[r][1] += x * b1;
                        acc[r][2] += x * b2;
                        acc[r][3] += x * b3;
                    }
                }
            } else if (nb == 2 && rr == R) {
                for (int k = 0; k < K; k++, bp += ldb) {
                    v16f b0 = *(const v16f *)bp, b1 = *(const v16f *)(bp + 16);
                    const float *ak = ap + (size_t)k * aks;
                    for (int r = 0; r < R; r++) {
                        float x = ak[(size_t)r * ars];
                        acc[r][0] += x * b0;
                        acc[r][1] += x * b1;
                    }
                }
            } else {
                for (int k = 0; k < K; k++, bp += ldb) {
                    const float *ak = ap + (size_t)k * aks;
                    for (int j = 0; j < nb; j++) {
                        v16f bj = *(const v16f *)(bp + 16 * j);
                        for (int r = 0; r < rr; r++) acc[r][j] += ak[(size_t)r * ars] * bj;
                    }
                }
            }
            for (int r = 0; r < rr; r++)
                for (int j = 0; j < nb; j++) {
                    v16f *o = (v16f *)(c + (size_t)(t0 + r) * ldc + n0 + 16 * j);
                    if (acc_c) *o += acc[r][j];
                    else *o = acc[r][j];
                }
        }
    }
}

static bool mk_usable(int n)
{
    static int avx512 = -1;
    if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return avx512 && n % 16 == 0 && n >= 32;
}
#endif

/* C (T x N) = A (T x K) B (K x N), all row-major */
static void gemm_nn(size_t T, size_t N, size_t K, const float *a, const float *b, float *c)
{
#ifdef LC_HAVE_MK
    if (mk_usable((int)N)) {
        mk_gemm((int)T, (int)N, (int)K, a, K, 1, b, N, false, c, N);
        return;
    }
#endif
    lc_rt_host_sgemm(false, false, T, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
}

/* C (M x N) (+)= A^T B with A (K x M), B (K x N) row-major */
static void gemm_tn(size_t M, size_t N, size_t K, const float *a, const float *b, bool acc, float *c)
{
#ifdef LC_HAVE_MK
    if (mk_usable((int)N)) {
        mk_gemm((int)M, (int)N, (int)K, a, 1, M, b, N, acc, c, N);
        return;
    }
#endif
    lc_rt_host_sgemm(true, false, M, N, K, 1.0f, a, M, b, N, acc ? 1.0f : 0.0f, c, N);
}

/* ---- the passes ---- */

typedef struct wctx {
    const conv_dims *d;
    wgeo g;
    int kind, nb, ge, tasks;
    const float *in, *x, *bias, *u;
    float *out, *ws;
    size_t slot;
    int used[64];
} wctx;

static void wino_task(void *p, int task)
{
    wctx *c = p;
    const wgeo *g = &c->g;
    const conv_dims *d = c->d;
    int nt = g->nt, ci_n = g->cin, co_n = g->cout;
    size_t tiles = (size_t)g->th * g->tw, hw = (size_t)g->h * g->w, ohw = (size_t)g->oh * g->ow;
    float *slot = c->ws + (size_t)task * c->slot;
    for (int n0 = task * c->ge; n0 < c->nb; n0 += c->tasks * c->ge) {
        int ng = c->nb - n0 < c->ge ? c->nb - n0 : c->ge;
        size_t T = (size_t)ng * tiles;
        size_t xsv = T * ci_n + XS_PAD, xsm = T * co_n + XS_PAD; /* xi strides */
        float *v = slot, *m = v + (size_t)nt * xsv, *scr = m + (size_t)nt * xsm;
        const float *src = c->kind == HC_DW ? c->x : c->in;
        for (int n = 0; n < ng; n++)
            input_example(g, src + (size_t)(n0 + n) * ci_n * hw, hw, ci_n, v + (size_t)n * tiles * ci_n, (size_t)ci_n,
                          xsv, scr);
        if (c->kind == HC_DW) { /* Mdy from dy, then dU (+)= Mdy^T V */
            for (int n = 0; n < ng; n++)
                dy_example(g, c->in + (size_t)(n0 + n) * co_n * ohw, ohw, co_n, m + (size_t)n * tiles * co_n,
                           (size_t)co_n, xsm, scr);
            float *acc = slot + acc_offset(g, c->ge);
            size_t us = ustride(d);
            for (int xi = 0; xi < nt; xi++)
                gemm_tn((size_t)d->cout, (size_t)d->cin, T, m + (size_t)xi * xsm, v + (size_t)xi * xsv,
                        c->used[task] > 0, acc + xi * us);
            c->used[task]++;
            continue;
        }
        size_t us = ustride(d);
        for (int xi = 0; xi < nt; xi++) /* M[xi] (T x Cout) = V[xi] (T x Cin) U[xi] (Cin x Cout) */
            gemm_nn(T, (size_t)co_n, (size_t)ci_n, v + (size_t)xi * xsv, c->u + xi * us, m + (size_t)xi * xsm);
        for (int n = 0; n < ng; n++)
            output_example(g, m + (size_t)n * tiles * co_n, (size_t)co_n, xsm, co_n,
                           c->out + (size_t)(n0 + n) * co_n * ohw, ohw, c->bias, scr);
    }
}

lc_status lc_host_wino(lc_rt *rt, int kind, int mt, const conv_dims *d, int nb, const float *a, const float *b,
                       const float *bias, float *out, float *ws, size_t ws_floats)
{
    if (!lc_rt_host_sgemm_available()) return LC_ERR(LC_ERR_UNSUPPORTED, "no host BLAS in this build");
    int threads = lc_rt_host_threads(rt);
    if (threads > 64) threads = 64;
    if (!lc_host_wino_applies(d) || (mt != 2 && mt != 4))
        return LC_ERR(LC_ERR_INVALID, "the Winograd schedule does not apply to this conv");
    wctx c = {.d = d, .g = geo_of(d, kind, mt), .kind = kind, .nb = nb};
    int tasks = plan(&c.g, d, nb, kind, threads, ws_floats, &c.ge);
    if (tasks < 1) return LC_ERR(LC_ERR_INVALID, "conv workspace too small for the Winograd schedule");
    int groups = (nb + c.ge - 1) / c.ge;
    c.tasks = tasks < groups ? tasks : groups;
    c.slot = slot_floats(&c.g, c.ge, kind, d);
    float *u = ws; /* U, or for dW the summed dU */
    c.ws = ws + shared_floats(&c.g, d);
    if (kind != HC_DW) {
        wt_ctx w = {b, u, d->cout, d->cin, mt, kind == HC_DX, ustride(d)};
        lc_rt_host_parallel(rt, kind == HC_DX ? d->cout : d->cin, weights_task, &w);
        c.u = u;
        c.in = a;
        c.bias = kind == HC_FWD ? bias : NULL;
    } else {
        c.in = a; /* dy */
        c.x = b;
    }
    c.out = out;
    int old = lc_rt_host_blas_threads(1);
    lc_rt_host_parallel(rt, c.tasks, wino_task, &c);
    lc_rt_host_blas_threads(old);
    if (kind == HC_DW) { /* dU = the workers' sums in task order, dW = G^T dU G */
        size_t n = (size_t)c.g.nt * ustride(d), accoff = acc_offset(&c.g, c.ge);
        bool first = true;
        for (int t = 0; t < c.tasks; t++) {
            if (!c.used[t]) continue;
            const float *acc = c.ws + (size_t)t * c.slot + accoff;
            if (first) memcpy(u, acc, n * sizeof *u);
            else
                for (size_t i = 0; i < n; i++) u[i] += acc[i];
            first = false;
        }
        if (first) memset(u, 0, n * sizeof *u);
        wg_ctx w = {u, out, d->cout, d->cin, mt, ustride(d)};
        lc_rt_host_parallel(rt, d->cout, wgrad_task, &w);
    }
    return LC_OK;
}
