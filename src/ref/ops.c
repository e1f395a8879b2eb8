/* Reference ops in double precision: straightforward loops, no tricks. */
#include "lc_ref.h"

#include <math.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

int lc_ref_out_size(int in, int k, int stride, int pad)
{
    int span = in + 2 * pad - k;
    if (span < 0 || stride <= 0) return 0;
    return span / stride + 1;
}

double lc_ref_dot(const double *a, const double *b, size_t n)
{
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

double lc_ref_norm(const double *a, size_t n)
{
    return sqrt(lc_ref_dot(a, a, n));
}

static void zero(double *p, size_t n)
{
    if (p) memset(p, 0, n * sizeof *p);
}

/* ---- dense ----------------------------------------------------------------- */

void lc_ref_dense_fwd(double *y, const double *x, const double *w, const double *b,
                      int n, int in, int out)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int k = 0; k < in; k++) acc += x[(size_t)i * in + k] * w[(size_t)o * in + k];
            y[(size_t)i * out + o] = acc;
        }
}

void lc_ref_dense_bwd(double *dx, double *dw, double *db, const double *dy,
                      const double *x, const double *w, int n, int in, int out)
{
    if (dx)
        for (int i = 0; i < n; i++)
            for (int k = 0; k < in; k++) {
                double acc = 0.0;
                for (int o = 0; o < out; o++)
                    acc += dy[(size_t)i * out + o] * w[(size_t)o * in + k];
                dx[(size_t)i * in + k] = acc;
            }
    if (dw)
        for (int o = 0; o < out; o++)
            for (int k = 0; k < in; k++) {
                double acc = 0.0;
                for (int i = 0; i < n; i++)
                    acc += dy[(size_t)i * out + o] * x[(size_t)i * in + k];
                dw[(size_t)o * in + k] = acc;
            }
    if (db)
        for (int o = 0; o < out; o++) {
            double acc = 0.0;
            for (int i = 0; i < n; i++) acc += dy[(size_t)i * out + o];
            db[o] = acc;
        }
}

/* ---- elementwise ------------------------------------------------------------ */

void lc_ref_relu_fwd(double *y, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0 ? x[i] : 0.0;
}

void lc_ref_relu_bwd(double *dx, const double *dy, const double *y, size_t n)
{
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0 ? dy[i] : 0.0;
}

