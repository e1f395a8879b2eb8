/* Progress on stderr: on a terminal one live line (step/total, rate, ETA,
 * running loss) redrawn a few times a second; otherwise a plain line about
 * every 10 s; the epoch summaries always (unless quiet).  A caller's
 * function may take the reports instead. */
#include "trainer_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void format_eta(double s, char *buf, size_t cap)
{
    if (!isfinite(s) || s < 0) {
        snprintf(buf, cap, "?");
        return;
    }
    long long v = (long long)(s + 0.5);
    if (v >= 3600) snprintf(buf, cap, "%lldh%02lldm", v / 3600, (v / 60) % 60);
    else if (v >= 60) snprintf(buf, cap, "%lldm%02llds", v / 60, v % 60);
    else snprintf(buf, cap, "%llds", v);
}

void lc_trainer_progress(lc_trainer *t, bool epoch_end, const char *line)
{
    double now = lc_now_s(), elapsed = now - t->t_start;
    lc_train_progress p = {
        .step = t->step, .total_steps = t->total_steps, .epoch = epoch_end ? t->epoch : t->epoch + 1,
        .epochs = t->epochs, .in_epoch = t->in_epoch, .per_epoch = t->per_epoch, .loss = t->running_loss,
        .steps_per_s = t->train_time > 0 ? (double)t->steps_here / t->train_time : NAN, .elapsed_s = elapsed,
        .epoch_end = epoch_end, .line = line};
    if (p.epoch > p.epochs) p.epoch = p.epochs;
    /* wall time per step in this process, evaluations included */
    p.eta_s = t->steps_here > 0 ? elapsed / (double)t->steps_here * (double)(t->total_steps - t->step) : NAN;
    if (t->o.progress_fn) {
        t->o.progress_fn(t->o.progress_ctx, &p);
        return;
    }
    lc_progress_mode mode = t->o.quiet ? LC_PROGRESS_QUIET : t->o.progress;
    if (mode == LC_PROGRESS_QUIET) return;
    bool live = mode == LC_PROGRESS_AUTO && isatty(STDERR_FILENO);
    if (epoch_end) {
        if (t->live_shown) fputs("\r\033[K", stderr);
        t->live_shown = false;
        if (line) fprintf(stderr, "%s\n", line);
        t->last_print = now;
        return;
    }
    if (now - t->last_print < (live ? 0.25 : 10.0)) return;
    t->last_print = now;
    char eta[32], rate[32] = "?";
    format_eta(p.eta_s, eta, sizeof eta);
    if (isfinite(p.steps_per_s)) snprintf(rate, sizeof rate, "%.1f", p.steps_per_s);
    char buf[256];
    snprintf(buf, sizeof buf, "epoch %d/%d  step %lld/%lld  %s steps/s  ETA %s  loss %.4f", p.epoch, p.epochs,
             (long long)p.step, (long long)p.total_steps, rate, eta, p.loss);
    if (live) {
        fprintf(stderr, "\r\033[K%s", buf);
        t->live_shown = true;
    } else {
        fprintf(stderr, "%s\n", buf);
    }
    fflush(stderr);
}

void lc_trainer_progress_end(lc_trainer *t)
{
    if (t->live_shown) fputs("\r\033[K", stderr);
    t->live_shown = false;
}
