/* Reference optimizers, Layca, eq. 1 multipliers and the rotation metric
 * (reference/layca-paper.md sections 1-4), in double precision. */
#include "lc_ref.h"

#include <math.h>
#include <stdlib.h>

void lc_ref_optim_defaults(lc_ref_optim *o, lc_ref_optim_kind kind)
{
    *o = (lc_ref_optim){
        .kind = kind,
        .lr = 0.01,
        .momentum = 0.0,
        .nesterov = false,
        .beta1 = 0.9,
        .beta2 = 0.999,
        .rho = 0.9,
        .eps = 1e-7,
        .weight_decay = 0.0,
    };
    switch (kind) {
    case LC_REF_SGD: break;
    case LC_REF_SGD_AMOM: o->momentum = 0.9; break;
    case LC_REF_ADAM: o->lr = 0.001; break;
    case LC_REF_RMSPROP: o->lr = 0.001; break;
    case LC_REF_ADAGRAD: break;
    }
}

const char *lc_ref_optim_name(lc_ref_optim_kind kind)
{
    switch (kind) {
    case LC_REF_SGD: return "sgd";
    case LC_REF_SGD_AMOM: return "sgd_amom";
    case LC_REF_ADAM: return "adam";
    case LC_REF_RMSPROP: return "rmsprop";
    case LC_REF_ADAGRAD: return "adagrad";
    }
    return "?";
}

int lc_ref_optim_state_count(lc_ref_optim_kind kind)
{
    return kind == LC_REF_ADAM ? 2 : 1;
}

void lc_ref_optim_compute_step(double *s, double *state1, double *state2, const double *w,
                               const double *g, size_t n, const lc_ref_optim *o, double lr,
                               long t)
{
    /* Adam's lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t), t 1-based. */
    double lr_t = lr;
    if (o->kind == LC_REF_ADAM)
        lr_t = lr * sqrt(1.0 - pow(o->beta2, (double)t)) / (1.0 - pow(o->beta1, (double)t));

    for (size_t i = 0; i < n; i++) {
        double gi = g[i] + 2.0 * o->weight_decay * w[i]; /* Keras l2 */
        s[i] = 0.0; /* an unknown kind gives a zero step */
        switch (o->kind) {
        case LC_REF_SGD: {
            double m = o->momentum * state1[i] - lr * gi;
            state1[i] = m;
            s[i] = o->nesterov ? -(o->momentum * m - lr * gi) : -m;
            break;
        }
        case LC_REF_SGD_AMOM: {
            double m = o->momentum * state1[i] - (1.0 - o->momentum) * gi;
            state1[i] = m;
            s[i] = -lr * m;
            break;
        }
        case LC_REF_ADAM: {
            double m = o->beta1 * state1[i] + (1.0 - o->beta1) * gi;
            double v = o->beta2 * state2[i] + (1.0 - o->beta2) * gi * gi;
            state1[i] = m;
            state2[i] = v;
            s[i] = lr_t * m / (sqrt(v) + o->eps);
            break;
        }
        case LC_REF_RMSPROP: {
            double a = o->rho * state1[i] + (1.0 - o->rho) * gi * gi;
            state1[i] = a;
            s[i] = lr * gi / (sqrt(a) + o->eps);
            break;
        }
        case LC_REF_ADAGRAD: {
            double a = state1[i] + gi * gi;
            state1[i] = a;
            s[i] = lr * gi / (sqrt(a) + o->eps);
            break;
        }
        }
    }
}

void lc_ref_optim_step(double *w, double *state1, double *state2, const double *g, size_t n,
                       const lc_ref_optim *o, double lr, long t)
{
    /* One element at a time so no scratch buffer is needed: the step of
     * element i depends only on element i (and t). */
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        lc_ref_optim_compute_step(&s, state1 ? state1 + i : NULL, state2 ? state2 + i : NULL,
                                  w + i, g + i, 1, o, lr, t);
        w[i] -= s;
    }
}

bool lc_ref_layca_apply(double *w, double *s, size_t n, double rho, double n0)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(s[i])) s[i] = 0.0; /* NaN guard (paper A.2) */

    double ww = lc_ref_dot(w, w, n);
    if (!(ww > 0.0) || !isfinite(ww)) return false; /* cannot rotate a zero vector */

    /* (1) project onto the tangent space of the sphere at w */
    double c = lc_ref_dot(s, w, n) / ww;
    for (size_t i = 0; i < n; i++) s[i] -= c * w[i];

    /* (2) rotation-based normalisation, ||s|| = ||w||; Keras epsilon guard */
    double sn = lc_ref_norm(s, n);
    if (!(sn > 1e-7) || !isfinite(sn)) return false;
    double scale = sqrt(ww) / sn;
    for (size_t i = 0; i < n; i++) s[i] *= scale;

    /* (3) update, (4) back onto the sphere of radius n0 */
    for (size_t i = 0; i < n; i++) w[i] -= rho * s[i];
    double wn = lc_ref_norm(w, n);
    for (size_t i = 0; i < n; i++) w[i] *= n0 / wn;
    return true;
}

void lc_ref_layca_step(double *w, double *state1, double *state2, const double *g, size_t n,
                       const lc_ref_optim *o, double rho, double n0, long t)
{
    double inner_lr = (o->kind == LC_REF_SGD || o->kind == LC_REF_SGD_AMOM) ? 1.0 : o->lr;
    /* The step needs a whole-layer buffer: Layca's sums span the layer. */
    double *s = malloc(n ? n * sizeof *s : 1);
    if (!s) return; /* reference code for tests: no error channel */
    lc_ref_optim_compute_step(s, state1, state2, w, g, n, o, inner_lr, t);
    lc_ref_layca_apply(w, s, n, rho, n0);
    free(s);
}

void lc_ref_layer_multipliers(double *mult, int L, double alpha)
{
    for (int l = 0; l < L; l++) {
        if (L == 1) {
            mult[l] = 1.0;
        } else if (alpha <= 0.0) {
            mult[l] = pow(1.0 + alpha, 5.0 * l / (L - 1));
        } else {
            mult[l] = pow(1.0 - alpha, 5.0 * (L - 1 - l) / (L - 1));
        }
    }
}

double lc_ref_lr_schedule(double initial, double factor, const int *milestones, int count,
                          int epoch)
{
    double lr = initial;
    for (int i = 0; i < count; i++)
        if (milestones[i] <= epoch) lr *= factor;
    return lr;
}

double lc_ref_cosine_distance(const double *w, const double *w0, size_t n)
{
    double d = lc_ref_norm(w, n) * lc_ref_norm(w0, n);
    if (d == 0.0) return NAN;
    return 1.0 - lc_ref_dot(w, w0, n) / d;
}
