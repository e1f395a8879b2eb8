/* Running a study: the finished runs read back, the others run one by one
 * (a failed run is recorded and the others go on), the results rewritten
 * after each, then the table and the figures. */
#include "study_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_metrics.h"

/* The study's progress: the running run's line every ~10 s with the ETA of
 * the whole study (this run's estimate, plus the runs left at the mean wall
 * time of the runs done in this process, or of this one). */
typedef struct study_progress {
    int index, total;           /* the run (1-based) and the study's runs */
    int left_after;             /* runs still to do after this one */
    double done_s;              /* wall time of the runs done in this process */
    int done;                   /* their number */
    double t_run, last;         /* this run's start, the last line */
    FILE *log;
} study_progress;

static void format_hms(double s, char *buf, size_t cap)
{
    long long v = isfinite(s) && s >= 0 ? (long long)(s + 0.5) : -1;
    if (v < 0) snprintf(buf, cap, "?");
    else if (v >= 3600) snprintf(buf, cap, "%lldh%02lldm", v / 3600, (v / 60) % 60);
    else snprintf(buf, cap, "%lldm%02llds", v / 60, v % 60);
}

static double study_eta(const study_progress *sp, double run_eta)
{
    double run_s = lc_now_s() - sp->t_run + run_eta;
    double per = sp->done > 0 ? sp->done_s / sp->done : run_s;
    return run_eta + sp->left_after * per;
}

static void on_study_progress(void *ctx, const lc_train_progress *p)
{
    study_progress *sp = ctx;
    double now = lc_now_s();
    if (p->epoch_end || now - sp->last < 10.0) return;
    sp->last = now;
    char a[32], b[32];
    format_hms(p->eta_s, a, sizeof a);
    format_hms(study_eta(sp, isfinite(p->eta_s) ? p->eta_s : 0), b, sizeof b);
    fprintf(sp->log, "[%d/%d] step %lld/%lld, loss %.4f, run ETA %s, study ETA %s\n", sp->index, sp->total,
            (long long)p->step, (long long)p->total_steps, p->loss, a, b);
}

