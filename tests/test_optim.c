/* Device optimizers and Layca against the double-precision reference
 * (lc_ref), Layca's properties, fused vs unfused, launch counts, NaN/Inf
 * gradients, rotation monitoring and state round trips. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "lc_optim.h"
#include "lc_ref.h"
#include "lc_test.h"
#include "lc_test_rt.h"

#include <ftw.h>
#include <string.h>

static lc_rt *g_rt;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

#define OK(x) ck_assert_msg((x) == LC_OK, "%s: %s", #x, lc_error_message())
#define MAXT 128

/* ---- a test world: arena layout, device buffers, reference copy ---------- */

typedef struct world {
    int n;
    lc_optim_tensor t[MAXT];
    int64_t floats;
    float *w, *g;           /* host arenas (w: initial / read-back) */
    double *rw, *rs1, *rs2; /* reference weights and state */
    double *w0;             /* initial weights */
    double n0[MAXT];
    double rate[MAXT];
    cl_mem params, grads;
    lc_optim *o;
    lc_optim_config cfg;
    lc_rng rng;
    long t_ref;             /* reference steps done */
} world;

static void add_tensor(world *W, int64_t numel, bool kernel, bool trainable)
{
    ck_assert_int_lt(W->n, MAXT);
    W->t[W->n] = (lc_optim_tensor){.offset = W->floats, .numel = numel, .trainable = trainable, .is_kernel = kernel};
    W->floats += (numel + LC_OPTIM_GROUP - 1) / LC_OPTIM_GROUP * LC_OPTIM_GROUP;
    W->n++;
}

/* The brief's small network: kernels of 31x33, 65 and 1x1, a bias of 17. */
static void small_layout(world *W)
{
    add_tensor(W, 31 * 33, true, true);
    add_tensor(W, 65, true, true);
    add_tensor(W, 1, true, true);
    add_tensor(W, 17, false, true);
}

/* Allocates host and device arenas; random weights U(-1, 1) (biases
 * U(-0.1, 0.1)), gaps zero. */
static void world_init(world *W, uint64_t seed)
{
    lc_rng_seed(&W->rng, seed);
    size_t nf = (size_t)(W->floats ? W->floats : 1);
    W->w = calloc(nf, sizeof *W->w);
    W->g = calloc(nf, sizeof *W->g);
    W->rw = calloc(nf, sizeof *W->rw);
    W->rs1 = calloc(nf, sizeof *W->rs1);
    W->rs2 = calloc(nf, sizeof *W->rs2);
    W->w0 = calloc(nf, sizeof *W->w0);
    ck_assert(W->w && W->g && W->rw && W->rs1 && W->rs2 && W->w0);
    for (int i = 0; i < W->n; i++) {
        double sc = W->t[i].is_kernel ? 1.0 : 0.1;
        double n2 = 0;
        for (int64_t j = 0; j < W->t[i].numel; j++) {
            int64_t k = W->t[i].offset + j;
            W->w[k] = (float)(sc * (2.0 * lc_rng_uniform(&W->rng) - 1.0));
            W->rw[k] = W->w0[k] = W->w[k];
            n2 += W->rw[k] * W->rw[k];
        }
        W->n0[i] = sqrt(n2);
    }
    OK(lc_rt_alloc(g_rt, nf * 4, &W->params));
    OK(lc_rt_alloc(g_rt, nf * 4, &W->grads));
    OK(lc_rt_write(g_rt, W->params, 0, nf * 4, W->w));
    OK(lc_rt_fill_zero(g_rt, W->grads, 0, nf * 4));
}

static void world_free(world *W)
{
    lc_optim_destroy(W->o);
    if (W->params) clReleaseMemObject(W->params);
    if (W->grads) clReleaseMemObject(W->grads);
    free(W->w); free(W->g); free(W->rw); free(W->rs1); free(W->rs2); free(W->w0);
    memset(W, 0, sizeof *W);
}

static void world_create(world *W, const lc_optim_config *cfg)
{
    W->cfg = *cfg;
    OK(lc_optim_create(&W->o, g_rt, cfg, W->t, W->n, W->floats, W->params, W->grads));
}

/* Rates: base x eq. 1 multiplier for kernel tensors (in table order), base
 * for the others. */
static void world_rates(world *W, double base, double alpha)
{
    int L = 0;
    for (int i = 0; i < W->n; i++) L += W->t[i].is_kernel;
    double *mult = malloc((size_t)(L ? L : 1) * sizeof *mult);
    lc_ref_layer_multipliers(mult, L, alpha);
    for (int i = 0, l = 0; i < W->n; i++) W->rate[i] = W->t[i].is_kernel ? base * mult[l++] : base;
    free(mult);
    OK(lc_optim_set_rates(W->o, W->rate));
}

/* New random gradients N(0, 0.5^2); poison > 0: that fraction of entries
 * becomes NaN, +Inf or -Inf, and the whole second tensor becomes NaN. */
static void world_grads(world *W, double poison)
{
    for (int i = 0; i < W->n; i++)
        for (int64_t j = 0; j < W->t[i].numel; j++) {
            int64_t k = W->t[i].offset + j;
            W->g[k] = (float)(0.5 * lc_rng_normal(&W->rng));
            if (poison > 0 && (lc_rng_uniform(&W->rng) < poison || i == 1)) {
                int r = (int)lc_rng_below(&W->rng, 3);
                W->g[k] = r == 0 ? NAN : r == 1 ? INFINITY : -INFINITY;
            }
        }
    OK(lc_rt_write(g_rt, W->grads, 0, (size_t)W->floats * 4, W->g));
}

