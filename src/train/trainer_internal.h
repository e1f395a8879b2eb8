/* The trainer's parts: the object (trainer.c), fixed gating (gating.c),
 * the metrics file and the run's settings (record.c), checkpoints
 * (checkpoint.c), output paths (paths.c) and progress (progress.c). */
#ifndef LC_TRAINER_INTERNAL_H
#define LC_TRAINER_INTERNAL_H

#include "lc_metrics.h"
#include "lc_train.h"

/* Fixed gating: per gated ReLU, its mask node and the recorded on/off bits
 * of every example of each split (0 train, 1 val, 2 test). */
typedef struct lc_gating {
    int n;
    int *mask;              /* mask node ids */
    int64_t *numel;
    uint8_t **bits[3];      /* [n][examples * numel] */
    float *buf;             /* one batch of one mask */
} lc_gating;

/* One resolved setting of the run, its value as JSON text.  must_match:
 * a checkpoint made with another value is refused. */
typedef struct lc_setting {
    char key[32];
    char value[1024];
    bool must_match;
} lc_setting;
#define LC_MAX_SETTINGS 48

struct lc_trainer {
    lc_train_opts o;
    lc_train_spec spec;         /* resolved */
    lc_optim_kind kind;
    lc_graph *g;
    lc_rt *rt;
    lc_exec *ex;
    lc_optim *opt;
    lc_dataset train, val, test;
    lc_data_info dinfo;
    char data_desc[512];
    lc_batcher tb;
    float *xbuf;
    int32_t *ybuf;
    int32_t *idx;               /* example indices of a batch (gating) */
    float *host_params;         /* param_floats scratch */
    double *rates, *mult;
    int batch, epochs, every;
    int64_t per_epoch, total_steps;
    uint64_t model_hash, init_hash;
    lc_setting settings[LC_MAX_SETTINGS];
    int n_settings;

    /* loop state (checkpointed) */
    int epoch;                  /* 0-based: the current epoch, or the next one when !epoch_open */
    int64_t step;               /* steps done */
    int64_t in_epoch, seen;     /* steps and examples of the current epoch */
    bool epoch_open;
    bool done;
    double lr;                  /* the current epoch's rate */
    double elapsed_before;      /* wall time of the run before this process (resumed runs) */

    /* figures of the last epoch and evaluation */
    double trl, tra, tel, tea, tea5, vl, va, va5, sil_value;
    double running_loss;        /* mean loss of the epoch, one step behind */
    int64_t pending_seen;       /* examples counted by the pending accumulator read */
    int64_t pending_step;       /* the step it was requested after */
    double pending_epoch;       /* and its position in epochs */
    int log_every;              /* loss records every N steps; 0 = none */
    float win_acc[3];           /* the accumulators at the epoch's last loss record (checkpointed) */
    int64_t win_seen;           /* and the examples counted then */
    bool nonfinite_seen;

    /* time (this process) */
    double t_start, train_time;
    int64_t steps_here;

    /* metrics file */
    int metrics_fd;             /* -1: none */
    uint64_t metrics_bytes, metrics_hash;
    lc_strbuf line;

    /* checkpoints */
    char ckpt_dir[1024];        /* "" when no folder is known */
    char last_ckpt[2048];
    int64_t last_ckpt_step;     /* -1: none written */
    int64_t resumed_from;

    /* rotation monitoring: kernel layers in forward order */
    int L;
    int *layer_of_kernel;       /* optim kernel index -> forward layer index */
    char (*layer_name)[LC_NAME_MAX];
    double *rot_opt, *norm_opt, *rot, *norm;

    lc_gating gate;
    int sil;                    /* silhouette node, -1 none */

    /* progress printer */
    double last_print;
    bool live_shown;

    /* data parallelism (dist.c): this process is rank `rank` of `ranks`
     * and trains on lbatch = batch / ranks examples of each global batch */
    int rank, ranks, lbatch;
    float *dist_buf;            /* the gradients, staged on the host */
    double dist_s;              /* wall time of the gradient exchanges */
    double dist_wait_s;         /* wall time waiting for the backward pass before them */
    int64_t dist_steps;
    char dist_device[256];      /* the device chosen by the local rank */
    /* the gradient arena cut into buckets, exchanged as the backward pass
     * finishes them (dist.c) */
    struct lc_dist_bucket *dist_bk;
    int dist_nbk;
    int *dist_pb;               /* per parameter: its bucket */
    int *dist_last;             /* per parameter: the last backward launch writing its gradient */
    int *dist_order;            /* the buckets in the order the backward pass finishes them */
    int64_t dist_early;         /* buckets started while backward launches were still to run */
    int64_t dist_buckets;       /* buckets exchanged */
};

/* gating.c */
lc_status lc_gating_setup(lc_trainer *t, const float *initial_params, int keep_relu);
lc_status lc_gating_upload(lc_trainer *t, int split, const int32_t *idx, int n);
void lc_gating_free(lc_gating *g);
const lc_dataset *lc_trainer_split(lc_trainer *t, int split);

/* record.c: the metrics file, each line written with one write */
void lc_trainer_build_settings(lc_trainer *t);
const char *lc_trainer_setting(const lc_trainer *t, const char *key);
lc_status lc_metrics_open_fresh(lc_trainer *t);
lc_status lc_metrics_open_resume(lc_trainer *t, uint64_t bytes, uint64_t hash);
lc_status lc_metrics_sync(lc_trainer *t);
void lc_metrics_close(lc_trainer *t);
lc_status lc_record_settings(lc_trainer *t);
lc_status lc_record_eval(lc_trainer *t, double time_s);
lc_status lc_record_rotation(lc_trainer *t, double epoch, int64_t step);
lc_status lc_record_silhouette(lc_trainer *t, int epoch);
lc_status lc_record_loss(lc_trainer *t, const lc_loss_rec *r);
lc_status lc_record_nonfinite(lc_trainer *t, int64_t step, double loss, const char *where);

/* checkpoint.c */
lc_status lc_checkpoint_latest(const char *dir, char *path, size_t cap, int64_t *step);
lc_status lc_checkpoint_prune(const char *dir, int keep);

/* paths.c: outputs never overwrite inputs or each other; their folders
 * are writable */
lc_status lc_trainer_check_paths(lc_trainer *t);

/* progress.c */
/* collects a pending read of the loss accumulators (the loss record and the
 * non-finite check it carries); epoch_end: the epoch's last step */
lc_status lc_trainer_watch_loss(lc_trainer *t, bool epoch_end);
void lc_trainer_progress(lc_trainer *t, bool epoch_end, const char *line);
void lc_trainer_progress_end(lc_trainer *t);

/* dist.c: the hooks of data parallelism; each is the single process's
 * identity (no collective, no change) when ranks == 1 */
lc_status lc_train_dist_begin(lc_trainer *t);
lc_status lc_train_dist_batch(lc_trainer *t);
lc_status lc_train_dist_grads(lc_trainer *t, int n, int n_global);
lc_status lc_train_dist_sum(lc_trainer *t, double *v, int n);
lc_status lc_train_dist_acc(lc_trainer *t, float acc[3]);
lc_status lc_train_dist_stop(lc_trainer *t, int *stop);
void lc_train_dist_shard(const lc_trainer *t, int64_t n, int64_t *lo, int64_t *hi);
lc_status lc_train_dist_same_weights(lc_trainer *t);
lc_status lc_train_dist_acc_save(lc_trainer *t, float acc[3], float **all);
void lc_train_dist_report(lc_trainer *t);

/* trainer.c */
uint64_t lc_trainer_file_hash(const char *path, lc_status *st);

#endif
