#!/usr/bin/env bash
# Copy the K-th group of 4 export parts (run_study.sh EXPORT_MODELS=...) into OUT_DIR, so that a
# call on the still-warm machine brings them back (a call returns at most 8 files of 16 MiB).
#
#   bash scripts/gpu/fetch_export.sh K [OUT_DIR]      # K = 0 → parts 00-03, 1 → 04-07, ...
#
# Here, once every part is back:  cat encoders.tar.part-* > encoders.tar
#   sha256sum -c encoders.tar.sha256 && xstilts adopt STUDY encoders.tar
set -euo pipefail
K=${1:?usage: fetch_export.sh K [OUT_DIR]}
OUTDIR=${2:-${OUT:?OUT_DIR or \$OUT}}
EXPORT_DIR=${EXPORT_DIR:-/tmp/xstilts-export}
PER_CALL=${PER_CALL:-4}
mapfile -t PARTS < <(ls "$EXPORT_DIR" | grep '^encoders\.tar\.part-' | sort)
[ ${#PARTS[@]} -gt 0 ] || { echo "no export parts in $EXPORT_DIR"; exit 1; }
FIRST=$((K * PER_CALL))
[ "$FIRST" -lt ${#PARTS[@]} ] || { echo "no part $FIRST: there are ${#PARTS[@]}"; exit 1; }
mkdir -p "$OUTDIR"
for ((i = FIRST; i < (K + 1) * PER_CALL && i < ${#PARTS[@]}; i++)); do
  cp "$EXPORT_DIR/${PARTS[$i]}" "$OUTDIR/"
done
cp "$EXPORT_DIR/encoders.tar.sha256" "$OUTDIR/"
echo "parts $FIRST..$((i - 1)) of ${#PARTS[@]} copied to $OUTDIR"
