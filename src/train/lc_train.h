/* Training: model + data + device -> trained weights, metrics, checkpoints,
 * progress.  The trainer object owns the loop state; the executor owns one
 * step; the runtime owns the device.
 *
 * A run is a sequence of steps grouped in epochs.  After each step the
 * trainer may end the epoch (rotation record, evaluation every eval_every
 * epochs, an "eval" metrics line, the progress line), write a checkpoint
 * (every N steps or epochs, and when a stop is requested) and stop.  Every
 * piece of state that decides the following steps (weights, batch-norm
 * running statistics, optimizer state with Layca's initial norms and
 * weights, the data order and position, augmentation and dropout streams,
 * the epoch's loss accumulators, the metrics file's length) is in the
 * checkpoint, so a resumed run writes the same weights and the same metrics
 * bytes as an uninterrupted one on the same device (the wall-clock "time_s"
 * fields excepted). */
#ifndef LC_TRAIN_H
#define LC_TRAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "lc_data.h"
#include "lc_dist.h"
#include "lc_exec.h"
#include "lc_model.h"
#include "lc_optim.h"

/* What a non-finite training loss does. */
typedef enum lc_nonfinite_policy {
    LC_NONFINITE_STOP = 0, /* stop with an error naming the step and the first non-finite layer */
    LC_NONFINITE_CONTINUE, /* warn once and go on */
} lc_nonfinite_policy;

/* Progress reports, one per step (the printer decides how often to print). */
typedef struct lc_train_progress {
    int64_t step, total_steps;  /* steps done, steps of the whole run */
    int epoch, epochs;          /* current epoch (1-based), epochs of the run */
    int64_t in_epoch, per_epoch;/* steps done in this epoch, steps per epoch */
    double loss;                /* mean training loss of the epoch so far (one step behind; NaN before) */
    double steps_per_s;         /* over this process's training steps */
    double elapsed_s;           /* wall time of this process's run so far */
    double eta_s;               /* estimated wall time left, evaluations included (NaN: unknown) */
    bool epoch_end;             /* the epoch just ended; `line` holds its summary */
    const char *line;           /* epoch summary ("epoch 3/10  step ...") or NULL */
} lc_train_progress;
typedef void (*lc_train_progress_fn)(void *ctx, const lc_train_progress *p);

typedef enum lc_progress_mode {
    LC_PROGRESS_AUTO = 0, /* a live line on a terminal, else a plain line every ~10 s; epoch lines */
    LC_PROGRESS_LINES,    /* a plain line every ~10 s and the epoch lines, even on a terminal */
    LC_PROGRESS_QUIET,    /* nothing but warnings and errors */
} lc_progress_mode;

typedef struct lc_train_opts {
    const char *model_path;
    const char *data_spec;      /* "mnist:DIR", "idx:IMAGES,LABELS", ... */
    const char *device;         /* selector, NULL = default */
    bool device_only;           /* no host shortcuts: the code a GPU runs */
    lc_train_spec spec;         /* flags; the model file's train section lies under them */
    lc_data_opts data;
    bool no_shuffle;
    const char *metrics_path;   /* JSONL, NULL = none */
    const char *init_path;      /* safetensors to start from */
    const char *init_map;       /* renames init_path's tensors: "FROM=TO,..." (lc_model_load_params_map) */
    const char *save_path;      /* safetensors of the final weights (with the normalisation in its metadata) */
    bool quiet;                 /* same as progress = LC_PROGRESS_QUIET */
    lc_progress_mode progress;
    lc_train_progress_fn progress_fn; /* replaces the printer on stderr (NULL: the printer) */
    void *progress_ctx;
    int eval_every;             /* evaluate every N epochs (and after the last); 0 = 1 */
    bool no_fuse;               /* the unfused optimizer path (checking, benchmarks) */
    int rotation_every;         /* also record rotation every N steps; 0 = only per epoch */
    int log_every;              /* a training-loss record every N steps (and at each epoch's end);
                                 * 0 = none; -1 (lc_train_opts_init) = about 200 records per run */
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
    lc_nonfinite_policy on_nonfinite;
    /* checkpoints */
    const char *checkpoint_dir; /* NULL: "checkpoints" beside --save, else beside the metrics */
    int64_t checkpoint_every;   /* steps between checkpoints; 0 = none */
    int checkpoint_every_epochs;/* epochs between checkpoints; 0 = none */
    int checkpoint_keep;        /* the last K are kept (0 = 3) */
    const char *resume;         /* a checkpoint file, or a folder (its latest valid checkpoint) */
    /* Set (by a signal handler) to the signal number to stop: the step in
     * flight finishes, a checkpoint is written (when a folder is known) and
     * the run returns LC_OK with result.stop_signal set. */
    volatile sig_atomic_t *stop;
    /* Files outputs must never overwrite, besides the model, --init, --resume and the data. */
    const char *const *more_inputs; /* NULL-terminated, may be NULL */
    /* Settings of the modules the trainer creates (the CLIs fill them from
     * LAYCA_* variables, docs/environment.md; zero: the defaults).  rt:
     * the runtime's options except selector and device_only (device and
     * device_only above choose; rt.selector_source names where device came
     * from); host_conv: lc_exec_opts.host_conv of its executors;
     * optim_geometry: lc_optim_config.geometry (tests). */
    lc_rt_opts rt;
    const char *host_conv;
    lc_optim_geometry_opts optim_geometry;
    /* Data parallelism: NULL, or the MPI world of `mpirun -np K`.  Every
     * rank runs the same call with the same options; spec.batch is the
     * global batch (divisible by K), split over the ranks along one seeded
     * global order; the gradients are averaged over the ranks before each
     * optimizer step, so every rank holds the same weights; evaluation is
     * sharded and summed; rank 0 alone writes the metrics, checkpoints and
     * weights and prints progress.  Batch-norm statistics are per rank (each
     * normalises over its own share of the batch; the running statistics
     * saved are rank 0's).  Dropout masks are drawn per rank (other masks
     * than one process draws). */
    lc_dist *dist;
} lc_train_opts;

