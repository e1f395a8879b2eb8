/* Plain-C double-precision reference of every op and optimizer.
 *
 * Used by tests (and tools) to check the device kernels, so every function is
 * written for clarity and exactness, not speed.  Layouts are PyTorch's,
 * row-major, batch first: activations NCHW, dense weight [out, in], conv
 * weight [out, in, kh, kw].  Op functions take outputs first, then inputs,
 * then sizes; shapes are given in the comments.  Backward functions
 * OVERWRITE their outputs (they never accumulate into them); every gradient
 * output documented as nullable may be NULL to skip it.
 *
 * The method (Layca, the optimizers, eq. 1) follows reference/layca-paper.md
 * sections 1-3; the Keras 2.1.2 conventions of section 5 are used where a
 * choice exists (batchnorm running statistics, optimizer defaults, l2). */
#ifndef LC_REF_H
#define LC_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_core.h"

/* ---- small helpers ------------------------------------------------------ */

/* Output size of a conv / pooling window along one axis:
 * (in + 2*pad - k) / stride + 1, or 0 when the window does not fit. */
int lc_ref_out_size(int in, int k, int stride, int pad);
double lc_ref_dot(const double *a, const double *b, size_t n);
double lc_ref_norm(const double *a, size_t n); /* L2 (Frobenius) norm */

/* ---- dense ------------------------------------------------------------- */

/* y[n,out] = x[n,in] * w[out,in]^T + b[out]   (b may be NULL) */
void lc_ref_dense_fwd(double *y, const double *x, const double *w, const double *b,
                      int n, int in, int out);
/* dx[n,in] (nullable), dw[out,in] (nullable), db[out] (nullable)
 * from dy[n,out], x[n,in], w[out,in]. */
void lc_ref_dense_bwd(double *dx, double *dw, double *db, const double *dy,
                      const double *x, const double *w, int n, int in, int out);

/* ---- elementwise --------------------------------------------------------- */

/* y[n] = max(x, 0) */
void lc_ref_relu_fwd(double *y, const double *x, size_t n);
/* dx[n] = dy * (y > 0), from the forward OUTPUT y[n] */
void lc_ref_relu_bwd(double *dx, const double *dy, const double *y, size_t n);
/* y[n] = a[n] + b[n] (residual add; its backward passes dy to both inputs) */
void lc_ref_add_fwd(double *y, const double *a, const double *b, size_t n);

/* Inverted dropout with an explicit mask[n] (nonzero = kept):
 * y = x * mask / (1 - p); p in [0, 1). */
void lc_ref_dropout_fwd(double *y, const double *x, const uint8_t *mask, double p, size_t n);
void lc_ref_dropout_bwd(double *dx, const double *dy, const uint8_t *mask, double p, size_t n);

/* ---- softmax cross-entropy ---------------------------------------------- */

/* logits[n,classes], labels[n] in [0, classes).  Numerically stable
 * (max subtraction): loss_i = logsumexp(logits_i) - logits_i[label_i].
 * Returns the mean loss over the batch.  loss_per_sample[n] and *correct
 * (the count of samples whose argmax == label; ties go to the lowest index)
 * may be NULL.  No probability clipping (Keras clips p to [1e-7, 1-1e-7];
 * the engine uses the exact fused form). */
double lc_ref_softmax_ce_fwd(double *loss_per_sample, int *correct, const double *logits,
                             const int32_t *labels, int n, int classes);
/* dlogits[n,classes] = (softmax(logits) - onehot(labels)) / n, the gradient
 * of the mean loss. */
void lc_ref_softmax_ce_bwd(double *dlogits, const double *logits, const int32_t *labels,
                           int n, int classes);

/* ---- conv2d --------------------------------------------------------------- */

/* Cross-correlation (no kernel flip), as PyTorch and Keras.
 * x[n,cin,h,wd], w[cout,cin,kh,kw], b[cout] (nullable), y[n,cout,oh,ow] with
 * oh = (h + 2ph - kh)/sh + 1, ow = (wd + 2pw - kw)/sw + 1.  Zero padding,
 * the same ph (pw) on top and bottom (left and right). */
void lc_ref_conv2d_fwd(double *y, const double *x, const double *w, const double *b,
                       int n, int cin, int h, int wd, int cout, int kh, int kw,
                       int sh, int sw, int ph, int pw);
/* dx[n,cin,h,wd] (nullable), dw[cout,cin,kh,kw] (nullable), db[cout]
 * (nullable) from dy[n,cout,oh,ow], x, w; same sizes as the forward. */
void lc_ref_conv2d_bwd(double *dx, double *dw, double *db, const double *dy,
                       const double *x, const double *w,
                       int n, int cin, int h, int wd, int cout, int kh, int kw,
                       int sh, int sw, int ph, int pw);

/* ---- batchnorm ------------------------------------------------------------ */

