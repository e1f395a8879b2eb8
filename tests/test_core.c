/* Core services: error messages, RNG, atomic files. */
/* O_TMPFILE */
#define _GNU_SOURCE
#include "lc_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lc_core.h"

START_TEST(error_messages)
{
    lc_status st = LC_ERR(LC_ERR_INVALID, "bad value %d", 42);
    ck_assert_int_eq(st, LC_ERR_INVALID);
    ck_assert_str_eq(lc_error_message(), "bad value 42");
    lc_error_prefix(st, "file.json");
    ck_assert_str_eq(lc_error_message(), "file.json: bad value 42");
    /* long prefixes are cut, never overflow */
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    lc_error_prefix(st, "%s", big);
    ck_assert_uint_lt(strlen(lc_error_message()), 1024);
    ck_assert_str_eq(lc_status_name(LC_ERR_DEVICE), "device error");
}
END_TEST

START_TEST(rng_reproducible_and_uniform)
{
    lc_rng a, b, c;
    lc_rng_seed(&a, 5);
    lc_rng_seed(&b, 5);
    lc_rng_seed(&c, 6);
    int same = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = lc_rng_next(&a), y = lc_rng_next(&b), z = lc_rng_next(&c);
        ck_assert(x == y);
        same += x == z;
    }
    ck_assert_int_lt(same, 2);
    /* uniform mean and normal moments */
    double s = 0, s2 = 0, m = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        m += lc_rng_uniform(&a);
        double z = lc_rng_normal(&a);
        s += z;
        s2 += z * z;
    }
    ck_assert(fabs(m / n - 0.5) < 0.005);
    ck_assert(fabs(s / n) < 0.01);
    ck_assert(fabs(s2 / n - 1) < 0.02);
    /* below() stays in range and hits every value */
    int hit[7] = {0};
    for (int i = 0; i < 7000; i++) {
        uint64_t v = lc_rng_below(&a, 7);
        ck_assert(v < 7);
        hit[v]++;
    }
    for (int i = 0; i < 7; i++) ck_assert_int_gt(hit[i], 800);
    /* shuffle is a permutation */
    int32_t p[50];
    for (int i = 0; i < 50; i++) p[i] = i;
    lc_rng_shuffle_i32(&a, p, 50);
    int seen[50] = {0};
    for (int i = 0; i < 50; i++) seen[p[i]]++;
    for (int i = 0; i < 50; i++) ck_assert_int_eq(seen[i], 1);
}
END_TEST

START_TEST(files_atomic)
{
    char d[512], p[600];
    snprintf(d, sizeof d, "%s/a/b/c", lc_test_tmpdir());
    ck_assert_int_eq(lc_mkdirs(d), LC_OK);
    snprintf(p, sizeof p, "%s/f.bin", d);
    ck_assert_int_eq(lc_file_write_atomic(p, "hello", 5), LC_OK);
    uint8_t *data;
    size_t len;
    ck_assert_int_eq(lc_file_read(p, &data, &len), LC_OK);
    ck_assert_uint_eq(len, 5);
    ck_assert(!memcmp(data, "hello", 5));
    free(data);
    /* writing into a missing folder fails cleanly and names the path */
    snprintf(p, sizeof p, "%s/missing/f.bin", d);
    ck_assert_int_eq(lc_file_write_atomic(p, "x", 1), LC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(lc_error_message(), "missing/f.bin"));
    ck_assert_int_eq(lc_file_read("/nonexistent/zzz", &data, &len), LC_ERR_IO);
    ck_assert_ptr_nonnull(strstr(lc_error_message(), "/nonexistent/zzz"));
}
END_TEST

