/* Lowering (the only place where IR ops meet kernels) and the step
 * executor: one training step = upload batch, forward launches, backward
 * launches.  The optimizer runs on the parameter and gradient arenas this
 * executor owns (src/optim). */
#ifndef LC_EXEC_H
#define LC_EXEC_H

#include "lc_ir.h"
#include "lc_rt.h"

typedef struct lc_exec lc_exec;

/* g must be compiled (lc_graph_compile) for its largest batch.  Builds every
 * kernel the graph needs and allocates the arenas before returning; a plan
 * that does not fit the device (lc_exec_check_memory without optimizer
 * arenas) is refused before anything is allocated.  Whether host shortcuts
 * (host GEMMs, host convolutions) may be used is the rt's choice
 * (lc_rt.device_only). */
/* ---- workspaces: what the lowering needs besides the values ---- */

/* conv im2col workspace limit per node in floats when lc_graph.workspace_limit is 0 (64 MiB) */
#define LC_WORKSPACE_DEFAULT ((int64_t)16 << 20)
/* conv2d node (or one of its backward nodes): true for 1x1, stride 1, no
 * padding, which runs without im2col (one GEMM per example). */
bool lc_exec_conv_pointwise(const lc_graph *g, int id);
/* conv2d node (or one of its backward nodes): examples per im2col chunk for
 * batch nb (the whole batch when the workspace fits the limit), and the
 * workspace floats per example ((in*kh*kw + filters) * out_h * out_w). */
int lc_exec_conv_chunk(const lc_graph *g, int id, int nb);
int64_t lc_exec_conv_ws_per_example(const lc_graph *g, int id);
/* conv2d_grad_weight node: the number S of split-K slices its chunk's
 * columns (examples x output pixels) may be cut into (1: none): at least
 * g->dw_split_cols (default LC_DW_SPLIT_COLS) columns each, at most
 * LC_DW_SPLIT_MAX, and S + 1 slices
 * of the weight's size (the last one for the columns left over) within
 * half the chunk's workspace.  Its workspace holds them after the chunk's
 * (K + filters) * chunk * out_h * out_w floats.  Pointwise weight gradients
 * have a workspace too (the device lowering changes their layouts). */
int lc_exec_conv_dw_slices(const lc_graph *g, int id, int nb);
#define LC_DW_SPLIT_COLS 2048
#define LC_DW_SPLIT_MAX 32
/* Per-channel reductions (batchnorm statistics and sums, bias gradients of
 * conv and batchnorm) may be split into up to this many work-groups per
 * channel (the device's GPU-style kernels): the auxiliary blocks of
 * batchnorm, batchnorm_grad_input (after their 2 * channels floats),
 * batchnorm_grad_weight and channel_bias_grad hold 2 * channels *
 * LC_RED_PARTS floats of partial results. */
#define LC_RED_PARTS 32
/* The auxiliary floats node id needs at batch nb (lc_graph.aux_fn):
 * conv workspaces, batchnorm statistics and sums, partial results of
 * per-channel reductions. */
int64_t lc_exec_aux_floats(const lc_graph *g, int id, int nb);
/* lc_graph_compile with the executor's workspaces planned (g->aux_fn =
 * lc_exec_aux_floats).  lc_exec_create re-plans a graph compiled without
 * them. */
lc_status lc_exec_compile(lc_graph *g, int batch, bool train, FILE *dump);

/* Checks the executor's part of the op registry: every op has a lowering
 * (lc_exec_create runs it). */
