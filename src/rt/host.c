/* Host access for CPU devices whose buffers live in host memory: whole-buffer
 * maps, SGEMM on host pointers (the host BLAS), a small worker pool, and the
 * per-device cache of choices made by timing. */
#include "lc_rt_internal.h"

#ifdef LC_HAVE_HOST_BLAS
#include <cblas.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lc_status lc_rt_map(lc_rt *rt, cl_mem buf, float **ptr)
{
    *ptr = NULL;
    if (!lc_rt_host_blas_usable(rt))
        return LC_ERR(LC_ERR_UNSUPPORTED, "lc_rt_map: no host access to the buffers of device %s%s", rt->info.name,
                      rt->device_only ? " in device-only mode" : "");
    rt->host_maps++;
    size_t size = 0;
    cl_int err = clGetMemObjectInfo(buf, CL_MEM_SIZE, sizeof size, &size, NULL);
    if (err != CL_SUCCESS) return lc_rt_check(err, "clGetMemObjectInfo");
    void *p = clEnqueueMapBuffer(rt->queue, buf, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, size, 0, NULL, NULL, &err);
    if (err != CL_SUCCESS || !p) return lc_rt_check(err != CL_SUCCESS ? err : CL_MAP_FAILURE, "clEnqueueMapBuffer");
    *ptr = p;
    return LC_OK;
}

lc_status lc_rt_unmap(lc_rt *rt, cl_mem buf, float *ptr)
{
    if (!ptr) return LC_OK;
    return lc_rt_check(clEnqueueUnmapMemObject(rt->queue, buf, ptr, 0, NULL, NULL), "clEnqueueUnmapMemObject");
}

bool lc_rt_host_sgemm_available(void)
{
#ifdef LC_HAVE_HOST_BLAS
    return true;
#else
    return false;
#endif
}

lc_status lc_rt_host_sgemm(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                           const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    if (m == 0 || n == 0) return LC_OK;
#ifdef LC_HAVE_HOST_BLAS
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
    return LC_OK;
#else
    (void)ta; (void)tb; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb; (void)beta; (void)c; (void)ldc;
    return LC_ERR(LC_ERR_UNSUPPORTED, "no host BLAS in this build");
#endif
}

int lc_rt_host_blas_threads(int n)
{
#if defined(LC_HAVE_HOST_BLAS) && defined(OPENBLAS_VERSION)
    int old = openblas_get_num_threads();
    if (n > 0 && n != old) openblas_set_num_threads(n);
    return old;
#else
    (void)n;
    return 1;
#endif
}

/* ---- worker pool: the caller and (threads - 1) workers take task indices
 * from a shared counter; workers sleep between jobs (no spinning: the same
 * cores run the OpenCL device and the BLAS threads) ---- */

struct lc_rt_pool {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    pthread_t *th;
    int n_th;            /* workers */
    unsigned long gen;   /* job generation */
    int busy;            /* workers still in the current job */
    bool quit;
    void (*fn)(void *, int);
    void *ctx;
    int n_tasks, next;
};

static int take(lc_rt_pool *p)
{
    return __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
}

static void *worker(void *arg)
{
    lc_rt_pool *p = arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->gen == seen) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) break;
        seen = p->gen;
        void (*fn)(void *, int) = p->fn;
        void *ctx = p->ctx;
        int n = p->n_tasks;
        pthread_mutex_unlock(&p->mu);
        for (int i = take(p); i < n; i = take(p)) fn(ctx, i);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static lc_rt_pool *pool_create(int threads)
{
    lc_rt_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->th = calloc((size_t)(threads > 1 ? threads - 1 : 1), sizeof *p->th);
    if (!p->th) { free(p); return NULL; }
    for (int i = 0; i < threads - 1; i++) {
        if (pthread_create(&p->th[i], NULL, worker, p) != 0) break;
        p->n_th++;
    }
    return p;
}

void lc_rt_pool_release(lc_rt_impl *impl)
{
    lc_rt_pool *p = impl->pool;
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_th; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p->th);
    free(p);
    impl->pool = NULL;
}

