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
    bool device_only;           /* no host shortcuts: a CPU device runs what a GPU runs (lc_rt_opts) */
    lc_train_spec spec;         /* the model file's train section with flags applied on top */
    lc_data_opts data;
    bool no_shuffle;
    const char *metrics_path;   /* JSONL, NULL = none */
    const char *init_path;      /* safetensors to start from */
    const char *save_path;      /* safetensors of the final weights */
    bool quiet;                 /* no per-epoch progress lines */
    int eval_every;             /* evaluate every N epochs (and after the last); 0 = 1 */
    bool no_fuse;               /* the unfused optimizer path (checking, benchmarks) */
    int rotation_every;         /* also record rotation every N steps; 0 = only per epoch */
    bool layca_skip_non_kernel; /* Layca leaves biases untouched (the paper's V2 code) */
    const char *train_only;     /* train only this node's parameters (the paper's single-layer
                                 * training); every other parameter is frozen */
    bool fixed_gating;          /* the paper's "prevent feedback improvement": every ReLU's on/off
                                 * pattern per example is recorded with the initial weights (train
                                 * and test sets) and held fixed, except the ReLU right after the
                                 * --train-only node */
    const char *silhouette;     /* node whose output's loss gradient ("feedback") gets its cosine
                                 * silhouette coefficient per evaluation, into the metrics */
    int silhouette_samples;     /* test examples used for it (0 = 1000) */
    bool flip;                  /* augmentation: random horizontal flips */
    double shift;               /* augmentation: random shifts up to this fraction of the size */
} lc_train_opts;

typedef struct lc_train_result {
    int64_t steps;
    int epochs;
    double train_loss, train_acc, test_loss, test_acc;
    double test_top5;
    double val_loss, val_acc;   /* NaN without a validation split */
    double silhouette;          /* the last silhouette value (NaN without --silhouette) */
    double seconds, steps_per_s;  /* training steps only, evaluation excluded */
    size_t device_bytes;
    int programs_built, programs_from_cache;
    int launches_forward, launches_backward, launches_optimizer;
    /* rotation (1 - cos to the initial weights) and norm of each kernel
     * layer after the last step, in forward order (malloc'ed, n_layers) */
    int n_layers;
    double *rotation, *norm;
} lc_train_result;
void lc_train_result_free(lc_train_result *r);

/* Fills the spec's unset fields with the defaults (sgd, lr 0.01, batch 128,
 * 1 epoch, seed 1, ...). */
void lc_train_spec_defaults(lc_train_spec *t);
/* rate of epoch e (0-based) under the spec's schedule */
double lc_train_schedule_lr(const lc_train_spec *t, int epoch);

lc_status lc_train_run(const lc_train_opts *o, lc_train_result *res);

/* Mean silhouette coefficient of the rows of x [n, d] grouped by label, with
 * the cosine distance (sklearn's silhouette_score(metric='cosine')). */
lc_status lc_silhouette_cosine(const float *x, const int32_t *labels, int n, int d, int classes, double *out);

#endif