/* Zeroes o and marks every spec field unset. */
void lc_train_opts_init(lc_train_opts *o);

typedef struct lc_train_result {
    int64_t steps;
    int epochs;
    double train_loss, train_acc, test_loss, test_acc;
    double test_top5;
    double val_loss, val_acc;   /* NaN without a validation split */
    double silhouette;          /* the last silhouette value (NaN without --silhouette) */
    double seconds, steps_per_s;  /* training steps only, evaluation excluded, this process */
    size_t device_bytes;
    int programs_built, programs_from_cache;
    int launches_forward, launches_backward, launches_optimizer;
    /* rotation (1 - cos to the initial weights) and norm of each kernel
     * layer after the last step, in forward order (malloc'ed, n_layers) */
    int n_layers;
    double *rotation, *norm;
    int stop_signal;            /* the run stopped early on this signal (opts.stop); 0 otherwise */
    int64_t resumed_from;       /* the step the run resumed at, -1 for a fresh start */
    char checkpoint[2048];      /* the last checkpoint written ("" for none) */
    int ranks;                  /* processes of the run (lc_train_opts.dist) */
    double allreduce_s;         /* wall time of the gradient exchanges (host staging included) */
} lc_train_result;
void lc_train_result_free(lc_train_result *r);

/* Fills the spec's unset fields with the defaults (sgd, lr 0.01, batch 128,
 * 1 epoch, seed 1, ...). */
void lc_train_spec_defaults(lc_train_spec *t);
/* The model file's train section under the flags: each flag set replaces
 * the file's value; --epochs replaces the file's steps and --steps its
 * epochs (one run length). */
void lc_train_spec_overlay(lc_train_spec *file, const lc_train_spec *flags);
/* rate of epoch e (0-based) under the spec's schedule */
double lc_train_schedule_lr(const lc_train_spec *t, int epoch);

/* ---- the trainer object ---- */
typedef struct lc_trainer lc_trainer;

/* Loads the model and data, checks every output path and the device memory,
 * compiles, builds the kernels and the optimizer, then either resumes from
 * o->resume or starts fresh (the metrics file begins with a "settings"
 * record).  Nothing is trained yet.  o's strings must outlive the trainer. */
lc_status lc_trainer_create(lc_trainer **out, const lc_train_opts *o);
/* Checks that the model's input takes the data's examples: the same number
 * of values, and the same layout (a flat input, [c, h, w], or [h, w] for one
 * channel); the error names both shapes.  spec: the data, for messages. */
lc_status lc_train_check_input(const lc_graph *g, const lc_dataset *d, const char *spec);
/* The optimizer's tensor table of a compiled graph (malloc'ed, n_params
 * entries, NULL when out of memory): each parameter's offset and size, a
 * kernel flag, and trainable when it is and has a gradient (every one when
 * all_trainable). */
lc_optim_tensor *lc_train_optim_tensors(const lc_graph *g, bool all_trainable);
void lc_trainer_destroy(lc_trainer *t);
bool lc_trainer_done(const lc_trainer *t);
/* One training step; ends the epoch after its last step (rotation record,
 * evaluation, metrics, progress).  A step on a finished run is an error. */
