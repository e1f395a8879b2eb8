#!/usr/bin/env bash
# Where layca's data sets come from, checks of downloaded files, and the
# extraction of the CIFAR-10 JPEG folders kept in ../shared/data.
#
#   tools/datasets.sh where              the download URLs and the layout each spec expects
#   tools/datasets.sh check DIR          md5 of the archives found in DIR against the published values
#                                        (and the sizes of extracted CIFAR binary files)
#   tools/datasets.sh cifar10-jpeg DIR   extract ../shared/data/cifar10-jpeg/{train,test}.tar.gz into
#                                        DIR (idempotent), for the spec images:DIR
#
# This script never downloads anything (the build machines have no internet); run the printed
# commands yourself where you have a connection.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${LAYCA_SHARED:-$root/../shared}"

CIFAR10_URL="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR100_URL="https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
TINY_URL="http://cs231n.stanford.edu/tiny-imagenet-200.zip"

# name md5 (published checksums of the archives)
ARCHIVES=(
  "cifar-10-binary.tar.gz c32a1d4ab5d03f1284b67883e8d87530"
  "cifar-100-binary.tar.gz 03b5dce01913d631647c71ecec9e9cb8"
  "tiny-imagenet-200.zip 90528d7ca1a48142e341f4ef8d21d0de"
)

# Extracted files of the binary releases and their exact sizes (records x record size).
EXTRACTED=(
  "cifar-10-batches-bin/data_batch_1.bin 30730000"
  "cifar-10-batches-bin/data_batch_2.bin 30730000"
  "cifar-10-batches-bin/data_batch_3.bin 30730000"
  "cifar-10-batches-bin/data_batch_4.bin 30730000"
  "cifar-10-batches-bin/data_batch_5.bin 30730000"
  "cifar-10-batches-bin/test_batch.bin 30730000"
  "cifar-100-binary/train.bin 153700000"
  "cifar-100-binary/test.bin 30740000"
)

usage() {
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

cmd_where() {
  cat <<EOF
CIFAR-10 (binary version, md5 c32a1d4ab5d03f1284b67883e8d87530)
  download: $CIFAR10_URL
  extract:  tar xzf cifar-10-binary.tar.gz -C DIR
  layout:   DIR/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin   (batches.meta.txt: class names)
  spec:     cifar10:DIR   (or cifar10:DIR/cifar-10-batches-bin)

CIFAR-100 (binary version, md5 03b5dce01913d631647c71ecec9e9cb8)
  download: $CIFAR100_URL
  extract:  tar xzf cifar-100-binary.tar.gz -C DIR
  layout:   DIR/cifar-100-binary/{train,test}.bin   (fine_label_names.txt, coarse_label_names.txt)
  spec:     cifar100:DIR (100 fine classes) or cifar100-coarse:DIR (20 superclasses)

Tiny ImageNet (md5 90528d7ca1a48142e341f4ef8d21d0de)
  download: $TINY_URL
  extract:  unzip tiny-imagenet-200.zip -d DIR
  layout:   DIR/tiny-imagenet-200/train/<wnid>/images/*.JPEG,
            DIR/tiny-imagenet-200/val/images/*.JPEG + val/val_annotations.txt (the test split)
  spec:     tinyimagenet:DIR/tiny-imagenet-200

Any image folders (JPEG/PNG, one size per data set)
  layout:   DIR/train/<class>/*.{jpg,jpeg,png}, DIR/test/<class>/*   (classes: sorted folder names)
  spec:     images:DIR
  CIFAR-10 as JPEG folders is in ../shared/data/cifar10-jpeg: tools/datasets.sh cifar10-jpeg DIR

Archives are never read by layca: extract them first. Decoded image folders are cached in
\$LAYCA_CACHE_DIR/data (default ~/.cache/layca/data); deleting that folder is always safe.
EOF
}

md5_of() { md5sum "$1" | cut -d' ' -f1; }

cmd_check() {
  local dir="$1" found=0 bad=0
  [ -d "$dir" ] || { echo "datasets.sh: $dir is not a folder" >&2; exit 2; }
  for entry in "${ARCHIVES[@]}"; do
    read -r name want <<<"$entry"
    local f="$dir/$name"
    if [ ! -f "$f" ]; then
      echo "absent    $name"
      continue
    fi
    found=$((found + 1))
    local got
    got="$(md5_of "$f")"
    if [ "$got" = "$want" ]; then
      echo "ok        $name (md5 $got)"
    else
      echo "MISMATCH  $name: md5 $got, published $want"
      bad=$((bad + 1))
    fi
  done
  for entry in "${EXTRACTED[@]}"; do
    read -r name want <<<"$entry"
    local f="$dir/$name"
    [ -f "$f" ] || continue
    found=$((found + 1))
    local got
    got="$(stat -c %s "$f")"
    if [ "$got" = "$want" ]; then
      echo "ok        $name ($got bytes)"
    else
      echo "MISMATCH  $name: $got bytes, expected $want"
      bad=$((bad + 1))
    fi
  done
  if [ "$found" -eq 0 ]; then
    echo "datasets.sh: none of the known archives or extracted files are in $dir (see: tools/datasets.sh where)" >&2
    exit 1
  fi
  [ "$bad" -eq 0 ] || exit 1
}

cmd_cifar10_jpeg() {
  local dir="$1" src="$shared/data/cifar10-jpeg"
  for s in train test; do
    [ -f "$src/$s.tar.gz" ] || { echo "datasets.sh: missing $src/$s.tar.gz" >&2; exit 1; }
  done
  mkdir -p "$dir"
  local want_train=50000 want_test=10000
  for s in train test; do
    local want=$want_train
    [ "$s" = test ] && want=$want_test
    local marker="$dir/.layca-extracted-$s"
    if [ -f "$marker" ] && [ -d "$dir/$s" ] &&
       [ "$(find "$dir/$s" -type f -name '*.jpg' | wc -l)" -eq "$want" ]; then
      echo "datasets.sh: $dir/$s already holds $want images" >&2
      continue
    fi
    echo "datasets.sh: extracting $src/$s.tar.gz into $dir" >&2
    rm -f "$marker"
    tar xzf "$src/$s.tar.gz" -C "$dir"
    local got
    got="$(find "$dir/$s" -type f -name '*.jpg' | wc -l)"
    if [ "$got" -ne "$want" ]; then
      echo "datasets.sh: $dir/$s holds $got images after extraction, expected $want" >&2
      exit 1
    fi
    touch "$marker"
  done
  echo "datasets.sh: ready; use the spec images:$dir" >&2
}

[ $# -ge 1 ] || usage
case "$1" in
  where) cmd_where ;;
  check) [ $# -eq 2 ] || usage; cmd_check "$2" ;;
  cifar10-jpeg) [ $# -eq 2 ] || usage; cmd_cifar10_jpeg "$2" ;;
  -h|--help|help) usage ;;
  *) echo "datasets.sh: unknown command '$1'" >&2; usage ;;
esac
