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
 * kernel the graph needs and allocates the arenas before returning. */
lc_status lc_exec_create(lc_exec **out, lc_rt *rt, lc_graph *g);
void lc_exec_destroy(lc_exec *ex);

/* Arenas: parameters and their gradients share the layout of
 * g->params[i].offset (floats); gaps are zero. */
cl_mem lc_exec_params(const lc_exec *ex);
cl_mem lc_exec_grads(const lc_exec *ex);
lc_status lc_exec_write_params(lc_exec *ex, const float *host); /* g->param_floats floats */
lc_status lc_exec_read_params(lc_exec *ex, float *host);
lc_status lc_exec_read_grads(lc_exec *ex, float *host);

/* Uploads n <= planned batch examples (x: n * input numel, y: n labels). */
lc_status lc_exec_set_batch(lc_exec *ex, const float *x, const int32_t *y, int n);
/* Enqueues the forward pass on the last uploaded batch; the loss and
 * correct counts are added to the device accumulators. */
lc_status lc_exec_forward(lc_exec *ex);
/* Enqueues the backward pass (after lc_exec_forward): fills the gradient
 * arena. */
lc_status lc_exec_backward(lc_exec *ex);
/* Reads (and optionally resets) the accumulated loss sum and correct count;
 * this synchronises with the device. */
lc_status lc_exec_stats(lc_exec *ex, double *loss_sum, double *correct, bool reset);
/* Reads node `id`'s value for the last batch (activations or parameter
 * gradients), for tests and tools.  host must hold n*numel floats. */
lc_status lc_exec_read_node(lc_exec *ex, int id, float *host);

typedef struct lc_exec_counts {
    int forward, backward;  /* launches per step (kernels + GEMMs) */
    int programs;           /* programs the executor uses */
} lc_exec_counts;
lc_exec_counts lc_exec_launch_counts(const lc_exec *ex);
size_t lc_exec_device_bytes(const lc_exec *ex); /* arenas allocated by the executor */

#endif
