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
#define LC_MAX_INPUTS 4
#define LC_NAME_MAX 64

/* X(ID, name, kind, inputs) — kind: D data, P parameter, F forward, B backward,
 * V view (shares its first input's storage). inputs: -1 = variable. */
#define LC_OP_TABLE(X)                                                         \
    X(INPUT, "input", 'D', 0)                                                  \
    X(LABELS, "labels", 'D', 0)                                                \
    X(PARAM, "param", 'P', 0)                                                  \
    X(DENSE, "dense", 'F', -1)          /* x, W[out,in], (b[out]) */           \
    X(RELU, "relu", 'F', 1)                                                    \
    X(FLATTEN, "flatten", 'V', 1)                                              \
    X(ADD, "add", 'F', 2)                                                      \
    X(SOFTMAX_CE, "softmax_cross_entropy", 'F', 2) /* logits, labels */        \
    X(DENSE_DX, "dense_grad_input", 'B', 2)        /* dy, W */                 \
    X(DENSE_DW, "dense_grad_weight", 'B', 2)       /* dy, x */                 \
    X(BIAS_DB, "bias_grad", 'B', 1)                /* dy */                    \
    X(RELU_DX, "relu_grad", 'B', 2)                /* dy, y */                 \
    X(SOFTMAX_CE_DX, "softmax_cross_entropy_grad", 'B', 2) /* logits, labels */\
    X(RESHAPE, "reshape", 'V', 1)                                              \
    X(ACCUM, "accumulate", 'B', 2)

typedef enum lc_op {
#define LC_X_(id, name, kind, nin) LC_OP_##id,
    LC_OP_TABLE(LC_X_)
#undef LC_X_
    LC_OP_COUNT
} lc_op;

const char *lc_op_name(lc_op op);
char lc_op_kind(lc_op op); /* 'D', 'P', 'F', 'B', 'V' */

typedef enum lc_init {
    LC_INIT_NONE = 0, LC_INIT_ZEROS, LC_INIT_CONSTANT, LC_INIT_HE_UNIFORM, LC_INIT_HE_NORMAL,
    LC_INIT_GLOROT_UNIFORM,
} lc_init;
const char *lc_init_name(lc_init i);

typedef enum lc_dtype { LC_F32 = 0, LC_I32 } lc_dtype;

typedef struct lc_shape {
    int rank;
    int dims[LC_MAX_RANK];
} lc_shape;
int64_t lc_shape_numel(const lc_shape *s);
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

    /* attributes */
    int units;           /* DENSE: output units */
    bool bias;           /* DENSE: has a bias input */
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

    /* set by the memory planner (activations only) */
    int64_t offset;      /* float offset in the activation arena; views: root's */
    int def, last_use;   /* execution interval */
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
/* Assigns parameter arena offsets. Called by lc_graph_infer. */
void lc_graph_layout_params(lc_graph *g);
/* Liveness-based memory plan for a batch size; returns the activation arena
 * size (bytes) through g->act_floats. */
lc_status lc_graph_plan(lc_graph *g, int batch);
/* The full pipeline: infer, verify, autodiff, dce, plan.  When dump is not
 * NULL the graph is printed after each pass. */
lc_status lc_graph_compile(lc_graph *g, int batch, bool train, FILE *dump);

/* Text dump of the graph. */
void lc_graph_dump(const lc_graph *g, FILE *f, const char *title);

/* Kernel layers (is_kernel params) in forward order: fills ids (param
 * indices), returns the count. */
int lc_graph_kernel_layers(const lc_graph *g, int *param_ids, int max);
int64_t lc_graph_trainable_count(const lc_graph *g);

/* Initialises host parameter values (param_floats floats) with the seeded
 * initialisers. */
void lc_graph_init_params(const lc_graph *g, float *host, uint64_t seed);

/* Node storage root (follows views). */
int lc_graph_storage_root(const lc_graph *g, int id);

#endif
