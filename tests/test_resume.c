/* Runs that survive: `layca train` killed with SIGKILL at random moments
 * (some of them while a checkpoint is being written) and resumed each time
 * ends with the uninterrupted run's weights and metrics, bit for bit (the
 * wall-clock "time_s" values aside); no partial checkpoint is ever taken;
 * SIGINT and SIGTERM stop with a checkpoint and exit 130 / 143.
 * Layca-Adam on mlp3 (MNIST digits from ../shared when present, else
 * generated 28x28 images) and small_cnn_bn (batch normalisation, dropout,
 * flips) on generated CIFAR-10 binary files. */
/* paths here are short test paths; buffers are generous */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include "lc_test.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lc_model.h"
#include "lc_test_files.h"
#include "lc_test_idx.h"
#include "lc_rt.h"

static char layca[1024], src[1024], tmp[1024];

static void setup(void)
{
    if (layca[0]) return;
    lc_device_info *devs;
    int nd = 0;
    if (lc_rt_list_devices(&devs, &nd) != LC_OK || nd == 0) lc_test_skip_all("no OpenCL device");
    free(devs);
    const char *b = getenv("LAYCA_BUILD_ROOT"), *s = getenv("LAYCA_SOURCE_ROOT");
    snprintf(layca, sizeof layca, "%s/tools/layca", b ? b : "..");
    snprintf(src, sizeof src, "%s", s ? s : "..");
    snprintf(tmp, sizeof tmp, "%s/resume", lc_test_tmpdir());
    ck_assert_int_eq(lc_mkdirs(tmp), LC_OK);
    char cache[1100];
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    /* for the layca processes this suite starts */
    setenv("LAYCA_CACHE_DIR", cache, 1);
    setenv("LAYCA_LOG", "warn", 1);
}

/* ---- processes ---- */

static pid_t spawn(const char *args, const char *log)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "exec %s %s >>%s 2>&1", layca, args, log);
    return lc_test_spawn_sh(cmd);
}

static int wait_exit(pid_t pid) { return lc_test_wait_exit(pid); }

static int run_to_end(const char *args, const char *log)
{
    return wait_exit(spawn(args, log));
}

/* Whether the process holds a file inside `dir` open (it writes a
 * checkpoint: checkpoint files are open only then). */