lc_status lc_exec_ops_check(void);
lc_status lc_exec_create(lc_exec **out, lc_rt *rt, lc_graph *g);
typedef struct lc_exec_opts {
    /* Lowering only, for inspection (lc_exec_launch_info): no arena is
     * allocated and nothing runs (kernels see NULL buffers); every function
     * that would touch the device fails.  No memory check either. */
    bool plan_only;
    /* Tests: GEMM operands that start at or past this element of their
     * arena are rebased on sub-buffers as those past CLBlast's 32-bit range
     * always are (0: only those). */
    int64_t gemm_rebase_at;
    /* Kernel style (LC_EXEC_KERNELS_*): AUTO is GPU style on non-CPU devices
     * and in device-only mode (lc_rt.device_only), CPU style otherwise. */
    int kernels;
    /* Device conv schedule of every conv node where it applies
     * (LC_EXEC_CONV_*, GPU style only): AUTO chooses per node by timing the
     * schedules that apply, once per device and shape (kept like the host
     * conv choices). */
    int device_conv;
    /* Host conv schedule of every conv node where host convolutions apply
     * (CPU devices with a host BLAS, not device-only): "device" (none on
     * the host), "host-chunked", "host-blocked", "host-winograd",
     * "host-winograd4" or "host" (winograd 4; each falls back to the next
     * simpler one where it does not apply); NULL or anything else: chosen
     * per node by timing.  (The CLIs take it from LAYCA_CONV.) */
    const char *host_conv;
} lc_exec_opts;
/* Kernel styles.  CPU style: one work-item per row or plane with explicit
 * vectors (PoCL vectorises neither across work-items around a loop nor
 * integer divisions well).  GPU style: one work-item per element on ranges
 * whose first dimension runs along memory (coalesced), per-channel
 * reductions with strided coalesced loops, 1x1 convs as one strided-batched
 * GEMM, the device conv schedules below. */
enum { LC_EXEC_KERNELS_AUTO = 0, LC_EXEC_KERNELS_CPU, LC_EXEC_KERNELS_GPU };
/* Device conv schedules (GPU style):
 *   GEMM:    im2col + one GEMM per chunk of examples into channel-major
 *            order + a layout change (forward); a layout change + GEMM +
 *            col2im (input gradient); layout change + im2col + one GEMM
 *            (weight gradient);
 *   BATCHED: strided-batched GEMMs straight from and to NCHW (one per
 *            example of the chunk: no layout change) for the forward and
 *            the input gradient; split-K for the weight gradient: the
 *            chunk's columns cut into lc_exec_conv_dw_slices slices, one
 *            strided-batched GEMM into per-slice partial sums, added in a
 *            fixed order (deterministic, no atomics). */
enum { LC_EXEC_CONV_AUTO = 0, LC_EXEC_CONV_GEMM, LC_EXEC_CONV_BATCHED };
lc_status lc_exec_create_opts(lc_exec **out, lc_rt *rt, lc_graph *g, const lc_exec_opts *opts);
void lc_exec_destroy(lc_exec *ex);

/* Device memory a plan needs: the parameter and gradient arenas,
 * extra_param_arenas more of the parameter layout (an optimizer's state and
 * initial weights: lc_optim_arenas), the activation arena and the small
 * buffers; largest is the largest single buffer. */
typedef struct lc_exec_memory {
    uint64_t params, grads, extra, acts, small, total, largest;
} lc_exec_memory;
void lc_exec_plan_memory(const lc_graph *g, int extra_param_arenas, lc_exec_memory *out);
/* Refuses (lc_rt_check_plan: one line naming the bytes and both limits) a
 * plan that does not fit the rt's device, before anything is allocated. */
lc_status lc_exec_check_memory(lc_rt *rt, const lc_graph *g, int extra_param_arenas);

/* Arenas: parameters and their gradients share the layout of
 * g->params[i].offset (floats); gaps are zero. */
cl_mem lc_exec_params(const lc_exec *ex);
cl_mem lc_exec_grads(const lc_exec *ex);
lc_status lc_exec_write_params(lc_exec *ex, const float *host); /* g->param_floats floats */
lc_status lc_exec_read_params(lc_exec *ex, float *host);
lc_status lc_exec_read_grads(lc_exec *ex, float *host);

/* Uploads n <= planned batch examples (x: n * input numel, y: n labels). */
lc_status lc_exec_set_batch(lc_exec *ex, const float *x, const int32_t *y, int n);
/* Uploads the values of data node `id` (a MASK) for the current batch of n
 * examples (after lc_exec_set_batch). */
lc_status lc_exec_set_input(lc_exec *ex, int id, const float *data, int n);
/* Enqueues the forward pass on the last uploaded batch; the loss and
 * correct counts are added to the device accumulators. */