START_TEST(strbuf_json)
{
    lc_strbuf b = {0};
    lc_strbuf_json_string(&b, "a\"b\\c\n\x1b[31m");
    ck_assert_str_eq(b.s, "\"a\\\"b\\\\c\\u000a\\u001b[31m\"");
    lc_strbuf_clear(&b);
    lc_strbuf_json_number(&b, "%.3f", NAN);
    lc_strbuf_printf(&b, ",");
    lc_strbuf_json_number(&b, "%.3f", INFINITY);
    lc_strbuf_printf(&b, ",");
    lc_strbuf_json_number(&b, "%.3f", 1.5);
    ck_assert_str_eq(b.s, "null,null,1.500");
    /* longer than the small formatting buffer */
    lc_strbuf_clear(&b);
    for (int i = 0; i < 1000; i++) lc_strbuf_printf(&b, "%s", "0123456789");
    lc_strbuf_printf(&b, "%0600d", 7);
    ck_assert_uint_eq(b.len, 10600);
    ck_assert_uint_eq(strlen(b.s), 10600);
    ck_assert_int_eq(b.s[10599], '7');
    lc_strbuf_free(&b);
    ck_assert_ptr_null(b.s);
}
END_TEST


/* Messages quote names and text from input files: control bytes, C1
 * controls and malformed UTF-8 are escaped; UTF-8 text stays. */
START_TEST(error_messages_escaped)
{
    LC_ERR(LC_ERR_INVALID, "key '%s'", "\x1b]0;title\x07\x1b[2J\nred\t\x7f");
    ck_assert_str_eq(lc_error_message(), "key '\\x1b]0;title\\x07\\x1b[2J\\x0ared\\x09\\x7f'");
    LC_ERR(LC_ERR_INVALID, "%s", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 ok");
    ck_assert_str_eq(lc_error_message(), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 ok");
    /* C1 CSI as UTF-8, a lone continuation byte, a cut sequence, an overlong '/' */
    LC_ERR(LC_ERR_INVALID, "%s", "a\xc2\x9b" "b\x80" "c\xe2\x82" "d\xc0\xaf");
    ck_assert_str_eq(lc_error_message(), "a\\xc2\\x9bb\\x80c\\xe2\\x82d\\xc0\\xaf");
    /* prefixes are escaped too, and escaping twice changes nothing */
    lc_error_prefix(LC_ERR_INVALID, "file\x1b.json");
    ck_assert_str_eq(lc_error_message(), "file\\x1b.json: a\\xc2\\x9bb\\x80c\\xe2\\x82d\\xc0\\xaf");
    char out[64];
    ck_assert_uint_eq(lc_text_escape(out, sizeof out, "x\x01y"), 6);
    ck_assert_str_eq(out, "x\\x01y");
    char again[64];
    lc_text_escape(again, sizeof again, out);
    ck_assert_str_eq(again, out);
    /* a long message of control bytes is cut between escapes and stays one line */
    char big[2000];
    memset(big, 0x1b, sizeof big - 1);
    big[sizeof big - 1] = 0;
    LC_ERR(LC_ERR_INVALID, "%s", big);
    const char *m = lc_error_message();
    ck_assert_uint_lt(strlen(m), 1024);
    ck_assert_uint_eq(strlen(m) % 4, 0);
    for (const char *p = m; *p; p++) ck_assert((unsigned char)*p >= 0x20);
    /* the buffer limit of lc_text_escape */
    ck_assert_uint_eq(lc_text_escape(out, 6, "\x01\x02"), 4);
    ck_assert_str_eq(out, "\\x01");
}
END_TEST

static void on_alarm(int sig) { (void)sig; }

/* A FIFO, a device or a folder is refused at once, never read (a FIFO with
 * no writer would block forever). */
START_TEST(file_read_regular_only)
{
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/in.fifo", lc_test_tmpdir());
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    /* if the read blocked, the alarm would interrupt it and the checks fail */
    signal(SIGALRM, on_alarm);
    alarm(20);
    uint8_t *data = (uint8_t *)"x";
    size_t len = 7;
    ck_assert_int_eq(lc_file_read(fifo, &data, &len), LC_ERR_INVALID);
    ck_assert_ptr_null(data);
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_nonnull(strstr(lc_error_message(), "in.fifo: is a FIFO"));
    ck_assert_int_eq(lc_file_read("/dev/null", &data, &len), LC_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lc_error_message(), "/dev/null: is a character device"));
    ck_assert_int_eq(lc_file_read(lc_test_tmpdir(), &data, &len), LC_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lc_error_message(), "is a folder"));
    alarm(0);
    /* an empty regular file is fine */
    char empty[600];
    snprintf(empty, sizeof empty, "%s/empty.txt", lc_test_tmpdir());
    FILE *f = fopen(empty, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(lc_file_read(empty, &data, &len), LC_OK);
    ck_assert_uint_eq(len, 0);
    free(data);
    unlink(fifo);
    unlink(empty);
}
END_TEST

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void assert_contents(const char *path, const char *text)
{
    uint8_t *data;
    size_t len;
    ck_assert_int_eq(lc_file_read(path, &data, &len), LC_OK);
    ck_assert_uint_eq(len, strlen(text));
    ck_assert(!memcmp(data, text, len));
    free(data);
}

/* Entries of folder d other than "." and "..", and whether any is a
 * temporary file of the atomic writer. */
static int count_entries(const char *d, int *temporaries)
{
    DIR *dir = opendir(d);
    ck_assert_ptr_nonnull(dir);
    int n = 0;
    *temporaries = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        n++;
        if (strstr(e->d_name, ".tmp")) (*temporaries)++;
    }
    closedir(dir);
    return n;
}