static void do_run(const study *S, run *r, study_progress *sp)
{
    char dir[1100], metrics[1200], bad[1200];
    lc_study_run_dir(S, r, dir, sizeof dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
    lc_train_opts o;
    lc_train_opts_init(&o);
    /* a diverged run is a result (its table cell says "NaN loss"), not a failure */
    o.on_nonfinite = LC_NONFINITE_CONTINUE;
    sp->t_run = sp->last = lc_now_s();
    if (!S->o.verbose) {
        o.progress_fn = on_study_progress;
        o.progress_ctx = sp;
    }
    o.model_path = S->model;
    o.data_spec = S->data;
    if (r->fail) { /* failure injection: a data spec that cannot be read */
        snprintf(bad, sizeof bad, "mnist:%s/no-such-data (failure injected)", dir);
        o.data_spec = bad;
    }
    o.device = S->o.device;
    o.device_only = S->o.device_only;
    if (S->o.train_opts) S->o.train_opts(&o);
    o.metrics_path = metrics;
    o.quiet = !S->o.verbose;
    o.eval_every = S->eval_every;
    o.data.per_class = S->per_class;
    o.data.train_subset = S->train_subset;
    o.data.test_subset = S->test_subset;
    o.train_only = r->train_only[0] ? r->train_only : NULL;
    o.fixed_gating = r->fixed;
    o.flip = S->flip == 1;
    snprintf(o.spec.optimizer, sizeof o.spec.optimizer, "%s", r->optimizer);
    o.spec.layca = r->layca;
    o.spec.lr = r->lr;
    o.spec.momentum = r->momentum;
    o.spec.nesterov = 0;
    o.spec.alpha = r->alpha;
    o.spec.weight_decay = r->weight_decay;
    o.spec.n_milestones = r->sched.n;
    memcpy(o.spec.milestones, r->sched.ms, sizeof o.spec.milestones);
    o.spec.factor = r->sched.n > 0 ? r->sched.factor : 1.0;
    if (r->steps > 0) o.spec.steps = r->steps;
    else o.spec.epochs = r->epochs;
    o.spec.batch = r->batch;
    o.spec.seed = r->seed;

    lc_log_level lvl = lc_log_get_level();
    if (!S->o.verbose && lvl == LC_LOG_INFO) lc_log_set_level(LC_LOG_WARN);
    double t0 = lc_now_s();
    lc_train_result res;
    lc_error_clear();
    memset(&res, 0, sizeof res);
    lc_status st = lc_mkdirs(dir);
    if (st == LC_OK) st = lc_train_run(&o, &res);
    r->wall_s = lc_now_s() - t0;
    lc_log_set_level(lvl);
    r->message[0] = 0;
    if (st != LC_OK) {
        r->status = R_ERROR;
        snprintf(r->message, sizeof r->message, "%s", lc_error_message());
        lc_train_result_free(&res);
        return;
    }
    r->status = R_OK;
    r->test_acc = res.test_acc;
    r->test_loss = res.test_loss;
    r->train_acc = res.train_acc;
    r->train_loss = res.train_loss;
    r->steps_done = (double)res.steps;
    r->epochs_done = res.epochs;
    r->train_s = res.seconds;
    /* the final rotation: the metrics file's last rotation record */
    lc_metrics m;
    if (lc_metrics_load(metrics, &m) == LC_OK) {
        if (m.n_rot > 0) {
            r->n_layers = m.n_layers;
            r->rot_med = lc_study_median(m.rot[m.n_rot - 1].rotation, m.n_layers, &r->rot_min, &r->rot_max);
        }
        lc_metrics_deinit(&m);
    } else {
        lc_error_clear();
        r->n_layers = res.n_layers;
        r->rot_med = lc_study_median(res.rotation, res.n_layers, &r->rot_min, &r->rot_max);
    }
    lc_train_result_free(&res);
}


lc_status lc_study_plan_text(const lc_study *S, lc_strbuf *b)
{
    lc_strbuf_printf(b, "study %s, %s scale, %d runs, folder %s\n", S->name, S->quick ? "quick" : "paper", S->n_runs,
                     S->out);
    for (int i = 0; i < S->n_notes; i++) lc_strbuf_printf(b, "  scale: %s\n", S->notes[i]);
    for (int i = 0; i < S->n_runs; i++) {
        run r = S->runs[i];
        char d[512], cfg[4096];
        lc_study_run_desc(&r, d, sizeof d);
        const char *state = "";
        if (lc_study_load_result(S, &r, cfg, sizeof cfg)) state = r.status == R_OK ? "  [finished]" : "  [failed]";
        lc_strbuf_printf(b, "%3d  %-22s %s%s\n", i + 1, r.id, d, state);
    }
    return b->oom ? LC_ERR(LC_ERR_NOMEM, "out of memory") : LC_OK;
}

/* The study's scale, loudly, on the log */
static void announce(const study *S)
{
    fprintf(S->log, "study %s: %d runs in %s, %s scale%s\n", S->name, S->n_runs, S->out, S->quick ? "QUICK" : "paper",
            S->o.scale < 0 ? (S->quick ? " (the default on a CPU device; --scale paper for the paper's settings)"
                                       : " (the default on this device; --scale quick for a short version)")
                           : "");
    for (int i = 0; i < S->n_notes; i++) fprintf(S->log, "  %s: %s\n", S->quick ? "QUICK" : "note", S->notes[i]);
}

/* The runs finished earlier: kept unless their settings changed or
 * `rerun` names them. */
static void load_finished(study *S)
{
    for (int i = 0; i < S->n_runs; i++) {
        run *r = &S->runs[i];
        char cfg[4096];
        if (!lc_study_load_result(S, r, cfg, sizeof cfg)) continue;
        if (strcmp(cfg, r->config)) {
            fprintf(S->log, "study: run %s was made with other settings; running it again\n", r->id);
            r->status = R_PENDING;
            r->message[0] = 0;
            continue;
        }
        if (S->o.rerun && strstr(r->id, S->o.rerun)) {
            fprintf(S->log, "study: running %s again (--rerun %s)\n", r->id, S->o.rerun);
            r->status = R_PENDING;
            r->message[0] = 0;
            continue;
        }
        r->loaded = true;
    }
}

static bool skipped(const study *S, const run *r)
{
    return r->loaded && (r->status == R_OK || (r->status == R_ERROR && !S->o.retry_failed));
}

/* One run not yet finished: run it, say how it went, record it. */
static lc_status run_one(study *S, int i, study_progress *sp, lc_study_summary *sum)
{
    run *r = &S->runs[i];
    char d[512];
    lc_study_run_desc(r, d, sizeof d);
    fprintf(S->log, "[%d/%d] %s: %s\n", i + 1, S->n_runs, r->id, d);
    sp->index = i + 1;
    do_run(S, r, sp);
    sp->done_s += r->wall_s;
    sp->done++;
    r->loaded = false;
    sum->new_runs++;
    if (r->status == R_OK) {
        char a[32], b[32], c[32];
        format_hms(study_eta(sp, 0), c, sizeof c);
        fprintf(S->log, "[%d/%d] %s: test acc %s%%, train acc %s%% (%.1f s); study ETA %s\n", i + 1, S->n_runs, r->id,
                lc_study_fmt_pct(a, sizeof a, r->test_acc), lc_study_fmt_pct(b, sizeof b, r->train_acc), r->wall_s, c);
    } else {
        sum->failed_now++;
        fprintf(S->log, "[%d/%d] %s: FAILED: %s; recorded, going on\n", i + 1, S->n_runs, r->id, r->message);
    }
    LC_TRY(lc_study_write_result(S, r));
    if (S->o.parallel_runs > 1) return LC_OK; /* rank 0 writes the results once all are done */
    return lc_study_write_results(S);
}

/* The runs in order, the finished ones skipped; stops after max_runs new ones. */
static lc_status run_all(study *S, lc_study_summary *sum)
{
    study_progress sp = {.total = S->n_runs, .log = S->log};
    int todo = 0;
    for (int i = 0; i < S->n_runs; i++) todo += !skipped(S, &S->runs[i]);
    if (S->o.max_runs > 0 && todo > S->o.max_runs) todo = (int)S->o.max_runs;
    int K = S->o.parallel_runs > 1 ? S->o.parallel_runs : 1, pending = 0;
    for (int i = 0; i < S->n_runs; i++) {
        run *r = &S->runs[i];
        /* --parallel-runs: the pending runs dealt round-robin to the ranks */
        if (K > 1 && !skipped(S, r) && pending++ % K != lc_dist_rank(S->o.dist)) continue;
        if (r->loaded && r->status == R_OK) { fprintf(S->log, "skipping finished run %s\n", r->id); continue; }
        if (r->loaded && r->status == R_ERROR && !S->o.retry_failed) {
            fprintf(S->log, "skipping failed run %s (--retry-failed reruns it): %s\n", r->id, r->message);
            continue;
        }
        if (S->o.max_runs > 0 && sum->new_runs >= S->o.max_runs) { sum->stopped = true; break; }
        sp.left_after = todo - (int)sum->new_runs - 1;
        if (sp.left_after < 0) sp.left_after = 0;
        LC_TRY(run_one(S, i, &sp, sum));
    }
    if (K > 1) return LC_OK;
    return lc_study_write_results(S);
}

/* --parallel-runs: the ranks' counts added, then rank 0 reads every run's
 * result back. */
static lc_status gather_runs(study *S, lc_study_summary *sum)
{
    double v[2] = {(double)sum->new_runs, sum->failed_now};
    LC_TRY(lc_dist_sum_f64(S->o.dist, v, 2));
    sum->new_runs = (long long)v[0];
    sum->failed_now = (int)v[1];
    LC_TRY(lc_dist_barrier(S->o.dist));
    if (lc_dist_rank(S->o.dist) != 0) return LC_OK;
    load_finished(S);
    return lc_study_write_results(S);
}

static lc_status check_parallel(const study *S)
{
    int K = S->o.parallel_runs, size = lc_dist_size(S->o.dist);
    if (K <= 1 || K == size) return LC_OK;
    return LC_ERR(LC_ERR_INVALID, "--parallel-runs %d needs as many processes (mpirun -np %d), this study has %d", K, K,
                  size);
}

lc_status lc_study_run(lc_study *S, lc_strbuf *report, lc_study_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    sum->runs = S->n_runs;
    LC_TRY(check_parallel(S));
    bool first = lc_dist_rank(S->o.dist) == 0 || S->o.parallel_runs <= 1;
    if (first) announce(S);
    LC_TRY(lc_study_check_params(S));
    char path[1200];
    snprintf(path, sizeof path, "%s/runs", S->out);
    LC_TRY(lc_mkdirs(path));
    snprintf(path, sizeof path, "%s/study.json", S->out);
    if (first) LC_TRY(lc_file_write_atomic(path, S->params.s, S->params.len));
    load_finished(S);
    double t_start = lc_now_s();
    LC_TRY(run_all(S, sum));
    if (S->o.parallel_runs > 1) {
        LC_TRY(gather_runs(S, sum));
        if (!first) return LC_OK;
    }

    /* the table and the figures */
    LC_TRY(lc_study_table_text(S, report));
    lc_status fst = lc_study_figures(S, report);
    lc_strbuf_printf(report, "results: %s/results.csv, %s/results.json, %s/table.txt\n", S->out, S->out, S->out);
    if (fst != LC_OK) return fst;
    for (int i = 0; i < S->n_runs; i++) {
        sum->done += S->runs[i].status != R_PENDING;
        sum->failed += S->runs[i].status == R_ERROR;
    }
    fprintf(S->log, "study %s: %lld new run%s in %.1f s; %d of %d runs finished (%d failed)\n", S->name, sum->new_runs,
            sum->new_runs == 1 ? "" : "s", lc_now_s() - t_start, sum->done, S->n_runs, sum->failed);
    if (sum->stopped)
        fprintf(S->log, "study %s: stopped after %lld new runs (--max-runs); run the same command again to go on\n",
                S->name, sum->new_runs);
    return LC_OK;
}
