/* Fuzz targets: one function per parser, over (bytes, length), shared by
 * the libFuzzer drivers (build with -Dfuzz=true, see tools/fuzz.sh) and by
 * test_fuzz_replay, which runs every committed corpus and regression input
 * through the same functions in the normal build.
 *
 * A target returns NULL when the parser behaved: it either succeeded with
 * outputs that pass the target's checks, or failed with a one-line printable
 * message.  Otherwise it returns what went wrong (the driver aborts with
 * it, the replay test fails with it).  Crashes and sanitizer reports speak
 * for themselves.
 *
 * Adding a target NAME: tests/fuzz/fuzz_NAME.c defining
 *   const char *lc_fuzz_NAME(const uint8_t *data, size_t size);
 * one line in the lc_fuzz_targets table of tests/fuzz/meson.build, and a
 * seed folder tests/fuzz/corpus/NAME/ (optionally tests/fuzz/dict/NAME.dict
 * and tests/fuzz/regress/NAME/ for inputs that once failed). */
#ifndef LC_FUZZ_H
#define LC_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "lc_fuzz_list.h" /* generated: #define LC_FUZZ_TARGETS(X) X(model) X(idx) ... */

#define LC_FUZZ_DECLARE_(name) const char *lc_fuzz_##name(const uint8_t *data, size_t size);
LC_FUZZ_TARGETS(LC_FUZZ_DECLARE_)
#undef LC_FUZZ_DECLARE_

/* The checks every failing call must pass: a status that is an error and a
 * message that is non-empty, one line and printable.  NULL when fine. */
const char *lc_fuzz_check_error(int status);

/* Inputs a target accepted (the parser succeeded), counted so that the
 * replay test can check that the seeds reach past the error paths. */
extern long lc_fuzz_accepted;

/* A copy of data in its own allocation of exactly size bytes (at least one),
 * so that any read past the end is caught by the address sanitizer even when
 * the caller's buffer is larger; NULL when out of memory. */
uint8_t *lc_fuzz_copy(const uint8_t *data, size_t size);

#endif
