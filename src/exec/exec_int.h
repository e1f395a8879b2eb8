/* The executor's internals: lowering of IR nodes to launches (kernels and
 * CLBlast GEMMs: lower.c, lower_conv.c, launch.c), their replay (exec.c)
 * and the per-node choices made by timing (choose.c).
 *
 * conv2d: im2col + GEMM over chunks of examples (the whole batch when the
 * workspace fits, see lc_exec_conv_chunk), the workspace being the node's
 * auxiliary block in the activation arena:
 *   forward  col[K, nc*ohw] = im2col(x); t[cout, nc*ohw] = W[cout, K] col;
 *            y (NCHW) = scatter(t) + b
 *   dW       t = dy as [cout, nc*ohw]; col = im2col(x); dW (+)= t col^T
 *   dx       t = dy as [cout, nc*ohw]; dcol = W^T t; dx = col2im(dcol)
 * with K = cin*kh*kw.  1x1 stride-1 unpadded convs skip im2col: one GEMM per
 * example on the NCHW planes.
 * On CPU devices whose buffers live in host memory, each conv node can
 * instead run on the host as one launch (L_HOST_CONV: the arenas mapped, a
 * schedule of host_conv.c / host_wino.c on the host workers and BLAS, the
 * same workspace): chunked (the steps above), blocked (im2col + GEMM per
 * worker and group of examples, in cache) or Winograd F(2x2, 3x3) / F(4x4,
 * 3x3) for 3x3 stride-1 convs.  The implementation is chosen per node by
 * timing the candidates at creation, once per device and shape (cached
 * beside the program cache, lc_rt_choice_*); lc_exec_opts.host_conv =
 * device|host-chunked|host-blocked|host-winograd|host-winograd4 forces one, host
 * meaning the fastest that applies in that order reversed (Winograd 4,
 * Winograd 2, blocked, chunked).
 * batchnorm: a per-channel statistics kernel (batch statistics + running
 * update in training, the running statistics in evaluation) writes
 * [mean, 1/std] into the node's auxiliary block, an elementwise kernel
 * normalises; the backward reads the same block.
 * dropout: counter-based mask from (seed, step, node), recomputed by the
 * backward; the key argument is set before each replay.
 * Kernel styles (lc_exec_opts.kernels): the CPU style above (a row or a
 * plane per work-item), and the GPU style (non-CPU devices, device-only
 * mode): one element per work-item on ranges whose first dimension runs
 * along memory (kern_nd), strided coalesced per-channel reductions, 1x1
 * convs as one strided-batched GEMM, and per conv node a device schedule
 * (GEMM or batched: strided-batched GEMMs from and to NCHW, split-K weight
 * gradients; lc_exec.h), chosen by timing at creation like the host ones.
 * Fused ReLUs (act_relu, see lc_graph_fuse) are applied by the producer's
 * last kernel (bias_act, the conv's layout change or channel bias,
 * batchnorm's apply, or an in-place ReLU after a GEMM or a host conv); the
 * FUSED_RELU node is a view with no launch. */
#ifndef LC_EXEC_INT_H
#define LC_EXEC_INT_H

#include "lc_exec.h"
#include "exec_host.h"
#include "lc_kconst.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { L_KERNEL, L_GEMM, L_HOST_CONV } lkind;

/* Kernel arguments kept with their launch (as handed to clSetKernelArg),
 * for lc_exec_launch_info. */
#define ARG_MAX 20
#define ARG_BYTES 256

typedef struct launch {
    lkind kind;
    int node;
    cl_kernel k;
    int nargs;
    uint16_t arg_size[ARG_MAX], arg_at[ARG_MAX];
    uint8_t arg_bytes[ARG_BYTES];
    int dims;
    size_t global[3], local[3];
    bool has_local;
    int rng_arg;        /* dropout: index of the key argument, else -1 */
    int rng_node;       /* dropout: the forward dropout node */
    const char *kname;  /* kernel name (a literal), for profiles */
    /* GEMM (batch > 1: strided-batched, with strides sa, sb, sc) */
    bool ta, tb;
    size_t m, n, kk, ao, bo, co, lda, ldb, ldc;
    size_t batch, sa, sb, sc;
    float alpha, beta;
    cl_mem a, b, c;
    int64_t base[3];    /* element origin of the sub-buffer a, b, c were rebased on (0: the arena itself) */
    /* L_HOST_CONV: the node's conv on the host over nb examples */
    int nb;
} launch;

typedef struct llist {
    int batch;          /* 0 = unused slot */
    bool training;
    launch *l;
    int count, n_fwd, cap;
} llist;

/* slot 0: planned batch, training; slot 1: planned batch, evaluation; the
 * others hold other batch sizes and are recycled */
#define N_LISTS 6

