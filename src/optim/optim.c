/* Device optimizers: one launch per step for the whole parameter arena. */
#include "lc_optim.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct lc_optim {
    lc_rt *rt;
    lc_optim_config cfg;
    lc_optim_tensor *t;
    int n;
    int64_t floats, groups;
    cl_mem params, grads, state1, rates;
    float *host_rates;
    cl_program prog;
    cl_kernel k_sgd;
    int64_t steps;
};

static const char *const kind_names[] = {"sgd", "sgd_amom", "adam", "rmsprop", "adagrad"};

const char *lc_optim_kind_name(lc_optim_kind k)
{
    return (unsigned)k < LC_COUNTOF(kind_names) ? kind_names[k] : "?";
}

lc_status lc_optim_kind_parse(const char *s, lc_optim_kind *out)
{
    for (size_t i = 0; i < LC_COUNTOF(kind_names); i++)
        if (!strcasecmp(s, kind_names[i])) { *out = (lc_optim_kind)i; return LC_OK; }
    return LC_ERR(LC_ERR_INVALID, "unknown optimizer '%s' (known: sgd, sgd_amom, adam, rmsprop, adagrad)", s);
}

void lc_optim_config_defaults(lc_optim_config *c, lc_optim_kind kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->momentum = kind == LC_OPTIM_SGD_AMOM ? 0.9 : 0.0;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->rho = 0.9;
    c->eps = 1e-7;
}

void lc_optim_destroy(lc_optim *o)
{
    if (!o) return;
    if (o->k_sgd) clReleaseKernel(o->k_sgd);
    cl_mem b[] = {o->state1, o->rates};
    for (size_t i = 0; i < LC_COUNTOF(b); i++)
        if (b[i]) clReleaseMemObject(b[i]);
    free(o->t);
    free(o->host_rates);
    free(o);
}

lc_status lc_optim_create(lc_optim **out, lc_rt *rt, const lc_optim_config *cfg, const lc_optim_tensor *t, int n,
                          int64_t arena_floats, cl_mem params, cl_mem grads)
{
    *out = NULL;
    if (cfg->kind != LC_OPTIM_SGD || cfg->layca)
        return LC_ERR(LC_ERR_UNSUPPORTED, "optimizer %s%s is not available yet", cfg->layca ? "layca-" : "",
                      lc_optim_kind_name(cfg->kind));
    if (arena_floats % LC_OPTIM_GROUP)
        return LC_ERR(LC_ERR_INVALID, "parameter arena of %lld floats is not a multiple of %d", (long long)arena_floats,
                      LC_OPTIM_GROUP);
    lc_optim *o = calloc(1, sizeof *o);
    if (!o) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    o->rt = rt;
    o->cfg = *cfg;
    o->n = n;
    o->floats = arena_floats;
    o->groups = arena_floats / LC_OPTIM_GROUP;
    o->params = params;
    o->grads = grads;
    o->t = malloc((size_t)(n > 0 ? n : 1) * sizeof *o->t);
    o->host_rates = calloc((size_t)(o->groups > 0 ? o->groups : 1), sizeof *o->host_rates);
    lc_status st = LC_OK;
    if (!o->t || !o->host_rates) { st = LC_ERR(LC_ERR_NOMEM, "out of memory"); goto fail; }
    memcpy(o->t, t, (size_t)n * sizeof *t);
    for (int i = 0; i < n; i++)
        if (t[i].offset % LC_OPTIM_GROUP) {
            st = LC_ERR(LC_ERR_INVALID, "tensor %d offset %lld is not aligned to %d floats", i, (long long)t[i].offset,
                        LC_OPTIM_GROUP);
            goto fail;
        }
    size_t bytes = (size_t)(arena_floats > 0 ? arena_floats : 1) * 4;
    if ((st = lc_rt_alloc(rt, bytes, &o->state1)) != LC_OK) goto fail;
    if ((st = lc_rt_fill_zero(rt, o->state1, 0, bytes)) != LC_OK) goto fail;
    if ((st = lc_rt_alloc(rt, (size_t)(o->groups > 0 ? o->groups : 1) * 4, &o->rates)) != LC_OK) goto fail;
    if ((st = lc_rt_program(rt, "optim", "", &o->prog)) != LC_OK) goto fail;
    if ((st = lc_rt_kernel(rt, o->prog, "lc_sgd_step", &o->k_sgd)) != LC_OK) goto fail;
    *out = o;
    return LC_OK;
fail:
    lc_optim_destroy(o);
    return st;
}

lc_status lc_optim_set_rates(lc_optim *o, const double *rate)
{
    memset(o->host_rates, 0, (size_t)o->groups * sizeof *o->host_rates);
    for (int i = 0; i < o->n; i++) {
        if (!o->t[i].trainable) continue;
        int64_t g0 = o->t[i].offset / LC_OPTIM_GROUP, g1 = (o->t[i].offset + o->t[i].numel + LC_OPTIM_GROUP - 1) / LC_OPTIM_GROUP;
        for (int64_t g = g0; g < g1; g++) o->host_rates[g] = (float)rate[i];
    }
    return lc_rt_write(o->rt, o->rates, 0, (size_t)o->groups * 4, o->host_rates);
}

lc_status lc_optim_step(lc_optim *o)
{
    if (o->floats == 0) return LC_OK;
    float mu = (float)o->cfg.momentum, wd = (float)o->cfg.weight_decay;
    int nest = o->cfg.nesterov ? 1 : 0, n = (int)o->floats;
    lc_arg a[] = {LC_ARG(o->params), LC_ARG(o->grads), LC_ARG(o->state1), LC_ARG(o->rates), LC_ARG(mu), LC_ARG(wd),
                  LC_ARG(nest), LC_ARG(n)};
    LC_TRY(lc_rt_set_args(o->k_sgd, a, 8, "lc_sgd_step"));
    size_t gsz = (size_t)n, lsz = LC_OPTIM_GROUP;
    LC_TRY(lc_rt_launch(o->rt, o->k_sgd, 1, &gsz, &lsz, "lc_sgd_step"));
    o->steps++;
    return LC_OK;
}

int lc_optim_launches_per_step(const lc_optim *o) { (void)o; return 1; }
int64_t lc_optim_steps_done(const lc_optim *o) { return o->steps; }
