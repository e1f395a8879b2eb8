/* Checkpoints: the whole training state in one safetensors file, written
 * atomically (lc_file_write_atomic: temporary file, fsync, rename).
 *
 * Tensors: every model parameter under its PyTorch name (F32; batch-norm
 * running statistics included), so the file also loads as weights; and the
 * training state under "layca." names: the optimizer's state arenas and
 * initial weights (F32), Layca's initial norms (F64) and the epoch's data
 * order (I32).  Metadata: "layca.checkpoint": "1", the run's settings
 * ("layca.setting.<key>", JSON text), the loop state ("layca.state.<key>":
 * steps, epoch, data position, random streams, loss accumulators as float
 * bits, the metrics file's length and hash) and a hash of every tensor's
 * bytes ("layca.checksum").  A file that fails any check is refused whole. */
#include "trainer_internal.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CKPT_PREFIX "ckpt-"
#define CKPT_SUFFIX ".safetensors"

static uint64_t hash_tensors(const lc_st_tensor *t, int n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int k = 0; k < t[i].rank; k++) numel *= t[i].shape[k];
        const uint8_t *p = t[i].raw ? t[i].raw : (const void *)t[i].data;
        size_t bytes = (size_t)numel * lc_st_dtype_size(t[i].dtype);
        h = lc_hash64(t[i].name, strlen(t[i].name), h);
        h = lc_hash64(p, bytes, h);
    }
    return h;
}

/* A pool of metadata strings. */
typedef struct meta {
    const char *kv[2 * (LC_MAX_SETTINGS + 40) + 1];
    char store[LC_MAX_SETTINGS + 40][1200];
    int n;
} meta;

static void meta_add(meta *m, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void meta_add(meta *m, const char *key, const char *fmt, ...)
{
    if (m->n >= (int)LC_COUNTOF(m->store)) return;
    char *k = m->store[m->n];
    size_t kl = (size_t)snprintf(k, 200, "%s", key) + 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k + kl, sizeof m->store[0] - kl, fmt, ap);
    va_end(ap);
    m->kv[2 * m->n] = k;
    m->kv[2 * m->n + 1] = k + kl;
    m->n++;
    m->kv[2 * m->n] = NULL;
}

