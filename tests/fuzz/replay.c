/* Replays every committed fuzz input (tests/fuzz/corpus/TARGET/ seeds and
 * tests/fuzz/regress/TARGET/ inputs that once crashed or tripped a
 * sanitizer) through the fuzz targets in the normal build: cheap, so every
 * suite run checks that no past finding comes back. */
#include "../lc_test.h"

#include <dirent.h>
#include <stdbool.h>
#include <string.h>

#include "lc_core.h"
#include "lc_fuzz.h"

typedef const char *(*target_fn)(const uint8_t *, size_t);
static const struct {
    const char *name;
    target_fn fn;
} targets[] = {
#define LC_X_(n) {#n, lc_fuzz_##n},
    LC_FUZZ_TARGETS(LC_X_)
#undef LC_X_
};
#define N_TARGETS ((int)(sizeof targets / sizeof targets[0]))

static const char *source_root(void)
{
    const char *s = getenv("LAYCA_SOURCE_ROOT");
    return s && *s ? s : "..";
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Runs every file of dir through fn; returns how many (-1: no folder). */
static int replay_dir(const char *dir, const char *target, target_fn fn)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    char *names[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 4096)
        if (e->d_name[0] != '.') names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_name);
    for (int i = 0; i < n; i++) {
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        uint8_t *data;
        size_t len;
        ck_assert_msg(lc_file_read(p, &data, &len) == LC_OK, "%s", lc_error_message());
        const char *why = fn(data, len);
        ck_assert_msg(why == NULL, "target %s, input %s: %s (last message: %s)", target, p, why, lc_error_message());
        free(data);
        free(names[i]);
    }
    return n;
}

/* One TAP line per target: its seeds (at least one) and its regressions. */
START_TEST(t_replay)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", source_root(), targets[_i].name);
    long before = lc_fuzz_accepted;
    int seeds = replay_dir(dir, targets[_i].name, targets[_i].fn);
    ck_assert_msg(seeds > 0, "%s: no seed inputs (every target needs a corpus folder)", dir);
    ck_assert_msg(lc_fuzz_accepted > before, "%s: no seed is accepted by the parser (seeds should reach past its "
                  "checks)", dir);
    snprintf(dir, sizeof dir, "%s/tests/fuzz/regress/%s", source_root(), targets[_i].name);
    replay_dir(dir, targets[_i].name, targets[_i].fn);
}
END_TEST

/* Every corpus or regression folder belongs to a target (a folder whose
 * target was renamed or not registered would silently never run). */
START_TEST(t_folders_known)
{
    static const char *const kinds[] = {"corpus", "regress"};
    for (int k = 0; k < 2; k++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/%s", source_root(), kinds[k]);
        DIR *d = opendir(dir);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            bool known = false;
            for (int t = 0; t < N_TARGETS; t++) known |= !strcmp(targets[t].name, e->d_name);
            if (!known) {
                closedir(d);
                ck_abort_msg("tests/fuzz/%s/%s: no fuzz target of that name (tests/fuzz/meson.build)", kinds[k],
                             e->d_name);
            }
        }
        closedir(d);
    }
}
END_TEST

int main(void)
{
    lc_log_set_level(LC_LOG_ERROR); /* inputs that make parsers warn are expected */
    Suite *s = suite_create("fuzz_replay");
    TCase *tc = tcase_create("replay");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, t_replay, 0, N_TARGETS);
    tcase_add_test(tc, t_folders_known);
    suite_add_tcase(s, tc);
    return lc_test_run(s);
}