/* Per-channel normalisation over N, H, W.  x, y: [n, c, hw] (hw = H*W; 1
 * after a dense layer).  gamma[c], beta[c]: NULL = no affine (gamma 1,
 * beta 0).  y = gamma * (x - mean) / sqrt(var + eps) + beta.
 *
 * training: mean and var are the batch mean and the BIASED batch variance.
 *   save_mean[c], save_var[c] (nullable) receive them.  When running_mean and
 *   running_var are both non-NULL they are updated, Keras convention:
 *     running = momentum * running + (1 - momentum) * batch
 *   with the BIASED batch variance, as Keras 2.1.2 does (the m/(m-1)
 *   correction arrived in Keras 2.1.3, keras-team/keras#8982; 2.1.2's TF
 *   backend also uses zero_debias=False, so no bias correction either).
 *   Keras defaults: eps = 1e-3, momentum = 0.99.
 * eval (training false): uses running_mean / running_var (required, read
 *   only); save_* and momentum are ignored. */
void lc_ref_batchnorm_fwd(double *y, double *save_mean, double *save_var,
                          double *running_mean, double *running_var,
                          const double *x, const double *gamma, const double *beta,
                          int n, int c, int hw, double eps, double momentum, bool training);
/* Training-mode backward (batch statistics recomputed from x):
 * dx[n,c,hw] (nullable), dgamma[c] (nullable), dbeta[c] (nullable) from
 * dy[n,c,hw], x[n,c,hw], gamma[c] (NULL = 1). */
void lc_ref_batchnorm_bwd(double *dx, double *dgamma, double *dbeta, const double *dy,
                          const double *x, const double *gamma, int n, int c, int hw,
                          double eps);

/* ---- pooling ------------------------------------------------------------ */

/* A pooling window: size, stride and padding (top, left, bottom, right; each
 * side smaller than the window along its axis, so every window holds a real
 * value).  Padded positions are not values: max ignores them; avg divides
 * the window's sum by kh*kw when count_pad, else by its real values. */
typedef struct lc_ref_pool {
    int kh, kw, sh, sw;
    int pt, pl, pb, pr;
    bool count_pad;
} lc_ref_pool;

/* x[n,c,h,wd], y[n,c,oh,ow], oh = (h + pt + pb - kh)/sh + 1, ow likewise;
 * windows that do not fit are dropped.  Max: the first maximum among the
 * real values in row-major window order wins (ties); its backward routes
 * dy to that element, accumulating where windows overlap. */
void lc_ref_maxpool_fwd(double *y, const double *x, int n, int c, int h, int wd, const lc_ref_pool *p);
void lc_ref_maxpool_bwd(double *dx, const double *dy, const double *x, int n, int c, int h, int wd,
                        const lc_ref_pool *p);
void lc_ref_avgpool_fwd(double *y, const double *x, int n, int c, int h, int wd, const lc_ref_pool *p);
void lc_ref_avgpool_bwd(double *dx, const double *dy, int n, int c, int h, int wd, const lc_ref_pool *p);
/* y[n,c] = mean over hw of x[n,c,hw] */
void lc_ref_global_avgpool_fwd(double *y, const double *x, int n, int c, int hw);
void lc_ref_global_avgpool_bwd(double *dx, const double *dy, int n, int c, int hw);

/* ---- optimizers (reference section 1.3) ----------------------------------
 * One parameter tensor = one "layer".  The optimizer state advances from the
 * RAW gradient (plus l2); s is the step that would be subtracted (w -= s).
 *
 *  kind      state1        state2   s (plain, lr = the lr argument)
 *  SGD       m             -        m <- mu*m - lr*g; s = -m;
 *                                   Nesterov: s = -(mu*m_new - lr*g)
 *  SGD_AMom  m             -        m <- beta*m - (1-beta)*g (beta = momentum);
 *                                   s = -lr*m  (V1 stores m = v/lr)
 *  Adam      m             v        m <- b1*m + (1-b1)*g; v <- b2*v + (1-b2)*g^2;
 *                                   lr_t = lr*sqrt(1-b2^t)/(1-b1^t);
 *                                   s = lr_t*m/(sqrt(v) + eps)
 *  RMSprop   a             -        a <- rho*a + (1-rho)*g^2; s = lr*g/(sqrt(a)+eps)
 *  Adagrad   a             -        a <- a + g^2; s = lr*g/(sqrt(a) + eps)
 *
 * g includes Keras l2: g = grad + 2*weight_decay*w.  State buffers start at
 * zero; t is the 1-based step count (Adam's bias correction).  Unused state
 * pointers may be NULL. */
typedef enum {
    LC_REF_SGD,
    LC_REF_SGD_AMOM,
    LC_REF_ADAM,
    LC_REF_RMSPROP,
    LC_REF_ADAGRAD,
} lc_ref_optim_kind;

typedef struct {
    lc_ref_optim_kind kind;
    double lr;           /* default (Keras 2.1.2): SGD, SGD_AMom, Adagrad 0.01; Adam, RMSprop 0.001 */
    double momentum;     /* SGD mu (default 0, the paper's runs); SGD_AMom beta (default 0.9) */
    bool nesterov;       /* SGD only (default false) */
    double beta1, beta2; /* Adam: 0.9, 0.999 */
    double rho;          /* RMSprop: 0.9 */
    double eps;          /* Adam, RMSprop, Adagrad: 1e-7 */
    double weight_decay; /* Keras l2 lambda: grad += 2*lambda*w (default 0) */
} lc_ref_optim;