static lc_ref_optim ref_config(const lc_optim_config *c)
{
    lc_ref_optim ro;
    lc_ref_optim_defaults(&ro, (lc_ref_optim_kind)c->kind);
    ro.momentum = c->momentum;
    ro.nesterov = c->nesterov;
    ro.weight_decay = c->weight_decay;
    ro.beta1 = c->beta1;
    ro.beta2 = c->beta2;
    ro.rho = c->rho;
    ro.eps = c->eps;
    if (c->kind != LC_OPTIM_SGD && c->kind != LC_OPTIM_SGD_AMOM && c->layca_inner_lr > 0) ro.lr = c->layca_inner_lr;
    return ro;
}

/* One reference step from W->g (non-finite entries as 0, the engine's rule). */
static void ref_step(world *W)
{
    lc_ref_optim ro = ref_config(&W->cfg);
    long t = ++W->t_ref;
    for (int i = 0; i < W->n; i++) {
        const lc_optim_tensor *T = &W->t[i];
        if (!T->trainable || T->numel == 0) continue;
        double *gd = malloc((size_t)T->numel * sizeof *gd);
        for (int64_t j = 0; j < T->numel; j++) {
            float gv = W->g[T->offset + j];
            gd[j] = isfinite(gv) ? gv : 0.0;
        }
        double *w = W->rw + T->offset, *s1 = W->rs1 + T->offset, *s2 = W->rs2 + T->offset;
        if (W->cfg.layca && T->is_kernel)
            lc_ref_layca_step(w, s1, s2, gd, (size_t)T->numel, &ro, W->rate[i], W->n0[i], t);
        else if (!(W->cfg.layca && W->cfg.layca_skip_non_kernel))
            lc_ref_optim_step(w, s1, s2, gd, (size_t)T->numel, &ro, W->rate[i], t);
        free(gd);
    }
}

static void read_params(world *W, float *dst)
{
    OK(lc_rt_read(g_rt, W->params, 0, (size_t)W->floats * 4, dst));
}

/* max |device - reference| / max |reference| over the whole arena */
static double diff_vs_ref(world *W)
{
    read_params(W, W->w);
    double md = 0, mv = 0;
    for (int64_t k = 0; k < W->floats; k++) {
        md = fmax(md, fabs((double)W->w[k] - W->rw[k]));
        mv = fmax(mv, fabs(W->rw[k]));
    }
    return md / fmax(mv, 1e-30);
}

static double tensor_norm(const float *w, const lc_optim_tensor *T)
{
    double s = 0;
    for (int64_t j = 0; j < T->numel; j++) s += (double)w[T->offset + j] * w[T->offset + j];
    return sqrt(s);
}

/* ---- the inner optimizers --------------------------------------------------- */

typedef struct inner_case {
    lc_optim_kind kind;
    double momentum;
    bool nesterov;
    double wd;
    double lr; /* plain rate */
} inner_case;

static const inner_case cases[] = {
    {LC_OPTIM_SGD, 0.0, false, 0.0, 0.1},    {LC_OPTIM_SGD, 0.9, false, 5e-4, 0.1},
    {LC_OPTIM_SGD, 0.9, true, 0.0, 0.1},     {LC_OPTIM_SGD_AMOM, 0.9, false, 0.0, 0.1},
    {LC_OPTIM_ADAM, 0.0, false, 5e-4, 0.01}, {LC_OPTIM_RMSPROP, 0.0, false, 0.0, 0.01},
    {LC_OPTIM_ADAGRAD, 0.0, false, 1e-3, 0.1},
};
#define NCASES ((int)LC_COUNTOF(cases))

static lc_optim_config case_config(const inner_case *c, bool layca, bool fused)
{
    lc_optim_config cfg;
    lc_optim_config_defaults(&cfg, c->kind);
    if (c->kind == LC_OPTIM_SGD) cfg.momentum = c->momentum;
    cfg.nesterov = c->nesterov;
    cfg.weight_decay = c->wd;
    cfg.layca = layca;
    cfg.fuse = fused;
    return cfg;
}

static const char *case_name(const inner_case *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s wd %g", lc_optim_kind_name(c->kind),
             c->momentum > 0 && c->kind == LC_OPTIM_SGD ? " mom" : "", c->nesterov ? " nesterov" : "", c->wd);
    return buf;
}

/* cases x {plain, layca} x {alpha 0, 0.4} x {fused, unfused}: 1 and 3 steps */
START_TEST(test_vs_reference)
{
    const inner_case *c = &cases[_i % NCASES];
    bool layca = (_i / NCASES) % 2, fused = (_i / NCASES / 4) % 2 == 0;
    double alpha = (_i / NCASES / 2) % 2 ? 0.4 : 0.0;
    char nm[96];
    case_name(c, nm, sizeof nm);
    world W = {0};
    small_layout(&W);
    world_init(&W, 1000 + (uint64_t)_i);
    lc_optim_config cfg = case_config(c, layca, fused);
    world_create(&W, &cfg);
    world_rates(&W, layca ? 0.2 : c->lr, alpha);
    ck_assert_int_eq(lc_optim_launches_per_step(W.o), fused ? 1 + layca : layca ? 3 * 4 + 1 : 4);
    for (int s = 1; s <= 3; s++) {
        world_grads(&W, 0);
        OK(lc_optim_step(W.o));
        ck_assert_int_eq(lc_optim_launches_last_step(W.o), lc_optim_launches_per_step(W.o));
        ref_step(&W);
        if (s == 1 || s == 3) {
            double d = diff_vs_ref(&W);
            ck_assert_msg(d <= 1e-5, "%s %s alpha %g %s, step %d: rel diff %g", nm, layca ? "layca" : "plain", alpha,
                          fused ? "fused" : "unfused", s, d);
        }
    }
    ck_assert_int_eq(lc_optim_steps_done(W.o), 3);
    world_free(&W);
}
END_TEST

