/* The metrics file (JSON lines; its records are written by src/model's
 * lc_metrics_line_*, the file's one schema) and the run's resolved settings.
 *
 * Every line is built in memory and handed to the file in one write, so a
 * kill leaves at most one incomplete LAST line, which a resume cuts off (the
 * checkpoint holds the file's length and a hash of its bytes) and the
 * reader ignores.  Numbers that are not finite are written as null, with
 * "nonfinite": true on the line: the file stays JSON.  A failed write (a
 * full disk, /dev/full) is an error that stops the run. */
#include "trainer_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lc_metrics.h"

#ifndef LAYCA_VERSION
#define LAYCA_VERSION "unknown"
#endif

/* ---- settings ---- */

static lc_setting *add(lc_trainer *t, const char *key, bool must_match)
{
    lc_setting *s = &t->settings[t->n_settings < LC_MAX_SETTINGS ? t->n_settings++ : LC_MAX_SETTINGS - 1];
    snprintf(s->key, sizeof s->key, "%s", key);
    s->must_match = must_match;
    s->value[0] = 0;
    return s;
}

static void set_str(lc_trainer *t, const char *key, const char *v, bool must_match)
{
    lc_setting *s = add(t, key, must_match);
    if (!v) {
        snprintf(s->value, sizeof s->value, "null");
        return;
    }
    lc_strbuf b = {0};
    lc_strbuf_json_string(&b, v);
    snprintf(s->value, sizeof s->value, "%s", b.s ? b.s : "null");
    lc_strbuf_free(&b);
}

static void set_num(lc_trainer *t, const char *key, double v, bool must_match)
{
    lc_setting *s = add(t, key, must_match);
    lc_strbuf b = {0};
    lc_strbuf_json_number(&b, "%.17g", v);
    snprintf(s->value, sizeof s->value, "%s", b.s ? b.s : "null");
    lc_strbuf_free(&b);
}

static void set_int(lc_trainer *t, const char *key, long long v, bool must_match)
{
    snprintf(add(t, key, must_match)->value, sizeof t->settings[0].value, "%lld", v);
}

static void set_bool(lc_trainer *t, const char *key, bool v, bool must_match)
{
    snprintf(add(t, key, must_match)->value, sizeof t->settings[0].value, "%s", v ? "true" : "false");
}

static void set_hash(lc_trainer *t, const char *key, uint64_t h, bool must_match)
{
    snprintf(add(t, key, must_match)->value, sizeof t->settings[0].value, "\"%016llx\"", (unsigned long long)h);
}

