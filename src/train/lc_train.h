/* The training loop: model + data + device -> trained weights, metrics,
 * progress.  Owns the loop; the executor owns one step; the runtime owns the
 * device. */
#ifndef LC_TRAIN_H
#define LC_TRAIN_H

#include <stdbool.h>
#include <stdio.h>

#include "lc_data.h"
#include "lc_exec.h"
#include "lc_model.h"
#include "lc_optim.h"

typedef struct lc_train_opts {
    const char *model_path;
    const char *data_spec;      /* "mnist:DIR", "idx:IMAGES,LABELS" */
    const char *device;         /* selector, NULL = default */
    lc_train_spec spec;         /* the model file's train section with flags applied on top */
    lc_data_opts data;
    bool no_shuffle;
    const char *metrics_path;   /* JSONL, NULL = none */
    const char *init_path;      /* safetensors to start from */
    const char *save_path;      /* safetensors of the final weights */
    bool quiet;                 /* no per-epoch progress lines */
    int eval_every;             /* evaluate every N epochs (and after the last); 0 = 1 */
} lc_train_opts;

typedef struct lc_train_result {
    int64_t steps;
    int epochs;
    double train_loss, train_acc, test_loss, test_acc;
    double seconds, steps_per_s;  /* training steps only, evaluation excluded */
    size_t device_bytes;
    int programs_built, programs_from_cache;
    int launches_forward, launches_backward, launches_optimizer;
} lc_train_result;

/* Fills the spec's unset fields with the defaults (sgd, lr 0.01, batch 128,
 * 1 epoch, seed 1, ...). */
void lc_train_spec_defaults(lc_train_spec *t);
/* rate of epoch e (0-based) under the spec's schedule */
double lc_train_schedule_lr(const lc_train_spec *t, int epoch);

lc_status lc_train_run(const lc_train_opts *o, lc_train_result *res);

#endif