/* A 600k-element layer still matches the reference to 1e-5. */
START_TEST(test_big_layer)
{
    static const inner_case big[] = {{LC_OPTIM_SGD, 0.9, false, 0.0, 0.1}, {LC_OPTIM_ADAM, 0.0, false, 0.0, 0.01}};
    const inner_case *c = &big[_i % 2];
    bool fused = _i / 2 == 0;
    world W = {0};
    add_tensor(&W, 600001, true, true);
    add_tensor(&W, 3 * 3 * 16 * 16, true, true);
    world_init(&W, 77);
    lc_optim_config cfg = case_config(c, true, fused);
    world_create(&W, &cfg);
    world_rates(&W, 0.037, 0.0);
    for (int s = 1; s <= 3; s++) {
        world_grads(&W, 0);
        OK(lc_optim_step(W.o));
        ref_step(&W);
    }
    double d = diff_vs_ref(&W);
    ck_assert_msg(d <= 1e-5, "%s %s: rel diff %g", lc_optim_kind_name(c->kind), fused ? "fused" : "unfused", d);
    ck_assert_double_eq_tol(tensor_norm(W.w, &W.t[0]), W.n0[0], 1e-5 * W.n0[0]);
    world_free(&W);
}
END_TEST

/* ---- Layca's properties -------------------------------------------------------- */

/* After 20 Layca steps every kernel keeps its initial norm (1e-5). */
START_TEST(test_layca_norm_preserved)
{
    const inner_case *c = &cases[_i];
    world W = {0};
    small_layout(&W);
    add_tensor(&W, 5000, true, true);
    world_init(&W, 5 + (uint64_t)_i);
    lc_optim_config cfg = case_config(c, true, true);
    world_create(&W, &cfg);
    world_rates(&W, 0.3, -0.4);
    for (int s = 0; s < 20; s++) {
        world_grads(&W, 0);
        OK(lc_optim_step(W.o));
    }
    read_params(&W, W.w);
    double norms[MAXT];
    OK(lc_optim_rotation(W.o, NULL, norms));
    for (int i = 0, l = 0; i < W.n; i++) {
        if (!W.t[i].is_kernel) continue;
        double nw = tensor_norm(W.w, &W.t[i]);
        ck_assert_msg(fabs(nw - W.n0[i]) <= 1e-5 * W.n0[i], "%s tensor %d: norm %.9g, initial %.9g",
                      lc_optim_kind_name(c->kind), i, nw, W.n0[i]);
        ck_assert_msg(fabs(norms[l] - W.n0[i]) <= 1e-5 * W.n0[i], "device norm %.9g vs %.9g", norms[l], W.n0[i]);
        l++;
    }
    world_free(&W);
}
END_TEST

/* One Layca step rotates each layer by arctan(rho_l): cosine distance
 * 1 - 1/sqrt(1 + rho_l^2), from the device's monitoring, with no extra
 * launch.  (The 1x1 kernel cannot rotate: its tangent space is empty, so its
 * step is zero and its distance 0.) */
START_TEST(test_layca_one_step_rotation)
{
    const inner_case *c = &cases[_i % NCASES];
    double alpha = _i / NCASES ? 0.4 : 0.0;
    world W = {0};
    small_layout(&W);
    add_tensor(&W, 4000, true, true);
    world_init(&W, 50 + (uint64_t)_i);
    lc_optim_config cfg = case_config(c, true, true);
    world_create(&W, &cfg);
    world_rates(&W, 0.25, alpha);
    world_grads(&W, 0);
    lc_optim_request_rotation(W.o);
    OK(lc_optim_step(W.o));
    ck_assert_int_eq(lc_optim_launches_last_step(W.o), 2);
    double cd[MAXT], nr[MAXT];
    ck_assert_int_eq(lc_optim_kernel_count(W.o), 4);
    OK(lc_optim_rotation(W.o, cd, nr));
    ck_assert_int_eq(lc_optim_launches_last_step(W.o), 2); /* rotation read back only */
    for (int i = 0, l = 0; i < W.n; i++) {
        if (!W.t[i].is_kernel) continue;
        double rho = W.rate[i];
        double want = W.t[i].numel == 1 ? 0.0 : 1.0 - 1.0 / sqrt(1.0 + rho * rho);
        ck_assert_msg(fabs(cd[l] - want) <= 1e-5, "%s alpha %g tensor %d: distance %.9g, want %.9g (rho %g)",
                      lc_optim_kind_name(c->kind), alpha, i, cd[l], want, rho);
        ck_assert_double_eq_tol(nr[l], W.n0[i], 1e-5 * W.n0[i]);
        l++;
    }
    world_free(&W);
}
END_TEST

