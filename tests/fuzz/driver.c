/* libFuzzer entry point for one target, chosen at compile time with
 * -DLC_FUZZ_NAME=name (tests/fuzz/meson.build builds one per target). */
#include <stdio.h>
#include <stdlib.h>

#include "lc_core.h"
#include "lc_fuzz.h"

#define LC_FUZZ_CAT_(a, b) a##b
#define LC_FUZZ_FN_(name) LC_FUZZ_CAT_(lc_fuzz_, name)
#define LC_FUZZ_STR2_(x) #x
#define LC_FUZZ_STR_(x) LC_FUZZ_STR2_(x)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    lc_log_set_level(LC_LOG_ERROR); /* warnings about inputs are expected, by the million */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = LC_FUZZ_FN_(LC_FUZZ_NAME)(data, size);
    if (why) {
        fprintf(stderr, "fuzz target %s: %s (last message: %s)\n", LC_FUZZ_STR_(LC_FUZZ_NAME), why,
                lc_error_message());
        abort();
    }
    return 0;
}