static void rng_str(const lc_rng *r, char *out, size_t cap)
{
    snprintf(out, cap, "%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64, r->s[0], r->s[1], r->s[2], r->s[3]);
}

static bool rng_parse(const char *s, lc_rng *r)
{
    return s && sscanf(s, "%" SCNx64 ",%" SCNx64 ",%" SCNx64 ",%" SCNx64, &r->s[0], &r->s[1], &r->s[2], &r->s[3]) == 4;
}

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

lc_status lc_trainer_save_checkpoint(lc_trainer *t, const char *path)
{
    lc_graph *g = t->g;
    /* the pending loss read is taken now, so that its record is in the
     * metrics this checkpoint covers */
    LC_TRY(lc_trainer_watch_loss(t, false));
    LC_TRY(lc_metrics_sync(t));
    LC_TRY(lc_exec_read_params(t->ex, t->host_params));
    float acc[3], *rank_acc; /* with several ranks: each rank's, and acc their sum */
    LC_TRY(lc_exec_stats_get(t->ex, acc));
    LC_TRY(lc_train_dist_acc_save(t, acc, &rank_acc));
    if (t->rank != 0) { /* rank 0 writes */
        free(rank_acc);
        return LC_OK;
    }
    lc_optim_state os;
    lc_status st = lc_optim_state_read(t->opt, &os);
    if (st != LC_OK) {
        free(rank_acc);
        return st;
    }
    int nt = g->n_params + 6;
    lc_st_tensor *ts = calloc((size_t)nt, sizeof *ts);
    meta *m = calloc(1, sizeof *m);
    if (!ts || !m) {
        free(ts);
        free(m);
        free(rank_acc);
        lc_optim_state_free(&os);
        return LC_ERR(LC_ERR_NOMEM, "out of memory");
    }
    int n = 0;
    for (int i = 0; i < g->n_params; i++, n++) {
        const lc_node *pn = &g->nodes[g->params[i].node];
        snprintf(ts[n].name, sizeof ts[n].name, "%s", pn->name);
        ts[n].rank = pn->shape.rank;
        for (int k = 0; k < pn->shape.rank; k++) ts[n].shape[k] = pn->shape.dims[k];
        ts[n].data = t->host_params + g->params[i].offset;
    }
    for (int a = 0; a < os.n_arenas; a++, n++) {
        snprintf(ts[n].name, sizeof ts[n].name, "layca.optim.state%d", a);
        ts[n].rank = 1;
        ts[n].shape[0] = os.floats;
        ts[n].data = os.arena[a];
    }
    ts[n] = (lc_st_tensor){.name = "layca.optim.w0", .rank = 1, .shape = {os.floats}, .data = os.w0};
    n++;
    ts[n] = (lc_st_tensor){.name = "layca.optim.n0", .rank = 1, .shape = {os.n_tensors}, .dtype = LC_ST_F64, .raw = os.n0};
    n++;
    ts[n] = (lc_st_tensor){.name = "layca.data.order", .rank = 1, .shape = {t->train.n}, .dtype = LC_ST_I32,
                           .raw = t->tb.order};
    n++;
    if (rank_acc) /* each rank's loss and hit sums, exact */
        ts[n++] = (lc_st_tensor){.name = "layca.dist.accumulators", .rank = 2, .shape = {t->ranks, 3},
                                 .data = rank_acc};

    meta_add(m, "format", "pt");
    meta_add(m, "producer", "layca");
    meta_add(m, "layca.checkpoint", "1");
    meta_add(m, "model", "%s", g->name);
    for (int i = 0; i < t->n_settings; i++) {
        char key[64];
        snprintf(key, sizeof key, "layca.setting.%s", t->settings[i].key);
        meta_add(m, key, "%s", t->settings[i].value);
    }
    char r1[80], r2[80];
    rng_str(&t->tb.rng, r1, sizeof r1);
    rng_str(&t->tb.aug_rng, r2, sizeof r2);
    meta_add(m, "layca.state.step", "%lld", (long long)t->step);
    meta_add(m, "layca.state.epoch", "%d", t->epoch);
    meta_add(m, "layca.state.in_epoch", "%lld", (long long)t->in_epoch);
    meta_add(m, "layca.state.seen", "%lld", (long long)t->seen);
    meta_add(m, "layca.state.epoch_open", "%d", t->epoch_open ? 1 : 0);
    meta_add(m, "layca.state.elapsed_s", "%.17g", t->elapsed_before + (lc_now_s() - t->t_start));
    meta_add(m, "layca.state.metrics_bytes", "%llu", (unsigned long long)t->metrics_bytes);
    meta_add(m, "layca.state.metrics_hash", "%016llx", (unsigned long long)t->metrics_hash);
    meta_add(m, "layca.state.exec_step", "%llu", (unsigned long long)lc_exec_step(t->ex));
    meta_add(m, "layca.state.optim_steps", "%lld", (long long)os.steps);
    meta_add(m, "layca.state.batcher_pos", "%lld", (long long)t->tb.pos);
    meta_add(m, "layca.state.batcher_epoch", "%lld", (long long)t->tb.epoch);
    meta_add(m, "layca.state.batcher_rng", "%s", r1);
    meta_add(m, "layca.state.augment_rng", "%s", r2);
    meta_add(m, "layca.state.accumulators", "%08x,%08x,%08x", float_bits(acc[0]), float_bits(acc[1]),
             float_bits(acc[2]));
    meta_add(m, "layca.state.loss_window", "%08x,%08x,%08x,%lld", float_bits(t->win_acc[0]), float_bits(t->win_acc[1]),
             float_bits(t->win_acc[2]), (long long)t->win_seen);
    meta_add(m, "layca.state.results", "%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g", t->trl, t->tra,
             t->tel, t->tea, t->tea5, t->vl, t->va, t->va5, t->sil_value);
    meta_add(m, "layca.checksum", "%016llx", (unsigned long long)hash_tensors(ts, n));
    st = lc_safetensors_write(path, ts, n, m->kv);
    lc_optim_state_free(&os);
    free(rank_acc);
    free(ts);
    free(m);
    if (st != LC_OK) return lc_error_prefix(st, "checkpoint");
    return LC_OK;
}

/* ---- reading ---- */

static const char *need(const lc_st_file *f, const char *path, const char *key, lc_status *st)
{
    const char *v = lc_st_file_meta(f, key);
    if (!v && *st == LC_OK) *st = LC_ERR(LC_ERR_FORMAT, "%s: checkpoint entry '%s' is missing", path, key);
    return v;
}

static bool parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno) return false;
    *out = v;
    return true;
}