void lc_ref_add_fwd(double *y, const double *a, const double *b, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void lc_ref_dropout_fwd(double *y, const double *x, const uint8_t *mask, double p, size_t n)
{
    double scale = 1.0 / (1.0 - p);
    for (size_t i = 0; i < n; i++) y[i] = mask[i] ? x[i] * scale : 0.0;
}

void lc_ref_dropout_bwd(double *dx, const double *dy, const uint8_t *mask, double p, size_t n)
{
    double scale = 1.0 / (1.0 - p);
    for (size_t i = 0; i < n; i++) dx[i] = mask[i] ? dy[i] * scale : 0.0;
}

/* ---- softmax cross-entropy ---------------------------------------------------- */

/* Row max and log-sum-exp of one row of logits. */
static double row_logsumexp(const double *z, int classes, int *argmax)
{
    int am = 0;
    for (int k = 1; k < classes; k++)
        if (z[k] > z[am]) am = k; /* strict: ties keep the lowest index */
    double m = z[am], sum = 0.0;
    for (int k = 0; k < classes; k++) sum += exp(z[k] - m);
    if (argmax) *argmax = am;
    return m + log(sum);
}

double lc_ref_softmax_ce_fwd(double *loss_per_sample, int *correct, const double *logits,
                             const int32_t *labels, int n, int classes)
{
    double total = 0.0;
    int ok = 0;
    for (int i = 0; i < n; i++) {
        const double *z = logits + (size_t)i * classes;
        int am;
        double loss = row_logsumexp(z, classes, &am) - z[labels[i]];
        if (loss_per_sample) loss_per_sample[i] = loss;
        bool nan = false;
        for (int k = 0; k < classes; k++) nan |= isnan(z[k]);
        if (am == labels[i] && !nan) ok++; /* a NaN prediction is a miss */
        total += loss;
    }
    if (correct) *correct = ok;
    return n > 0 ? total / n : 0.0;
}

void lc_ref_softmax_ce_bwd(double *dlogits, const double *logits, const int32_t *labels,
                           int n, int classes)
{
    for (int i = 0; i < n; i++) {
        const double *z = logits + (size_t)i * classes;
        double *d = dlogits + (size_t)i * classes;
        double lse = row_logsumexp(z, classes, NULL);
        for (int k = 0; k < classes; k++) {
            double p = exp(z[k] - lse);
            d[k] = (p - (k == labels[i] ? 1.0 : 0.0)) / n;
        }
    }
}

/* ---- conv2d ---------------------------------------------------------------------- */

void lc_ref_conv2d_fwd(double *y, const double *x, const double *w, const double *b,
                       int n, int cin, int h, int wd, int cout, int kh, int kw,
                       int sh, int sw, int ph, int pw)
{
    int oh = lc_ref_out_size(h, kh, sh, ph), ow = lc_ref_out_size(wd, kw, sw, pw);
    for (int ni = 0; ni < n; ni++)
        for (int co = 0; co < cout; co++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double acc = b ? b[co] : 0.0;
                    for (int ci = 0; ci < cin; ci++)
                        for (int ky = 0; ky < kh; ky++) {
                            int iy = oy * sh - ph + ky;
                            if (iy < 0 || iy >= h) continue;
                            for (int kx = 0; kx < kw; kx++) {
                                int ix = ox * sw - pw + kx;
                                if (ix < 0 || ix >= wd) continue;
                                acc += x[(((size_t)ni * cin + ci) * h + iy) * wd + ix] *
                                       w[(((size_t)co * cin + ci) * kh + ky) * kw + kx];
                            }
                        }
                    y[(((size_t)ni * cout + co) * oh + oy) * ow + ox] = acc;
                }
}

void lc_ref_conv2d_bwd(double *dx, double *dw, double *db, const double *dy,
                       const double *x, const double *w,
                       int n, int cin, int h, int wd, int cout, int kh, int kw,
                       int sh, int sw, int ph, int pw)
{
    int oh = lc_ref_out_size(h, kh, sh, ph), ow = lc_ref_out_size(wd, kw, sw, pw);
    zero(dx, (size_t)n * cin * h * wd);
    zero(dw, (size_t)cout * cin * kh * kw);
    zero(db, (size_t)cout);
    for (int ni = 0; ni < n; ni++)
        for (int co = 0; co < cout; co++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double g = dy[(((size_t)ni * cout + co) * oh + oy) * ow + ox];
                    if (db) db[co] += g;
                    for (int ci = 0; ci < cin; ci++)
                        for (int ky = 0; ky < kh; ky++) {
                            int iy = oy * sh - ph + ky;
                            if (iy < 0 || iy >= h) continue;
                            for (int kx = 0; kx < kw; kx++) {
                                int ix = ox * sw - pw + kx;
                                if (ix < 0 || ix >= wd) continue;
                                size_t xi = (((size_t)ni * cin + ci) * h + iy) * wd + ix;
                                size_t wi = (((size_t)co * cin + ci) * kh + ky) * kw + kx;
                                if (dx) dx[xi] += g * w[wi];
                                if (dw) dw[wi] += g * x[xi];
                            }
                        }
                }
}

/* ---- batchnorm ------------------------------------------------------------------- */

/* Batch mean and biased variance of channel ch (two passes). */
static void bn_stats(double *mean, double *var, const double *x, int n, int c, int hw, int ch)
{
    size_t m = (size_t)n * hw;
    double s = 0.0;
    for (int ni = 0; ni < n; ni++)
        for (int k = 0; k < hw; k++) s += x[((size_t)ni * c + ch) * hw + k];
    double mu = s / (double)m, v = 0.0;
    for (int ni = 0; ni < n; ni++)
        for (int k = 0; k < hw; k++) {
            double d = x[((size_t)ni * c + ch) * hw + k] - mu;
            v += d * d;
        }
    *mean = mu;
    *var = v / (double)m;
}

void lc_ref_batchnorm_fwd(double *y, double *save_mean, double *save_var,
                          double *running_mean, double *running_var,
                          const double *x, const double *gamma, const double *beta,
                          int n, int c, int hw, double eps, double momentum, bool training)
{
    for (int ch = 0; ch < c; ch++) {
        double mu, var;
        if (training) {
            bn_stats(&mu, &var, x, n, c, hw, ch);
            if (save_mean) save_mean[ch] = mu;
            if (save_var) save_var[ch] = var;
            if (running_mean && running_var) {
                running_mean[ch] = momentum * running_mean[ch] + (1.0 - momentum) * mu;
                running_var[ch] = momentum * running_var[ch] + (1.0 - momentum) * var;
            }
        } else {
            mu = running_mean[ch];
            var = running_var[ch];
        }
        double inv = 1.0 / sqrt(var + eps);
        double g = gamma ? gamma[ch] : 1.0, b = beta ? beta[ch] : 0.0;
        for (int ni = 0; ni < n; ni++)
            for (int k = 0; k < hw; k++) {
                size_t i = ((size_t)ni * c + ch) * hw + k;
                y[i] = g * (x[i] - mu) * inv + b;
            }
    }
}

void lc_ref_batchnorm_bwd(double *dx, double *dgamma, double *dbeta, const double *dy,
                          const double *x, const double *gamma, int n, int c, int hw,
                          double eps)
{
    double m = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double mu, var;
        bn_stats(&mu, &var, x, n, c, hw, ch);
        double inv = 1.0 / sqrt(var + eps);
        double g = gamma ? gamma[ch] : 1.0;
        /* sum_dy = sum(dy), sum_dy_xhat = sum(dy * xhat) */
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int ni = 0; ni < n; ni++)
            for (int k = 0; k < hw; k++) {
                size_t i = ((size_t)ni * c + ch) * hw + k;
                sum_dy += dy[i];
                sum_dy_xhat += dy[i] * (x[i] - mu) * inv;
            }
        if (dgamma) dgamma[ch] = sum_dy_xhat;
        if (dbeta) dbeta[ch] = sum_dy;
        if (!dx) continue;
        /* dxhat = g*dy;  dx = inv/m * (m*dxhat - sum(dxhat) - xhat*sum(dxhat*xhat)) */
        for (int ni = 0; ni < n; ni++)
            for (int k = 0; k < hw; k++) {
                size_t i = ((size_t)ni * c + ch) * hw + k;
                double xhat = (x[i] - mu) * inv;
                dx[i] = g * inv / m * (m * dy[i] - sum_dy - xhat * sum_dy_xhat);
            }
    }
}

