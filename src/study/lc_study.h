/* The Layca paper's studies (reference sections 3, 5 and 6) as a library.
 * A study is a list of runs; each run is one lc_train_run in this process
 * with its own folder OUT/runs/<id>/ holding metrics.jsonl and result.json.
 * result.json is written atomically once the run is over, so a run with one
 * is finished and skipped on restart.  After every run OUT/results.csv and
 * OUT/results.json are rewritten from all finished runs; at the end the
 * table goes to OUT/table.txt (and to the caller's report) and the figures
 * to OUT/ as PNG and SVG.
 *
 * The study's parameters are kept in OUT/study.json; a restart with other
 * parameters is refused unless `force`.  Each result.json also holds its
 * run's full settings ("config"), so under `force` only the runs whose
 * settings changed are rerun.
 *
 * Progress and notes go to opts.log (stderr when NULL); nothing is written
 * to stdout: the table and the list of outputs come back as text. */
#ifndef LC_STUDY_H
#define LC_STUDY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lc_core.h"
#include "lc_model.h"
#include "lc_train.h"

typedef enum lc_study_kind {
    LC_STUDY_MNIST_TOY,
    LC_STUDY_ALPHA_SWEEP,
    LC_STUDY_LR_GRID,
    LC_STUDY_OPTIMIZERS,
    LC_STUDY_WEIGHT_DECAY,
    LC_STUDY_COUNT
} lc_study_kind;

/* "mnist-toy", "alpha-sweep", "lr-grid", "optimizers", "weight-decay" */
const char *lc_study_kind_name(lc_study_kind k);
/* LC_STUDY_COUNT when the name is none of them */
lc_study_kind lc_study_kind_from_name(const char *name);

#define LC_STUDY_MAX_LIST 32
#define LC_STUDY_MAX_OPTIMIZERS 5

typedef struct lc_study_schedule {
    int n;
    int ms[LC_MAX_MILESTONES];
    double factor;
} lc_study_schedule;

/* Options.  lc_study_opts_init leaves every setting unset (-1, NaN, NULL):
 * the study's defaults for its scale apply. */
typedef struct lc_study_opts {
    lc_study_kind kind;
    const char *out;            /* the study's folder; NULL: runs/study-NAME */
    const char *device;         /* P:D index or a name substring, NULL the default */
    bool device_only;           /* no host shortcuts */
    /* fills the module options of each run's trainer options after the
     * study set its own (the CLI: defaults from its environment, see
     * docs/environment.md); NULL: none */
    void (*train_opts)(lc_train_opts *o);
    int scale;                  /* -1: quick on a CPU device, paper elsewhere; 0 quick; 1 paper */
    long long max_runs;         /* stop after this many new runs; 0 no limit */
    bool retry_failed, force, verbose;
    const char *rerun;          /* rerun the finished runs whose id contains this text */
    const char *model, *data;   /* model file and data spec */
    const char *mnist;          /* mnist-toy: the folder of the MNIST test set */
    const char *mnist_default;  /* where mnist-toy looks without `mnist` (the caller's default) */
    int epochs, batch, reps, eval_every, per_class;  /* -1 unset */
    int64_t steps, seed, train_subset, test_subset;  /* -1 unset */
    double lr, lr_layca, lr_sgd;                     /* NaN unset */
    int sched_set;              /* -1 unset, 1 `sched`, 0 no schedule */
    lc_study_schedule sched;
    int flip;                   /* -1 unset, 0, 1 */
    double alphas[LC_STUDY_MAX_LIST], lrs[LC_STUDY_MAX_LIST];
    int n_alphas, n_lrs;        /* 0: the paper's */
    char optimizers[LC_STUDY_MAX_OPTIMIZERS][16];
    int n_optimizers;           /* 0: the paper's five */
    FILE *log;                  /* progress and notes; NULL: stderr */
    /* Failure injection (tests): the run of this id is given a data spec
     * that cannot be read, so it fails as a broken run does.  An id that
     * names no run is an error. */
    const char *fail_run;
    /* Independent runs spread over processes: with parallel_runs K > 1
     * (the MPI world of `mpirun -np K`, dist, of K ranks), the pending runs
     * are dealt round-robin to the ranks, each run trained by one rank
     * alone; rank 0 writes study.json first and, once every rank is done,
     * the results, the table and the figures (the other ranks' report stays
     * empty).  max_runs counts per rank.  0 or 1: one process. */
    int parallel_runs;
    lc_dist *dist;
} lc_study_opts;

void lc_study_opts_init(lc_study_opts *o, lc_study_kind kind);

/* The paper's optimizer names, in order (for option checking). */
int lc_study_paper_optimizer_count(void);
const char *lc_study_paper_optimizer(int i);

typedef struct lc_study lc_study;

/* Resolves the study: defaults for its scale, the model's train section, the
 * list of runs, the parameters for study.json.  Nothing is written.  On an
 * error *usage tells whether the options were at fault (a missing --model,
 * a --fail-run naming no run) rather than a file. */
lc_status lc_study_create(const lc_study_opts *o, lc_study **out, bool *usage);
void lc_study_destroy(lc_study *s);

int lc_study_run_count(const lc_study *s);
/* the study's folder (the option, or runs/study-NAME) */
const char *lc_study_out(const lc_study *s);
/* The plan as text: the study, its scale notes, one line per run with its
 * settings and whether it is finished (what --dry-run shows). */
lc_status lc_study_plan_text(const lc_study *s, lc_strbuf *out);

typedef struct lc_study_summary {
    int runs, done, failed;     /* the study's runs, finished ones, failed ones */
    int failed_now;             /* failed in this call */
    long long new_runs;
    bool stopped;               /* by max_runs */
} lc_study_summary;

/* Runs the runs not yet finished (a failed run is recorded and the others go
 * on), writes the results, the table and the figures.  `report` gets the
 * table and the list of files written.  Returns an error for a failure of
 * the study itself (its folder, other parameters in study.json, a figure);
 * failed runs are counted in `sum` (the caller decides what they mean). */
lc_status lc_study_run(lc_study *s, lc_strbuf *report, lc_study_summary *sum);

#endif