/* Fused and unfused agree over 20 steps (bit for bit here; 1e-4 asked). */
START_TEST(test_fused_vs_unfused)
{
    const inner_case *c = &cases[_i % NCASES];
    bool layca = _i / NCASES == 0;
    world A = {0}, B = {0};
    small_layout(&A);
    small_layout(&B);
    add_tensor(&A, 3000, true, true);
    add_tensor(&B, 3000, true, true);
    world_init(&A, 9);
    world_init(&B, 9);
    lc_optim_config ca = case_config(c, layca, true), cb = case_config(c, layca, false);
    world_create(&A, &ca);
    world_create(&B, &cb);
    ck_assert(lc_optim_fused(A.o));
    ck_assert(!lc_optim_fused(B.o));
    world_rates(&A, layca ? 0.1 : c->lr, 0.4);
    world_rates(&B, layca ? 0.1 : c->lr, 0.4);
    ck_assert_int_eq(lc_optim_launches_per_step(A.o), layca ? 2 : 1);
    ck_assert_int_eq(lc_optim_launches_per_step(B.o), layca ? 4 * 4 + 1 : 5);
    for (int s = 0; s < 20; s++) {
        world_grads(&A, 0);
        world_grads(&B, 0);
        OK(lc_optim_step(A.o));
        OK(lc_optim_step(B.o));
    }
    read_params(&A, A.w);
    read_params(&B, B.w);
    double md = 0, mv = 0;
    for (int64_t k = 0; k < A.floats; k++) {
        md = fmax(md, fabs((double)A.w[k] - B.w[k]));
        mv = fmax(mv, fabs((double)A.w[k]));
    }
    ck_assert_msg(md / mv <= 1e-4, "%s %s: fused vs unfused rel diff %g", lc_optim_kind_name(c->kind),
                  layca ? "layca" : "plain", md / mv);
    /* the same sums in the same order: the same weights */
    ck_assert_msg(memcmp(A.w, B.w, (size_t)A.floats * 4) == 0, "%s %s: fused and unfused weights differ",
                  lc_optim_kind_name(c->kind), layca ? "layca" : "plain");
    /* switching at run time works too */
    lc_optim_set_fused(A.o, false);
    ck_assert_int_eq(lc_optim_launches_per_step(A.o), lc_optim_launches_per_step(B.o));
    world_free(&A);
    world_free(&B);
}
END_TEST

/* Two launches per fused Layca step for 4 tensors and for 100 kernels. */
START_TEST(test_launch_count)
{
    world W = {0};
    for (int i = 0; i < 100; i++) {
        add_tensor(&W, 1 + (i * 997) % 3000, true, true);
        if (i % 10 == 0) add_tensor(&W, 8 + i, false, true);
    }
    add_tensor(&W, 700, true, false); /* a frozen kernel */
    world_init(&W, 123);
    lc_optim_config cfg = case_config(&cases[1], true, true);
    world_create(&W, &cfg);
    world_rates(&W, 0.05, -0.2);
    ck_assert_int_eq(lc_optim_launches_per_step(W.o), 2);
    for (int s = 0; s < 2; s++) {
        world_grads(&W, 0);
        if (s == 1) lc_optim_request_rotation(W.o);
        OK(lc_optim_step(W.o));
        ck_assert_int_eq(lc_optim_launches_last_step(W.o), 2);
        ref_step(&W);
    }
    double d = diff_vs_ref(&W);
    ck_assert_msg(d <= 1e-5, "100 layers: rel diff %g", d);
    /* the monitoring of all 101 kernels rode on the step */
    int L = lc_optim_kernel_count(W.o);
    ck_assert_int_eq(L, 101);
    double *cd = malloc((size_t)L * sizeof *cd);
    OK(lc_optim_rotation(W.o, cd, NULL));
    for (int i = 0, l = 0; i < W.n; i++) {
        if (!W.t[i].is_kernel) continue;
        double want = lc_ref_cosine_distance(W.rw + W.t[i].offset, W.w0 + W.t[i].offset, (size_t)W.t[i].numel);
        ck_assert_msg(fabs(cd[l] - want) <= 1e-5, "tensor %d: %g vs %g", i, cd[l], want);
        l++;
    }
    ck_assert_double_le(fabs(cd[L - 1]), 1e-12); /* frozen */
    free(cd);

    /* the same network with plain SGD: one launch */
    lc_optim_destroy(W.o);
    cfg.layca = false;
    world_create(&W, &cfg);
    ck_assert_int_eq(lc_optim_launches_per_step(W.o), 1);
    world_free(&W);

    /* and the small one */
    world S = {0};
    small_layout(&S);
    world_init(&S, 1);
    cfg.layca = true;
    world_create(&S, &cfg);
    ck_assert_int_eq(lc_optim_launches_per_step(S.o), 2);
    world_free(&S);
}
END_TEST

/* NaN and Inf gradients never reach the weights; they count as zeros. */
START_TEST(test_poisoned_gradients)
{
    const inner_case *c = &cases[_i % NCASES];
    bool layca = (_i / NCASES) % 2, fused = _i / NCASES / 2 == 0;
    world W = {0};
    small_layout(&W);
    add_tensor(&W, 2000, true, true);
    world_init(&W, 31 + (uint64_t)_i);
    lc_optim_config cfg = case_config(c, layca, fused);
    world_create(&W, &cfg);
    world_rates(&W, layca ? 0.2 : c->lr, 0.0);
    for (int s = 0; s < 5; s++) {
        world_grads(&W, 0.1);
        OK(lc_optim_step(W.o));
        ref_step(&W);
    }
    read_params(&W, W.w);
    for (int64_t k = 0; k < W.floats; k++) ck_assert_msg(isfinite(W.w[k]), "weight %lld is %g", (long long)k, W.w[k]);
    double d = diff_vs_ref(&W);
    ck_assert_msg(d <= 1e-5, "%s %s %s: rel diff %g vs the reference with zeros", lc_optim_kind_name(c->kind),
                  layca ? "layca" : "plain", fused ? "fused" : "unfused", d);
    /* the all-NaN tensor (index 1): a zero gradient, so no Layca step */
    if (layca && W.cfg.weight_decay == 0)
        for (int64_t j = 0; j < W.t[1].numel; j++)
            ck_assert_float_eq(W.w[W.t[1].offset + j], (float)W.w0[W.t[1].offset + j]);
    world_free(&W);
}
END_TEST

/* Rotation from the device equals lc_ref_cosine_distance, with and without
 * a request before the step, for plain and Layca steps. */