lc_status lc_trainer_step(lc_trainer *t);
/* Steps until the current epoch has ended (or the run is done). */
lc_status lc_trainer_epoch(lc_trainer *t);
/* Evaluation mode over split 0 train, 1 validation, 2 test: mean loss,
 * top-1 and top-5 accuracy (NaN predictions are misses). */
lc_status lc_trainer_evaluate(lc_trainer *t, int split, double *loss, double *acc, double *top5);
/* Writes the whole training state to `path` (atomic), after syncing the
 * metrics file. */
lc_status lc_trainer_save_checkpoint(lc_trainer *t, const char *path);
/* Writes a checkpoint into the checkpoint folder and drops the oldest
 * beyond the kept count; *path_out (may be NULL) gets its path. */
lc_status lc_trainer_checkpoint(lc_trainer *t, char *path_out, size_t cap);
/* Restores a state written by lc_trainer_save_checkpoint for the same
 * model and settings (a difference is an error naming it). */
lc_status lc_trainer_load_checkpoint(lc_trainer *t, const char *path);
/* A checkpoint file read without a device (fuzzable): the safetensors
 * container, the "layca.checkpoint" mark, the checksum of every tensor and
 * the loop state parsed and range-checked.  Takes `bytes` (freed by
 * lc_checkpoint_deinit, also on error).  The tensors and settings are in
 * `file`; lc_trainer_load_checkpoint checks them against the run. */
typedef struct lc_checkpoint {
    lc_st_file file;
    int64_t step, epoch, in_epoch, seen, exec_step, optim_steps, batcher_pos, batcher_epoch;
    bool epoch_open;
    uint64_t metrics_bytes, metrics_hash;
    lc_rng batcher_rng, augment_rng;
    float acc[3];               /* the epoch's loss and hit sums, exact */
    float win_acc[3];           /* the sums at the epoch's last loss record (= acc when the file has none) */
    int64_t win_seen;
    double results[9];          /* last train/test/val figures and silhouette */
    double elapsed_s;
} lc_checkpoint;
lc_status lc_checkpoint_parse(uint8_t *bytes, size_t len, const char *where, lc_checkpoint *out);
void lc_checkpoint_deinit(lc_checkpoint *c);
/* The JSON text of setting `key` stored in the checkpoint, or NULL. */
const char *lc_checkpoint_setting(const lc_checkpoint *c, const char *key);
/* Writes the final weights (opts.save_path) with the normalisation in the
 * metadata. */
lc_status lc_trainer_save_weights(lc_trainer *t, const char *path);
/* The run's figures so far (r->rotation/norm malloc'ed). */
lc_status lc_trainer_result(lc_trainer *t, lc_train_result *r);
int64_t lc_trainer_steps_done(const lc_trainer *t);

/* The whole run: create, step to the end (checkpoints on their cadence and
 * on a stop request), save the weights, destroy.  res is filled on
 * success and on a stop. */
lc_status lc_train_run(const lc_train_opts *o, lc_train_result *res);

/* ---- evaluation of saved weights (layca eval) ---- */
typedef struct lc_eval_opts {
    const char *model_path;
    const char *weights_path;   /* safetensors from --save (or a checkpoint) */
    const char *weights_map;    /* renames its tensors (lc_model_load_params_map), NULL: none */
    const char *data_spec;
    lc_data_opts data;          /* subsets etc.; the normalisation comes from the weights' metadata */
    const char *device;
    bool device_only;
    int split;                  /* 2 test (default), 1 validation, 0 train */
    int batch;                  /* 0 = 256 */
    lc_rt_opts rt;              /* as lc_train_opts.rt */
    const char *host_conv;      /* as lc_train_opts.host_conv */
} lc_eval_opts;

typedef struct lc_eval_result {
    int64_t n;
    int classes;
    double loss, top1, top5;
    double *class_acc;          /* [classes], NaN for a class without examples */
    int64_t *confusion;         /* [classes * classes], row = true label, column = prediction */
    int64_t nan_predictions;    /* examples whose logits held a NaN (counted as misses) */
    bool norm_from_weights;     /* the normalisation came from the weights' metadata */
    int nstats;
    double mean[LC_DATA_MAX_CHANNELS], std[LC_DATA_MAX_CHANNELS];
    char data_desc[512];
} lc_eval_result;
lc_status lc_eval_run(const lc_eval_opts *o, lc_eval_result *r);
void lc_eval_result_free(lc_eval_result *r);

/* Mean silhouette coefficient of the rows of x [n, d] grouped by label, with
 * the cosine distance (sklearn's silhouette_score(metric='cosine')). */
lc_status lc_silhouette_cosine(const float *x, const int32_t *labels, int n, int d, int classes, double *out);

#endif
