/* The graph IR: pure C, no OpenCL, no JSON.
 *
 * A graph is a list of nodes in execution order; each node produces one
 * value (a tensor).  Values of activations are batched: their shape is the
 * per-example shape and the batch size is chosen when the graph is planned.
 * Parameters are unbatched and live in their own arena, as do parameter
 * gradients.  Passes: shape inference + verification, autodiff (appends the
 * backward nodes), dead-code elimination, memory planning. */
#ifndef LC_IR_H
#define LC_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lc_core.h"

#define LC_MAX_RANK 4
#define LC_MAX_INPUTS 5 /* batchnorm: x, running mean, running var, gamma, beta */
#define LC_NAME_MAX 64

/* The op registry, IR part: one entry per op (ir/ops.c builds the table
 * from it; the executor's lowering table (src/exec/lower.c) and the
 * reference's table (src/ref/graph.c) are indexed by the same ids, and each
 * module checks at start-up that no op lacks an entry: lc_ops_check,
 * lc_exec_ops_check, lc_ref_ops_check).  docs/adding-an-op.md walks through
 * adding one.
 *
 * X(ID, name, kind, inputs, json, shape, grad, bwd, flops, attrs)
 *   kind    D data, P parameter, F forward, B backward, V view (shares its
 *           first input's storage)
 *   inputs  the arity, -1 = variable
 *   json    1 when a model file may name the op
 *   shape   shape rule (ir/ops.c shape_<rule>): none, dense, same, gate,
 *           flatten, add, conv2d, batchnorm, pool, gap, loss
 *   grad    gradient rule (ir/ops.c grad_<rule>): none, loss, dense,
 *           eltwise_y (bwd(dy, y)), eltwise_x (bwd(dy, x)), gate, pass,
 *           flatten, add, conv2d, batchnorm, window_x (bwd(dy, x)), dy
 *           (bwd(dy)); the backward ops the rule emits carry `fwd`
 *   bwd     the backward op the generic rules emit (COUNT: none)
 *   flops   FLOP rule (ir/ops.c flops_<rule>): zero, out1,
 *           dense, conv, window, bnorm, loss, in1
 *   attrs   (lc_attr_spec, ...): the JSON attributes besides name, op and
 *           inputs.  Real attributes with an `at` offset are parsed and
 *           defaulted by the registry; the others by the op's builder in
 *           src/model/model.c. */