void lc_trainer_build_settings(lc_trainer *t)
{
    const lc_train_opts *o = &t->o;
    const lc_train_spec *s = &t->spec;
    t->n_settings = 0;
    set_str(t, "layca_version", LAYCA_VERSION, false);
    set_str(t, "model", o->model_path, false);
    set_str(t, "model_name", t->g->name, true);
    set_hash(t, "model_hash", t->model_hash, true);
    set_str(t, "optimizer", s->optimizer, true);
    set_bool(t, "layca", s->layca != 0, true);
    set_num(t, "lr", s->lr, true);
    set_num(t, "momentum", s->momentum, true);
    set_bool(t, "nesterov", s->nesterov != 0, true);
    set_num(t, "alpha", s->alpha, true);
    set_num(t, "weight_decay", s->weight_decay, true);
    {
        lc_setting *st = add(t, "schedule", true);
        size_t n = (size_t)snprintf(st->value, sizeof st->value, "{\"milestones\": [");
        for (int i = 0; i < s->n_milestones && n < sizeof st->value; i++)
            n += (size_t)snprintf(st->value + n, sizeof st->value - n, "%s%d", i ? ", " : "", s->milestones[i]);
        if (n < sizeof st->value) snprintf(st->value + n, sizeof st->value - n, "], \"factor\": %.17g}", s->factor);
    }
    /* the run's length may change on resume (to train longer) */
    set_int(t, "epochs", t->epochs, false);
    set_int(t, "steps", s->steps > 0 ? s->steps : t->total_steps, false);
    set_int(t, "batch", t->batch, true);
    set_int(t, "seed", s->seed, true);
    set_str(t, "data", o->data_spec, true);
    set_int(t, "per_class", o->data.per_class, true);
    set_int(t, "train_subset", o->data.train_subset, true);
    set_int(t, "test_subset", o->data.test_subset, true);
    set_num(t, "val_split", o->data.val_split, true);
    set_int(t, "train_examples", t->train.n, true);
    set_int(t, "test_examples", t->test.n, true);
    {
        lc_setting *st = add(t, "normalisation", true);
        if (o->data.no_normalize && o->data.fixed_nstats <= 0) {
            snprintf(st->value, sizeof st->value, "null");
        } else {
            size_t n = (size_t)snprintf(st->value, sizeof st->value, "{\"mean\": [");
            for (int c = 0; c < t->dinfo.nstats && n < sizeof st->value; c++)
                n += (size_t)snprintf(st->value + n, sizeof st->value - n, "%s%.17g", c ? ", " : "", t->dinfo.mean[c]);
            n += (size_t)snprintf(st->value + n, n < sizeof st->value ? sizeof st->value - n : 0, "], \"std\": [");
            for (int c = 0; c < t->dinfo.nstats && n < sizeof st->value; c++)
                n += (size_t)snprintf(st->value + n, sizeof st->value - n, "%s%.17g", c ? ", " : "", t->dinfo.std[c]);
            if (n < sizeof st->value) snprintf(st->value + n, sizeof st->value - n, "]}");
        }
    }
    set_bool(t, "shuffle", !o->no_shuffle, true);
    set_bool(t, "flip", o->flip, true);
    set_num(t, "shift", o->shift, true);
    set_str(t, "init", o->init_path, false);
    if (o->init_map) set_str(t, "init_map", o->init_map, false);
    if (o->init_path) set_hash(t, "init_hash", t->init_hash, true);
    else set_str(t, "init_hash", NULL, true);
    set_str(t, "train_only", o->train_only, true);
    set_bool(t, "fixed_gating", o->fixed_gating, true);
    set_str(t, "silhouette", o->silhouette, true);
    set_bool(t, "layca_skip_bias", o->layca_skip_non_kernel, true);
    set_int(t, "rotation_every", o->rotation_every, true);
    set_int(t, "log_every", t->log_every, true);
    set_int(t, "eval_every", t->every, true);
    set_bool(t, "fused", !o->no_fuse, false);
    set_str(t, "device", t->rt->info.name, false);
    set_str(t, "platform", t->rt->info.platform_name, false);
    set_str(t, "driver", t->rt->info.driver_version, false);
    set_bool(t, "device_only", o->device_only, false);
    set_int(t, "ranks", t->ranks, true); /* data parallelism: a run resumes on as many ranks */
}

const char *lc_trainer_setting(const lc_trainer *t, const char *key)
{
    for (int i = 0; i < t->n_settings; i++)
        if (!strcmp(t->settings[i].key, key)) return t->settings[i].value;
    return NULL;
}

/* ---- the file ---- */

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
#define HASH_START 0xcbf29ce484222325ULL

/* Writes the whole buffer (one write unless the kernel splits it). */
static lc_status write_all(lc_trainer *t, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(t->metrics_fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return LC_ERR(LC_ERR_IO, "%s: cannot write the metrics: %s", t->o.metrics_path,
                          w < 0 ? strerror(errno) : "nothing written");
        t->metrics_hash = hash_bytes(t->metrics_hash, p, (size_t)w);
        t->metrics_bytes += (uint64_t)w;
        p += w;
        n -= (size_t)w;
    }
    return LC_OK;
}

static lc_status emit(lc_trainer *t)
{
    lc_strbuf *b = &t->line;
    lc_strbuf_printf(b, "\n");
    if (b->oom) {
        lc_strbuf_clear(b);
        return LC_ERR(LC_ERR_NOMEM, "out of memory for a metrics line");
    }
    lc_status st = t->metrics_fd >= 0 ? write_all(t, b->s, b->len) : LC_OK;
    lc_strbuf_clear(b);
    return st;
}

lc_status lc_metrics_open_fresh(lc_trainer *t)
{
    t->metrics_bytes = 0;
    t->metrics_hash = HASH_START;
    if (!t->o.metrics_path) return LC_OK;
    t->metrics_fd = open(t->o.metrics_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0644);
    if (t->metrics_fd < 0)
        return LC_ERR(LC_ERR_IO, "%s: cannot write the metrics file: %s", t->o.metrics_path, strerror(errno));
    return LC_OK;
}