int lc_rt_host_threads(const lc_rt *rt) { return ((const lc_rt_impl *)rt)->host_threads; }

void lc_rt_host_parallel(lc_rt *rt, int n, void (*fn)(void *ctx, int i), void *ctx)
{
    if (n <= 0) return;
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    if (!impl->pool && n > 1 && lc_rt_host_threads(rt) > 1) impl->pool = pool_create(lc_rt_host_threads(rt));
    lc_rt_pool *p = impl->pool;
    if (!p || p->n_th == 0 || n == 1) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n;
    p->next = 0;
    p->busy = p->n_th;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = take(p); i < n; i = take(p)) fn(ctx, i);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* ---- choices made by timing, per device, beside the program cache ---- */

typedef struct choice { char *key; int value; } choice;

static void choice_path(lc_rt *rt, char *out, size_t cap)
{
    char key[1024];
    snprintf(key, sizeof key, "%s|%s|%s|choices-1", rt->info.name, rt->info.driver_version,
             rt->info.platform_version);
    snprintf(out, cap, "%s/choices-%016llx.txt", rt->cache_dir,
             (unsigned long long)lc_hash64(key, strlen(key), 0x6e78));
}

static lc_status choice_add(lc_rt_impl *impl, const char *key, int value)
{
    for (int i = 0; i < impl->n_choice; i++)
        if (!strcmp(impl->choice[i].key, key)) {
            impl->choice[i].value = value;
            return LC_OK;
        }
    if (impl->n_choice == impl->cap_choice) {
        int nc = impl->cap_choice ? impl->cap_choice * 2 : 32;
        choice *c = realloc(impl->choice, (size_t)nc * sizeof *c);
        if (!c) return LC_ERR(LC_ERR_NOMEM, "out of memory");
        impl->choice = c;
        impl->cap_choice = nc;
    }
    char *k = strdup(key);
    if (!k) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    impl->choice[impl->n_choice++] = (choice){k, value};
    return LC_OK;
}

static void choices_load(lc_rt *rt)
{
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    if (impl->choice_loaded) return;
    impl->choice_loaded = true;
    if (!rt->cache_dir[0]) return;
    char path[1200];
    choice_path(rt, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char key[400];
        int v;
        if (sscanf(line, "%399s %d", key, &v) == 2) choice_add(impl, key, v);
    }
    fclose(f);
}

int lc_rt_choice_get(lc_rt *rt, const char *key)
{
    choices_load(rt);
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    for (int i = 0; i < impl->n_choice; i++)
        if (!strcmp(impl->choice[i].key, key)) return impl->choice[i].value;
    return -1;
}

void lc_rt_choice_set(lc_rt *rt, const char *key, int value)
{
    choices_load(rt);
    lc_rt_impl *impl = lc_rt_impl_of(rt);
    if (strlen(key) >= 400 || strchr(key, ' ') || strchr(key, '\n')) return;
    if (choice_add(impl, key, value) != LC_OK || !rt->cache_dir[0] || lc_mkdirs(rt->cache_dir) != LC_OK) return;
    size_t cap = 1, len = 0;
    for (int i = 0; i < impl->n_choice; i++) cap += strlen(impl->choice[i].key) + 16;
    char *buf = malloc(cap);
    if (!buf) return;
    for (int i = 0; i < impl->n_choice; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s %d\n", impl->choice[i].key, impl->choice[i].value);
    char path[1200];
    choice_path(rt, path, sizeof path);
    if (lc_file_write_atomic(path, buf, len) != LC_OK) LC_DEBUG("cannot write %s: %s", path, lc_error_message());
    free(buf);
}

void lc_rt_choices_release(lc_rt_impl *impl)
{
    for (int i = 0; i < impl->n_choice; i++) free(impl->choice[i].key);
    free(impl->choice);
    impl->choice = NULL;
    impl->n_choice = impl->cap_choice = 0;
}