#define LC_OP_TABLE(X)                                                                                                 \
    X(INPUT, "input", 'D', 0, 0, none, none, COUNT, zero, ())                                                          \
    X(LABELS, "labels", 'D', 0, 0, none, none, COUNT, zero, ())                                                        \
    X(PARAM, "param", 'P', 0, 0, none, none, COUNT, zero, ())                                                          \
    X(DENSE, "dense", 'F', -1, 1, dense, dense, COUNT, dense, /* x, W[out,in], (b[out]) */                            \
      ({"units", LC_ATTR_INT, 1, "4"}, LC_LAYER_ATTRS))                                                               \
    X(RELU, "relu", 'F', 1, 1, same, eltwise_y, RELU_DX, out1, ())                                                     \
    X(FLATTEN, "flatten", 'V', 1, 1, flatten, flatten, RESHAPE, zero, ())                                              \
    X(ADD, "add", 'F', 2, 1, add, add, COUNT, out1, ())                                                                \
    X(SOFTMAX_CE, "softmax_cross_entropy", 'F', 2, 0, loss, loss, SOFTMAX_CE_DX, loss, ()) /* logits, labels */        \
    X(DENSE_DX, "dense_grad_input", 'B', 2, 0, none, none, COUNT, dense, ())    /* dy, W */                            \
    X(DENSE_DW, "dense_grad_weight", 'B', 2, 0, none, none, COUNT, dense, ())   /* dy, x */                            \
    X(BIAS_DB, "bias_grad", 'B', 1, 0, none, none, COUNT, in1, ())              /* dy */                               \
    X(RELU_DX, "relu_grad", 'B', 2, 0, none, none, COUNT, out1, ())             /* dy, y */                            \
    X(SOFTMAX_CE_DX, "softmax_cross_entropy_grad", 'B', 2, 0, none, none, COUNT, loss, ()) /* logits, labels */        \
    X(RESHAPE, "reshape", 'V', 1, 0, none, none, COUNT, zero, ())                                                      \
    X(ACCUM, "accumulate", 'B', 2, 0, none, none, COUNT, out1, ())                                                     \
    X(CONV2D, "conv2d", 'F', -1, 1, conv2d, conv2d, COUNT, conv, /* x, W[out,in,kh,kw], (b[out]) */                   \
      ({"filters", LC_ATTR_INT, 1, "3"}, {"kernel", LC_ATTR_PAIR, 1, "[3, 3]"}, {"stride", LC_ATTR_PAIR, 0, "1"},     \
       {"pad", LC_ATTR_PAD, 0, "\"same\""}, LC_LAYER_ATTRS))                                                          \
    X(BATCHNORM, "batchnorm", 'F', -1, 1, batchnorm, batchnorm, COUNT, bnorm, /* x, mean, var, (gamma, beta) */       \
      ({"momentum", LC_ATTR_REAL, 0, "0.9"}, {"epsilon", LC_ATTR_REAL, 0, "0.001"},                                   \
       {"affine", LC_ATTR_BOOL, 0, "true"}))                                                                           \
    X(MAXPOOL, "maxpool", 'F', 1, 1, pool, window_x, MAXPOOL_DX, window,                                               \
      ({"kernel", LC_ATTR_PAIR, 1, "2"}, {"stride", LC_ATTR_PAIR, 0, "2"}, {"pad", LC_ATTR_PAD, 0, "1"}))             \
    X(AVGPOOL, "avgpool", 'F', 1, 1, pool, dy, AVGPOOL_DX, window,                                                     \
      ({"kernel", LC_ATTR_PAIR, 1, "2"}, {"stride", LC_ATTR_PAIR, 0, "[2, 1]"}, {"pad", LC_ATTR_PAD, 0, "[1, 0, 0, 1]"}, \
       {"count_include_pad", LC_ATTR_BOOL, 0, "false"}))                                                              \
    X(GLOBAL_AVGPOOL, "global_avgpool", 'F', 1, 1, gap, dy, GLOBAL_AVGPOOL_DX, in1, ())                                \
    X(DROPOUT, "dropout", 'F', 1, 1, same, dy, DROPOUT_DX, out1, ({"rate", LC_ATTR_REAL, 1, "0.25"}))                 \
    X(CONV2D_DX, "conv2d_grad_input", 'B', 2, 0, none, none, COUNT, conv, ())      /* dy, W */                         \
    X(CONV2D_DW, "conv2d_grad_weight", 'B', 2, 0, none, none, COUNT, conv, ())     /* dy, x */                         \
    X(CHANNEL_DB, "channel_bias_grad", 'B', 1, 0, none, none, COUNT, in1, ())     /* dy: sum over N, H, W */           \
    X(BATCHNORM_DX, "batchnorm_grad_input", 'B', 2, 0, none, none, COUNT, bnorm, ())   /* dy, x */                     \
    X(BATCHNORM_DGAMMA, "batchnorm_grad_weight", 'B', 2, 0, none, none, COUNT, in1, ()) /* dy, x */                    \
    X(MAXPOOL_DX, "maxpool_grad", 'B', 2, 0, none, none, COUNT, window, ())        /* dy, x */                         \
    X(AVGPOOL_DX, "avgpool_grad", 'B', 1, 0, none, none, COUNT, window, ())        /* dy */                            \
    X(GLOBAL_AVGPOOL_DX, "global_avgpool_grad", 'B', 1, 0, none, none, COUNT, out1, ()) /* dy */                       \
    X(DROPOUT_DX, "dropout_grad", 'B', 1, 0, none, none, COUNT, out1, ())          /* dy */                            \
    X(MASK, "mask", 'D', 0, 0, none, none, COUNT, zero, ())  /* per-example 0/1 values, uploaded */                    \
    X(GATE, "gate", 'F', 2, 0, gate, gate, GATE, out1, ())   /* x * mask (fixed ReLU gating) */                        \
    X(FUSED_RELU, "relu_fused", 'V', 1, 0, same, pass, COUNT, zero, ()) /* a ReLU its input's producer applies         \
                                                                         * (act_relu): a view of that value */     \
    X(LEAKY_RELU, "leaky_relu", 'F', 1, 1, same, eltwise_x, LEAKY_RELU_DX, out1,                                       \
      ({"slope", LC_ATTR_REAL, 0, "0.2", offsetof(lc_node, slope), 0.01}))                                            \
    X(LEAKY_RELU_DX, "leaky_relu_grad", 'B', 2, 0, none, none, COUNT, out1, ()) /* dy, x */

