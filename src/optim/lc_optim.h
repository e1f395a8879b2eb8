/* Optimizers on the device.  Works on a parameter arena and a gradient
 * arena of the same layout: tensors at offsets aligned to LC_OPTIM_GROUP
 * floats with zero gaps, so one launch updates the whole network and each
 * work-group belongs to one tensor.  Knows nothing of the IR. */
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

typedef struct lc_optim_config {
    lc_optim_kind kind;
    double momentum;        /* SGD: mu (0 = plain SGD); SGD_AMom: beta */
    bool nesterov;
    double beta1, beta2, rho, eps;
    double weight_decay;    /* Keras l2: the gradient gains 2*wd*w */
    bool layca;
} lc_optim_config;
void lc_optim_config_defaults(lc_optim_config *c, lc_optim_kind kind);

typedef struct lc_optim_tensor {
    int64_t offset, numel;  /* floats; offset a multiple of LC_OPTIM_GROUP */
    bool trainable;
    bool is_kernel;         /* a layer for Layca and rotation monitoring */
} lc_optim_tensor;

typedef struct lc_optim lc_optim;

lc_status lc_optim_create(lc_optim **out, lc_rt *rt, const lc_optim_config *cfg, const lc_optim_tensor *t, int n,
                          int64_t arena_floats, cl_mem params, cl_mem grads);
void lc_optim_destroy(lc_optim *o);
/* Per-tensor rates (schedule x layer multiplier); frozen tensors get 0
 * whatever is passed. Uploaded once, used by every following step. */
lc_status lc_optim_set_rates(lc_optim *o, const double *rate_per_tensor);
/* Enqueues one update of every trainable tensor from the gradient arena. */
lc_status lc_optim_step(lc_optim *o);
int lc_optim_launches_per_step(const lc_optim *o);
int64_t lc_optim_steps_done(const lc_optim *o);

#endif