/* A symbolic link is written through: its final target gets the data
 * atomically and keeps its permissions, the link stays a link. */
START_TEST(atomic_write_follows_links)
{
    char d[512], other[512], real[600], link1[600], link2[600], far[600], farlink[600], dang[600], dangt[600];
    snprintf(d, sizeof d, "%s/links", lc_test_tmpdir());
    snprintf(other, sizeof other, "%s/other", lc_test_tmpdir());
    ck_assert_int_eq(lc_mkdirs(d), LC_OK);
    ck_assert_int_eq(lc_mkdirs(other), LC_OK);
    snprintf(real, sizeof real, "%s/real.bin", d);
    snprintf(link1, sizeof link1, "%s/link1.bin", d);
    snprintf(link2, sizeof link2, "%s/link2.bin", d);
    write_text(real, "old");
    ck_assert_int_eq(chmod(real, 0640), 0);
    ck_assert_int_eq(symlink("real.bin", link1), 0);  /* relative */
    ck_assert_int_eq(symlink(link1, link2), 0);       /* absolute, to a link */
    ck_assert_int_eq(lc_file_write_atomic(link2, "new data", 8), LC_OK);
    struct stat sb;
    ck_assert_int_eq(lstat(link1, &sb), 0);
    ck_assert(S_ISLNK(sb.st_mode));
    ck_assert_int_eq(lstat(link2, &sb), 0);
    ck_assert(S_ISLNK(sb.st_mode));
    ck_assert_int_eq(lstat(real, &sb), 0);
    ck_assert(S_ISREG(sb.st_mode));
    ck_assert_int_eq(sb.st_mode & 07777, 0640);
    assert_contents(real, "new data");
    /* a link into another folder: the file there is replaced */
    snprintf(far, sizeof far, "%s/far.bin", other);
    snprintf(farlink, sizeof farlink, "%s/far.bin", d);
    write_text(far, "far");
    ck_assert_int_eq(symlink("../other/far.bin", farlink), 0);
    ck_assert_int_eq(lc_file_write_atomic(farlink, "moved", 5), LC_OK);
    assert_contents(far, "moved");
    ck_assert_int_eq(lstat(farlink, &sb), 0);
    ck_assert(S_ISLNK(sb.st_mode));
    /* a dangling link creates its target */
    snprintf(dang, sizeof dang, "%s/dangling.bin", d);
    snprintf(dangt, sizeof dangt, "%s/created.bin", other);
    ck_assert_int_eq(symlink("../other/created.bin", dang), 0);
    ck_assert_int_eq(lc_file_write_atomic(dang, "fresh", 5), LC_OK);
    assert_contents(dangt, "fresh");
    /* a loop is an error, not a hang */
    char loop[600];
    snprintf(loop, sizeof loop, "%s/loop.bin", d);
    ck_assert_int_eq(symlink("loop.bin", loop), 0);
    ck_assert_int_ne(lc_file_write_atomic(loop, "x", 1), LC_OK);
    ck_assert_ptr_nonnull(strstr(lc_error_message(), "symbolic links"));
    int tmp;
    ck_assert_int_eq(count_entries(d, &tmp), 6);
    ck_assert_int_eq(tmp, 0);
    ck_assert_int_eq(count_entries(other, &tmp), 2);
    ck_assert_int_eq(tmp, 0);
}
END_TEST