void lc_ref_optim_defaults(lc_ref_optim *o, lc_ref_optim_kind kind);
const char *lc_ref_optim_name(lc_ref_optim_kind kind);
/* Number of per-element state buffers the kind uses (1 or 2). */
int lc_ref_optim_state_count(lc_ref_optim_kind kind);

/* Advances the state and writes the step s[n] (what would be subtracted)
 * for parameters w[n] with gradient g[n]; lr overrides o->lr (schedules,
 * multipliers). */
void lc_ref_optim_compute_step(double *s, double *state1, double *state2, const double *w,
                               const double *g, size_t n, const lc_ref_optim *o, double lr,
                               long t);
/* Plain step: w -= s. */
void lc_ref_optim_step(double *w, double *state1, double *state2, const double *g, size_t n,
                       const lc_ref_optim *o, double lr, long t);

/* Layca's operations on one layer given the inner step s (V2/TOOLS form,
 * reference 1.2), modifying s in place:
 *   non-finite s_i -> 0;
 *   s <- s - (<s,w>/||w||^2) w            (tangent to the sphere)
 *   if ||s|| <= 1e-7: the step is 0 and w is left untouched;
 *   else s <- s * ||w|| / ||s||;  w <- w - rho*s;  w <- w * n0 / ||w||.
 * A zero or non-finite ||w|| also gives a zero step.  Returns true when w
 * was updated.  The update rotates w by exactly arctan(rho). */
bool lc_ref_layca_apply(double *w, double *s, size_t n, double rho, double n0);
/* Layca-wrapped optimizer step for one layer: the inner step is computed by
 * lc_ref_optim_compute_step (state from the raw gradient) and then passed
 * through lc_ref_layca_apply.  The inner lr is 1 for SGD and SGD_AMom
 * (V1 forces SGD_lr = 1: m <- mu*m - g, s = -m; SGD_AMom s = -m) and o->lr for
 * Adam / RMSprop / Adagrad; its magnitude is normalised away either way.
 * rho = the layer's rotation rate (schedule x multiplier), n0 = the layer's
 * initial norm. */
void lc_ref_layca_step(double *w, double *state1, double *state2, const double *g, size_t n,
                       const lc_ref_optim *o, double rho, double n0, long t);

/* Eq. 1 multipliers for L kernel layers, l = 0..L-1 in forward order
 * (reference section 2, code form):
 *   alpha <= 0: mult[l] = (1+alpha)^(5 l/(L-1))       first 1, last (1+alpha)^5
 *   alpha >  0: mult[l] = (1-alpha)^(5 (L-1-l)/(L-1)) last 1, first (1-alpha)^5
 * L == 1 gives 1. */
void lc_ref_layer_multipliers(double *mult, int L, double alpha);

/* Step-decay schedule (reference section 2): initial * factor^(number of
 * milestones <= epoch), epoch 0-based. */
double lc_ref_lr_schedule(double initial, double factor, const int *milestones, int count,
                          int epoch);

/* Rotation metric: 1 - <w,w0> / (||w|| ||w0||) (scipy's cosine distance);
 * NaN when a norm is zero, as scipy. */
double lc_ref_cosine_distance(const double *w, const double *w0, size_t n);

/* ---- the graph interpreter (graph.c): forward graphs in double precision ---- */
#include "lc_ir.h"

typedef struct lc_ref_run {
    int n;            /* batch */
    double **val;     /* per node value (NULL for params) */
    double **grad;    /* per node gradient of the mean loss */
    double loss;      /* mean loss */
    int correct;
    double *pgrad;    /* parameter gradients, in the parameter arena layout */
    double *pnew;     /* parameters after the forward (running statistics updated in training) */
} lc_ref_run;

typedef struct lc_ref_opts {
    bool eval;                   /* evaluation mode (default: training) */
    const uint8_t *const *masks; /* training: per node id, the dropout keep mask (n * numel); NULL = keep all */
    const float *const *gates;   /* per MASK node id, its uploaded values (n * numel) */
} lc_ref_opts;

/* Runs the forward graph g (its forward nodes) on n examples x with labels
 * y and parameters params (g's arena layout), and differentiates the mean
 * loss by walking the forward nodes backwards (independently of the IR's
 * autodiff).  o may be NULL (training, no dropout masks).  Free with
 * lc_ref_run_free. */
lc_status lc_ref_run_graph(lc_ref_run *r, const lc_graph *g, const float *params, const float *x, const int32_t *y,
                           int n, const lc_ref_opts *o);
void lc_ref_run_free(lc_ref_run *r, const lc_graph *g);
/* Checks the reference's part of the op registry: every forward op has a
 * forward and a backward here. */
lc_status lc_ref_ops_check(void);

#endif
