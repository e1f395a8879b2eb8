/* Optimizers on the device, with Layca (reference/layca-paper.md sections
 * 1-4).  Works on a parameter arena and a gradient arena of the same layout:
 * tensors at offsets aligned to LC_OPTIM_GROUP floats, so one launch updates
 * the whole network and each work-group belongs to one tensor; what the gaps
 * between tensors hold is left as it is and never enters a sum.  Knows
 * nothing of the IR.
 *
 * Inner optimizers (Keras 2.1.2 forms, reference 1.3; they match
 * lc_ref_optim_compute_step): SGD (momentum, Nesterov), SGD_AMom, Adam,
 * RMSprop, Adagrad; L2 weight decay as Keras l2 (g += 2 wd w).  Their state
 * always advances from the raw gradient.  SGD with momentum 0 keeps no
 * state (m = -lr g is never read again): its state arena stays zero.
 *
 * Plain mode (layca false): w -= s with the tensor's rate as the lr
 * (SGD: m <- mu m - rate g, s = -m; SGD_AMom stores m unscaled:
 * m <- beta m - (1-beta) g, s = -rate m).
 *
 * Layca mode (layca true; the V2/TOOLS form of lc_ref_layca_step): for every
 * trainable KERNEL tensor (a "layer"), s is projected orthogonally to w,
 * rescaled to ||w||, w -= rho s, and w is rescaled to its initial norm n0;
 * rho is the tensor's rate.  The inner lr is 1 for SGD and SGD_AMom (V1
 * forces SGD_lr = 1) and cfg.layca_inner_lr for Adam / RMSprop / Adagrad
 * (its magnitude is normalised away; it only matters against Layca's 1e-7
 * epsilon).  A zero or non-finite step is a zero step (w untouched): ||w||
 * zero or non-finite, ||s_perp|| <= 1e-7 (the reference's Keras epsilon),
 * and also ||s_perp||^2 <= 1e-10 ||s||^2 (s parallel to w within 1e-5 rad,
 * below what float can resolve elementwise; lc_ref, in double, would still
 * step there, e.g. never for a 1-element kernel, whose tangent space is
 * empty).
 * Trainable NON-kernel tensors (biases, BN affine) under Layca get a plain
 * step of the inner optimizer with their own rate as the lr (the
 * alternative named in reference 1.1); with cfg.layca_skip_non_kernel they
 * are left untouched, as the paper's V2/TOOLS code did.
 *
 * Non-finite values: a NaN or Inf gradient entry is treated as 0 (it never
 * reaches the optimizer state), a non-finite step entry becomes 0, and an
 * update that would make a weight non-finite leaves it unchanged.  So no NaN
 * or Inf ever reaches the weights, in plain and Layca modes alike.  (This is
 * stricter than lc_ref, which lets a NaN gradient into the state; with
 * finite gradients the two agree.)
 *
 * Fused path (default, cfg.fuse): plain optimizers take ONE launch per step
 * for the whole network (a barrier-free elementwise kernel; kernel A below
 * when rotation monitoring is requested); Layca takes TWO whatever the
 * depth: kernel A advances the state and writes per-chunk partial sums
 * <s,w>, ||s||^2, ||w||^2; kernel B finishes each layer's sums from its
 * chunks' partials in a fixed order (deterministic, no atomics), computes the
 * projected update analytically (||s_perp||^2 = ||s||^2 - <s,w>^2/||w||^2,
 * post-update norm ||w||^2 (1+rho^2)), recomputes s bit for bit from the
 * advanced state (and g, w where the kind needs them; no scratch arena) and
 * applies the update elementwise.  A step thus moves about 20 bytes per
 * parameter for Layca-SGD (A reads w, g; B reads w, g, writes w), 12 for
 * plain SGD, plus 8 per state arena and pass that touches it.  Sums use
 * exact products: doubles per vector lane on fp64 devices, double-float
 * pairs built from float operations elsewhere; then lanes, work-items and
 * chunks in a fixed order.  (Float sums would not do: Layca's tangent test
 * needs ||s_perp||^2 to ~1e-11 of ||s||^2.)
 * The unfused path (cfg.fuse false or lc_optim_set_fused) runs per tensor:
 * 1 launch for a plain tensor, 4 for a Layca one (step, per-chunk partials,
 * total, update); the same sums in the same order, so the same weights.
 *
 * Kernels (cl_kernels/optim.cl) are built once per configuration, with the
 * inner optimizer, Nesterov, momentum 0 and weight decay on/off as build
 * options (no runtime switch in the hot loops).  Work decomposition: each
 * tensor is cut into chunks of whole groups (at least 4096 floats, at most
 * 64 chunks per tensor on CPUs, 256 elsewhere), one work-group per chunk.
 * On CPU devices a work-group is one work-item that walks its chunk with
 * float16 vectors (PoCL does not vectorise across work-items of a kernel
 * with a loop); elsewhere, and on CPUs in device-only mode (lc_rt's
 * device_only), 256 work-items (at most what the device and the built
 * kernels allow) interleave float4 vectors and finish with a local-memory
 * tree.  cfg.geometry (work-items per group, vector width, double-float
 * sums) overrides the choice, for tests.
 *
 * Rotation monitoring: lc_optim_request_rotation before a step makes that
 * step also produce each kernel's POST-step <w,w0> and ||w||^2 partials, in
 * the kernel that writes the final weights (kernel B for Layca layers,
 * kernel A for plain or frozen ones), so the fused path needs no extra
 * launch; lc_optim_rotation right after that step only reads the per-chunk
 * partials back and adds them up per layer on the host (weights written by
 * someone else in between are not seen: call it before touching them).
 * Otherwise lc_optim_rotation runs one reduction launch of its own.
 * ||w0|| is n0.
 *
 * All launches are enqueued on rt->queue in order; functions that read back
 * (rotation, state_read, reset_initial) block. */