static bool writing_into(pid_t pid, const char *dir)
{
    char fdd[64];
    snprintf(fdd, sizeof fdd, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(fdd);
    if (!d) return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        char p[128], target[2048];
        snprintf(p, sizeof p, "%s/%s", fdd, e->d_name);
        ssize_t n = readlink(p, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        found = strstr(target, dir) != NULL;
    }
    closedir(d);
    return found;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* ---- comparisons ---- */

/* Every checkpoint in the folder is whole: it parses and is marked. */
static int check_checkpoints(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        /* what resume reads: ckpt-<step>.safetensors (temporary files of
         * an interrupted write have another name and are cleaned up later) */
        if (strncmp(e->d_name, "ckpt-", 5) || len < 12 || strcmp(e->d_name + len - 12, ".safetensors")) continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        lc_st_file f;
        ck_assert_msg(lc_safetensors_load(p, &f) == LC_OK, "a partial checkpoint %s: %s", p, lc_error_message());
        ck_assert_ptr_nonnull(lc_st_file_meta(&f, "layca.checkpoint"));
        lc_st_file_deinit(&f);
        n++;
    }
    closedir(d);
    return n;
}

/* The uninterrupted run, then the same run killed `kills` times and
 * resumed each time. */
static void kill_and_resume(const char *name, const char *args, int kills)
{
    char a[1200], b[1200], log[1300], full[8192], ckpt[1300];
    snprintf(a, sizeof a, "%s/%s-a", tmp, name);
    snprintf(b, sizeof b, "%s/%s-b", tmp, name);
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", b);
    ck_assert_int_eq(lc_mkdirs(a), LC_OK);
    ck_assert_int_eq(lc_mkdirs(b), LC_OK);
    snprintf(log, sizeof log, "%s/log", a);
    snprintf(full, sizeof full, "%s --metrics %s/m.jsonl --save %s/w.safetensors", args, a, a);
    /* twice: the second, with every cache warm, gives the run's duration */
    int rc = run_to_end(full, log);
    ck_assert_msg(rc == 0, "%s: the uninterrupted run exited %d (log %s)", name, rc, log);
    double t0 = lc_now_s();
    rc = run_to_end(full, log);
    double T = lc_now_s() - t0;
    ck_assert_msg(rc == 0, "%s: the uninterrupted run exited %d (log %s)", name, rc, log);

    snprintf(log, sizeof log, "%s/log", b);
    snprintf(full, sizeof full, "%s --metrics %s/m.jsonl --save %s/w.safetensors --checkpoint-dir %s --resume %s "
             "--checkpoint-every 3", args, b, b, ckpt, ckpt);
    lc_rng r;
    lc_rng_seed(&r, 0x6b696c6cULL);
    int done = 0, in_write = 0, finished = 0;
    /* every other kill aims at a checkpoint write; one that misses the
     * write (a busy machine can be slow to look) is followed by more, up
     * to three times the planned kills, until 3 landed in a write */
    for (int k = 0; (k < kills || (in_write < 3 && k < 3 * kills)) && !finished; k++) {
        pid_t pid = spawn(full, log);
        bool during_write = k % 2 == 1;
        /* start-up included: some kills land before training */
        double until = lc_now_s() + 0.05 + lc_rng_uniform(&r) * 0.3 * T, limit = lc_now_s() + 3 * T + 10;
        bool hit = false;
        for (;;) {
            int st;
            if (waitpid(pid, &st, WNOHANG) == pid) {
                ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: a resumed run failed (log %s)", name, log);
                finished = 1;
                break;
            }
            if (during_write ? writing_into(pid, ckpt) : lc_now_s() >= until) { hit = true; break; }
            if (lc_now_s() > limit) { hit = true; break; }
            if (!during_write) sleep_s(0.002);
        }
        if (finished) break;
        if (hit && during_write) {
            /* frozen first, then looked at: the kill below lands in the
             * write exactly when the file is still open now */
            int st;
            kill(pid, SIGSTOP);
            while (waitpid(pid, &st, WUNTRACED) < 0 && errno == EINTR) {}
            if (!WIFSTOPPED(st)) { /* it ended just before */
                ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: a resumed run failed (log %s)", name, log);
                finished = 1;
                break;
            }
            if (writing_into(pid, ckpt)) in_write++;
        }
        kill(pid, SIGKILL);
        ck_assert_int_eq(wait_exit(pid), -SIGKILL);
        done++;
        check_checkpoints(ckpt);
    }
    /* the last start runs to the end */
    if (!finished) {
        rc = run_to_end(full, log);
        ck_assert_msg(rc == 0, "%s: the resumed run exited %d (log %s)", name, rc, log);
    }
    ck_assert_msg(done >= kills, "%s: only %d kills before the run ended (of %d)", name, done, kills);
    ck_assert_msg(in_write >= 3, "%s: only %d kills landed during a checkpoint write", name, in_write);
    fprintf(stderr, "# %s: %d SIGKILLs (%d during a checkpoint write), uninterrupted run %.1f s\n", name, done,
            in_write, T);
    ck_assert_int_gt(check_checkpoints(ckpt), 0);
    char wa[1300], wb[1300], ma[1300], mb[1300];
    snprintf(wa, sizeof wa, "%s/w.safetensors", a);
    snprintf(wb, sizeof wb, "%s/w.safetensors", b);
    snprintf(ma, sizeof ma, "%s/m.jsonl", a);
    snprintf(mb, sizeof mb, "%s/m.jsonl", b);
    ck_assert_msg(lc_test_same_bytes(wa, wb), "%s: weights differ after %d kills (log %s)", name, done, log);
    char *x = lc_test_metrics_without_time(ma), *y = lc_test_metrics_without_time(mb);
    ck_assert_msg(!strcmp(x, y), "%s: metrics differ after %d kills, %s", name, done, lc_test_first_diff(x, y));
    free(x);
    free(y);
    /* no temporary file is left behind by the kills */
    DIR *d = opendir(ckpt);
    struct dirent *e;
    while (d && (e = readdir(d))) ck_assert_msg(!strstr(e->d_name, ".tmp"), "left behind: %s/%s", ckpt, e->d_name);
    if (d) closedir(d);
}

static void mnist_spec(char *spec, size_t cap)
{
    const char *shared = getenv("LAYCA_SHARED");
    char img[1200], lab[1200];
    snprintf(img, sizeof img, "%s/data/mnist/t10k-images-idx3-ubyte.gz", shared ? shared : "../../shared");
    snprintf(lab, sizeof lab, "%s/data/mnist/t10k-labels-idx1-ubyte.gz", shared ? shared : "../../shared");
    if (access(img, R_OK) == 0 && access(lab, R_OK) == 0) {
        snprintf(spec, cap, "idx:%s,%s --train-subset 600", img, lab);
        return;
    }
    char d[1200];
    snprintf(d, sizeof d, "%s/digits", tmp);
    lc_mkdirs(d);
    lc_test_write_idx_sized(d, "pool-images", "pool-labels", 900, 5, 28, 10);
    snprintf(spec, cap, "idx:%s/pool-images,%s/pool-labels --train-subset 600", d, d);
}

START_TEST(sigkill_mlp3_layca_adam)
{
    setup();
    char spec[3000], args[4096];
    mnist_spec(spec, sizeof spec);
    snprintf(args, sizeof args,
             "train %s/models/mlp3.json --data %s --test-subset 200 --optimizer adam --layca --lr 0.01 "
             "--schedule 2:0.2 --epochs 6 --batch 32 --quiet",
             src, spec);
    kill_and_resume("mlp3", args, 12);
}
END_TEST

START_TEST(sigkill_small_cnn_bn)
{
    setup();
    char d[1200], args[4096];
    snprintf(d, sizeof d, "%s/cifar", tmp);
    ck_assert_int_eq(lc_mkdirs(d), LC_OK);
    lc_test_write_cifar10(d, 40, 40, 9);
    snprintf(args, sizeof args,
             "train %s/models/small_cnn_bn.json --data cifar10:%s --flip --epochs 5 --batch 16 --lr 0.02 --quiet", src, d);
    kill_and_resume("cnn", args, 10);
}
END_TEST

/* SIGINT and SIGTERM: the step finishes, a checkpoint is written, the exit
 * code is 130 / 143, and the run resumes from it to the same end. */
START_TEST(sigint_sigterm_checkpoint)
{
    setup();
    char spec[3000], args[4096], a[1200], b[1200], log[1300], full[8192];
    mnist_spec(spec, sizeof spec);
    snprintf(args, sizeof args, "train %s/models/mlp3.json --data %s --test-subset 200 --epochs 4 --batch 16 --lr 0.05 "
             "--momentum 0.9 --quiet", src, spec);
    snprintf(a, sizeof a, "%s/sig-a", tmp);
    snprintf(b, sizeof b, "%s/sig-b", tmp);
    lc_mkdirs(a);
    lc_mkdirs(b);
    snprintf(log, sizeof log, "%s/log", a);
    snprintf(full, sizeof full, "%s --metrics %s/m.jsonl --save %s/w.safetensors", args, a, a);
    ck_assert_int_eq(run_to_end(full, log), 0);
    snprintf(log, sizeof log, "%s/log", b);
    /* checkpoints go beside --save by default */
    snprintf(full, sizeof full, "%s --metrics %s/m.jsonl --save %s/w.safetensors --resume %s/checkpoints", args, b, b, b);
    int sigs[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        pid_t pid = spawn(full, log);
        /* wait until training runs: the metrics file has its settings line */
        char m[1300];
        snprintf(m, sizeof m, "%s/m.jsonl", b);
        double limit = lc_now_s() + 60;
        struct stat s;
        while ((stat(m, &s) != 0 || s.st_size == 0) && lc_now_s() < limit) sleep_s(0.01);
        sleep_s(0.3);
        kill(pid, sigs[i]);
        int rc = wait_exit(pid);
        ck_assert_msg(rc == 128 + sigs[i], "signal %d: exit %d (log %s)", sigs[i], rc, log);
        char ck[1300];
        snprintf(ck, sizeof ck, "%s/checkpoints", b);
        ck_assert_int_gt(check_checkpoints(ck), 0);
    }
    ck_assert_int_eq(run_to_end(full, log), 0);
    char wa[1300], wb[1300];
    snprintf(wa, sizeof wa, "%s/w.safetensors", a);
    snprintf(wb, sizeof wb, "%s/w.safetensors", b);
    ck_assert_msg(lc_test_same_bytes(wa, wb), "weights differ after SIGINT and SIGTERM (log %s)", log);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("resume");
    TCase *tc = tcase_create("resume");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, sigkill_mlp3_layca_adam);
    tcase_add_test(tc, sigkill_small_cnn_bn);
    tcase_add_test(tc, sigint_sigterm_checkpoint);
    suite_add_tcase(s, tc);
    return lc_test_run(s);
}