/* The attributes every layer with parameters takes (parsed by the builder). */
#define LC_LAYER_ATTRS                                                                                                 \
    {"bias", LC_ATTR_BOOL, 0, "true"}, {"init", LC_ATTR_TEXT, 0, "\"he_uniform\""},                                   \
        {"bias_init", LC_ATTR_TEXT, 0, "\"zeros\""}, {"bias_value", LC_ATTR_REAL, 0, "0"}

typedef enum lc_op {
#define LC_X_(id, ...) LC_OP_##id,
    LC_OP_TABLE(LC_X_)
#undef LC_X_
    LC_OP_COUNT
} lc_op;

/* A JSON attribute of an op.  `example` is a valid JSON value (the
 * registry-driven tests build a node from the examples of its op).  Real
 * attributes with `at` > 0 are registry-parsed: stored as a double at that
 * offset of lc_node, `def` when absent (also for nodes built in C), checked
 * within [lo, hi] (lo == hi == 0: any finite value). */
typedef enum lc_attr_type { LC_ATTR_REAL, LC_ATTR_INT, LC_ATTR_BOOL, LC_ATTR_PAIR, LC_ATTR_PAD, LC_ATTR_TEXT } lc_attr_type;
typedef struct lc_attr_spec {
    const char *key;
    lc_attr_type type;
    int required;
    const char *example;
    size_t at;
    double def, lo, hi;
} lc_attr_spec;

struct lc_graph;
/* The IR's entry of an op. */
typedef struct lc_op_info {
    const char *name;
    char kind;           /* 'D', 'P', 'F', 'B', 'V' */
    int nin;             /* -1: variable */
    bool json;           /* a model file may name it */
    /* forward ops: shape inference of node id (sets shape and batched,
     * and the shapes of the parameters it owns) */
    lc_status (*shape)(struct lc_graph *g, int id);
    /* forward ops: appends the backward nodes of node id given the node
     * gi holding the gradient of its value */
    lc_status (*grad)(struct lc_graph *g, int id, int gi);
    int bwd;             /* the backward op of the generic rules, LC_OP_COUNT: none */
    /* floating-point operations of node id at batch nb */
    int64_t (*flops)(const struct lc_graph *g, int id, int nb);
    const lc_attr_spec *attrs;
    int n_attrs;
    const char *shape_rule, *grad_rule; /* the rules' names, for dumps and docs */
} lc_op_info;

const lc_op_info *lc_op_get(lc_op op); /* NULL outside [0, LC_OP_COUNT) */
const char *lc_op_name(lc_op op);
char lc_op_kind(lc_op op); /* 'D', 'P', 'F', 'B', 'V' */
/* The op a model file names (json ops only), or -1. */
int lc_op_find(const char *name);
/* Checks the registry: every op has a name, forward ops a shape and a
 * gradient rule, generic rules a backward op, attributes sane. */
lc_status lc_ops_check(void);
/* Applies the registry defaults of node id's registry-parsed attributes. */
void lc_op_set_defaults(struct lc_graph *g, int id);

typedef enum lc_init {
    LC_INIT_NONE = 0, LC_INIT_ZEROS, LC_INIT_CONSTANT, LC_INIT_HE_UNIFORM, LC_INIT_HE_NORMAL,
    LC_INIT_GLOROT_UNIFORM,
} lc_init;
const char *lc_init_name(lc_init i);

typedef enum lc_dtype { LC_F32 = 0, LC_I32 } lc_dtype;

/* conv2d padding: explicit (pad_h, pad_w on both sides), "same" (Keras/TF:
 * out = ceil(in / stride); the total padding max((out-1)*stride + k - in, 0)
 * is split with the smaller half on top/left, so an even total is symmetric
 * and an odd one puts the extra row/column at the bottom/right), or "valid"
 * (no padding). */