enum { P_ELT, P_LOSS, P_CONV, P_POOL, P_NORM, P_DROP, P_COUNT };


struct lc_exec {
    lc_rt *rt;
    lc_graph *g;
    lc_exec_opts opts;
    cl_mem params, grads, acts, correct, acc;
    cl_program prog[P_COUNT];
    size_t wg[P_COUNT];  /* the fixed work-group size a program was built with (0: none) */
    cl_mem *subs;        /* sub-buffers GEMM operands were rebased on (owned) */
    int64_t *sub_origin; /* their element origins */
    cl_mem *sub_parent;
    int n_subs, cap_subs;
    llist lists[N_LISTS];
    int cur;            /* index of the list of the current batch and mode */
    int n;              /* current batch size */
    int recycle;        /* next slot to recycle */
    bool training;
    uint64_t seed, step, last_step;
    size_t bytes;
    uint8_t *host_conv; /* per node: 0 or the host schedule of a conv (HC_CHUNKED, HC_BLOCKED) */
    bool gpu;           /* GPU-style kernels (lc_exec_opts.kernels) */
    size_t elt_wg;      /* work-group size cap of the GPU-style elementwise kernels */
    uint8_t *dconv;     /* per node: the device conv schedule (LC_EXEC_CONV_GEMM / _BATCHED; GPU style) */
    cl_event acc_event; /* pending lc_exec_stats_request */
    float acc_host[3];
};

/* Where a node's value lives: a buffer and an offset in floats, 64-bit
 * (kernels take it as ulong). */
typedef struct loc { cl_mem buf; cl_ulong off; } loc;

/* launch.c: building launch lists */
extern const char *const lcx_prog_names[P_COUNT];
void lcx_llist_free(llist *L);
launch *lcx_push(llist *L);
lc_status lcx_program(lc_exec *ex, int p, cl_program *out);
lc_status lcx_fixed_wg(lc_exec *ex, int p, size_t *wg);
/* A kernel launch of `dims` (1 or 2) dimensions, global g0 x g1, local l0
 * (0: the runtime's choice); the arguments are checked against the
 * kernel's count (lc_rt_set_args).  Use KERN / KERN_ND, which count the
 * argument array. */
lc_status lcx_kern(lc_exec *ex, llist *L, int node, int prog, const char *name, const lc_arg *args, int nargs, int dims,
                   size_t g0, size_t g1, size_t l0);
lc_status lcx_kern_nd(lc_exec *ex, llist *L, int node, int prog, const char *name, const lc_arg *args, int nargs,
                      size_t g0, size_t g1, size_t g2);
#define KERN(ex, L, node, prog, name, args, ...) lcx_kern(ex, L, node, prog, name, args, (int)LC_COUNTOF(args), __VA_ARGS__)
#define KERN_ND(ex, L, node, prog, name, args, ...)                                                                    \
    lcx_kern_nd(ex, L, node, prog, name, args, (int)LC_COUNTOF(args), __VA_ARGS__)
lc_status lcx_gemm_sb(lc_exec *ex, llist *L, int node, bool ta, bool tb, size_t m, size_t n, size_t k, loc a,
                      size_t lda, size_t sa, loc b, size_t ldb, size_t sb, float beta, loc c, size_t ldc, size_t sc,
                      size_t batch);
lc_status lcx_gemm_b(lc_exec *ex, llist *L, int node, bool ta, bool tb, size_t m, size_t n, size_t k, loc a,
                     size_t lda, loc b, size_t ldb, float beta, loc c, size_t ldc);
lc_status lcx_gemm(lc_exec *ex, llist *L, int node, bool ta, bool tb, size_t m, size_t n, size_t k, loc a, size_t lda,
                   loc b, size_t ldb, loc c, size_t ldc);

/* lower.c: the lowering table */
loc lcx_where(const lc_exec *ex, int id);
loc lcx_aux_of(const lc_exec *ex, int id);
loc lcx_shift(loc l, int64_t floats);
int64_t lcx_numel(const lc_graph *g, int id);
void lcx_chan_hw(const lc_shape *s, int *c, int *hw);
lc_status lcx_relu_inplace(lc_exec *ex, llist *L, int id, loc y, cl_ulong n);
lc_status lcx_build_list(lc_exec *ex, llist *L, int nb, bool tr);

/* lower_conv.c */
conv_dims lcx_conv_dims_of(const lc_graph *g, const lc_node *c);
lc_status lcx_lower_conv(lc_exec *ex, llist *L, int id, int nb);

/* exec.c: replay */
lc_status lcx_run(lc_exec *ex, const llist *L, int from, int to);

/* choose.c: per conv node, host schedules and device schedules by timing */
lc_status lcx_choose_conv(lc_exec *ex);
lc_status lcx_choose_device_conv(lc_exec *ex);

#endif
