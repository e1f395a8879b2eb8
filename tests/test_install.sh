#!/usr/bin/env bash
# The installed library as a user meets it (TAP): meson install into a
# temporary folder (DESTDIR), docs/api.md's example built against it through
# `pkg-config --cflags --libs layca`, and run; the installed headers and
# models are where the docs say.  Arguments: the build and source folders.
set -uo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 fails=0
check() { # check NAME COMMAND...: one TAP line, the output as comments on failure
  n=$((n + 1))
  if out=$("${@:2}" 2>&1); then echo "ok $n - $1"; else
    echo "not ok $n - $1"; fails=$((fails + 1)); printf '%s\n' "$out" | tail -20 | sed 's/^/# /'; fi
}
echo "1..6"
check "meson install" meson install -C "$build" --destdir "$tmp/dest" --no-rebuild --quiet
prefix=$(meson introspect "$build" --buildoptions | python3 -c \
  'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
root="$tmp/dest$prefix"
pcdir=$(dirname "$(find "$root" -name layca.pc | head -1)")
libdir=$(dirname "$(find "$root" -name 'liblayca.so' | head -1)")
check "headers and models installed" test -f "$root/include/layca/layca.h" -a -f "$root/include/layca/lc_train.h" \
  -a -f "$root/share/layca/models/mlp3.json" -a -f "$libdir/liblayca.a"
# the example is the C block after the '<!-- example.c -->' marker
awk '/<!-- example.c -->/ {m = 1; next} m && /^```c/ {p = 1; next} p && /^```/ {exit} p' \
  "$src/docs/api.md" > "$tmp/example.c"
check "the example is in docs/api.md" grep -q lc_train_run "$tmp/example.c"
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/dest"
check "the example builds with pkg-config --cflags --libs layca" \
  bash -c "cc -std=c11 -Wall -Werror $tmp/example.c \$(pkg-config --cflags --libs layca) -o $tmp/example"
data=/usr/share/datasets/fashion-mnist
check "the example trains with Layca and reads the rotation" \
  bash -c "LD_LIBRARY_PATH=$libdir $tmp/example $root/share/layca/models/mlp3.json mnist:$data | tee /dev/stderr | grep -q 'kernel layer 2: rotation 0.[0-9]*[1-9]'"
check "the installed layca runs" bash -c "LD_LIBRARY_PATH=$libdir $root/bin/layca --version | grep -q '^layca '"
exit $((fails > 0))