/* ---- pooling ----------------------------------------------------------------------- */

/* The real rows [*y0, *y1) and columns [*x0, *x1) of window (oy, ox). */
static void pool_window(const lc_ref_pool *p, int h, int wd, int oy, int ox, int *y0, int *y1, int *x0, int *x1)
{
    int ys = oy * p->sh - p->pt, xs = ox * p->sw - p->pl;
    *y0 = ys > 0 ? ys : 0;
    *y1 = ys + p->kh < h ? ys + p->kh : h;
    *x0 = xs > 0 ? xs : 0;
    *x1 = xs + p->kw < wd ? xs + p->kw : wd;
}

static int pool_out(int in, int k, int s, int p0, int p1) { return lc_ref_out_size(in + p0 + p1, k, s, 0); }

/* Plane index of the first maximum of window (oy, ox) among its real values. */
static size_t pool_argmax(const double *xp, const lc_ref_pool *p, int h, int wd, int oy, int ox)
{
    int y0, y1, x0, x1;
    pool_window(p, h, wd, oy, ox, &y0, &y1, &x0, &x1);
    size_t arg = (size_t)y0 * wd + x0;
    for (int yy = y0; yy < y1; yy++)
        for (int xx = x0; xx < x1; xx++) {
            size_t i = (size_t)yy * wd + xx;
            if (xp[i] > xp[arg]) arg = i;
        }
    return arg;
}

