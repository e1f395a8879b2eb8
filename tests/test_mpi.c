/* Data parallelism over Open MPI: `mpirun -np 2 layca train` (PoCL, one
 * thread per rank) ends with the weights of the 1-process run with the same
 * global batch, for plain SGD and Layca-Adam on mlp3 (no batch norm, no
 * dropout); a 2-rank run stopped at a checkpoint (by its step count, or by
 * SIGTERM to mpirun) resumes on 2 ranks to the uninterrupted run's weights
 * and metrics, bit for bit; a checkpoint of 2 ranks refuses 1; a batch that
 * 2 ranks cannot split is a clear error; `layca study --parallel-runs 2`
 * deals its runs to the 2 ranks; the gradient exchange starts buckets
 * before the backward pass has ended.
 * Skipped in a build without MPI (meson found no 'mpi' dependency). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include "lc_test.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lc_model.h"
#include "lc_rt.h"
#include "lc_test_files.h"
#include "lc_test_idx.h"

static char layca[1024], src[1024], tmp[1024], data[3000];

static void setup(void)
{
    if (layca[0]) return;
    const char *mpi = getenv("LAYCA_HAVE_MPI");
    if (!mpi || strcmp(mpi, "1")) {
        printf("1..0 # SKIP built without MPI\n");
        exit(0);
    }
    lc_device_info *devs;
    int nd = 0;
    if (lc_rt_list_devices(&devs, &nd) != LC_OK || nd == 0) lc_test_skip_all("no OpenCL device");
    free(devs);
    const char *b = getenv("LAYCA_BUILD_ROOT"), *s = getenv("LAYCA_SOURCE_ROOT"), *sh = getenv("LAYCA_SHARED");
    snprintf(layca, sizeof layca, "%s/tools/layca", b ? b : "..");
    snprintf(src, sizeof src, "%s", s ? s : "..");
    snprintf(tmp, sizeof tmp, "%s/mpi", lc_test_tmpdir());
    ck_assert_int_eq(lc_mkdirs(tmp), LC_OK);
    char cache[1100];
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    setenv("LAYCA_CACHE_DIR", cache, 1);
    setenv("LAYCA_LOG", "warn", 1);
    /* one thread per process: PoCL's compute units, host workers, BLAS */
    setenv("POCL_MAX_CPU_CU_COUNT", "1", 1);
    setenv("LAYCA_HOST_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    /* mpirun as root (containers, CI) */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    /* MNIST digits from ../shared when present, else generated images */
    char img[1200], lab[1200];
    snprintf(img, sizeof img, "%s/data/mnist/t10k-images-idx3-ubyte.gz", sh ? sh : "../../shared");
    snprintf(lab, sizeof lab, "%s/data/mnist/t10k-labels-idx1-ubyte.gz", sh ? sh : "../../shared");
    if (access(img, R_OK) == 0 && access(lab, R_OK) == 0) {
        snprintf(data, sizeof data, "idx:%s,%s --train-subset 2000 --test-subset 500", img, lab);
    } else {
        ck_assert_msg(!lc_test_data_required(), "%s is missing (LAYCA_REQUIRE_DATA is set)", img);
        char d[1200];
        snprintf(d, sizeof d, "%s/digits", tmp);
        lc_mkdirs(d);
        lc_test_write_idx_sized(d, "pool-images", "pool-labels", 2500, 5, 28, 10);
        snprintf(data, sizeof data, "idx:%s/pool-images,%s/pool-labels --train-subset 2000 --test-subset 500", d, d);
    }
}

/* The command line of `layca ARGS` on `ranks` processes (mpirun when
 * ranks > 1), output into log. */
static void command(char *cmd, size_t cap, int ranks, const char *args, const char *log)
{
    if (ranks == 1)
        snprintf(cmd, cap, "exec %s %s >>%s 2>&1", layca, args, log);
    else
        /* shared memory between the ranks without the single-copy path
         * (containers often forbid process_vm_readv) */
        snprintf(cmd, cap, "exec mpirun --tag-output --oversubscribe --bind-to none --mca btl self,vader "
                 "--mca btl_vader_single_copy_mechanism none -x POCL_MAX_CPU_CU_COUNT -x LAYCA_HOST_THREADS "
                 "-x OPENBLAS_NUM_THREADS -x LAYCA_CACHE_DIR -x LAYCA_LOG -np %d %s %s >>%s 2>&1", ranks, layca, args, log);
}