/* Folders, FIFOs and devices are refused with a clear error and left as
 * they are (the probe's --save onto /dev/null replaced the device node). */
START_TEST(atomic_write_refuses_special)
{
    char d[512], fifo[600], sub[600], lnk[600];
    snprintf(d, sizeof d, "%s/special", lc_test_tmpdir());
    ck_assert_int_eq(lc_mkdirs(d), LC_OK);
    snprintf(fifo, sizeof fifo, "%s/out.fifo", d);
    snprintf(sub, sizeof sub, "%s/sub", d);
    snprintf(lnk, sizeof lnk, "%s/null.bin", d);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(lc_mkdirs(sub), LC_OK);
    ck_assert_int_eq(symlink("/dev/null", lnk), 0);
    signal(SIGALRM, on_alarm);
    alarm(20);
    ck_assert_int_eq(lc_file_write_atomic(fifo, "x", 1), LC_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lc_error_message(), "out.fifo: is a FIFO"));
    ck_assert_ptr_nonnull(strstr(lc_error_message(), "refusing to replace it"));
    alarm(0);
    ck_assert_int_eq(lc_file_write_atomic(sub, "x", 1), LC_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lc_error_message(), "is a folder"));
    ck_assert_int_eq(lc_file_write_atomic(lnk, "x", 1), LC_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(lc_error_message(), "null.bin -> /dev/null: is a character device"));
    /* as root this would have replaced the node: check it is still one */
    struct stat sb;
    ck_assert_int_eq(stat("/dev/null", &sb), 0);
    ck_assert(S_ISCHR(sb.st_mode));
    ck_assert_int_eq(lstat(fifo, &sb), 0);
    ck_assert(S_ISFIFO(sb.st_mode));
    ck_assert_int_eq(lstat(lnk, &sb), 0);
    ck_assert(S_ISLNK(sb.st_mode));
    int tmp;
    ck_assert_int_eq(count_entries(d, &tmp), 3);
    ck_assert_int_eq(tmp, 0);
    ck_assert_int_eq(lc_file_write_atomic("", "x", 1), LC_ERR_INVALID);
}
END_TEST

/* A kill at any moment of a save leaves the old file or the new one, and
 * where the file system has O_TMPFILE at most one temporary file (a kill
 * between the link and the rename, a window of two system calls that tmpfs
 * hits about once in a hundred kills), which the next save removes. */