typedef enum lc_pad_mode { LC_PAD_EXPLICIT = 0, LC_PAD_SAME, LC_PAD_VALID } lc_pad_mode;

typedef struct lc_shape {
    int rank;
    int dims[LC_MAX_RANK];
} lc_shape;
/* Elements of a shape; saturates at INT64_MAX instead of overflowing. */
int64_t lc_shape_numel(const lc_shape *s);
/* The most elements a value may have per example, and a parameter in all:
 * shapes are ints and kernels index with ints.  Shape inference refuses
 * larger ones with an error naming the node. */
#define LC_MAX_NUMEL ((int64_t)INT32_MAX)
/* "[784]" or "[1, 28, 28]" into buf. */
const char *lc_shape_str(const lc_shape *s, char *buf, size_t len);

typedef struct lc_node {
    lc_op op;
    char name[LC_NAME_MAX];
    int inputs[LC_MAX_INPUTS];
    int n_inputs;
    lc_shape shape;      /* per example if batched, else whole */
    bool batched;
    lc_dtype dtype;
    bool needs_grad;     /* depends on a trainable parameter */
    bool keep_value;     /* the planner keeps this value (and its gradient) to the end of the
                          * step, for callers that read it afterwards */

    /* attributes */
    int units;           /* DENSE: output units; CONV2D: filters */
    bool bias;           /* DENSE, CONV2D: has a bias input */
    /* CONV2D, MAXPOOL, AVGPOOL: window and stride */
    int kh, kw, sh, sw;
    lc_pad_mode pad_mode; /* CONV2D */
    int ph, pw;          /* CONV2D, LC_PAD_EXPLICIT: padding on each side */
    /* CONV2D: the padding shape inference resolved: top, left, bottom,
     * right (bottom/right may exceed what the last window reads);
     * MAXPOOL, AVGPOOL: the padding the builder set (each side smaller than
     * the window along its axis; padded positions are not values: max
     * ignores them, avg counts them as zeros or not, see count_pad) */
    int pad_t, pad_l, pad_b, pad_r;
    /* AVGPOOL: divide by kh * kw (true, count_include_pad) or by the number
     * of real (unpadded) values in the window (false) */
    bool count_pad;
    /* BATCHNORM */
    double momentum;     /* running = momentum * running + (1 - momentum) * batch */
    double eps;
    bool affine;         /* has gamma ("<node>.weight") and beta ("<node>.bias") */
    /* DROPOUT: the fraction of elements zeroed in training */
    double rate;
    /* LEAKY_RELU: the slope for x <= 0 */
    double slope;
    /* DENSE, CONV2D, BATCHNORM: the value is max(., 0) of the op's result, a
     * ReLU fused into the node by lc_graph_fuse (the ReLU node stays as a
     * FUSED_RELU view of it); the backward masks the incoming gradient
     * first */
    bool act_relu;
    /* PARAM */
    lc_init init;
    double init_value;   /* LC_INIT_CONSTANT */
    int fan_in, fan_out; /* for the initialiser */
    bool trainable;
    bool is_kernel;      /* a dense/conv kernel: a "layer" for Layca and rotation */
    int param_index;     /* index into graph->params */
    int owner;           /* PARAM: the node using it */
    /* backward nodes: the forward node they differentiate; params: -1 */
    int grad_of;
    /* set by autodiff: the gradient node of this node's value, or -1 */
    int grad;
    /* backward nodes: the forward node whose attributes (window, padding,
     * statistics, rate) they use, or -1 */
    int fwd;

    /* set by the memory planner (activations only) */
    int64_t offset;      /* float offset in the activation arena; views: root's */
    int def, last_use;   /* execution interval */
    /* auxiliary storage in the activation arena, planned like a value, its
     * size reported by the lowering (lc_graph.aux_fn): conv im2col
     * workspace (alive during the node only), batchnorm statistics (mean,
     * 1/std per channel; alive from the forward node to its backward
     * nodes), batchnorm backward sums, partial results of per-channel
     * reductions.  0 floats = none. */
    int64_t aux_floats, aux_offset;
    int aux_last;
} lc_node;

typedef struct lc_param {
    int node;            /* PARAM node */
    int64_t offset;      /* float offset in the parameter arena (aligned) */
    int64_t numel;
    int grad_node;       /* node computing its gradient, -1 if frozen */
} lc_param;