static pid_t spawn(int ranks, const char *args, const char *log)
{
    char cmd[12000];
    command(cmd, sizeof cmd, ranks, args, log);
    return lc_test_spawn_sh(cmd);
}

/* The exit code of `layca ARGS` on `ranks` processes. */
static int run(int ranks, const char *args, const char *log)
{
    return lc_test_wait_exit(spawn(ranks, args, log));
}

/* The largest difference between the tensors of two weight files,
 * relative to the largest magnitude of the tensor in a. */
static double weights_diff(const char *a, const char *b)
{
    lc_st_file fa, fb;
    ck_assert_msg(lc_safetensors_load(a, &fa) == LC_OK, "%s", lc_error_message());
    ck_assert_msg(lc_safetensors_load(b, &fb) == LC_OK, "%s", lc_error_message());
    ck_assert_int_eq(fa.n, fb.n);
    double worst = 0;
    for (int i = 0; i < fa.n; i++) {
        const lc_st_tensor *x = &fa.tensors[i], *y = lc_st_file_find(&fb, x->name);
        ck_assert_ptr_nonnull(y);
        int64_t n = 1;
        for (int k = 0; k < x->rank; k++) n *= x->shape[k];
        double d = 0, m = 0;
        for (int64_t k = 0; k < n; k++) {
            float u, v;
            memcpy(&u, (const char *)x->raw + 4 * k, 4);
            memcpy(&v, (const char *)y->raw + 4 * k, 4);
            d = fmax(d, fabs((double)u - v));
            m = fmax(m, fabs((double)u));
        }
        worst = fmax(worst, d / fmax(m, 1e-30));
    }
    lc_st_file_deinit(&fa);
    lc_st_file_deinit(&fb);
    return worst;
}

/* 2 ranks against 1 process, same global batch 64 (32 per rank) */
static void same_as_one_rank(const char *name, const char *opt, double tol)
{
    char args[8000], log[1200], w1[1200], w2[1200], wh[1200];
    snprintf(log, sizeof log, "%s/%s.log", tmp, name);
    snprintf(w1, sizeof w1, "%s/%s-1.safetensors", tmp, name);
    snprintf(w2, sizeof w2, "%s/%s-2.safetensors", tmp, name);
    snprintf(wh, sizeof wh, "%s/%s-half.safetensors", tmp, name);
    const char *common = "--steps 20 --seed 3 --quiet";
    snprintf(args, sizeof args, "train %s/models/mlp3.json --data %s %s %s --batch 64 --save %s", src, data, opt, common, w1);
    ck_assert_msg(run(1, args, log) == 0, "%s: the 1-process run failed (log %s)", name, log);
    snprintf(args, sizeof args, "train %s/models/mlp3.json --data %s %s %s --batch 64 --save %s", src, data, opt, common, w2);
    ck_assert_msg(run(2, args, log) == 0, "%s: the 2-rank run failed (log %s)", name, log);
    /* what a wrong split would give: one process on each rank's share */
    snprintf(args, sizeof args, "train %s/models/mlp3.json --data %s %s %s --batch 32 --save %s", src, data, opt, common, wh);
    ck_assert_msg(run(1, args, log) == 0, "%s: the batch-32 run failed (log %s)", name, log);
    double d = weights_diff(w1, w2), dh = weights_diff(w1, wh);
    fprintf(stderr, "# %s: 2 ranks vs 1 process: %.3g (relative to the largest weight); batch 32 vs 64: %.3g\n", name,
            d, dh);
    ck_assert_msg(d <= tol, "%s: 2 ranks differ from 1 process by %.3g > %.3g", name, d, tol);
    ck_assert_msg(dh > 100 * tol, "%s: the tolerance %.3g does not tell batch 32 from 64 (%.3g)", name, tol, dh);
}