START_TEST(test_rotation_vs_ref)
{
    bool layca = _i % 2, fused = _i / 2 == 0;
    world W = {0};
    small_layout(&W);
    add_tensor(&W, 2500, true, true);
    add_tensor(&W, 300, true, false); /* frozen kernel */
    world_init(&W, 71);
    lc_optim_config cfg = case_config(&cases[1], layca, fused);
    world_create(&W, &cfg);
    world_rates(&W, layca ? 0.1 : 0.05, 0.4);
    int L = lc_optim_kernel_count(W.o);
    ck_assert_int_eq(L, 5);
    double cd[8], nr[8];
    OK(lc_optim_rotation(W.o, cd, nr)); /* before any step: 0 */
    for (int l = 0; l < L; l++) ck_assert_double_le(fabs(cd[l]), 1e-6);
    for (int s = 0; s < 6; s++) {
        world_grads(&W, 0);
        bool req = s % 2 == 1;
        if (req) lc_optim_request_rotation(W.o);
        OK(lc_optim_step(W.o));
        ref_step(&W);
        if (fused) ck_assert_int_eq(lc_optim_launches_last_step(W.o), lc_optim_launches_per_step(W.o));
        OK(lc_optim_rotation(W.o, cd, nr));
        read_params(&W, W.w);
        for (int i = 0, l = 0; i < W.n; i++) {
            if (!W.t[i].is_kernel) continue;
            size_t n = (size_t)W.t[i].numel;
            double *dw = malloc(n * sizeof *dw);
            for (size_t j = 0; j < n; j++) dw[j] = W.w[W.t[i].offset + (int64_t)j];
            double want = lc_ref_cosine_distance(dw, W.w0 + W.t[i].offset, n);
            ck_assert_msg(fabs(cd[l] - want) <= 1e-5, "step %d%s tensor %d: %.9g vs %.9g", s, req ? " (requested)" : "",
                          i, cd[l], want);
            ck_assert_double_eq_tol(nr[l], lc_ref_norm(dw, n), 1e-5 * lc_ref_norm(dw, n));
            free(dw);
            l++;
        }
    }
    ck_assert_double_le(fabs(cd[L - 1]), 1e-12); /* frozen */
    world_free(&W);
}
END_TEST

/* ---- layout, kernel geometries, sums ---------------------------------------------- */

/* The gaps after each tensor (up to its next 256-float group) are left as
 * they are and never enter a step or a sum, on sizes around the vector
 * widths and chunk boundaries: weights' gaps hold 0.5, gradients' gaps NaN. */
START_TEST(test_gaps_untouched)
{
    bool layca = _i % 2, fused = _i / 2 == 0;
    static const int64_t sizes[] = {1, 15, 16, 17, 33, 4095, 4097, 9000};
    world W = {0};
    for (size_t k = 0; k < LC_COUNTOF(sizes); k++) add_tensor(&W, sizes[k], true, true);
    add_tensor(&W, 300, true, false); /* frozen kernel */
    add_tensor(&W, 40, false, true);  /* bias */
    world_init(&W, 444 + (uint64_t)_i);
    for (int i = 0; i < W.n; i++)
        for (int64_t k = W.t[i].offset + W.t[i].numel; k < W.t[i].offset + (W.t[i].numel + 255) / 256 * 256; k++) {
            W.w[k] = 0.5f;
            W.rw[k] = W.w0[k] = 0.5;
            W.g[k] = NAN;
        }
    OK(lc_rt_write(g_rt, W.params, 0, (size_t)W.floats * 4, W.w));
    lc_optim_config cfg = case_config(&cases[1], layca, fused);
    world_create(&W, &cfg);
    world_rates(&W, layca ? 0.1 : 0.05, 0.4);
    for (int s = 0; s < 3; s++) {
        world_grads(&W, 0);
        if (s == 2) lc_optim_request_rotation(W.o);
        OK(lc_optim_step(W.o));
        ref_step(&W);
    }
    double d = diff_vs_ref(&W);
    ck_assert_msg(d <= 1e-5, "%s %s: rel diff %g", layca ? "layca" : "plain", fused ? "fused" : "unfused", d);
    lc_optim_state st;
    OK(lc_optim_state_read(W.o, &st));
    for (int i = 0; i < W.n; i++)
        for (int64_t k = W.t[i].offset + W.t[i].numel; k < W.t[i].offset + (W.t[i].numel + 255) / 256 * 256; k++) {
            ck_assert_msg(W.w[k] == 0.5f, "gap %lld after tensor %d holds %g", (long long)k, i, W.w[k]);
            ck_assert_msg(st.arena[0][k] == 0.0f, "state gap %lld holds %g", (long long)k, st.arena[0][k]);
        }
    lc_optim_state_free(&st);
    int L = lc_optim_kernel_count(W.o);
    double cd[16];
    OK(lc_optim_rotation(W.o, cd, NULL));
    for (int i = 0, l = 0; i < W.n; i++) {
        if (!W.t[i].is_kernel) continue;
        double want = lc_ref_cosine_distance(W.rw + W.t[i].offset, W.w0 + W.t[i].offset, (size_t)W.t[i].numel);
        ck_assert_msg(fabs(cd[l] - want) <= 1e-5, "tensor %d: %.9g vs %.9g", i, cd[l], want);
        l++;
    }
    ck_assert_double_le(fabs(cd[L - 1]), 1e-12); /* frozen */
    world_free(&W);
}
END_TEST

/* The other kernel geometries and the double-float sums (what GPUs and
 * devices without fp64 get), forced through cfg.geometry: Layca and
 * plain steps against the reference with rotation monitoring, and the
 * parallel-gradient zero step that needs near-exact sums. */
static const lc_optim_geometry_opts geometries[] = {
    {.wg = 1, .vec = 8, .no_fp64 = true},
    {.wg = 64, .vec = 4},
    {.wg = 256, .vec = 4, .no_fp64 = true},
    {.wg = 8, .vec = 16},
};