typedef struct lc_graph {
    char name[LC_NAME_MAX];
    lc_node *nodes;
    int n_nodes, cap;
    int input, labels, logits, loss; /* node ids, -1 if absent */
    int n_forward;       /* nodes [0, n_forward) are forward; the rest backward */
    int classes;
    lc_param *params;
    int n_params;
    int64_t param_floats; /* arena size in floats, aligned per tensor */
    /* memory plan */
    int planned_batch;
    int64_t act_floats;   /* activation arena size for planned_batch */
    int64_t aux_peak_floats; /* largest auxiliary block (conv workspace) in the plan */
    /* conv im2col workspace limit per node in floats (0 = the executor's
     * LC_WORKSPACE_DEFAULT): the batch is processed in chunks of examples
     * that fit */
    int64_t workspace_limit;
    /* lc_graph_compile leaves ReLUs unfused (for checking and comparisons) */
    bool no_fusion;
    /* columns per split-K slice of conv weight gradients at least (0 =
     * the executor's LC_DW_SPLIT_COLS; tests make it small) */
    int dw_split_cols;
    /* the floats of auxiliary storage (lc_node.aux_*) node id needs at
     * batch nb, as its lowering reports them (lc_exec_aux_floats); NULL:
     * none.  The planner places them. */
    int64_t (*aux_fn)(const struct lc_graph *g, int id, int nb);
} lc_graph;

/* Parameter tensors are aligned to this many floats in the parameter arena,
 * and the gaps are zero, so multi-tensor kernels can map fixed-size work
 * groups to tensors. */
#define LC_PARAM_ALIGN 256
/* Activation values are aligned to this many floats. */
#define LC_ACT_ALIGN 64

lc_graph *lc_graph_create(const char *name);
void lc_graph_destroy(lc_graph *g);

/* Builders: return the node id (>= 0) or -1 with the error set. */
int lc_graph_add_input(lc_graph *g, const char *name, const lc_shape *shape);
int lc_graph_add_labels(lc_graph *g, const char *name, int classes);
int lc_graph_add_param(lc_graph *g, const char *name, const lc_shape *shape, lc_init init, double value,
                       int fan_in, int fan_out, bool is_kernel);
int lc_graph_add_node(lc_graph *g, lc_op op, const char *name, const int *inputs, int n_inputs);
/* Convenience: dense layer with its parameters "<name>.weight" / "<name>.bias". */
int lc_graph_add_dense(lc_graph *g, const char *name, int x, int units, bool bias, lc_init init, lc_init bias_init,
                       double bias_value);
int lc_graph_find(const lc_graph *g, const char *name);
/* conv2d with "<name>.weight" [filters, in, kh, kw] (a kernel) and optional
 * "<name>.bias" [filters].  pad_mode LC_PAD_EXPLICIT uses ph, pw. */
int lc_graph_add_conv2d(lc_graph *g, const char *name, int x, int filters, int kh, int kw, int sh, int sw,
                        lc_pad_mode pad_mode, int ph, int pw, bool bias, lc_init init, lc_init bias_init,
                        double bias_value);
/* batchnorm over channels (dim 0 of [c, h, w], or the features of a flat
 * input) with the non-trainable "<name>.running_mean" (0) and
 * "<name>.running_var" (1), and when affine the trainable "<name>.weight"
 * (gamma, 1) and "<name>.bias" (beta, 0). */
int lc_graph_add_batchnorm(lc_graph *g, const char *name, int x, double momentum, double eps, bool affine);
/* maxpool / avgpool (op LC_OP_MAXPOOL or LC_OP_AVGPOOL) without padding. */
int lc_graph_add_pool(lc_graph *g, lc_op op, const char *name, int x, int kh, int kw, int sh, int sw);
/* The same with padding pads = {top, left, bottom, right} (NULL: none),
 * each side in [0, window along its axis); count_pad: avgpool divides by
 * kh * kw (true) or by the real values in the window (false; maxpool
 * ignores it). */
int lc_graph_add_pool_pad(lc_graph *g, lc_op op, const char *name, int x, int kh, int kw, int sh, int sw,
                          const int pads[4], bool count_pad);