#ifndef LC_OPTIM_H
#define LC_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "lc_rt.h"

#define LC_OPTIM_GROUP 256

typedef enum lc_optim_kind {
    LC_OPTIM_SGD = 0, LC_OPTIM_SGD_AMOM, LC_OPTIM_ADAM, LC_OPTIM_RMSPROP, LC_OPTIM_ADAGRAD,
} lc_optim_kind;
const char *lc_optim_kind_name(lc_optim_kind k);
lc_status lc_optim_kind_parse(const char *s, lc_optim_kind *out);

/* Kernel geometry overrides, for tests; all-zero: the automatic choice.
 * wg: work-items per group, a power of two (one the device does not allow
 * is not used: the automatic choice stands); vec: vector width 4, 8 or 16;
 * no_fp64: double-float sums even where the device has fp64.  Other values
 * are LC_ERR_INVALID at lc_optim_create.  (The CLIs take them from
 * LAYCA_OPTIM_WG, LAYCA_OPTIM_VEC, LAYCA_OPTIM_FP64=0.) */
typedef struct lc_optim_geometry_opts {
    int wg, vec;
    bool no_fp64;
} lc_optim_geometry_opts;

typedef struct lc_optim_config {
    lc_optim_kind kind;
    double momentum;        /* SGD: mu (0 = plain SGD); SGD_AMom: beta (default 0.9) */
    bool nesterov;          /* SGD only */
    double beta1, beta2;    /* Adam: 0.9, 0.999 */
    double rho;             /* RMSprop: 0.9 */
    double eps;             /* Adam, RMSprop, Adagrad: 1e-7 */
    double weight_decay;    /* Keras l2: the gradient gains 2*wd*w */
    bool layca;
    bool layca_skip_non_kernel; /* Layca: leave non-kernel tensors untouched (V2 code) */
    double layca_inner_lr;  /* Layca inner lr of Adam/RMSprop/Adagrad; <= 0: the Keras
                             * default (Adam, RMSprop 0.001; Adagrad 0.01) */
    bool fuse;              /* fused two-launch path (default true) */
    lc_optim_geometry_opts geometry; /* overrides, for tests (default none) */
} lc_optim_config;
/* Keras 2.1.2 defaults of `kind`, Layca off, fused on. */
void lc_optim_config_defaults(lc_optim_config *c, lc_optim_kind kind);

typedef struct lc_optim_tensor {
    int64_t offset, numel;  /* floats; offset a multiple of LC_OPTIM_GROUP */
    bool trainable;
    bool is_kernel;         /* a layer for Layca and rotation monitoring */
} lc_optim_tensor;