START_TEST(test_geometries)
{
    /* the forced layouts are what the default path's CPU geometry cannot
     * show; a device-only or other configuration runs its device's own
     * geometry in every other test (and test_device_only_geometry) */
    if (lc_test_extra_config()) {
        if (_i == 0) fprintf(stderr, "# forced geometries: default configuration only\n");
        return;
    }
    const lc_optim_geometry_opts *gm = &geometries[_i / 3];
    char what[64];
    snprintf(what, sizeof what, "wg %d vec %d%s", gm->wg, gm->vec, gm->no_fp64 ? " no fp64" : "");
    int v = _i % 3; /* 0: Layca fused Nesterov; 1: Layca unfused Adam; 2: plain fused SGD momentum */
    const inner_case *c = &cases[v == 0 ? 2 : v == 1 ? 4 : 1];
    world W = {0};
    small_layout(&W);
    add_tensor(&W, 5000, true, true);
    add_tensor(&W, 300, true, false); /* frozen kernel */
    world_init(&W, 900 + (uint64_t)_i);
    lc_optim_config cfg = case_config(c, v != 2, v != 1);
    cfg.geometry = *gm;
    world_create(&W, &cfg);
    world_rates(&W, v != 2 ? 0.2 : c->lr, 0.4);
    for (int s = 0; s < 3; s++) {
        world_grads(&W, 0);
        if (s == 2) lc_optim_request_rotation(W.o);
        OK(lc_optim_step(W.o));
        ref_step(&W);
    }
    double d = diff_vs_ref(&W);
    ck_assert_msg(d <= 1e-5, "%s, variant %d: rel diff %g", what, v, d);
    double cd[8], nr[8];
    int L = lc_optim_kernel_count(W.o);
    OK(lc_optim_rotation(W.o, cd, nr));
    for (int i = 0, l = 0; i < W.n; i++) {
        if (!W.t[i].is_kernel) continue;
        double want = lc_ref_cosine_distance(W.rw + W.t[i].offset, W.w0 + W.t[i].offset, (size_t)W.t[i].numel);
        ck_assert_msg(fabs(cd[l] - want) <= 1e-5, "%s tensor %d: %.9g vs %.9g", what, i, cd[l], want);
        l++;
    }
    ck_assert_double_le(fabs(cd[L - 1]), 1e-12); /* frozen */
    if (v != 2) {
        /* a gradient parallel to w: a zero Layca step, weights bit-identical */
        lc_optim_destroy(W.o);
        lc_optim_config c0 = case_config(&cases[0], true, v == 0);
        c0.geometry = *gm;
        world_create(&W, &c0);
        world_rates(&W, 0.3, 0.0);
        float *before = malloc((size_t)W.floats * 4);
        read_params(&W, before);
        memset(W.g, 0, (size_t)W.floats * 4);
        for (int64_t j = 0; j < W.t[0].numel; j++) W.g[W.t[0].offset + j] = -0.5f * before[W.t[0].offset + j];
        OK(lc_rt_write(g_rt, W.grads, 0, (size_t)W.floats * 4, W.g));
        OK(lc_optim_step(W.o));
        read_params(&W, W.w);
        ck_assert_msg(memcmp(before, W.w, (size_t)W.floats * 4) == 0, "%s: parallel step moved w", what);
        free(before);
    }
    world_free(&W);
}
END_TEST

/* Device-only mode uses the GPU geometry on any device: several
 * work-items per group (a power of two within the device's and the
 * kernels' limits) over float4 vectors; steps match the reference.  The
 * default rt of a CPU device keeps the CPU layout (one work-item per
 * group). */
START_TEST(test_device_only_geometry)
{
    lc_rt_opts ro = lc_test_rt_opts();
    ro.device_only = true;
    lc_rt *d = NULL;
    OK(lc_rt_create_opts(&d, &ro));
    lc_rt *saved = g_rt;
    g_rt = d;
    const inner_case *c = &cases[_i == 0 ? 2 : 4];
    world W = {0};
    small_layout(&W);
    add_tensor(&W, 5000, true, true);
    world_init(&W, 300 + (uint64_t)_i);
    lc_optim_config cfg = case_config(c, true, _i == 0);
    world_create(&W, &cfg);
    int wg = 0, vec = 0;
    bool fp64 = false;
    lc_optim_geometry(W.o, &wg, &vec, &fp64);
    ck_assert_int_eq(vec, 4);
    ck_assert_int_ge(wg, 1);
    ck_assert_int_eq(wg & (wg - 1), 0);
    ck_assert_uint_le((size_t)wg, d->info.max_work_group);
    if (d->info.max_work_group >= 2) ck_assert_int_gt(wg, 1);
    world_rates(&W, 0.2, 0.4);
    for (int s2 = 0; s2 < 3; s2++) {
        world_grads(&W, 0);
        if (s2 == 2) lc_optim_request_rotation(W.o);
        OK(lc_optim_step(W.o));
        ref_step(&W);
    }
    double diff = diff_vs_ref(&W);
    ck_assert_msg(diff <= 1e-5, "device-only geometry wg %d: rel diff %g", wg, diff);
    world_free(&W);
    g_rt = saved;
    lc_rt_destroy(d);
    /* outside device-only mode, one-item work-groups on PoCL's CPU devices
     * only; other CPU implementations (rusticl) keep the wide geometry */
    if (!g_rt->device_only && (g_rt->info.type & CL_DEVICE_TYPE_CPU)) {
        world C = {0};
        small_layout(&C);
        world_init(&C, 7);
        world_create(&C, &cfg);
        lc_optim_geometry(C.o, &wg, &vec, NULL);
        if (lc_rt_loop_workgroups(&g_rt->info)) ck_assert_int_eq(wg, 1);
        else if (g_rt->info.max_work_group >= 2) ck_assert_int_gt(wg, 1);
        world_free(&C);
    }
}
END_TEST