lc_status lc_exec_forward(lc_exec *ex);
/* Enqueues the backward pass (after lc_exec_forward): fills the gradient
 * arena. */
lc_status lc_exec_backward(lc_exec *ex);
/* The backward pass in parts, for host work that overlaps it (the gradient
 * all-reduce of data parallelism).  Backward launches are numbered from 0
 * to lc_exec_backward_launches - 1 in the current batch's list (the one
 * lc_exec_set_batch chose); lc_exec_backward_part enqueues launches
 * [from, to), so parts [0, a), [a, b), ..., [z, count) enqueue exactly what
 * lc_exec_backward does.  The caller makes a part's end observable (a
 * marker, a non-blocking map or read: the queue is in order) and flushes. */
int lc_exec_backward_launches(const lc_exec *ex);
lc_status lc_exec_backward_part(lc_exec *ex, int from, int to);
/* last[i] (g->n_params entries, g->params order): the number of the last
 * backward launch that writes parameter i's region of the gradient arena,
 * -1 when none does; once it has run the region is final for this step.
 * Computed from the current list: a launch writes its node's value (a
 * parameter gradient node's value is its parameter's region); a launch of
 * any other node that names the gradient arena (a kernel argument, a GEMM's
 * output) counts as writing every parameter's region. */
void lc_exec_grad_last_launch(const lc_exec *ex, int *last);
/* Reads (and optionally resets) the accumulated loss sum and correct count;
 * this synchronises with the device. */
lc_status lc_exec_stats(lc_exec *ex, double *loss_sum, double *correct, bool reset);
/* The same with the top-5 hits too. */
lc_status lc_exec_stats5(lc_exec *ex, double *loss_sum, double *correct, double *correct5, bool reset);
/* The accumulators as the device holds them (loss sum, top-1 hits, top-5
 * hits; floats), read and written exactly, for checkpoints. */
lc_status lc_exec_stats_get(lc_exec *ex, float acc[3]);
lc_status lc_exec_stats_set(lc_exec *ex, const float acc[3]);
/* A non-blocking read of the accumulators, enqueued after the work queued
 * so far; lc_exec_stats_collect waits for the last one requested and
 * returns its values (LC_ERR_INVALID when none is pending).  The trainer
 * requests after each step and collects one step later, so watching the
 * loss costs no queue drain. */
lc_status lc_exec_stats_request(lc_exec *ex);
lc_status lc_exec_stats_collect(lc_exec *ex, float acc[3]);
bool lc_exec_stats_pending(const lc_exec *ex);
/* Reads node `id`'s value for the last batch (activations or parameter
 * gradients), for tests and tools.  host must hold n*numel floats. */
lc_status lc_exec_read_node(lc_exec *ex, int id, float *host);

/* Training or evaluation mode (default: training when the graph was
 * compiled with its backward pass, else evaluation).  In evaluation,
 * dropout is the identity and batchnorm normalises with (and does not
 * update) its running statistics; a backward pass in evaluation mode
 * differentiates that fixed function.  Each mode has its own launch lists,
 * built at creation for the planned batch (and on first use for another
 * batch size), so switching allocates nothing in a loop. */
lc_status lc_exec_set_mode(lc_exec *ex, bool training);
bool lc_exec_training(const lc_exec *ex);
/* Dropout masks are a counter-based hash of (seed, step, node name, element
 * index in the batch), generated in the kernels: nothing is uploaded.  Each
 * training-mode lc_exec_forward uses the current step and then advances it;
 * lc_exec_backward reuses the last forward's step (the same mask).  The seed
 * (default 0) and step are the executor's whole random state, for resuming. */
void lc_exec_set_seed(lc_exec *ex, uint64_t seed);
void lc_exec_set_step(lc_exec *ex, uint64_t step);
uint64_t lc_exec_step(const lc_exec *ex); /* the step the next training forward uses */

/* The dropout mask, on the host (tests, tools): element `index` (in
 * [0, batch * numel)) of node `node` at (seed, step) is kept when
 * lc_dropout_keep(lc_dropout_key(seed, step, node), index,
 * lc_dropout_threshold(rate)); the fraction dropped is threshold / 2^24. */