/* The tolerances, relative to the largest weight: the two runs add the
 * same products in another order (each rank's GEMMs sum 32 examples, the
 * all-reduce adds the halves): measured 1.7e-7 for SGD after 20 steps (a
 * few float ulps; at lr 0.05 a ReLU input near 0 flips sign once and moves
 * its row by ~1e-4, hence the small rate), 8e-6 for Layca-Adam (Adam
 * divides by sqrt(v) and enlarges early differences).  The batch-32 run
 * lies 0.1-0.5 away. */
START_TEST(sgd_two_ranks_equal_one)
{
    setup();
    same_as_one_rank("sgd", "--optimizer sgd --no-layca --lr 0.01", 1e-6);
}
END_TEST

START_TEST(layca_adam_two_ranks_equal_one)
{
    setup();
    same_as_one_rank("adam", "--optimizer adam --layca --lr 0.01", 1e-4);
}
END_TEST

/* The files of an uninterrupted run (a) and a stopped and resumed one (b). */
typedef struct run_pair {
    char base[8000];            /* `layca train` on mlp3 with the test's data and `opts` */
    char log[1200], a[1200], b[1200], wa[1300], wb[1300], ma[1300], mb[1300];
} run_pair;

/* Sets the paths up and makes the uninterrupted run on 2 ranks. */
static void run_pair_init(run_pair *p, const char *tag, const char *opts)
{
    setup();
    snprintf(p->base, sizeof p->base, "train %s/models/mlp3.json --data %s --batch 64 --quiet %s", src, data, opts);
    const char *base = p->base;
    snprintf(p->log, sizeof p->log, "%s/%s.log", tmp, tag);
    snprintf(p->a, sizeof p->a, "%s/%s-a", tmp, tag);
    snprintf(p->b, sizeof p->b, "%s/%s-b", tmp, tag);
    ck_assert_int_eq(lc_mkdirs(p->a), LC_OK);
    ck_assert_int_eq(lc_mkdirs(p->b), LC_OK);
    snprintf(p->wa, sizeof p->wa, "%s/w.safetensors", p->a);
    snprintf(p->wb, sizeof p->wb, "%s/w.safetensors", p->b);
    snprintf(p->ma, sizeof p->ma, "%s/m.jsonl", p->a);
    snprintf(p->mb, sizeof p->mb, "%s/m.jsonl", p->b);
    char args[9000];
    snprintf(args, sizeof args, "%s --save %s --metrics %s", base, p->wa, p->ma);
    ck_assert_msg(run(2, args, p->log) == 0, "%s: the uninterrupted 2-rank run failed (log %s)", tag, p->log);
}

/* 2 ranks: 40 steps with a checkpoint every 10, ended after 20 and resumed
 * (from step 10: a run's last step writes no checkpoint), against 40 steps
 * in one go. */
START_TEST(two_ranks_resume)
{
    char args[8000];
    run_pair p;
    /* 2000 examples at batch 64: epochs of 32 steps, the last one short */
    run_pair_init(&p, "resume", "--optimizer adam --layca --lr 0.01 --steps 40");
    snprintf(args, sizeof args, "%s --steps 20 --save %s --metrics %s --checkpoint-every 10 --checkpoint-dir %s/ck",
             p.base, p.wb, p.mb, p.b);
    ck_assert_msg(run(2, args, p.log) == 0, "the first half failed (log %s)", p.log);
    snprintf(args, sizeof args, "%s --save %s --metrics %s --checkpoint-every 10 --checkpoint-dir %s/ck "
             "--resume %s/ck", p.base, p.wb, p.mb, p.b, p.b);
    ck_assert_msg(run(2, args, p.log) == 0, "the resumed 2-rank run failed (log %s)", p.log);
    ck_assert_msg(lc_test_same_bytes(p.wa, p.wb), "the resumed 2-rank run ends with other weights (log %s)", p.log);
    /* the records after the settings (whose run length differs: 20 steps
     * at first) */
    char *x = lc_test_metrics_without_time(p.ma), *y = lc_test_metrics_without_time(p.mb);
    const char *xr = strchr(x, '\n'), *yr = strchr(y, '\n');
    ck_assert_msg(xr && yr && strchr(xr + 1, '\n'), "short metrics:\n%s", x);
    ck_assert_msg(!strcmp(xr, yr), "metrics differ after the resume:\n%s\n---\n%s", x, y);
    ck_assert_msg(strstr(x, "\"ranks\": 2") != NULL, "the settings record has no \"ranks\": 2:\n%s", x);
    free(x);
    free(y);
    /* the same checkpoint on 1 rank: refused, naming the setting */
    char one[1200];
    snprintf(one, sizeof one, "%s/one.log", tmp);
    snprintf(args, sizeof args, "%s --steps 50 --checkpoint-dir %s/ck --resume %s/ck", p.base, p.b, p.b);
    ck_assert_int_ne(run(1, args, one), 0);
    char *text = lc_test_read_text(one);
    ck_assert_msg(strstr(text, "ranks = 2") && strstr(text, "ranks = 1"), "no clear error:\n%s", text);
    free(text);
}
END_TEST