lc_status lc_metrics_open_resume(lc_trainer *t, uint64_t bytes, uint64_t hash)
{
    t->metrics_bytes = bytes;
    t->metrics_hash = hash;
    if (!t->o.metrics_path) return LC_OK;
    const char *p = t->o.metrics_path;
    int fd = open(p, O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT && bytes == 0) return lc_metrics_open_fresh(t);
        return LC_ERR(LC_ERR_IO, "%s: cannot open the metrics file to resume it: %s (the checkpoint expects %llu bytes)",
                      p, strerror(errno), (unsigned long long)bytes);
    }
    /* the first `bytes` bytes must be this run's */
    uint64_t h = HASH_START, got = 0;
    char buf[65536];
    while (got < bytes) {
        ssize_t r = read(fd, buf, (size_t)LC_MIN((uint64_t)sizeof buf, bytes - got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        h = hash_bytes(h, buf, (size_t)r);
        got += (uint64_t)r;
    }
    lc_status st = LC_OK;
    if (got < bytes)
        st = LC_ERR(LC_ERR_INVALID, "%s: the metrics file holds %llu bytes, the checkpoint expects at least %llu: "
                    "it is not this run's metrics file (give the same --metrics as the interrupted run)",
                    p, (unsigned long long)got, (unsigned long long)bytes);
    else if (h != hash)
        st = LC_ERR(LC_ERR_INVALID, "%s: the metrics file's first %llu bytes differ from those the checkpoint "
                    "recorded: it is not this run's metrics file", p, (unsigned long long)bytes);
    else if (ftruncate(fd, (off_t)bytes) != 0 || lseek(fd, 0, SEEK_END) < 0)
        st = LC_ERR(LC_ERR_IO, "%s: cannot cut the metrics file back to the checkpoint's %llu bytes: %s", p,
                    (unsigned long long)bytes, strerror(errno));
    if (st != LC_OK) {
        close(fd);
        return st;
    }
    t->metrics_fd = fd;
    return LC_OK;
}

lc_status lc_metrics_sync(lc_trainer *t)
{
    if (t->metrics_fd >= 0 && fsync(t->metrics_fd) != 0 && errno != EINVAL)
        return LC_ERR(LC_ERR_IO, "%s: cannot sync the metrics file: %s", t->o.metrics_path, strerror(errno));
    return LC_OK;
}

void lc_metrics_close(lc_trainer *t)
{
    if (t->metrics_fd >= 0) close(t->metrics_fd);
    t->metrics_fd = -1;
    lc_strbuf_free(&t->line);
}

/* ---- records ---- */

lc_status lc_record_settings(lc_trainer *t)
{
    const char *keys[LC_MAX_SETTINGS], *values[LC_MAX_SETTINGS];
    for (int i = 0; i < t->n_settings; i++) {
        keys[i] = t->settings[i].key;
        values[i] = t->settings[i].value;
    }
    lc_metrics_line_settings(&t->line, t->n_settings, keys, values, t->L, t->layer_name);
    return emit(t);
}

lc_status lc_record_eval(lc_trainer *t, double time_s)
{
    lc_eval_rec r = {.epoch = t->epoch, .step = (double)t->step, .lr = t->lr, .train_loss = t->trl, .train_acc = t->tra,
                     .test_loss = t->tel, .test_acc = t->tea, .test_top5 = t->tea5, .has_val = t->val.n > 0,
                     .val_loss = t->vl, .val_acc = t->va, .val_top5 = t->va5, .time_s = time_s};
    lc_metrics_line_eval(&t->line, &r);
    return emit(t);
}

lc_status lc_record_rotation(lc_trainer *t, double epoch, int64_t step)
{
    LC_TRY(lc_optim_rotation(t->opt, t->rot_opt, t->norm_opt));
    for (int j = 0; j < t->L; j++) {
        t->rot[t->layer_of_kernel[j]] = t->rot_opt[j];
        t->norm[t->layer_of_kernel[j]] = t->norm_opt[j];
    }
    if (t->metrics_fd < 0) return LC_OK;
    lc_rot_rec r = {.epoch = epoch, .step = (double)step, .rotation = t->rot, .norm = t->norm};
    lc_metrics_line_rotation(&t->line, &r, t->L, t->layer_name);
    return emit(t);
}

lc_status lc_record_loss(lc_trainer *t, const lc_loss_rec *r)
{
    lc_metrics_line_loss(&t->line, r);
    return emit(t);
}

lc_status lc_record_silhouette(lc_trainer *t, int epoch)
{
    lc_metrics_line_silhouette(&t->line, epoch, t->step, t->o.silhouette, t->sil_value);
    return emit(t);
}

lc_status lc_record_nonfinite(lc_trainer *t, int64_t step, double loss, const char *where)
{
    lc_metrics_line_nonfinite(&t->line, t->epoch, step, loss, where);
    return emit(t);
}