static bool parse_u64(const char *s, uint64_t *out, int base)
{
    if (!s || !*s || *s == '-') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (*end || errno) return false;
    *out = v;
    return true;
}

static const lc_st_tensor *tensor(const lc_st_file *f, const char *path, const char *name, lc_st_dtype dt,
                                  int64_t numel, lc_status *st)
{
    const lc_st_tensor *x = lc_st_file_find(f, name);
    if (*st != LC_OK) return x;
    int64_t got = 1;
    for (int k = 0; x && k < x->rank; k++) got *= x->shape[k];
    if (!x || x->dtype != dt || got != numel)
        *st = LC_ERR(LC_ERR_FORMAT, "%s: checkpoint tensor '%s' is missing or is not %lld %s values", path, name,
                     (long long)numel, lc_st_dtype_name(dt));
    return x;
}

lc_status lc_checkpoint_parse(uint8_t *bytes, size_t len, const char *where, lc_checkpoint *c)
{
    memset(c, 0, sizeof *c);
    LC_TRY(lc_safetensors_parse(bytes, len, where, &c->file));
    const lc_st_file *f = &c->file;
    lc_status st = LC_OK;
    const char *mark = lc_st_file_meta(f, "layca.checkpoint");
    uint64_t sum;
    if (!mark || strcmp(mark, "1")) {
        st = LC_ERR(LC_ERR_FORMAT, "%s: not a layca checkpoint (weights saved with --save can start a run with "
                    "--init, not --resume)", where);
    } else if (!parse_u64(need(f, where, "layca.checksum", &st), &sum, 16) || sum != hash_tensors(f->tensors, f->n)) {
        if (st == LC_OK) st = LC_ERR(LC_ERR_FORMAT, "%s: the checkpoint's data does not match its checksum (damaged)", where);
    }
    static const char *const keys[] = {"optim_steps", "exec_step",  "batcher_pos", "batcher_epoch", "step",
                                       "epoch",       "in_epoch",   "seen",        "epoch_open",    "metrics_bytes",
                                       "metrics_hash", "batcher_rng", "augment_rng", "accumulators", "results",
                                       "elapsed_s"};
    const char *v[LC_COUNTOF(keys)];
    for (size_t i = 0; i < LC_COUNTOF(keys) && st == LC_OK; i++) {
        char key[64];
        snprintf(key, sizeof key, "layca.state.%s", keys[i]);
        v[i] = need(f, where, key, &st);
    }
    if (st != LC_OK) {
        lc_checkpoint_deinit(c);
        return st;
    }
    int64_t open = 0;
    uint32_t ab[3] = {0, 0, 0};
    char *end = NULL;
    bool ok = parse_i64(v[0], &c->optim_steps) && parse_i64(v[1], &c->exec_step) && parse_i64(v[2], &c->batcher_pos) &&
              parse_i64(v[3], &c->batcher_epoch) && parse_i64(v[4], &c->step) && parse_i64(v[5], &c->epoch) &&
              parse_i64(v[6], &c->in_epoch) && parse_i64(v[7], &c->seen) && parse_i64(v[8], &open) &&
              parse_u64(v[9], &c->metrics_bytes, 10) && parse_u64(v[10], &c->metrics_hash, 16) &&
              rng_parse(v[11], &c->batcher_rng) && rng_parse(v[12], &c->augment_rng) &&
              sscanf(v[13], "%" SCNx32 ",%" SCNx32 ",%" SCNx32, &ab[0], &ab[1], &ab[2]) == 3 &&
              sscanf(v[14], "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &c->results[0], &c->results[1], &c->results[2],
                     &c->results[3], &c->results[4], &c->results[5], &c->results[6], &c->results[7],
                     &c->results[8]) == 9;
    if (ok) {
        c->elapsed_s = strtod(v[15], &end);
        ok = end != v[15] && isfinite(c->elapsed_s) && c->elapsed_s >= 0;
    }
    if (!ok || c->step < 0 || c->epoch < 0 || c->epoch > 100000000 || c->in_epoch < 0 || c->seen < 0 ||
        c->exec_step < 0 || c->batcher_pos < 0 || c->batcher_epoch < 0 || c->optim_steps != c->step ||
        (open != 0 && open != 1)) {
        lc_checkpoint_deinit(c);
        return LC_ERR(LC_ERR_FORMAT, "%s: the checkpoint's loop state is malformed or inconsistent", where);
    }
    c->epoch_open = open != 0;
    for (int k = 0; k < 3; k++) c->acc[k] = bits_float(ab[k]);
    /* optional (checkpoints before loss records): the window restarts here */
    const char *w = lc_st_file_meta(f, "layca.state.loss_window");
    long long ws = c->seen;
    if (w && (sscanf(w, "%" SCNx32 ",%" SCNx32 ",%" SCNx32 ",%lld", &ab[0], &ab[1], &ab[2], &ws) != 4 || ws < 0 ||
              ws > c->seen)) {
        lc_checkpoint_deinit(c);
        return LC_ERR(LC_ERR_FORMAT, "%s: the checkpoint's loss window ('%s') is malformed", where, w);
    }
    for (int k = 0; k < 3; k++) c->win_acc[k] = bits_float(ab[k]);
    c->win_seen = ws;
    return LC_OK;
}