/* inverted dropout: y = x * mask / (1 - rate) in training, y = x in evaluation */
int lc_graph_add_dropout(lc_graph *g, const char *name, int x, double rate);

/* Shape inference and verification of the forward graph; sets needs_grad.
 * The error names the node ("node 'fc': dense expects a flat input, got [1, 28, 28]"). */
lc_status lc_graph_infer(lc_graph *g);
/* Verifier: inputs precede users, kinds and arities match, one input and
 * one loss. */
lc_status lc_graph_verify(const lc_graph *g);
/* Reverse-mode autodiff from g->loss: appends backward nodes and sets each
 * trainable parameter's grad_node. */
lc_status lc_graph_autodiff(lc_graph *g);
/* Removes backward nodes nobody needs (e.g. input gradients of the first
 * layer when frozen).  Forward nodes are kept. */
lc_status lc_graph_dce(lc_graph *g);
/* Elementwise fusion (after inference, before autodiff): a ReLU whose input
 * is a dense, conv2d or batchnorm node used by nothing else (and neither
 * kept (keep_value) nor the logits) is folded into that node (act_relu);
 * the ReLU node becomes a FUSED_RELU view of it, so its name, its value
 * (lc_exec_read_node), keep_value and its gradient stay where they were.
 * Returns the number of ReLUs fused. */
int lc_graph_fuse(lc_graph *g);
/* Assigns parameter arena offsets. Called by lc_graph_infer. */
void lc_graph_layout_params(lc_graph *g);
/* Liveness-based memory plan for a batch size: places every activation
 * value and every auxiliary block (lc_node.aux_*, sized by g->aux_fn) in one arena, largest
 * first at the lowest offset free for its live interval; the data nodes
 * (examples, labels) stay live for the whole step.  Sets g->act_floats (the
 * arena size in floats) and g->aux_peak_floats. */
lc_status lc_graph_plan(lc_graph *g, int batch);
/* The largest activation arena (floats) a plan may have: byte offsets and
 * sizes stay far from int64 overflow.  A bigger plan is an error. */
#define LC_MAX_ARENA_FLOATS ((int64_t)1 << 56)
/* The full pipeline: infer, verify, fuse (unless g->no_fusion), autodiff, dce, plan.  When dump is not
 * NULL the graph is printed after each pass. */
lc_status lc_graph_compile(lc_graph *g, int batch, bool train, FILE *dump);

/* FLOPs of node id at batch nb (registry rule), and the bytes it reads and
 * writes (its inputs and its value; 0 for data, parameters and views). */
int64_t lc_graph_node_flops(const lc_graph *g, int id, int nb);
int64_t lc_graph_node_bytes(const lc_graph *g, int id, int nb);
/* A value count for messages, exact below 1e15, saturated counts shown as such. */
const char *lc_numel_str(int64_t k, char *buf, size_t len);

/* Text dump of the graph. */
void lc_graph_dump(const lc_graph *g, FILE *f, const char *title);

/* Kernel layers (is_kernel params) in forward order: fills ids (param
 * indices), returns the count. */
int lc_graph_kernel_layers(const lc_graph *g, int *param_ids, int max);
int64_t lc_graph_trainable_count(const lc_graph *g);

/* Initialises host parameter values (param_floats floats) with the seeded
 * initialisers. */
void lc_graph_init_params(const lc_graph *g, float *host, uint64_t seed);

/* Fixed gating (the paper's "prevent feedback improvement"): every ReLU
 * except `keep` (-1: none) becomes GATE(x, mask) with a new MASK data node
 * of the same shape, whose values the caller uploads per batch.  mask_of
 * (n_nodes entries of the graph before the call, may be NULL) receives, for
 * each replaced ReLU's id, its mask node id (-1 elsewhere).  Call before
 * compiling.  Returns the number of ReLUs replaced, or -1 on error. */
int lc_graph_gate_relus(lc_graph *g, int keep, int *mask_of);

/* Node storage root (follows views). */
int lc_graph_storage_root(const lc_graph *g, int id);

/* The batchnorm_grad_input node of batchnorm node bn, or -1: its sums
 * (sum dy, sum dy * xhat per channel) are also the gradients of beta and
 * gamma, which the executor takes from them (the planner keeps them). */
int lc_graph_bn_dx_of(const lc_graph *g, int bn);

#endif
