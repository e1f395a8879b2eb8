/* Core services: error messages, RNG, atomic files. */
#include "lc_test.h"

#include <string.h>
#include <sys/stat.h>

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

int main(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, error_messages);
    tcase_add_test(tc, rng_reproducible_and_uniform);
    tcase_add_test(tc, files_atomic);
    tcase_add_test(tc, strbuf_json);
    suite_add_tcase(s, tc);
    return lc_test_run(s);
}