/* The last process mpirun started (a rank), 0 when none is found. */
static pid_t last_child(pid_t parent)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)parent, (int)parent);
    FILE *f = fopen(path, "r");
    long pid = 0, v;
    while (f && fscanf(f, "%ld", &v) == 1) pid = v;
    if (f) fclose(f);
    return (pid_t)pid;
}

/* SIGTERM to one rank only: the ranks agree on the step to stop at (the
 * other one has seen no signal) and write one checkpoint; the same command
 * with --resume ends with the uninterrupted run's weights and metrics.
 * (mpirun forwards a signal to the ranks too, but a second or so later.) */
START_TEST(sigterm_two_ranks_resume)
{
    char args[8000];
    run_pair p;
    run_pair_init(&p, "sigterm", "--optimizer sgd --momentum 0.9 --layca --lr 0.01 --steps 100 --checkpoint-every 20");
    snprintf(args, sizeof args, "%s --save %s --metrics %s --resume %s/checkpoints", p.base, p.wb, p.mb, p.b);
    pid_t pid = spawn(2, args, p.log);
    /* the run is under way (and far from its end) once its first checkpoint, at step 20, is there */
    char first[1400];
    snprintf(first, sizeof first, "%s/checkpoints/ckpt-000000000020.safetensors", p.b);
    double limit = lc_now_s() + 60;
    while (access(first, F_OK) != 0 && lc_now_s() < limit) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    pid_t rank = last_child(pid);
    ck_assert_msg(rank > 0, "no rank of mpirun %d found", (int)pid);
    kill(rank, SIGTERM);
    ck_assert_int_ne(lc_test_wait_exit(pid), 0); /* mpirun reports the stop */
    char *text = lc_test_read_text(p.log);
    ck_assert_msg(strstr(text, "stopped by signal 15"), "no stop at a checkpoint:\n%s", text);
    free(text);
    snprintf(args, sizeof args, "%s/checkpoints", p.b);
    ck_assert_msg(access(args, F_OK) == 0, "no checkpoint folder %s", args);
    snprintf(args, sizeof args, "%s --save %s --metrics %s --resume %s/checkpoints", p.base, p.wb, p.mb, p.b);
    ck_assert_msg(run(2, args, p.log) == 0, "the resumed 2-rank run failed (log %s)", p.log);
    ck_assert_msg(lc_test_same_bytes(p.wa, p.wb), "the resumed 2-rank run ends with other weights (log %s)", p.log);
    char *x = lc_test_metrics_without_time(p.ma), *y = lc_test_metrics_without_time(p.mb);
    ck_assert_msg(!strcmp(x, y), "metrics differ after the stop:\n%s\n---\n%s", x, y);
    free(x);
    free(y);
}
END_TEST

/* study --parallel-runs 2: the 4 runs of an lr grid, 2 on each rank (their
 * lines are tagged [1,RANK] by mpirun), every result in the table. */