void lc_ref_maxpool_fwd(double *y, const double *x, int n, int c, int h, int wd, const lc_ref_pool *p)
{
    int oh = pool_out(h, p->kh, p->sh, p->pt, p->pb), ow = pool_out(wd, p->kw, p->sw, p->pl, p->pr);
    for (size_t q = 0; q < (size_t)n * c; q++) {
        const double *xp = x + q * h * wd;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) y[(q * oh + oy) * ow + ox] = xp[pool_argmax(xp, p, h, wd, oy, ox)];
    }
}

void lc_ref_maxpool_bwd(double *dx, const double *dy, const double *x, int n, int c, int h, int wd,
                        const lc_ref_pool *p)
{
    int oh = pool_out(h, p->kh, p->sh, p->pt, p->pb), ow = pool_out(wd, p->kw, p->sw, p->pl, p->pr);
    zero(dx, (size_t)n * c * h * wd);
    for (size_t q = 0; q < (size_t)n * c; q++) {
        const double *xp = x + q * h * wd;
        double *dxp = dx + q * h * wd;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) dxp[pool_argmax(xp, p, h, wd, oy, ox)] += dy[(q * oh + oy) * ow + ox];
    }
}

/* the divisor of window (oy, ox) */
static double pool_count(const lc_ref_pool *p, int h, int wd, int oy, int ox)
{
    if (p->count_pad) return (double)p->kh * p->kw;
    int y0, y1, x0, x1;
    pool_window(p, h, wd, oy, ox, &y0, &y1, &x0, &x1);
    return (double)(y1 - y0) * (x1 - x0);
}

void lc_ref_avgpool_fwd(double *y, const double *x, int n, int c, int h, int wd, const lc_ref_pool *p)
{
    int oh = pool_out(h, p->kh, p->sh, p->pt, p->pb), ow = pool_out(wd, p->kw, p->sw, p->pl, p->pr);
    for (size_t q = 0; q < (size_t)n * c; q++) {
        const double *xp = x + q * h * wd;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int y0, y1, x0, x1;
                pool_window(p, h, wd, oy, ox, &y0, &y1, &x0, &x1);
                double acc = 0.0;
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++) acc += xp[(size_t)yy * wd + xx];
                y[(q * oh + oy) * ow + ox] = acc / pool_count(p, h, wd, oy, ox);
            }
    }
}

void lc_ref_avgpool_bwd(double *dx, const double *dy, int n, int c, int h, int wd, const lc_ref_pool *p)
{
    int oh = pool_out(h, p->kh, p->sh, p->pt, p->pb), ow = pool_out(wd, p->kw, p->sw, p->pl, p->pr);
    zero(dx, (size_t)n * c * h * wd);
    for (size_t q = 0; q < (size_t)n * c; q++) {
        double *dxp = dx + q * h * wd;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int y0, y1, x0, x1;
                pool_window(p, h, wd, oy, ox, &y0, &y1, &x0, &x1);
                double g = dy[(q * oh + oy) * ow + ox] / pool_count(p, h, wd, oy, ox);
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++) dxp[(size_t)yy * wd + xx] += g;
            }
    }
}

void lc_ref_global_avgpool_fwd(double *y, const double *x, int n, int c, int hw)
{
    for (size_t p = 0; p < (size_t)n * c; p++) {
        double acc = 0.0;
        for (int k = 0; k < hw; k++) acc += x[p * hw + k];
        y[p] = acc / hw;
    }
}

void lc_ref_global_avgpool_bwd(double *dx, const double *dy, int n, int c, int hw)
{
    for (size_t p = 0; p < (size_t)n * c; p++)
        for (int k = 0; k < hw; k++) dx[p * hw + k] = dy[p] / hw;
}