/* SGD without momentum keeps no state: its arena stays zero, plain and
 * Layca alike. */
START_TEST(test_sgd_stateless)
{
    world W = {0};
    small_layout(&W);
    world_init(&W, 61);
    lc_optim_config cfg = case_config(&cases[0], _i == 1, true);
    world_create(&W, &cfg);
    world_rates(&W, 0.1, 0.0);
    for (int s = 0; s < 2; s++) {
        world_grads(&W, 0);
        OK(lc_optim_step(W.o));
        ref_step(&W);
    }
    ck_assert_double_le(diff_vs_ref(&W), 1e-5);
    lc_optim_state st;
    OK(lc_optim_state_read(W.o, &st));
    for (int64_t k = 0; k < W.floats; k++) ck_assert_float_eq(st.arena[0][k], 0.0f);
    lc_optim_state_free(&st);
    world_free(&W);
}
END_TEST

/* ---- state, options, errors ---------------------------------------------------- */

/* Reading the state, restoring it into a fresh optimizer and continuing gives
 * bit-identical weights. */
START_TEST(test_state_roundtrip)
{
    const inner_case *c = &cases[_i == 0 ? 4 : 1];
    world A = {0}, B = {0};
    small_layout(&A);
    small_layout(&B);
    world_init(&A, 3);
    world_init(&B, 4); /* different weights: everything comes from A */
    lc_optim_config cfg = case_config(c, true, true);
    world_create(&A, &cfg);
    world_rates(&A, 0.1, 0.0);
    for (int s = 0; s < 3; s++) {
        world_grads(&A, 0);
        OK(lc_optim_step(A.o));
    }
    lc_optim_state st;
    OK(lc_optim_state_read(A.o, &st));
    ck_assert_int_eq(st.steps, 3);
    ck_assert_int_eq(st.n_arenas, c->kind == LC_OPTIM_ADAM ? 2 : 1);
    read_params(&A, A.w);
    OK(lc_rt_write(g_rt, B.params, 0, (size_t)B.floats * 4, A.w));
    world_create(&B, &cfg);
    world_rates(&B, 0.1, 0.0);
    OK(lc_optim_state_write(B.o, &st));
    ck_assert_int_eq(lc_optim_steps_done(B.o), 3);
    lc_optim_state_free(&st);
    for (int s = 0; s < 3; s++) {
        world_grads(&A, 0);
        memcpy(B.g, A.g, (size_t)A.floats * 4);
        OK(lc_rt_write(g_rt, B.grads, 0, (size_t)B.floats * 4, B.g));
        lc_optim_request_rotation(A.o);
        lc_optim_request_rotation(B.o);
        OK(lc_optim_step(A.o));
        OK(lc_optim_step(B.o));
    }
    read_params(&A, A.w);
    read_params(&B, B.w);
    ck_assert(memcmp(A.w, B.w, (size_t)A.floats * 4) == 0);
    double ca[8], cb[8];
    OK(lc_optim_rotation(A.o, ca, NULL));
    OK(lc_optim_rotation(B.o, cb, NULL));
    for (int l = 0; l < 3; l++) ck_assert_double_eq(ca[l], cb[l]);

    /* a state of another shape is refused */
    OK(lc_optim_state_read(A.o, &st));
    st.n_tensors--;
    ck_assert_int_eq(lc_optim_state_write(B.o, &st), LC_ERR_INVALID);
    st.n_tensors++;
    lc_optim_state_free(&st);
    world_free(&A);
    world_free(&B);
}
END_TEST

/* layca_skip_non_kernel leaves biases untouched; by default they get a plain
 * step with their rate. */
START_TEST(test_skip_non_kernel)
{
    for (int skip = 0; skip < 2; skip++) {
        world W = {0};
        small_layout(&W);
        world_init(&W, 8);
        lc_optim_config cfg = case_config(&cases[3], true, _i == 0);
        cfg.layca_skip_non_kernel = skip;
        world_create(&W, &cfg);
        world_rates(&W, 0.1, 0.0);
        ck_assert_int_eq(lc_optim_launches_per_step(W.o), _i == 0 ? 2 : skip ? 12 : 13);
        for (int s = 0; s < 3; s++) {
            world_grads(&W, 0);
            OK(lc_optim_step(W.o));
            ref_step(&W);
        }
        ck_assert_double_le(diff_vs_ref(&W), 1e-5);
        const lc_optim_tensor *b = &W.t[3];
        bool same = true;
        for (int64_t j = 0; j < b->numel; j++) same = same && W.w[b->offset + j] == (float)W.w0[b->offset + j];
        ck_assert_int_eq(same, skip);
        world_free(&W);
    }
}
END_TEST

/* Zero gradients: a zero Layca step leaves the weights bit-identical;
 * frozen tensors never move; rates are ignored for frozen tensors. */
START_TEST(test_zero_and_frozen)
{
    world W = {0};
    small_layout(&W);
    add_tensor(&W, 600, true, false);
    add_tensor(&W, 40, false, false);
    world_init(&W, 12);
    lc_optim_config cfg = case_config(&cases[0], true, _i == 0);
    world_create(&W, &cfg);
    world_rates(&W, 0.3, 0.0);
    OK(lc_optim_step(W.o)); /* gradients are all zero */
    read_params(&W, W.w);
    for (int64_t k = 0; k < W.floats; k++) ck_assert_float_eq(W.w[k], (float)W.w0[k]);
    world_grads(&W, 0);
    OK(lc_optim_step(W.o));
    read_params(&W, W.w);
    for (int i = 4; i < 6; i++)
        for (int64_t j = 0; j < W.t[i].numel; j++)
            ck_assert_float_eq(W.w[W.t[i].offset + j], (float)W.w0[W.t[i].offset + j]);
    /* a gradient parallel to w has no tangent part: a zero step, as lc_ref */
    float *before = malloc((size_t)W.floats * 4);
    memcpy(before, W.w, (size_t)W.floats * 4);
    memset(W.g, 0, (size_t)W.floats * 4);
    for (int64_t j = 0; j < W.t[0].numel; j++) W.g[W.t[0].offset + j] = -0.5f * W.w[W.t[0].offset + j];
    OK(lc_rt_write(g_rt, W.grads, 0, (size_t)W.floats * 4, W.g));
    OK(lc_optim_step(W.o));
    read_params(&W, W.w);
    ck_assert(memcmp(before, W.w, (size_t)W.floats * 4) == 0);
    free(before);
    world_free(&W);
}
END_TEST