START_TEST(study_parallel_runs)
{
    setup();
    char args[8000], log[1200], out[1200];
    snprintf(log, sizeof log, "%s/study.log", tmp);
    snprintf(out, sizeof out, "%s/study", tmp);
    snprintf(args, sizeof args, "study lr-grid --parallel-runs 2 --out %s --model %s/models/mlp3.json --data %s "
             "--lrs 0.1,0.2,0.3,0.4 --steps 3", out, src, data);
    ck_assert_msg(run(2, args, log) == 0, "the study failed (log %s)", log);
    char *text = lc_test_read_text(log);
    int per_rank[2] = {0, 0};
    for (const char *p = text; (p = strstr(p, ": test acc ")); p++) {
        const char *line = p;
        while (line > text && line[-1] != '\n') line--;
        if (!strncmp(line, "[1,0]", 5)) per_rank[0]++;
        if (!strncmp(line, "[1,1]", 5)) per_rank[1]++;
    }
    ck_assert_msg(per_rank[0] == 2 && per_rank[1] == 2, "runs per rank %d and %d, not 2 and 2:\n%s", per_rank[0],
                  per_rank[1], text);
    free(text);
    char csv[1300];
    snprintf(csv, sizeof csv, "%s/results.csv", out);
    text = lc_test_read_text(csv);
    ck_assert_ptr_nonnull(text);
    for (int k = 1; k <= 4; k++) {
        char id[32];
        snprintf(id, sizeof id, "sgd-lr0.%d,ok,", k);
        ck_assert_msg(strstr(text, id), "%s lacks run %s:\n%s", csv, id, text);
    }
    free(text);
}
END_TEST

/* The exchange overlaps the backward pass: rank 0's report counts the
 * buckets whose sum started while backward launches were still to run
 * (mlp3: the bucket of all but fc1's weight, before fc1's weight gradient), with the
 * buffers mapped and staged (--device-only). */
static void overlapped(const char *name, const char *opt)
{
    char args[8000], log[1200];
    snprintf(log, sizeof log, "%s/%s.log", tmp, name);
    snprintf(args, sizeof args, "train %s/models/mlp3.json --data %s --steps 3 --batch 64 %s", src, data, opt);
    setenv("LAYCA_LOG", "info", 1);
    int rc = run(2, args, log);
    setenv("LAYCA_LOG", "warn", 1);
    ck_assert_msg(rc == 0, "%s: the 2-rank run failed (log %s)", name, log);
    char *text = lc_test_read_text(log);
    const char *p = strstr(text, "buckets started before the backward pass ended");
    ck_assert_msg(p, "%s: no report of the overlap:\n%s", name, text);
    while (p > text && p[-1] != ';') p--;
    long long early = -1, all = -1;
    ck_assert_int_eq(sscanf(p, " %lld of %lld", &early, &all), 2);
    ck_assert_msg(early > 0 && early < all, "%s: %lld of %lld buckets started before the backward pass ended:\n%s",
                  name, early, all, text);
    free(text);
}

START_TEST(exchange_overlaps_backward)
{
    setup();
    overlapped("overlap", "");
    overlapped("overlap-staged", "--device-only");
}
END_TEST

START_TEST(batch_not_divisible)
{
    setup();
    char args[8000], log[1200];
    snprintf(log, sizeof log, "%s/batch.log", tmp);
    snprintf(args, sizeof args, "train %s/models/mlp3.json --data %s --steps 2 --batch 33 --quiet", src, data);
    ck_assert_int_ne(run(2, args, log), 0);
    char *text = lc_test_read_text(log);
    ck_assert_msg(strstr(text, "--batch 33 is not divisible by the 2 ranks"), "no clear error:\n%s", text);
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mpi");
    TCase *tc = tcase_create("mpi");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, sgd_two_ranks_equal_one);
    tcase_add_test(tc, layca_adam_two_ranks_equal_one);
    tcase_add_test(tc, two_ranks_resume);
    tcase_add_test(tc, sigterm_two_ranks_resume);
    tcase_add_test(tc, study_parallel_runs);
    tcase_add_test(tc, batch_not_divisible);
    tcase_add_test(tc, exchange_overlaps_backward);
    suite_add_tcase(s, tc);
    return lc_test_run(s);
}