void lc_checkpoint_deinit(lc_checkpoint *c)
{
    if (!c) return;
    lc_st_file_deinit(&c->file);
    memset(c, 0, sizeof *c);
}

const char *lc_checkpoint_setting(const lc_checkpoint *c, const char *key)
{
    char k[96];
    snprintf(k, sizeof k, "layca.setting.%s", key);
    return lc_st_file_meta(&c->file, k);
}

/* Everything is checked before the trainer's state is touched. */
lc_status lc_trainer_load_checkpoint(lc_trainer *t, const char *path)
{
    lc_graph *g = t->g;
    uint8_t *bytes;
    size_t len;
    LC_TRY(lc_file_read(path, &bytes, &len));
    lc_checkpoint c;
    LC_TRY(lc_checkpoint_parse(bytes, len, path, &c));
    const lc_st_file *f = &c.file;
    lc_status st = LC_OK;
    /* the same model and settings */
    for (int i = 0; i < t->n_settings && st == LC_OK; i++) {
        const lc_setting *s = &t->settings[i];
        const char *v = lc_checkpoint_setting(&c, s->key);
        if (!v && !strcmp(s->key, "ranks")) v = "1"; /* a checkpoint older than the setting */
        if (s->must_match && (!v || strcmp(v, s->value))) {
            st = LC_ERR(LC_ERR_INVALID, "%s: the checkpoint was made with %s = %.300s, this run has %s = %.300s; "
                        "resume with the same model and settings", path, s->key, v ? v : "(none)", s->key, s->value);
        } else if (v && strcmp(v, s->value) && (!strcmp(s->key, "epochs") || !strcmp(s->key, "steps"))) {
            LC_INFO("resuming with %s = %s (the checkpoint's run had %s)", s->key, s->value, v);
        } else if (v && strcmp(v, s->value) && !strcmp(s->key, "device")) {
            LC_WARN("the checkpoint was made on %s, this run uses %s: the rest of the run is not bit-identical to "
                    "an uninterrupted one", v, s->value);
        }
    }
    if (st == LC_OK && (c.epoch > t->epochs || c.in_epoch > t->per_epoch || c.seen > t->train.n ||
                        c.batcher_pos > t->train.n))
        st = LC_ERR(LC_ERR_FORMAT, "%s: the checkpoint's loop state (epoch %lld, %lld steps into it) does not fit "
                    "this run (%d epochs of %lld steps)", path, (long long)c.epoch, (long long)c.in_epoch, t->epochs,
                    (long long)t->per_epoch);
    if (st == LC_OK && c.step >= t->total_steps)
        st = LC_ERR(LC_ERR_INVALID, "%s: the checkpoint is at step %lld, this run ends at step %lld: nothing left to "
                    "train (give more --epochs or --steps to go on)", path, (long long)c.step,
                    (long long)t->total_steps);
    /* parameters */
    for (int i = 0; i < g->n_params && st == LC_OK; i++) {
        const lc_node *pn = &g->nodes[g->params[i].node];
        const lc_st_tensor *x = tensor(f, path, pn->name, LC_ST_F32, g->params[i].numel, &st);
        if (st == LC_OK) memcpy(t->host_params + g->params[i].offset, x->data, (size_t)g->params[i].numel * 4);
    }
    /* optimizer */
    lc_optim_state os;
    memset(&os, 0, sizeof os);
    if (st == LC_OK) st = lc_optim_state_read(t->opt, &os); /* the shapes to expect */
    for (int a = 0; a < os.n_arenas && st == LC_OK; a++) {
        char name[64];
        snprintf(name, sizeof name, "layca.optim.state%d", a);
        const lc_st_tensor *x = tensor(f, path, name, LC_ST_F32, os.floats, &st);
        if (st == LC_OK) memcpy(os.arena[a], x->data, (size_t)os.floats * 4);
    }
    const lc_st_tensor *w0 = tensor(f, path, "layca.optim.w0", LC_ST_F32, os.floats, &st);
    const lc_st_tensor *n0 = tensor(f, path, "layca.optim.n0", LC_ST_F64, os.n_tensors, &st);
    const lc_st_tensor *order = tensor(f, path, "layca.data.order", LC_ST_I32, t->train.n, &st);
    const lc_st_tensor *rank_acc = NULL;
    if (t->ranks > 1) {
        rank_acc = tensor(f, path, "layca.dist.accumulators", LC_ST_F32, (int64_t)t->ranks * 3, &st);
        if (st == LC_OK) memcpy(c.acc, rank_acc->data + 3 * t->rank, sizeof c.acc);
    }
    if (st == LC_OK) {
        memcpy(os.w0, w0->data, (size_t)os.floats * 4);
        memcpy(os.n0, n0->raw, (size_t)os.n_tensors * 8);
    }
    /* the data order, checked as a permutation before use */
    lc_batcher b = t->tb;
    int32_t *saved_order = NULL;
    if (st == LC_OK) {
        saved_order = malloc((size_t)t->train.n * sizeof *saved_order);
        if (!saved_order) st = LC_ERR(LC_ERR_NOMEM, "out of memory");
    }
    if (st == LC_OK) {
        memcpy(saved_order, t->tb.order, (size_t)t->train.n * sizeof *saved_order);
        memcpy(t->tb.order, order->raw, (size_t)t->train.n * sizeof *saved_order);
        t->tb.pos = c.batcher_pos;
        t->tb.epoch = c.batcher_epoch;
        t->tb.rng = c.batcher_rng;
        t->tb.aug_rng = c.augment_rng;
        st = lc_batcher_check(&t->tb);
        if (st != LC_OK) {
            lc_error_prefix(st, "%s", path);
            memcpy(t->tb.order, saved_order, (size_t)t->train.n * sizeof *saved_order);
            t->tb = b;
        }
    }
    free(saved_order);
    if (st != LC_OK) {
        lc_optim_state_free(&os);
        lc_checkpoint_deinit(&c);
        return st;
    }
    /* from here on the trainer is changed */
    os.steps = c.optim_steps;
    st = lc_optim_state_write(t->opt, &os);
    lc_optim_state_free(&os);
    if (st == LC_OK) st = lc_exec_write_params(t->ex, t->host_params);
    if (st == LC_OK) st = lc_exec_stats_set(t->ex, c.acc);
    lc_exec_set_step(t->ex, (uint64_t)c.exec_step);
    t->step = c.step;
    t->epoch = (int)c.epoch;
    t->in_epoch = c.in_epoch;
    t->seen = c.seen;
    memcpy(t->win_acc, c.win_acc, sizeof t->win_acc);
    t->win_seen = c.win_seen;
    t->epoch_open = c.epoch_open;
    t->elapsed_before = c.elapsed_s;
    const double *res = c.results;
    t->trl = res[0], t->tra = res[1], t->tel = res[2], t->tea = res[3], t->tea5 = res[4];
    t->vl = res[5], t->va = res[6], t->va5 = res[7], t->sil_value = res[8];
    float sum0 = 0; /* the epoch's loss so far, over all ranks */
    for (int r = 0; r < t->ranks; r++) {
        float a = c.acc[0];
        if (rank_acc) memcpy(&a, rank_acc->data + 3 * r, sizeof a);
        sum0 += a;
    }
    t->running_loss = c.seen > 0 ? sum0 / (double)c.seen : NAN;
    t->resumed_from = c.step;
    if (st == LC_OK && t->epoch_open) {
        t->lr = lc_train_schedule_lr(&t->spec, t->epoch);
        for (int i = 0; i < g->n_params; i++) t->rates[i] = t->lr * t->mult[i];
        st = lc_optim_set_rates(t->opt, t->rates);
    }
    if (st == LC_OK) st = lc_metrics_open_resume(t, c.metrics_bytes, c.metrics_hash);
    lc_checkpoint_deinit(&c);
    return st;
}