START_TEST(test_errors_and_names)
{
    lc_optim_kind k;
    for (int i = 0; i < 5; i++) {
        OK(lc_optim_kind_parse(lc_optim_kind_name((lc_optim_kind)i), &k));
        ck_assert_int_eq(k, i);
    }
    OK(lc_optim_kind_parse("ADAM", &k));
    ck_assert_int_eq(k, LC_OPTIM_ADAM);
    ck_assert_int_eq(lc_optim_kind_parse("lamb", &k), LC_ERR_INVALID);

    lc_optim_config cfg;
    lc_optim_config_defaults(&cfg, LC_OPTIM_ADAM);
    ck_assert(cfg.fuse);
    ck_assert(!cfg.layca);
    ck_assert_double_eq(cfg.eps, 1e-7);
    ck_assert_double_eq(cfg.layca_inner_lr, 0.001);
    lc_optim_config_defaults(&cfg, LC_OPTIM_SGD_AMOM);
    ck_assert_double_eq(cfg.momentum, 0.9);

    cl_mem buf;
    OK(lc_rt_alloc(g_rt, 4096 * 4, &buf));
    lc_optim *o = NULL;
    lc_optim_tensor t[2] = {{.offset = 0, .numel = 300, .trainable = true, .is_kernel = true},
                            {.offset = 100, .numel = 10, .trainable = true}};
    ck_assert_int_eq(lc_optim_create(&o, g_rt, &cfg, t, 2, 1024, buf, buf), LC_ERR_INVALID); /* misaligned */
    t[1].offset = 256;
    ck_assert_int_eq(lc_optim_create(&o, g_rt, &cfg, t, 2, 1024, buf, buf), LC_ERR_INVALID); /* overlap */
    t[1].offset = 512;
    ck_assert_int_eq(lc_optim_create(&o, g_rt, &cfg, t, 2, 1000, buf, buf), LC_ERR_INVALID); /* arena size */
    t[1].offset = 1024;
    ck_assert_int_eq(lc_optim_create(&o, g_rt, &cfg, t, 2, 1024, buf, buf), LC_ERR_INVALID); /* outside */
    ck_assert_ptr_null(o);
    t[1].offset = 512;
    /* geometry overrides the kernels cannot have */
    cfg.geometry = (lc_optim_geometry_opts){.wg = 3};
    ck_assert_int_eq(lc_optim_create(&o, g_rt, &cfg, t, 2, 1024, buf, buf), LC_ERR_INVALID);
    cfg.geometry = (lc_optim_geometry_opts){.vec = 5};
    ck_assert_int_eq(lc_optim_create(&o, g_rt, &cfg, t, 2, 1024, buf, buf), LC_ERR_INVALID);
    ck_assert_ptr_null(o);
    cfg.geometry = (lc_optim_geometry_opts){0};
    OK(lc_optim_create(&o, g_rt, &cfg, t, 2, 1024, buf, buf));
    lc_optim_destroy(o);
    lc_optim_destroy(NULL);
    /* no tensors at all */
    OK(lc_optim_create(&o, g_rt, &cfg, t, 0, 0, buf, buf));
    ck_assert_int_eq(lc_optim_launches_per_step(o), 0);
    OK(lc_optim_step(o));
    lc_optim_destroy(o);
    clReleaseMemObject(buf);
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_errors_and_names);
    tcase_add_loop_test(tc, test_vs_reference, 0, NCASES * 8);
    tcase_add_loop_test(tc, test_big_layer, 0, 4);
    tcase_add_loop_test(tc, test_layca_norm_preserved, 0, NCASES);
    tcase_add_loop_test(tc, test_layca_one_step_rotation, 0, NCASES * 2);
    tcase_add_loop_test(tc, test_fused_vs_unfused, 0, NCASES * 2);
    tcase_add_test(tc, test_launch_count);
    tcase_add_loop_test(tc, test_poisoned_gradients, 0, NCASES * 4);
    tcase_add_loop_test(tc, test_rotation_vs_ref, 0, 4);
    tcase_add_loop_test(tc, test_state_roundtrip, 0, 2);
    tcase_add_loop_test(tc, test_skip_non_kernel, 0, 2);
    tcase_add_loop_test(tc, test_zero_and_frozen, 0, 2);
    tcase_add_loop_test(tc, test_gaps_untouched, 0, 4);
    tcase_add_loop_test(tc, test_geometries, 0, 3 * (int)LC_COUNTOF(geometries));
    tcase_add_loop_test(tc, test_sgd_stateless, 0, 2);
    tcase_add_loop_test(tc, test_device_only_geometry, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* a program cache of its own, removed at the end */
    char cache[512];
    snprintf(cache, sizeof cache, "%s/cache", lc_test_tmpdir());
    if (lc_cache_dir_set(cache) != LC_OK) return 1;
    g_rt = lc_test_rt_create();
    int rc = lc_test_run(optim_suite());
    lc_rt_destroy(g_rt);
    nftw(lc_test_tmpdir(), rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
