/* Tests for src/ref: every backward against central finite differences of
 * its own forward (double, odd sizes), hand-checked values, optimizer and
 * Layca properties. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lc_core.h"
#include "lc_ref.h"
#include "lc_test.h"

#define FD_EPS 1e-6
#define FD_TOL 1e-6
#define FD_FLOOR 1e-1 /* absolute floor: errors below 1e-7 are rounding */

static lc_rng rng;

static double *alloc_d(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

static double *rand_d(size_t n, double lo, double hi)
{
    double *p = alloc_d(n);
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * lc_rng_uniform(&rng);
    return p;
}

static void setup(void)
{
    lc_rng_seed(&rng, 12345);
}

/* Central-difference check of grad = d f / d param, element by element. */
typedef double (*obj_fn)(void *ctx);

static void check_grad(const char *what, obj_fn f, void *ctx, double *param, size_t n,
                       const double *grad)
{
    for (size_t i = 0; i < n; i++) {
        double save = param[i];
        param[i] = save + FD_EPS;
        double fp = f(ctx);
        param[i] = save - FD_EPS;
        double fm = f(ctx);
        param[i] = save;
        double num = (fp - fm) / (2.0 * FD_EPS);
        ck_assert_msg(lc_test_rel(num, grad[i], FD_FLOOR) < FD_TOL,
                      "%s[%zu]: analytic %.12g, numeric %.12g", what, i, grad[i], num);
    }
}

static double sum_prod(const double *a, const double *b, size_t n)
{
    return lc_ref_dot(a, b, n);
}

/* ---- dense ----------------------------------------------------------------- */

typedef struct {
    double *x, *w, *b, *dy, *y;
    int n, in, out;
} dense_ctx;

static double dense_obj(void *p)
{
    dense_ctx *c = p;
    lc_ref_dense_fwd(c->y, c->x, c->w, c->b, c->n, c->in, c->out);
    return sum_prod(c->dy, c->y, (size_t)c->n * c->out);
}

START_TEST(test_dense_grad)
{
    dense_ctx c = {.n = 3, .in = 5, .out = 7};
    c.x = rand_d(15, -1, 1);
    c.w = rand_d(35, -1, 1);
    c.b = _i ? rand_d(7, -1, 1) : NULL;
    c.dy = rand_d(21, -1, 1);
    c.y = alloc_d(21);
    double *dx = alloc_d(15), *dw = alloc_d(35), *db = alloc_d(7);
    memset(dw, 0x7f, 35 * sizeof *dw); /* must be overwritten, not accumulated */
    lc_ref_dense_bwd(dx, dw, c.b ? db : NULL, c.dy, c.x, c.w, c.n, c.in, c.out);
    check_grad("dense dx", dense_obj, &c, c.x, 15, dx);
    check_grad("dense dw", dense_obj, &c, c.w, 35, dw);
    if (c.b) check_grad("dense db", dense_obj, &c, c.b, 7, db);
    free(c.x), free(c.w), free(c.b), free(c.dy), free(c.y), free(dx), free(dw), free(db);
}
END_TEST

START_TEST(test_dense_values)
{
    const double x[] = {1, 2, 3, 4, 5, 6};       /* [2,3] */
    const double w[] = {1, 0, -1, .5, .5, .5};   /* [2,3] */
    const double b[] = {1, -1};
    const double want[] = {-1, 2, -1, 6.5};
    double y[4];
    lc_ref_dense_fwd(y, x, w, b, 2, 3, 2);
    for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(y[i], want[i], 1e-15);
    /* dy = ones: dx = column sums of w, dw = column sums of x, db = n */
    const double dy[] = {1, 1, 1, 1};
    double dx[6], dw[6], db[2];
    lc_ref_dense_bwd(dx, dw, db, dy, x, w, 2, 3, 2);
    const double wdx[] = {1.5, .5, -.5, 1.5, .5, -.5}, wdw[] = {5, 7, 9, 5, 7, 9};
    for (int i = 0; i < 6; i++) {
        ck_assert_double_eq_tol(dx[i], wdx[i], 1e-15);
        ck_assert_double_eq_tol(dw[i], wdw[i], 1e-15);
    }
    ck_assert_double_eq(db[0], 2.0);
    ck_assert_double_eq(db[1], 2.0);
}
END_TEST

/* ---- relu, add, dropout, global avgpool ----------------------------------------- */

typedef struct {
    double *x, *dy, *y;
    size_t n;
    const uint8_t *mask;
    double p;
    int nn, c, hw;
} elt_ctx;

static double relu_obj(void *p)
{
    elt_ctx *c = p;
    lc_ref_relu_fwd(c->y, c->x, c->n);
    return sum_prod(c->dy, c->y, c->n);
}

static double dropout_obj(void *p)
{
    elt_ctx *c = p;
    lc_ref_dropout_fwd(c->y, c->x, c->mask, c->p, c->n);
    return sum_prod(c->dy, c->y, c->n);
}

static double gap_obj(void *p)
{
    elt_ctx *c = p;
    lc_ref_global_avgpool_fwd(c->y, c->x, c->nn, c->c, c->hw);
    return sum_prod(c->dy, c->y, (size_t)c->nn * c->c);
}

START_TEST(test_relu_grad)
{
    elt_ctx c = {.n = 33};
    c.x = rand_d(c.n, -1, 1);
    for (size_t i = 0; i < c.n; i++) /* keep away from the kink */
        if (fabs(c.x[i]) < 0.05) c.x[i] = 0.05 + fabs(c.x[i]);
    c.x[0] = -0.5; /* at least one of each */
    c.x[1] = 0.5;
    c.dy = rand_d(c.n, -1, 1);
    c.y = alloc_d(c.n);
    double *dx = alloc_d(c.n);
    lc_ref_relu_fwd(c.y, c.x, c.n);
    lc_ref_relu_bwd(dx, c.dy, c.y, c.n);
    ck_assert_double_eq(dx[0], 0.0);
    ck_assert_double_eq(dx[1], c.dy[1]);
    check_grad("relu dx", relu_obj, &c, c.x, c.n, dx);
    /* exact zero: relu(0) = 0, gradient 0 (uses y > 0) */
    double z = 0.0, yz, gz, one = 1.0;
    lc_ref_relu_fwd(&yz, &z, 1);
    lc_ref_relu_bwd(&gz, &one, &yz, 1);
    ck_assert_double_eq(yz, 0.0);
    ck_assert_double_eq(gz, 0.0);
    free(c.x), free(c.dy), free(c.y), free(dx);
}
END_TEST

START_TEST(test_add)
{
    const double a[] = {1, 2, 3}, b[] = {.5, -2, 4};
    double y[3];
    lc_ref_add_fwd(y, a, b, 3);
    ck_assert_double_eq(y[0], 1.5);
    ck_assert_double_eq(y[1], 0.0);
    ck_assert_double_eq(y[2], 7.0);
}
END_TEST

START_TEST(test_dropout)
{
    uint8_t mask[31];
    for (int i = 0; i < 31; i++) mask[i] = (uint8_t)(lc_rng_uniform(&rng) < 0.7);
    mask[0] = 0, mask[1] = 1;
    elt_ctx c = {.n = 31, .mask = mask, .p = 0.3};
    c.x = rand_d(c.n, -1, 1);
    c.dy = rand_d(c.n, -1, 1);
    c.y = alloc_d(c.n);
    double *dx = alloc_d(c.n);
    lc_ref_dropout_fwd(c.y, c.x, mask, c.p, c.n);
    ck_assert_double_eq(c.y[0], 0.0);
    ck_assert_double_eq_tol(c.y[1], c.x[1] / 0.7, 1e-15);
    lc_ref_dropout_bwd(dx, c.dy, mask, c.p, c.n);
    check_grad("dropout dx", dropout_obj, &c, c.x, c.n, dx);
    free(c.x), free(c.dy), free(c.y), free(dx);
}
END_TEST

START_TEST(test_global_avgpool)
{
    elt_ctx c = {.nn = 3, .c = 5, .hw = 7};
    size_t nx = 3 * 5 * 7;
    c.x = rand_d(nx, -1, 1);
    c.dy = rand_d(15, -1, 1);
    c.y = alloc_d(15);
    double *dx = alloc_d(nx);
    lc_ref_global_avgpool_bwd(dx, c.dy, c.nn, c.c, c.hw);
    check_grad("gap dx", gap_obj, &c, c.x, nx, dx);
    const double x[] = {1, 2, 3, 4, 10, 20, 30, 40}; /* [1,2,4] */
    double y[2];
    lc_ref_global_avgpool_fwd(y, x, 1, 2, 4);
    ck_assert_double_eq(y[0], 2.5);
    ck_assert_double_eq(y[1], 25.0);
    free(c.x), free(c.dy), free(c.y), free(dx);
}
END_TEST

/* ---- softmax cross-entropy ------------------------------------------------------- */

typedef struct {
    double *logits;
    const int32_t *labels;
    int n, classes;
} ce_ctx;

static double ce_obj(void *p)
{
    ce_ctx *c = p;
    return lc_ref_softmax_ce_fwd(NULL, NULL, c->logits, c->labels, c->n, c->classes);
}

START_TEST(test_softmax_ce_grad)
{
    const int32_t labels[] = {0, 6, 3};
    ce_ctx c = {.labels = labels, .n = 3, .classes = 7};
    c.logits = rand_d(21, -3, 3);
    c.logits[8] += 500.0; /* large logits: the max subtraction keeps it finite */
    double *d = alloc_d(21);
    lc_ref_softmax_ce_bwd(d, c.logits, labels, c.n, c.classes);
    for (int i = 0; i < 21; i++) ck_assert(isfinite(d[i]));
    check_grad("softmax_ce dlogits", ce_obj, &c, c.logits, 21, d);
    /* every row of the gradient sums to 0 */
    for (int i = 0; i < 3; i++) {
        double s = 0;
        for (int k = 0; k < 7; k++) s += d[i * 7 + k];
        ck_assert_double_eq_tol(s, 0.0, 1e-15);
    }
    free(c.logits), free(d);
}
END_TEST

START_TEST(test_softmax_ce_values)
{
    /* uniform logits: loss log(C) per sample; ties -> index 0 is the argmax */
    double logits[3 * 5];
    for (int i = 0; i < 15; i++) logits[i] = 0.25;
    const int32_t labels[] = {0, 4, 2};
    double per[3];
    int correct = -1;
    double loss = lc_ref_softmax_ce_fwd(per, &correct, logits, labels, 3, 5);
    ck_assert_double_eq_tol(loss, log(5.0), 1e-15);
    for (int i = 0; i < 3; i++) ck_assert_double_eq_tol(per[i], log(5.0), 1e-15);
    ck_assert_int_eq(correct, 1);
    double d[15];
    lc_ref_softmax_ce_bwd(d, logits, labels, 3, 5);
    ck_assert_double_eq_tol(d[0], (0.2 - 1.0) / 3, 1e-15);
    ck_assert_double_eq_tol(d[1], 0.2 / 3, 1e-15);
    ck_assert_double_eq_tol(d[5 + 4], (0.2 - 1.0) / 3, 1e-15);

    /* logits [0, ln 3]: p = [1/4, 3/4] */
    const double z[] = {0.0, log(3.0), 0.0, log(3.0)};
    const int32_t l2[] = {1, 0};
    loss = lc_ref_softmax_ce_fwd(per, &correct, z, l2, 2, 2);
    ck_assert_double_eq_tol(per[0], -log(0.75), 1e-15);
    ck_assert_double_eq_tol(per[1], -log(0.25), 1e-15);
    ck_assert_double_eq_tol(loss, 0.5 * (-log(0.75) - log(0.25)), 1e-15);
    ck_assert_int_eq(correct, 1);
    lc_ref_softmax_ce_bwd(d, z, l2, 2, 2);
    ck_assert_double_eq_tol(d[0], 0.25 / 2, 1e-15);
    ck_assert_double_eq_tol(d[1], -0.25 / 2, 1e-15);
    ck_assert_double_eq_tol(d[2], -0.75 / 2, 1e-15);
    ck_assert_double_eq_tol(d[3], 0.75 / 2, 1e-15);

    /* huge logits stay finite */
    const double big[] = {1000.0, 0.0};
    const int32_t l0[] = {1};
    loss = lc_ref_softmax_ce_fwd(NULL, NULL, big, l0, 1, 2);
    ck_assert_double_eq_tol(loss, 1000.0, 1e-12);
}
END_TEST

/* ---- conv2d -------------------------------------------------------------------------- */

typedef struct {
    double *x, *w, *b, *dy, *y;
    int n, cin, h, wd, cout, kh, kw, sh, sw, ph, pw, oh, ow;
} conv_ctx;

static double conv_obj(void *p)
{
    conv_ctx *c = p;
    lc_ref_conv2d_fwd(c->y, c->x, c->w, c->b, c->n, c->cin, c->h, c->wd, c->cout, c->kh, c->kw,
                      c->sh, c->sw, c->ph, c->pw);
    return sum_prod(c->dy, c->y, (size_t)c->n * c->cout * c->oh * c->ow);
}

/* Loop index: bits pick cin (1|3), kernel (3|1), stride (1|2), pad (0|1);
 * 16 and 17 are non-square kernels / strides / pads. */
START_TEST(test_conv_grad)
{
    conv_ctx c = {.n = 2, .cout = 2, .h = 5, .wd = 7};
    if (_i < 16) {
        c.cin = (_i & 1) ? 3 : 1;
        c.kh = c.kw = (_i & 2) ? 1 : 3;
        c.sh = c.sw = (_i & 4) ? 2 : 1;
        c.ph = c.pw = (_i & 8) ? 1 : 0;
    } else if (_i == 16) {
        c.cin = 3, c.kh = 3, c.kw = 2, c.sh = 2, c.sw = 1, c.ph = 1, c.pw = 0;
    } else {
        c.cin = 2, c.kh = 2, c.kw = 3, c.sh = 1, c.sw = 3, c.ph = 0, c.pw = 2;
    }
    c.oh = lc_ref_out_size(c.h, c.kh, c.sh, c.ph);
    c.ow = lc_ref_out_size(c.wd, c.kw, c.sw, c.pw);
    ck_assert_int_gt(c.oh, 0);
    ck_assert_int_gt(c.ow, 0);
    size_t nx = (size_t)c.n * c.cin * c.h * c.wd, nw = (size_t)c.cout * c.cin * c.kh * c.kw;
    size_t ny = (size_t)c.n * c.cout * c.oh * c.ow;
    c.x = rand_d(nx, -1, 1);
    c.w = rand_d(nw, -1, 1);
    c.b = (_i & 1) ? rand_d(c.cout, -1, 1) : NULL;
    c.dy = rand_d(ny, -1, 1);
    c.y = alloc_d(ny);
    double *dx = alloc_d(nx), *dw = alloc_d(nw), *db = alloc_d(c.cout);
    memset(dx, 0x7f, nx * sizeof *dx); /* must be overwritten */
    lc_ref_conv2d_bwd(dx, dw, c.b ? db : NULL, c.dy, c.x, c.w, c.n, c.cin, c.h, c.wd, c.cout,
                      c.kh, c.kw, c.sh, c.sw, c.ph, c.pw);
    check_grad("conv dx", conv_obj, &c, c.x, nx, dx);
    check_grad("conv dw", conv_obj, &c, c.w, nw, dw);
    if (c.b) check_grad("conv db", conv_obj, &c, c.b, c.cout, db);
    /* nullable outputs give the same values */
    double *dw2 = alloc_d(nw);
    lc_ref_conv2d_bwd(NULL, dw2, NULL, c.dy, c.x, c.w, c.n, c.cin, c.h, c.wd, c.cout, c.kh, c.kw,
                      c.sh, c.sw, c.ph, c.pw);
    ck_assert_mem_eq(dw, dw2, nw * sizeof *dw);
    free(c.x), free(c.w), free(c.b), free(c.dy), free(c.y), free(dx), free(dw), free(db),
        free(dw2);
}
END_TEST

START_TEST(test_conv_values)
{
    const double x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}; /* [1,1,3,3] */
    /* plus-shaped 3x3 kernel, padding 1: each output = the cell + its 4 neighbours */
    const double plus[] = {0, 1, 0, 1, 1, 1, 0, 1, 0};
    const double want[] = {7, 11, 11, 17, 25, 23, 19, 29, 23};
    double y[9];
    ck_assert_int_eq(lc_ref_out_size(3, 3, 1, 1), 3);
    lc_ref_conv2d_fwd(y, x, plus, NULL, 1, 1, 3, 3, 1, 3, 3, 1, 1, 1, 1);
    for (int i = 0; i < 9; i++) ck_assert_double_eq_tol(y[i], want[i], 1e-15);
    /* a 2x2 asymmetric kernel, no padding, bias 0.5: cross-correlation, no flip */
    const double k[] = {1, 2, 3, 4}, b[] = {0.5};
    const double want2[] = {37.5, 47.5, 67.5, 77.5};
    lc_ref_conv2d_fwd(y, x, k, b, 1, 1, 3, 3, 1, 2, 2, 1, 1, 0, 0);
    for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(y[i], want2[i], 1e-15);
    /* 3x3 kernel, stride 2, padding 1 on 3x3: 2x2 outputs at the corners */
    const double ones[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const double want3[] = {12, 16, 24, 28};
    ck_assert_int_eq(lc_ref_out_size(3, 3, 2, 1), 2);
    lc_ref_conv2d_fwd(y, x, ones, NULL, 1, 1, 3, 3, 1, 3, 3, 2, 2, 1, 1);
    for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(y[i], want3[i], 1e-15);
    /* backward of the 2x2 case with dy = ones: dw = sums of the 2x2 input windows */
    const double dy[] = {1, 1, 1, 1};
    double dx[9], dw[4], db[1];
    lc_ref_conv2d_bwd(dx, dw, db, dy, x, k, 1, 1, 3, 3, 1, 2, 2, 1, 1, 0, 0);
    const double wdw[] = {12, 16, 24, 28}, wdx[] = {1, 3, 2, 4, 10, 6, 3, 7, 4};
    for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(dw[i], wdw[i], 1e-15);
    for (int i = 0; i < 9; i++) ck_assert_double_eq_tol(dx[i], wdx[i], 1e-15);
    ck_assert_double_eq(db[0], 4.0);
}
END_TEST

/* ---- batchnorm ------------------------------------------------------------------------ */

typedef struct {
    double *x, *gamma, *beta, *dy, *y;
    int n, c, hw;
    double eps;
} bn_ctx;

static double bn_obj(void *p)
{
    bn_ctx *c = p;
    lc_ref_batchnorm_fwd(c->y, NULL, NULL, NULL, NULL, c->x, c->gamma, c->beta, c->n, c->c,
                         c->hw, c->eps, 0.99, true);
    return sum_prod(c->dy, c->y, (size_t)c->n * c->c * c->hw);
}

/* _i: bit 0 affine, bit 1 spatial (hw 7) vs dense (hw 1) */
START_TEST(test_batchnorm_grad)
{
    bn_ctx c = {.n = 3, .c = 2, .hw = (_i & 2) ? 7 : 1, .eps = 1e-3};
    size_t nx = (size_t)c.n * c.c * c.hw;
    c.x = rand_d(nx, -2, 2);
    c.gamma = (_i & 1) ? rand_d(c.c, 0.5, 1.5) : NULL;
    c.beta = (_i & 1) ? rand_d(c.c, -1, 1) : NULL;
    c.dy = rand_d(nx, -1, 1);
    c.y = alloc_d(nx);
    double *dx = alloc_d(nx), *dg = alloc_d(c.c), *dbeta = alloc_d(c.c);
    lc_ref_batchnorm_bwd(dx, c.gamma ? dg : NULL, c.beta ? dbeta : NULL, c.dy, c.x, c.gamma, c.n,
                         c.c, c.hw, c.eps);
    check_grad("batchnorm dx", bn_obj, &c, c.x, nx, dx);
    if (c.gamma) check_grad("batchnorm dgamma", bn_obj, &c, c.gamma, c.c, dg);
    if (c.beta) check_grad("batchnorm dbeta", bn_obj, &c, c.beta, c.c, dbeta);
    /* the gradient wrt x of a batch-normalised value sums to 0 per channel */
    for (int ch = 0; ch < c.c; ch++) {
        double s = 0;
        for (int ni = 0; ni < c.n; ni++)
            for (int k = 0; k < c.hw; k++) s += dx[((size_t)ni * c.c + ch) * c.hw + k];
        ck_assert_double_eq_tol(s, 0.0, 1e-12);
    }
    free(c.x), free(c.gamma), free(c.beta), free(c.dy), free(c.y), free(dx), free(dg),
        free(dbeta);
}
END_TEST

START_TEST(test_batchnorm_values)
{
    /* x [n=2, c=2, hw=2]: channel 0 holds 1,2,3,4; channel 1 holds 10 x4 */
    const double x[] = {1, 2, 10, 10, 3, 4, 10, 10};
    double y[8], mean[2], var[2], rm[2] = {0, 0}, rv[2] = {1, 1};
    const double gamma[] = {2, 1}, beta[] = {0.5, -1};
    lc_ref_batchnorm_fwd(y, mean, var, rm, rv, x, gamma, beta, 2, 2, 2, 1e-3, 0.99, true);
    ck_assert_double_eq(mean[0], 2.5);
    ck_assert_double_eq(var[0], 1.25); /* biased */
    ck_assert_double_eq(mean[1], 10.0);
    ck_assert_double_eq(var[1], 0.0);
    double inv = 1.0 / sqrt(1.25 + 1e-3);
    ck_assert_double_eq_tol(y[0], 2 * (1 - 2.5) * inv + 0.5, 1e-15);
    ck_assert_double_eq_tol(y[5], 2 * (4 - 2.5) * inv + 0.5, 1e-15);
    ck_assert_double_eq_tol(y[2], -1.0, 1e-15); /* constant channel -> beta */
    /* Keras 2.1.2 running stats: biased variance, no debiasing */
    ck_assert_double_eq_tol(rm[0], 0.025, 1e-15);
    ck_assert_double_eq_tol(rv[0], 0.99 + 0.01 * 1.25, 1e-15);
    ck_assert_double_eq_tol(rm[1], 0.1, 1e-15);
    ck_assert_double_eq_tol(rv[1], 0.99, 1e-15);
    /* eval mode uses the running statistics and leaves them alone */
    lc_ref_batchnorm_fwd(y, NULL, NULL, rm, rv, x, NULL, NULL, 2, 2, 2, 1e-3, 0.99, false);
    ck_assert_double_eq_tol(y[0], (1 - 0.025) / sqrt(rv[0] + 1e-3), 1e-15);
    ck_assert_double_eq_tol(y[2], (10 - 0.1) / sqrt(0.99 + 1e-3), 1e-15);
    ck_assert_double_eq_tol(rm[0], 0.025, 1e-15);
    /* training without running stats: untouched */
    double rm2[2] = {7, 7};
    lc_ref_batchnorm_fwd(y, NULL, NULL, rm2, NULL, x, NULL, NULL, 2, 2, 2, 1e-3, 0.99, true);
    ck_assert_double_eq(rm2[0], 7.0);
}
END_TEST

/* ---- pooling ---------------------------------------------------------------------------- */

typedef struct {
    double *x, *dy, *y;
    int n, c, h, wd, oh, ow;
    lc_ref_pool p;
    bool max;
} pool_ctx;

static double pool_obj(void *p)
{
    pool_ctx *c = p;
    if (c->max)
        lc_ref_maxpool_fwd(c->y, c->x, c->n, c->c, c->h, c->wd, &c->p);
    else
        lc_ref_avgpool_fwd(c->y, c->x, c->n, c->c, c->h, c->wd, &c->p);
    return sum_prod(c->dy, c->y, (size_t)c->n * c->c * c->oh * c->ow);
}

/* _i: bit 0 max/avg, bit 1 window 2x2 s2 / 3x3 s2, bit 2 spatial 5x7 / 7x5,
 * bit 3 padding (2x2: [1, 0, 0, 1], 3x3: 1 on each side), bit 4 avg
 * divides by the real values (count_include_pad false) */
START_TEST(test_pool_grad)
{
    pool_ctx c = {.n = 2, .c = 3, .max = !(_i & 1)};
    int k = (_i & 2) ? 3 : 2;
    c.p = (lc_ref_pool){.kh = k, .kw = k, .sh = 2, .sw = 2, .count_pad = !(_i & 16)};
    if (_i & 8) {
        c.p.pt = c.p.pr = 1;
        c.p.pl = c.p.pb = k == 3;
    }
    c.h = (_i & 4) ? 7 : 5;
    c.wd = (_i & 4) ? 5 : 7;
    c.oh = lc_ref_out_size(c.h + c.p.pt + c.p.pb, k, 2, 0);
    c.ow = lc_ref_out_size(c.wd + c.p.pl + c.p.pr, k, 2, 0);
    size_t nx = (size_t)c.n * c.c * c.h * c.wd, ny = (size_t)c.n * c.c * c.oh * c.ow;
    c.x = rand_d(nx, -1, 1);
    c.dy = rand_d(ny, -1, 1);
    c.y = alloc_d(ny);
    double *dx = alloc_d(nx);
    memset(dx, 0x7f, nx * sizeof *dx);
    if (c.max)
        lc_ref_maxpool_bwd(dx, c.dy, c.x, c.n, c.c, c.h, c.wd, &c.p);
    else
        lc_ref_avgpool_bwd(dx, c.dy, c.n, c.c, c.h, c.wd, &c.p);
    check_grad(c.max ? "maxpool dx" : "avgpool dx", pool_obj, &c, c.x, nx, dx);
    free(c.x), free(c.dy), free(c.y), free(dx);
}
END_TEST

START_TEST(test_pool_values)
{
    /* 1x1x3x5, 2x2 stride 2 -> 1x2; the last row and column are dropped */
    const double x[] = {1, 5, 2, 2, 9,
                        3, 4, 2, 0, 9,
                        9, 9, 9, 9, 9};
    double y[2], dx[15];
    const lc_ref_pool k2 = {.kh = 2, .kw = 2, .sh = 2, .sw = 2}, k3 = {.kh = 3, .kw = 3, .sh = 2, .sw = 2};
    ck_assert_int_eq(lc_ref_out_size(3, 2, 2, 0), 1);
    ck_assert_int_eq(lc_ref_out_size(5, 2, 2, 0), 2);
    lc_ref_maxpool_fwd(y, x, 1, 1, 3, 5, &k2);
    ck_assert_double_eq(y[0], 5.0);
    ck_assert_double_eq(y[1], 2.0);
    const double dy[] = {10, 20};
    lc_ref_maxpool_bwd(dx, dy, x, 1, 1, 3, 5, &k2);
    /* window 2 holds 2, 2, 2, 0: the tie goes to the first maximum (index 2) */
    for (int i = 0; i < 15; i++) {
        double want = i == 1 ? 10.0 : i == 2 ? 20.0 : 0.0;
        ck_assert_double_eq(dx[i], want);
    }
    lc_ref_avgpool_fwd(y, x, 1, 1, 3, 5, &k2);
    ck_assert_double_eq(y[0], 13.0 / 4);
    ck_assert_double_eq(y[1], 6.0 / 4);
    lc_ref_avgpool_bwd(dx, dy, 1, 1, 3, 5, &k2);
    ck_assert_double_eq(dx[0], 2.5);
    ck_assert_double_eq(dx[8], 5.0);
    ck_assert_double_eq(dx[4], 0.0);
    ck_assert_double_eq(dx[10], 0.0);
    /* overlapping 3x3 stride 2 windows accumulate: all-equal input, every
     * window picks its top-left element */
    double flat[25], dflat[25], yo[9];
    for (int i = 0; i < 25; i++) flat[i] = 1.0;
    const double dyo[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    lc_ref_maxpool_fwd(yo, flat, 1, 1, 5, 5, &k3);
    lc_ref_maxpool_bwd(dflat, dyo, flat, 1, 1, 5, 5, &k3);
    ck_assert_double_eq(dflat[0], 1.0);
    ck_assert_double_eq(dflat[2], 2.0);
    ck_assert_double_eq(dflat[10], 3.0);
    ck_assert_double_eq(dflat[12], 4.0);
    /* a strict max in the shared centre column collects from both windows */
    flat[2 * 5 + 2] = 5.0;
    lc_ref_maxpool_bwd(dflat, dyo, flat, 1, 1, 5, 5, &k3);
    ck_assert_double_eq(dflat[12], 10.0);
    ck_assert_double_eq(dflat[0], 0.0);

    /* padding 1 on each side (the ResNet stem's 3x3 stride 2): 5x5 -> 3x3;
     * negative values: the padding is not a 0 that wins the max */
    for (int i = 0; i < 25; i++) flat[i] = -1.0 - i;
    lc_ref_pool p1 = k3;
    p1.pt = p1.pl = p1.pb = p1.pr = 1;
    p1.count_pad = true;
    lc_ref_maxpool_fwd(yo, flat, 1, 1, 5, 5, &p1);
    ck_assert_double_eq(yo[0], -1.0);  /* rows 0-1, columns 0-1 */
    ck_assert_double_eq(yo[1], -2.0);  /* columns 1-3 */
    ck_assert_double_eq(yo[4], -7.0);  /* rows 1-3, columns 1-3 */
    ck_assert_double_eq(yo[8], -19.0); /* rows 3-4, columns 3-4 */
    lc_ref_maxpool_bwd(dflat, dyo, flat, 1, 1, 5, 5, &p1);
    ck_assert_double_eq(dflat[0], 1.0);
    ck_assert_double_eq(dflat[1], 2.0);
    ck_assert_double_eq(dflat[6], 5.0);
    ck_assert_double_eq(dflat[18], 9.0);
    ck_assert_double_eq(dflat[24], 0.0);
    /* avg: the corner window holds 4 real values of 9 */
    for (int i = 0; i < 25; i++) flat[i] = i;
    lc_ref_avgpool_fwd(yo, flat, 1, 1, 5, 5, &p1);
    ck_assert_double_eq(yo[0], (0 + 1 + 5 + 6) / 9.0);
    ck_assert_double_eq(yo[4], (6 + 7 + 8 + 11 + 12 + 13 + 16 + 17 + 18) / 9.0);
    p1.count_pad = false;
    lc_ref_avgpool_fwd(yo, flat, 1, 1, 5, 5, &p1);
    ck_assert_double_eq(yo[0], (0 + 1 + 5 + 6) / 4.0);
    ck_assert_double_eq(yo[1], (1 + 2 + 3 + 6 + 7 + 8) / 6.0);
    ck_assert_double_eq(yo[4], (6 + 7 + 8 + 11 + 12 + 13 + 16 + 17 + 18) / 9.0);
    lc_ref_avgpool_bwd(dflat, dyo, 1, 1, 5, 5, &p1);
    ck_assert_double_eq(dflat[0], 1.0 / 4);                 /* window 0 only */
    ck_assert_double_eq(dflat[1], 1.0 / 4 + 2.0 / 6);       /* windows 0 and 1 */
    ck_assert_double_eq(dflat[24], 9.0 / 4);                /* window 8 only */
    /* asymmetric [top 1, left 0, bottom 0, right 1] 2x2 stride 2 on 3x5:
     * windows at rows -1..0 and 1-2, columns 0-1, 2-3 and 4-5 -> 2x3 */
    lc_ref_pool pa = k2;
    pa.pt = pa.pr = 1;
    double ya[6];
    lc_ref_maxpool_fwd(ya, x, 1, 1, 3, 5, &pa);
    ck_assert_double_eq(ya[0], 5.0);
    ck_assert_double_eq(ya[1], 2.0);
    ck_assert_double_eq(ya[2], 9.0);
    ck_assert_double_eq(ya[4], 9.0);
    pa.count_pad = false;
    lc_ref_avgpool_fwd(ya, x, 1, 1, 3, 5, &pa);
    ck_assert_double_eq(ya[0], 3.0);  /* (1 + 5) / 2 */
    ck_assert_double_eq(ya[5], 9.0);  /* column 4 of rows 1-2 */
}
END_TEST

/* ---- optimizers -------------------------------------------------------------------------- */

START_TEST(test_optim_defaults)
{
    lc_ref_optim o;
    lc_ref_optim_defaults(&o, LC_REF_SGD);
    ck_assert_double_eq(o.momentum, 0.0);
    ck_assert(!o.nesterov);
    ck_assert_double_eq(o.lr, 0.01);
    ck_assert_double_eq(o.weight_decay, 0.0);
    lc_ref_optim_defaults(&o, LC_REF_SGD_AMOM);
    ck_assert_double_eq(o.momentum, 0.9);
    lc_ref_optim_defaults(&o, LC_REF_ADAM);
    ck_assert_double_eq(o.beta1, 0.9);
    ck_assert_double_eq(o.beta2, 0.999);
    ck_assert_double_eq(o.eps, 1e-7);
    ck_assert_double_eq(o.lr, 0.001);
    lc_ref_optim_defaults(&o, LC_REF_RMSPROP);
    ck_assert_double_eq(o.rho, 0.9);
    ck_assert_double_eq(o.eps, 1e-7);
    lc_ref_optim_defaults(&o, LC_REF_ADAGRAD);
    ck_assert_double_eq(o.eps, 1e-7);
    ck_assert_int_eq(lc_ref_optim_state_count(LC_REF_ADAM), 2);
    ck_assert_int_eq(lc_ref_optim_state_count(LC_REF_SGD), 1);
    ck_assert_str_eq(lc_ref_optim_name(LC_REF_SGD_AMOM), "sgd_amom");
}
END_TEST

START_TEST(test_adam_first_step)
{
    lc_ref_optim o;
    lc_ref_optim_defaults(&o, LC_REF_ADAM);
    enum { N = 31 };
    double *w = rand_d(N, -1, 1), *g = rand_d(N, -2, 2), *m = alloc_d(N), *v = alloc_d(N);
    double w0[N];
    memcpy(w0, w, sizeof w0);
    double lr = 0.01;
    lc_ref_optim_step(w, m, v, g, N, &o, lr, 1);
    for (int i = 0; i < N; i++) {
        double sign = g[i] > 0 ? 1.0 : -1.0;
        /* exact: lr*g/(|g| + eps/sqrt(1-b2)) */
        ck_assert_double_eq_tol(w0[i] - w[i], lr * g[i] / (fabs(g[i]) + 1e-7 / sqrt(0.001)),
                                1e-15);
        ck_assert_double_eq_tol(w0[i] - w[i], lr * sign, lr * 1e-4);
    }
    /* a constant gradient keeps moving by ~lr per step (bias correction) */
    for (long t = 2; t <= 5; t++) {
        double before = w[0];
        lc_ref_optim_step(w, m, v, g, N, &o, lr, t);
        ck_assert_double_eq_tol(before - w[0], lr * (g[0] > 0 ? 1 : -1), lr * 1e-4);
    }
    free(w), free(g), free(m), free(v);
}
END_TEST

START_TEST(test_sgd_momentum_by_hand)
{
    lc_ref_optim o;
    lc_ref_optim_defaults(&o, LC_REF_SGD);
    o.momentum = 0.9;
    double w = 1.0, m = 0.0, g1 = 1.0, g2 = 2.0;
    lc_ref_optim_step(&w, &m, NULL, &g1, 1, &o, 0.1, 1);
    ck_assert_double_eq_tol(m, -0.1, 1e-15);
    ck_assert_double_eq_tol(w, 0.9, 1e-15);
    lc_ref_optim_step(&w, &m, NULL, &g2, 1, &o, 0.1, 2);
    ck_assert_double_eq_tol(m, -0.29, 1e-15); /* 0.9*(-0.1) - 0.1*2 */
    ck_assert_double_eq_tol(w, 0.61, 1e-15);
    /* Nesterov: w += mu*m_new - lr*g */
    o.nesterov = true;
    w = 1.0, m = 0.0;
    lc_ref_optim_step(&w, &m, NULL, &g1, 1, &o, 0.1, 1);
    ck_assert_double_eq_tol(w, 1.0 - 0.09 - 0.1, 1e-15);
    lc_ref_optim_step(&w, &m, NULL, &g2, 1, &o, 0.1, 2);
    ck_assert_double_eq_tol(w, 0.81 + 0.9 * -0.29 - 0.2, 1e-15);
    /* plain SGD, Keras l2: g += 2*wd*w */
    lc_ref_optim_defaults(&o, LC_REF_SGD);
    o.weight_decay = 0.25;
    w = 2.0, m = 0.0;
    lc_ref_optim_step(&w, &m, NULL, &g1, 1, &o, 0.1, 1);
    ck_assert_double_eq_tol(w, 2.0 - 0.1 * (1.0 + 2 * 0.25 * 2.0), 1e-15);
}
END_TEST

START_TEST(test_other_optims_by_hand)
{
    lc_ref_optim o;
    double w, a, g = 0.5, g2 = -1.0;
    /* SGD_AMom: m <- 0.9 m - 0.1 g; w += lr*m */
    lc_ref_optim_defaults(&o, LC_REF_SGD_AMOM);
    w = 1.0, a = 0.0;
    lc_ref_optim_step(&w, &a, NULL, &g, 1, &o, 0.5, 1);
    ck_assert_double_eq_tol(a, -0.05, 1e-15);
    ck_assert_double_eq_tol(w, 1.0 - 0.025, 1e-15);
    lc_ref_optim_step(&w, &a, NULL, &g2, 1, &o, 0.5, 2);
    ck_assert_double_eq_tol(a, -0.045 + 0.1, 1e-15);
    ck_assert_double_eq_tol(w, 0.975 + 0.5 * 0.055, 1e-15);
    /* RMSprop: a <- 0.9 a + 0.1 g^2; s = lr g/(sqrt(a)+eps) */
    lc_ref_optim_defaults(&o, LC_REF_RMSPROP);
    w = 1.0, a = 0.0;
    lc_ref_optim_step(&w, &a, NULL, &g, 1, &o, 0.01, 1);
    ck_assert_double_eq_tol(a, 0.025, 1e-15);
    ck_assert_double_eq_tol(w, 1.0 - 0.01 * 0.5 / (sqrt(0.025) + 1e-7), 1e-15);
    double w1 = w;
    lc_ref_optim_step(&w, &a, NULL, &g2, 1, &o, 0.01, 2);
    ck_assert_double_eq_tol(a, 0.0225 + 0.1, 1e-15);
    ck_assert_double_eq_tol(w, w1 + 0.01 / (sqrt(0.1225) + 1e-7), 1e-15);
    /* Adagrad: a <- a + g^2 */
    lc_ref_optim_defaults(&o, LC_REF_ADAGRAD);
    w = 1.0, a = 0.0;
    lc_ref_optim_step(&w, &a, NULL, &g, 1, &o, 0.01, 1);
    ck_assert_double_eq_tol(w, 1.0 - 0.01 * 0.5 / (0.5 + 1e-7), 1e-15);
    w1 = w;
    lc_ref_optim_step(&w, &a, NULL, &g2, 1, &o, 0.01, 2);
    ck_assert_double_eq_tol(a, 1.25, 1e-15);
    ck_assert_double_eq_tol(w, w1 + 0.01 / (sqrt(1.25) + 1e-7), 1e-15);
    /* compute_step returns the step without touching w */
    double s, w2 = 3.0;
    a = 0.0;
    lc_ref_optim_compute_step(&s, &a, NULL, &w2, &g, 1, &o, 0.01, 1);
    ck_assert_double_eq(w2, 3.0);
    ck_assert_double_eq_tol(s, 0.01 * 0.5 / (0.5 + 1e-7), 1e-15);
}
END_TEST

/* ---- Layca ----------------------------------------------------------------------------- */

static const lc_ref_optim_kind all_kinds[] = {LC_REF_SGD, LC_REF_SGD_AMOM, LC_REF_ADAM,
                                              LC_REF_RMSPROP, LC_REF_ADAGRAD};

/* _i = optimizer kind */
START_TEST(test_layca_norm_preserved)
{
    lc_ref_optim o;
    lc_ref_optim_defaults(&o, all_kinds[_i]);
    if (o.kind == LC_REF_SGD) o.momentum = 0.9;
    enum { N = 45 };
    double *w = rand_d(N, -1, 1), *s1 = alloc_d(N), *s2 = alloc_d(N), *w0 = alloc_d(N);
    memcpy(w0, w, N * sizeof *w);
    double n0 = lc_ref_norm(w, N), rho = pow(3.0, -3.0);
    for (long t = 1; t <= 10; t++) {
        double *g = rand_d(N, -1, 1);
        lc_ref_layca_step(w, s1, s2, g, N, &o, rho, n0, t);
        free(g);
        ck_assert_double_eq_tol(lc_ref_norm(w, N) / n0, 1.0, 1e-12);
        ck_assert(lc_ref_cosine_distance(w, w0, N) > 0.0);
    }
    free(w), free(s1), free(s2), free(w0);
}
END_TEST

/* _i = optimizer kind */
START_TEST(test_layca_one_step_rotation)
{
    lc_ref_optim o;
    lc_ref_optim_defaults(&o, all_kinds[_i]);
    enum { N = 33 };
    double *w = rand_d(N, -1, 1), *g = rand_d(N, -1, 1), *s1 = alloc_d(N), *s2 = alloc_d(N);
    double w0[N];
    memcpy(w0, w, sizeof w0);
    double n0 = lc_ref_norm(w, N);
    const double rhos[] = {0.3, pow(3.0, -3.0), pow(3.0, -5.0), 1.0};
    for (size_t r = 0; r < LC_COUNTOF(rhos); r++) {
        memcpy(w, w0, sizeof w0);
        memset(s1, 0, N * sizeof *s1);
        memset(s2, 0, N * sizeof *s2);
        double rho = rhos[r];
        lc_ref_layca_step(w, s1, s2, g, N, &o, rho, n0, 1);
        double want = 1.0 - 1.0 / sqrt(1.0 + rho * rho);
        ck_assert_msg(fabs(lc_ref_cosine_distance(w, w0, N) - want) < 1e-13,
                      "%s rho %g: distance %.17g, want %.17g", lc_ref_optim_name(o.kind), rho,
                      lc_ref_cosine_distance(w, w0, N), want);
        /* SGD kinds: the move goes against the gradient's tangent part */
        if (o.kind == LC_REF_SGD || o.kind == LC_REF_SGD_AMOM) {
            double c = lc_ref_dot(g, w0, N) / lc_ref_dot(w0, w0, N), dot = 0;
            for (int i = 0; i < N; i++) dot += (w[i] - w0[i]) * (g[i] - c * w0[i]);
            ck_assert(dot < 0.0);
        }
    }
    free(w), free(g), free(s1), free(s2);
}
END_TEST

START_TEST(test_layca_nan_and_zero)
{
    enum { N = 17 };
    for (size_t k = 0; k < LC_COUNTOF(all_kinds); k++) {
        lc_ref_optim o;
        lc_ref_optim_defaults(&o, all_kinds[k]);
        double *w = rand_d(N, -1, 1), *g = rand_d(N, -1, 1), *s1 = alloc_d(N), *s2 = alloc_d(N);
        double n0 = lc_ref_norm(w, N);
        /* NaN and inf in the gradient: w stays finite, on the sphere */
        g[3] = NAN;
        g[7] = INFINITY;
        for (long t = 1; t <= 3; t++) {
            double prev[N];
            memcpy(prev, w, sizeof prev);
            lc_ref_layca_step(w, s1, s2, g, N, &o, 0.1, n0, t);
            for (int i = 0; i < N; i++) ck_assert(isfinite(w[i]));
            ck_assert_double_eq_tol(lc_ref_norm(w, N) / n0, 1.0, 1e-12);
            /* the finite entries still give a full rotation of arctan(0.1) */
            ck_assert_double_eq_tol(lc_ref_cosine_distance(w, prev, N),
                                    1.0 - 1.0 / sqrt(1.01), 1e-13);
        }
        /* a zero gradient (fresh state) leaves w bit-for-bit unchanged */
        double before[N];
        memset(s1, 0, N * sizeof *s1);
        memset(s2, 0, N * sizeof *s2);
        memset(g, 0, N * sizeof *g);
        memcpy(before, w, sizeof before);
        lc_ref_layca_step(w, s1, s2, g, N, &o, 0.1, n0, 1);
        ck_assert_mem_eq(before, w, sizeof before);
        /* SGD kinds: a gradient parallel to w has no tangent part, no move */
        if (o.kind == LC_REF_SGD || o.kind == LC_REF_SGD_AMOM) {
            for (int i = 0; i < N; i++) g[i] = 3.0 * w[i];
            memset(s1, 0, N * sizeof *s1);
            lc_ref_layca_step(w, s1, s2, g, N, &o, 0.1, n0, 1);
            for (int i = 0; i < N; i++) ck_assert_double_eq_tol(w[i], before[i], 1e-12);
        }
        free(w), free(g), free(s1), free(s2);
    }
}
END_TEST

START_TEST(test_layca_details)
{
    enum { N = 21 };
    double *w = rand_d(N, -1, 1), *g = rand_d(N, -1, 1), *m = alloc_d(N);
    double w0[N], wa[N];
    memcpy(w0, w, sizeof w0);
    /* SGD: the inner lr is irrelevant (V1 forces it to 1) */
    lc_ref_optim o;
    lc_ref_optim_defaults(&o, LC_REF_SGD);
    o.lr = 0.01;
    lc_ref_layca_step(w, m, NULL, g, N, &o, 0.1, lc_ref_norm(w0, N), 1);
    memcpy(wa, w, sizeof wa);
    memcpy(w, w0, sizeof w0);
    memset(m, 0, N * sizeof *m);
    o.lr = 7.0;
    lc_ref_layca_step(w, m, NULL, g, N, &o, 0.1, lc_ref_norm(w0, N), 1);
    ck_assert_mem_eq(w, wa, sizeof wa);
    /* the state saw the raw gradient: m = -g (lr 1, mu 0) */
    for (int i = 0; i < N; i++) ck_assert_double_eq(m[i], -g[i]);
    /* w ends on the sphere of radius n0, whatever its current norm */
    memcpy(w, w0, sizeof w0);
    memset(m, 0, N * sizeof *m);
    lc_ref_layca_step(w, m, NULL, g, N, &o, 0.1, 2.5, 1);
    ck_assert_double_eq_tol(lc_ref_norm(w, N), 2.5, 1e-12);
    /* lc_ref_layca_apply: s ends tangent with ||s|| = ||w|| */
    double s[N];
    memcpy(w, w0, sizeof w0);
    memcpy(s, g, sizeof s);
    ck_assert(lc_ref_layca_apply(w, s, N, 0.2, lc_ref_norm(w0, N)));
    ck_assert_double_eq_tol(lc_ref_dot(s, w0, N) / (lc_ref_norm(w0, N) * lc_ref_norm(s, N)), 0.0,
                            1e-14);
    ck_assert_double_eq_tol(lc_ref_norm(s, N) / lc_ref_norm(w0, N), 1.0, 1e-14);
    /* a zero layer cannot rotate */
    double z[3] = {0, 0, 0}, sz[3] = {1, 2, 3};
    ck_assert(!lc_ref_layca_apply(z, sz, 3, 0.1, 1.0));
    ck_assert_double_eq(z[0], 0.0);
    free(w), free(g), free(m);
}
END_TEST

START_TEST(test_multipliers)
{
    enum { L = 25 };
    double m[L];
    lc_ref_layer_multipliers(m, L, 0.0);
    for (int l = 0; l < L; l++) ck_assert_double_eq(m[l], 1.0);
    lc_ref_layer_multipliers(m, L, -0.5);
    ck_assert_double_eq(m[0], 1.0);
    ck_assert_double_eq_tol(m[L - 1], pow(0.5, 5), 1e-15);
    for (int l = 1; l < L; l++) ck_assert(m[l] < m[l - 1]);
    ck_assert_double_eq_tol(m[12], pow(0.5, 2.5), 1e-15);
    lc_ref_layer_multipliers(m, L, 0.5);
    ck_assert_double_eq(m[L - 1], 1.0);
    ck_assert_double_eq_tol(m[0], pow(0.5, 5), 1e-15);
    for (int l = 1; l < L; l++) ck_assert(m[l] > m[l - 1]);
    lc_ref_layer_multipliers(m, L, 0.2);
    ck_assert_double_eq_tol(m[0], pow(0.8, 5), 1e-15);
    lc_ref_layer_multipliers(m, L, -0.2);
    ck_assert_double_eq_tol(m[L - 1], pow(0.8, 5), 1e-15);
    lc_ref_layer_multipliers(m, 1, -0.5);
    ck_assert_double_eq(m[0], 1.0);
}
END_TEST

START_TEST(test_schedule_and_cosine)
{
    const int ms[] = {80, 90, 97};
    ck_assert_double_eq(lc_ref_lr_schedule(1.0, 0.2, ms, 3, 0), 1.0);
    ck_assert_double_eq(lc_ref_lr_schedule(1.0, 0.2, ms, 3, 79), 1.0);
    ck_assert_double_eq_tol(lc_ref_lr_schedule(1.0, 0.2, ms, 3, 80), 0.2, 1e-15);
    ck_assert_double_eq_tol(lc_ref_lr_schedule(1.0, 0.2, ms, 3, 97), 0.008, 1e-15);
    ck_assert_double_eq_tol(lc_ref_lr_schedule(1.0, 0.2, ms, 3, 99), 0.008, 1e-15);

    const double a[] = {1, 2, 3}, b[] = {-1, -2, -3}, c[] = {2, -1, 0}, d[] = {2, 4, 6};
    ck_assert_double_eq_tol(lc_ref_cosine_distance(a, a, 3), 0.0, 1e-15);
    ck_assert_double_eq_tol(lc_ref_cosine_distance(a, d, 3), 0.0, 1e-15);
    ck_assert_double_eq_tol(lc_ref_cosine_distance(a, b, 3), 2.0, 1e-15);
    ck_assert_double_eq_tol(lc_ref_cosine_distance(a, c, 3), 1.0, 1e-15);
    const double z[] = {0, 0, 0};
    ck_assert(isnan(lc_ref_cosine_distance(a, z, 3)));
}
END_TEST

static Suite *ref_suite(void)
{
    Suite *s = suite_create("ref");
    TCase *ops = tcase_create("ops");
    tcase_add_checked_fixture(ops, setup, NULL);
    tcase_add_loop_test(ops, test_dense_grad, 0, 2);
    tcase_add_test(ops, test_dense_values);
    tcase_add_test(ops, test_relu_grad);
    tcase_add_test(ops, test_add);
    tcase_add_test(ops, test_dropout);
    tcase_add_test(ops, test_global_avgpool);
    tcase_add_test(ops, test_softmax_ce_grad);
    tcase_add_test(ops, test_softmax_ce_values);
    tcase_add_loop_test(ops, test_conv_grad, 0, 18);
    tcase_add_test(ops, test_conv_values);
    tcase_add_loop_test(ops, test_batchnorm_grad, 0, 4);
    tcase_add_test(ops, test_batchnorm_values);
    tcase_add_loop_test(ops, test_pool_grad, 0, 32);
    tcase_add_test(ops, test_pool_values);
    suite_add_tcase(s, ops);

    TCase *opt = tcase_create("optim");
    tcase_add_checked_fixture(opt, setup, NULL);
    tcase_add_test(opt, test_optim_defaults);
    tcase_add_test(opt, test_adam_first_step);
    tcase_add_test(opt, test_sgd_momentum_by_hand);
    tcase_add_test(opt, test_other_optims_by_hand);
    tcase_add_loop_test(opt, test_layca_norm_preserved, 0, (int)LC_COUNTOF(all_kinds));
    tcase_add_loop_test(opt, test_layca_one_step_rotation, 0, (int)LC_COUNTOF(all_kinds));
    tcase_add_test(opt, test_layca_nan_and_zero);
    tcase_add_test(opt, test_layca_details);
    tcase_add_test(opt, test_multipliers);
    tcase_add_test(opt, test_schedule_and_cosine);
    suite_add_tcase(s, opt);
    return s;
}

int main(void)
{
    return lc_test_run(ref_suite());
}