typedef struct lc_optim lc_optim;

/* The tensor table is copied; params and grads stay the caller's (they must
 * outlive the optimizer).  Tensors must lie inside the arena, aligned, and
 * not overlap; the arena is a multiple of LC_OPTIM_GROUP floats (offsets are
 * 64-bit on the device: past 2^31 floats is fine).
 * params must already hold the initial weights: create calls
 * lc_optim_reset_initial.  Rates start at 0. */
lc_status lc_optim_create(lc_optim **out, lc_rt *rt, const lc_optim_config *cfg, const lc_optim_tensor *t, int n,
                          int64_t arena_floats, cl_mem params, cl_mem grads);
void lc_optim_destroy(lc_optim *o);
/* Arenas of the parameter layout an optimizer of this kind allocates (its
 * state and the initial weights), for memory checks before creation
 * (lc_exec_check_memory). */
int lc_optim_arenas(lc_optim_kind kind);
/* The kernel geometry in use (tests, tools): work-items per work-group,
 * floats per vector, fp64 sums.  One work-item per group is the CPU layout,
 * never used in device-only mode. */
void lc_optim_geometry(const lc_optim *o, int *wg, int *vec, bool *fp64);
/* Per-tensor rates (schedule x layer multiplier): the lr of a plain step,
 * rho of a Layca step; frozen tensors get 0 whatever is passed.  Uploaded
 * once, used by every following step. */
lc_status lc_optim_set_rates(lc_optim *o, const double *rate_per_tensor);
/* Enqueues one update of every trainable tensor from the gradient arena. */
lc_status lc_optim_step(lc_optim *o);
/* Launches of one step (monitoring excluded): fused: 1 for plain, 2 when
 * any tensor is under Layca; unfused: 1 per plain tensor + 4 per Layca
 * tensor. */
int lc_optim_launches_per_step(const lc_optim *o);
/* Launches actually enqueued by the last lc_optim_step (monitoring
 * included: +1 in the unfused path); 0 before the first step. */
int lc_optim_launches_last_step(const lc_optim *o);
int64_t lc_optim_steps_done(const lc_optim *o);

void lc_optim_set_fused(lc_optim *o, bool fused);
bool lc_optim_fused(const lc_optim *o);

/* Recomputes Layca's initial norms n0 (per tensor, in double on the host)
 * from the current parameters and copies them to the device's w0 arena, the
 * reference of the rotation metric.  Blocking.  Called by create; call it
 * again after loading other initial weights (not after a resume: restore
 * n0 and w0 with lc_optim_state_write). */
lc_status lc_optim_reset_initial(lc_optim *o);

/* Rotation monitoring.  Kernel tensors (is_kernel), in the order of the
 * tensor table; lc_optim_kernel_count of them. */
int lc_optim_kernel_count(const lc_optim *o);
/* Makes the next step also produce the rotation partials. */
void lc_optim_request_rotation(lc_optim *o);
/* cos_dist[l] = 1 - <w,w0>/(||w|| ||w0||) (NaN when a norm is 0, as scipy),
 * norms[l] = ||w||; either may be NULL.  Blocking.  Right after a step
 * made with a request: only reads back the step's partials; otherwise runs
 * one reduction launch first. */
lc_status lc_optim_rotation(lc_optim *o, double *cos_dist, double *norms);

/* Serialisable state for resumption: the optimizer state arenas (same layout
 * as the parameter arena), the w0 arena, Layca's n0 table and the step
 * count.  The rates are not state (the trainer sets them each epoch). */
typedef struct lc_optim_state {
    int64_t steps;
    int64_t floats;     /* arena floats */
    int n_tensors;
    int n_arenas;       /* state arenas: 1, or 2 for Adam */
    float *arena[2];    /* [floats] each; arena[1] NULL unless Adam */
    float *w0;          /* [floats] */
    double *n0;         /* [n_tensors] initial norms */
} lc_optim_state;
/* Device -> host: allocates st's arrays (free with lc_optim_state_free). */
lc_status lc_optim_state_read(lc_optim *o, lc_optim_state *st);
/* Host -> device; the sizes must match this optimizer's. */
lc_status lc_optim_state_write(lc_optim *o, const lc_optim_state *st);
void lc_optim_state_free(lc_optim_state *st);

#endif
