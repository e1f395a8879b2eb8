/* The ONNX importer's state, shared by import.c (the graph) and
 * import_ops.c (one function per ONNX op, and the JSON writer). */
#ifndef LC_ONNX_IMP_H
#define LC_ONNX_IMP_H

#include "onnx_int.h"

enum { IMP_ACT = 0, IMP_CONST, IMP_SOFTMAX, IMP_PAD };
#define IMP_INPUT (-1) /* imp_val.node of the data input */
#define IMP_NONE (-2)  /* no second input */

typedef struct imp_val {
    const char *name;  /* ONNX name (points into the model) */
    int kind;          /* IMP_ACT, IMP_CONST, IMP_SOFTMAX, IMP_PAD */
    int node;          /* IMP_ACT: the layca node (index in imp.nodes) or IMP_INPUT */
    lc_shape ox;       /* IMP_ACT: ONNX's per-example dimensions (its first one is the batch) */
    lc_shape ly;       /* IMP_ACT: layca's per-example shape (differs after global_avgpool: [C] for [C, 1, 1]) */
    lc_onnx_value c;   /* IMP_CONST: the values */
    int src;           /* IMP_SOFTMAX, IMP_PAD: index in imp.vals of the Softmax's or Pad's input */
    int64_t pad[4];    /* IMP_PAD: the Pad's spatial padding [top, left, bottom, right], folded into the Conv or
                          pooling that uses it */
    const char *pad_node; /* IMP_PAD: the Pad node's name (messages) */
} imp_val;

typedef struct imp_node {
    char name[LC_NAME_MAX];
    const char *op;    /* the layca op */
    int in[2], n_in;   /* node indices, IMP_INPUT for the data input */
    int units, bias;   /* dense: units and bias (a MatMul's bias arrives with the Add after it) */
    char attrs[320];   /* more JSON members, each starting with ", " */
} imp_node;

typedef struct imp {
    const char *where;
    const Onnx__GraphProto *g;
    const Onnx__NodeProto *nd; /* the node being imported (messages name it) */
    int opset;
    int batch;                 /* the data input's first dimension, 0: symbolic */
    bool nobatch;              /* a rank-1 data input: one example */
    lc_shape input_shape;
    int classes;
    imp_val *vals;
    int n_vals, cap_vals;
    imp_node *nodes;
    int n_nodes, cap_nodes;
    lc_st_tensor *tens;
    int n_tens, cap_tens;
} imp;

const char *imp_node_name(const imp *m);
lc_status imp_err(const imp *m, lc_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
imp_val *imp_find(imp *m, const char *name);
/* Registers output k of the current node as layca node `node`'s value (ly NULL: ox). */
lc_status imp_set_act(imp *m, int k, int node, const lc_shape *ox, const lc_shape *ly);
lc_status imp_add_const(imp *m, const char *name, lc_onnx_value *c); /* takes c's values */
/* Registers output k of the current node as a copy of value v (Identity). */
lc_status imp_alias(imp *m, int k, const imp_val *v);
/* Registers output k of the current node as input `src` (an index in
 * imp.vals) padded by pad (a Pad to fold into the node that uses it). */
lc_status imp_set_pad(imp *m, int k, int src, const int64_t pad[4]);
/* Input k of the node, whatever it is (an error when missing or a Softmax). */
lc_status imp_input(imp *m, int k, imp_val **out);
lc_status imp_act(imp *m, int k, imp_val **out);
lc_status imp_const(imp *m, int k, bool f32, imp_val **out);
bool imp_has_input(const imp *m, int k);
int imp_uses(const imp *m, const char *name);
const Onnx__AttributeProto *imp_attr(const imp *m, const char *name);
lc_status imp_check_attrs(const imp *m, const char *const *known);
lc_status imp_attr_int(const imp *m, const char *name, int64_t def, int64_t *out);
lc_status imp_attr_float(const imp *m, const char *name, double def, double *out);
lc_status imp_attr_ints(const imp *m, const char *name, int64_t *out, int max, int *n);
lc_status imp_attr_str(const imp *m, const char *name, const char *def, char *out, size_t cap);
lc_status imp_one_output(const imp *m);
void imp_make_name(imp *m, const char *base, const char *suffix, char *out);
/* Appends a layca node named after the current ONNX node; -1: no memory. */
int imp_add_node(imp *m, const char *op, int in0, int in1);
lc_status imp_add_tensor(imp *m, int node, const char *suffix, int rank, const int64_t *dims, float *data);
lc_status imp_param(imp *m, int node, const char *suffix, const imp_val *v, double scale, int rank,
                    const int64_t *dims);

typedef lc_status (*imp_op_fn)(imp *m);
imp_op_fn imp_op_find(const char *op_type);
lc_status imp_write_json(imp *m, const Onnx__ModelProto *mp, lc_onnx_import *out);

#endif