uint64_t lc_dropout_key(uint64_t seed, uint64_t step, const char *node);
uint32_t lc_dropout_threshold(double rate);
bool lc_dropout_keep(uint64_t key, uint64_t index, uint32_t threshold);

typedef struct lc_exec_counts {
    int forward, backward;  /* launches per step (kernels + GEMMs + host convolutions) */
    int programs;           /* programs the executor uses */
    int host;               /* of them, convolutions run on the host (0 in device-only mode) */
    int gemm;               /* of them, GEMMs (plain or strided-batched) */
    int gemm_batched;       /* of them, strided-batched GEMMs */
    bool gpu_kernels;       /* the GPU-style kernels (lc_exec_opts.kernels) */
} lc_exec_counts;
lc_exec_counts lc_exec_launch_counts(const lc_exec *ex);
size_t lc_exec_device_bytes(const lc_exec *ex); /* arenas allocated by the executor */

/* The launches of the planned batch's training list (evaluation list when
 * the graph has no backward pass), in order, for tests and tools:
 * lc_exec_launch_total of them; lc_exec_launch_info describes launch i.
 * Kernel arguments are the bytes handed to clSetKernelArg (a buffer
 * offset is 8 bytes: a ulong); a GEMM gives its operands' offsets in the
 * buffer it hands CLBlast and, when rebased on a sub-buffer, that
 * sub-buffer's element origin in the arena. */
typedef struct lc_exec_launch_info {
    const char *node;        /* the IR node */
    const char *kernel;      /* kernel name, "gemm", "gemm-batched" or "host-conv" */
    int kind;                /* 0 kernel, 1 GEMM (plain or strided-batched), 2 host convolution */
    size_t global[3], local[3]; /* kernels: sizes (local 0: the driver's choice) */
    int nargs;
    size_t arg_size[20];
    const void *arg[20];     /* valid while the executor lives */
    bool ta, tb;             /* GEMM */
    size_t m, n, k, lda, ldb, ldc;
    size_t batch;            /* GEMM: 1, or a strided-batched GEMM's count ... */
    size_t stride[3];        /* ... and its a, b, c strides (elements) */
    uint64_t off[3];         /* a, b, c offsets as passed (elements) */
    int64_t base[3];         /* a, b, c sub-buffer origins (elements; 0: none) */
} lc_exec_launch_info;
int lc_exec_launch_total(const lc_exec *ex);
lc_status lc_exec_launch_info_get(const lc_exec *ex, int i, lc_exec_launch_info *out);
/* The work-group size the fixed-size reductions (batchnorm, loss
 * statistics) were built with, 0 when the graph has none of them. */
size_t lc_exec_reduction_wg(const lc_exec *ex);

/* Per-op timing (benchmarks, tools).  Replays the current batch's forward
 * and backward launches `reps` times launch by launch, waiting for each to
 * finish, and adds up the wall time per group:
 *   LC_PROF_OP:     per IR op ("conv2d", "batchnorm_grad_input", ...)
 *   LC_PROF_KERNEL: per IR op and part (kernel name, "gemm" or "host-conv")
 *   LC_PROF_NODE:   per node and part
 * Writes up to max entries, largest first, into out; *n_out gets the number
 * of groups (which may exceed max) and *step_ms the sum of all groups per
 * step (the step without overlap between launches).  Side effects are those
 * of training steps on the last uploaded batch (batchnorm running
 * statistics move); the dropout step is left as it was. */
typedef enum lc_exec_prof_by { LC_PROF_OP = 0, LC_PROF_KERNEL, LC_PROF_NODE } lc_exec_prof_by;
typedef struct lc_exec_prof_entry {
    char op[LC_NAME_MAX];    /* op name, or node name (LC_PROF_NODE) */
    char part[LC_NAME_MAX];  /* "" for LC_PROF_OP */
    double ms;               /* per step */
    int launches;            /* per step */
} lc_exec_prof_entry;
lc_status lc_exec_profile(lc_exec *ex, int reps, lc_exec_prof_by by, lc_exec_prof_entry *out, int max, int *n_out,
                          double *step_ms);

#endif