/* ---- the folder ---- */

/* Step number of a checkpoint file name, -1 for other names. */
static int64_t ckpt_step(const char *name)
{
    size_t n = strlen(name), pl = strlen(CKPT_PREFIX), sl = strlen(CKPT_SUFFIX);
    if (n <= pl + sl || strncmp(name, CKPT_PREFIX, pl) || strcmp(name + n - sl, CKPT_SUFFIX)) return -1;
    int64_t v = 0;
    for (size_t i = pl; i < n - sl; i++) {
        if (name[i] < '0' || name[i] > '9' || v > INT64_MAX / 10 - 10) return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

typedef struct ckpt_entry { int64_t step; char name[256]; } ckpt_entry;

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = ((const ckpt_entry *)a)->step, y = ((const ckpt_entry *)b)->step;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The folder's checkpoints, newest first (malloc'ed). */
static lc_status list_ckpts(const char *dir, ckpt_entry **out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return LC_ERR(LC_ERR_IO, "%s: cannot read the checkpoint folder: %s", dir, strerror(errno));
    ckpt_entry *e = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        int64_t s = ckpt_step(de->d_name);
        if (s < 0 || strlen(de->d_name) >= sizeof e->name) continue;
        if (n == cap) {
            int nc = cap ? 2 * cap : 16;
            ckpt_entry *ne = realloc(e, (size_t)nc * sizeof *ne);
            if (!ne) { free(e); closedir(d); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
            e = ne;
            cap = nc;
        }
        e[n].step = s;
        snprintf(e[n].name, sizeof e[n].name, "%s", de->d_name);
        n++;
    }
    closedir(d);
    if (n) qsort(e, (size_t)n, sizeof *e, cmp_desc);
    *out = e;
    *n_out = n;
    return LC_OK;
}

lc_status lc_checkpoint_latest(const char *dir, char *path, size_t cap, int64_t *step)
{
    ckpt_entry *e;
    int n;
    LC_TRY(list_ckpts(dir, &e, &n));
    if (n == 0) {
        free(e);
        return LC_ERR(LC_ERR_NOT_FOUND, "%s: no checkpoint (ckpt-<step>.safetensors) in this folder", dir);
    }
    snprintf(path, cap, "%s/%s", dir, e[0].name);
    if (step) *step = e[0].step;
    free(e);
    return LC_OK;
}

/* Temporary files of checkpoint writes that a kill interrupted
 * ("ckpt-....safetensors.tmp.<pid>" of a process that is gone). */
static void remove_stale_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *tmp = strstr(de->d_name, CKPT_SUFFIX ".tmp.");
        if (strncmp(de->d_name, CKPT_PREFIX, strlen(CKPT_PREFIX)) || !tmp) continue;
        long pid = strtol(tmp + strlen(CKPT_SUFFIX ".tmp."), NULL, 10);
        if (pid > 0 && (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (unlink(p) == 0) LC_DEBUG("removed %s, left by an interrupted checkpoint write", p);
    }
    closedir(d);
}

lc_status lc_checkpoint_prune(const char *dir, int keep)
{
    remove_stale_temporaries(dir);
    ckpt_entry *e;
    int n;
    LC_TRY(list_ckpts(dir, &e, &n));
    for (int i = keep; i < n; i++) {
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, e[i].name);
        if (unlink(p) != 0) LC_WARN("cannot remove the old checkpoint %s: %s", p, strerror(errno));
    }
    free(e);
    return LC_OK;
}

lc_status lc_trainer_checkpoint(lc_trainer *t, char *path_out, size_t cap)
{
    if (!t->ckpt_dir[0])
        return LC_ERR(LC_ERR_INVALID, "no checkpoint folder: give --checkpoint-dir, --save or --metrics");
    char p[2048];
    snprintf(p, sizeof p, "%s/" CKPT_PREFIX "%012lld" CKPT_SUFFIX, t->ckpt_dir, (long long)t->step);
    if (t->rank == 0) LC_TRY(lc_mkdirs(t->ckpt_dir));
    LC_TRY(lc_trainer_save_checkpoint(t, p)); /* collective; rank 0 writes */
    snprintf(t->last_ckpt, sizeof t->last_ckpt, "%s", p);
    t->last_ckpt_step = t->step;
    if (path_out) snprintf(path_out, cap, "%s", p);
    int keep = t->o.checkpoint_keep > 0 ? t->o.checkpoint_keep : 3;
    if (t->rank != 0) return LC_OK;
    return lc_checkpoint_prune(t->ckpt_dir, keep);
}