START_TEST(atomic_write_killed)
{
    char d[512], p[600];
    snprintf(d, sizeof d, "%s/killed", lc_test_tmpdir());
    ck_assert_int_eq(lc_mkdirs(d), LC_OK);
    snprintf(p, sizeof p, "%s/big.bin", d);
#ifdef O_TMPFILE
    int probe = open(d, O_TMPFILE | O_WRONLY, 0600);
    bool unnamed = probe >= 0;
    if (probe >= 0) close(probe);
#else
    bool unnamed = false;
#endif
    const size_t n = (size_t)8 << 20;
    for (int round = 0; round < 6; round++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            /* versions 1, 2, 3...: every byte of a version holds its number */
            uint8_t *buf = malloc(n);
            if (!buf) _exit(3);
            for (int v = 1;; v++) {
                memset(buf, v & 0xff, n);
                if (lc_file_write_atomic(p, buf, n) != LC_OK) _exit(2);
            }
        }
        struct timespec ts = {0, (long)(15 + 37 * round) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int ws;
        ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
        ck_assert(WIFSIGNALED(ws)); /* the writer did not fail on its own */
        int tmp, entries = count_entries(d, &tmp);
        if (unnamed) {
            ck_assert_int_le(tmp, 1);
            ck_assert_int_le(entries, 1 + tmp);
        }
        uint8_t *data;
        size_t len;
        if (lc_file_read(p, &data, &len) == LC_OK) {
            ck_assert_uint_eq(len, n);
            ck_assert_uint_eq(data[0], data[n - 1]);
            ck_assert_uint_eq(data[0], data[n / 2]);
            free(data);
        }
    }
    /* the next save sweeps what killed writers left, and only that: a dead
     * writer's file goes; a running process's file and other names stay */
    pid_t dead = fork();
    ck_assert_int_ge(dead, 0);
    if (dead == 0) _exit(0);
    ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
    char stale[700], live[700], other[700];
    snprintf(stale, sizeof stale, "%s/.big.bin.tmp-%ld-7", d, (long)dead);
    snprintf(live, sizeof live, "%s/.big.bin.tmp-1-7", d);
    snprintf(other, sizeof other, "%s/.big.bin.tmp-%ld-x", d, (long)dead);
    write_text(stale, "stale");
    write_text(live, "live");
    write_text(other, "other");
    ck_assert_int_eq(lc_file_write_atomic(p, "done", 4), LC_OK);
    assert_contents(p, "done");
    ck_assert_int_ne(access(stale, F_OK), 0);
    ck_assert_int_eq(access(live, F_OK), 0);
    ck_assert_int_eq(access(other, F_OK), 0);
    unlink(live);
    unlink(other);
    int tmp;
    ck_assert_int_eq(count_entries(d, &tmp), 1);
    ck_assert_int_eq(tmp, 0);
}
END_TEST

/* The cache folder: set explicitly (the library reads no environment), and
 * the CLIs' rule for their variables. */
START_TEST(cache_dir_set_and_resolve)
{
    char out[64];
    ck_assert_int_eq(lc_cache_dir_set("/some/where"), LC_OK);
    lc_cache_dir(out, sizeof out);
    ck_assert_str_eq(out, "/some/where");
    lc_cache_dir(out, 5); /* does not fit: no disk cache */
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(lc_cache_dir_set(""), LC_OK);
    lc_cache_dir(out, sizeof out);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(lc_cache_dir_set(NULL), LC_OK);
    lc_cache_dir(out, sizeof out);
    ck_assert_str_eq(out, "");
    lc_cache_dir_resolve("/c", "/x", "/h", out, sizeof out);
    ck_assert_str_eq(out, "/c");
    lc_cache_dir_resolve("OFF", "/x", "/h", out, sizeof out);
    ck_assert_str_eq(out, "");
    lc_cache_dir_resolve("", "/x", "/h", out, sizeof out);
    ck_assert_str_eq(out, "/x/layca");
    lc_cache_dir_resolve(NULL, "", "/h", out, sizeof out);
    ck_assert_str_eq(out, "/h/.cache/layca");
    lc_cache_dir_resolve(NULL, NULL, NULL, out, sizeof out);
    ck_assert_str_eq(out, "");
    lc_cache_dir_resolve("/a/path/longer/than/the/room/given", NULL, NULL, out, 8);
    ck_assert_str_eq(out, "");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, error_messages);
    tcase_add_test(tc, rng_reproducible_and_uniform);
    tcase_add_test(tc, files_atomic);
    tcase_add_test(tc, strbuf_json);
    tcase_add_test(tc, error_messages_escaped);
    tcase_add_test(tc, file_read_regular_only);
    tcase_add_test(tc, atomic_write_follows_links);
    tcase_add_test(tc, atomic_write_refuses_special);
    tcase_add_test(tc, atomic_write_killed);
    tcase_add_test(tc, cache_dir_set_and_resolve);
    suite_add_tcase(s, tc);
    return lc_test_run(s);
}
