#!/usr/bin/env bash
# Builds, here, everything benches/gpu.sh runs on a GPU machine (where nothing is built) and packs
# it into one ignored folder of the repository root, small enough to carry to the device machine:
#
#   bash benches/gpu-pack.sh [PACK_DIR]        # default PACK_DIR: gpu-pack
#
# PACK_DIR then holds
#   sidrec-gpu.deb  the stripped release binaries (sidrec; the train_step, beam_search, quantize,
#                   item_attention and matmul benches) and Amazon Beauty, as one xz-compressed tar
#                   wrapped as a .deb, so that `dpkg -x` unpacks it on any Debian or Ubuntu machine
#                   (dpkg is certain to be there; xz, zstd and python3 are not);
#   gpu.sh          a copy of benches/gpu.sh, so the script always matches the binaries;
#   beauty.toml     a copy of configs/beauty.toml (gpu.sh points its data paths into the pack);
#   MANIFEST        the commit, the build date and each file's size and SHA-256.
#
# The binaries share most of their code (Burn), so they are compressed as one stream with a
# dictionary larger than a binary (XZ_DICT, default 384MiB; about 11 times that in memory while
# compressing, the dictionary size when unpacking): each bench adds about 6 MB to the first
# binary's 19 MB, where compressed alone it would add 16 MB.
#
# Environment: CARGO_TARGET_DIR (as for cargo), BEAUTY_DIR (default ../shared/data/amazon-beauty-2014
# beside the repository, else /work/shared/data/amazon-beauty-2014), XZ_DICT.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
pack=${1:-gpu-pack}
case $pack in /*) ;; *) pack="$root/$pack" ;; esac
target=${CARGO_TARGET_DIR:-$root/target}
dict=${XZ_DICT:-384MiB}
benches=(train_step beam_search quantize item_attention matmul)
beauty=${BEAUTY_DIR:-}
if [ -z "$beauty" ]; then
    for d in "$root/../shared/data/amazon-beauty-2014" /work/shared/data/amazon-beauty-2014; do
        [ -f "$d/Beauty.inter.json" ] && { beauty=$d; break; }
    done
fi
for f in Beauty.inter.json Beauty.letter-index.json; do
    [ -f "$beauty/$f" ] || { echo "gpu-pack: $beauty/$f not found (set BEAUTY_DIR to the Amazon Beauty folder)" >&2; exit 1; }
done
for tool in strip xz ar tar sha256sum; do
    command -v $tool >/dev/null || { echo "gpu-pack: needs $tool" >&2; exit 1; }
done

echo "== building the release binaries (target dir $target)"
cargo build --release --bin sidrec
log=$(mktemp)
cargo bench --no-run $(printf -- '--bench %s ' "${benches[@]}") 2>&1 | tee "$log"

stage=$(mktemp -d "${TMPDIR:-/tmp}/gpu-pack.XXXXXX")
trap 'rm -rf "$stage" "$log"' EXIT
mkdir -p "$stage/root/bin" "$stage/root/data/amazon-beauty-2014" "$stage/deb"
strip -o "$stage/root/bin/sidrec" "$target/release/sidrec"
for b in "${benches[@]}"; do
    exe=$(sed -n "s|^ *Executable benches/$b\.rs (\(.*\))\$|\1|p" "$log" | tail -1)
    [ -x "$exe" ] || { echo "gpu-pack: no executable for the $b bench in cargo's output" >&2; exit 1; }
    strip -o "$stage/root/bin/$b" "$exe"
done
cp "$beauty/Beauty.inter.json" "$beauty/Beauty.letter-index.json" "$stage/root/data/amazon-beauty-2014/"

commit=$(git rev-parse HEAD)
dirty=$(git status --porcelain --untracked-files=no | wc -l)
{
    echo "commit $commit"
    echo "uncommitted_changes $dirty"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m) $(hostname)"
    echo "rustc $(rustc --version)"
    (cd "$stage/root" && find . -type f | sort | xargs sha256sum | while read -r sum f; do
        echo "file ${f#./} $(stat -c %s "$f") $sum"
    done)
} > "$stage/MANIFEST"
cp "$stage/MANIFEST" "$stage/root/MANIFEST"

echo "== compressing (xz, dictionary $dict; several minutes)"
# Benches first (the most alike), then sidrec, then the data; the x86 filter turns relative
# call addresses into absolute ones, which compress better.
order=$(printf './bin/%s ' "${benches[@]}")
tar -C "$stage/root" --owner=0 --group=0 -cf - $order ./bin/sidrec ./data ./MANIFEST |
    xz -T1 --x86 --lzma2=preset=6,dict="$dict" -c > "$stage/deb/data.tar.xz"
# A minimal .deb around it: `dpkg -x` reads only data.tar.xz (with liblzma, any dictionary).
printf '2.0\n' > "$stage/deb/debian-binary"
mkdir "$stage/control"
printf 'Package: sidrec-gpu-pack\nVersion: 0\nArchitecture: amd64\nMaintainer: sidrec <sidrec@localhost>\nDescription: sidrec release binaries and Amazon Beauty for benches/gpu.sh\n' \
    > "$stage/control/control"
tar -C "$stage/control" --owner=0 --group=0 -czf "$stage/deb/control.tar.gz" ./control
rm -rf "$pack"
mkdir -p "$pack"
(cd "$stage/deb" && ar rc "$pack/sidrec-gpu.deb" debian-binary control.tar.gz data.tar.xz)
cp benches/gpu.sh "$pack/gpu.sh"
cp configs/beauty.toml "$pack/beauty.toml"
cp "$stage/MANIFEST" "$pack/MANIFEST"

rel=${pack#"$root"/}
size=$(du -sb "$pack" | cut -f1)
gl=$( [ -d .gl ] && du -sb .gl | cut -f1 || echo 0)
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
echo "== $rel: $(awk -v s="$size" 'BEGIN{printf "%.1f MiB", s/1048576}')" \
    "(.gl: $(awk -v s="$gl" 'BEGIN{printf "%.1f MiB", s/1048576}');" \
    "tracked files: $(awk -v s="$tree" 'BEGIN{printf "%.1f MiB", s/1048576}'); the device tool carries 64 MiB in all)"
ls -l "$pack"
[ -d .gl ] || echo "note: no .gl/ here: fetch the Vulkan loader first (/work/.library/device/README.md, 'Headless rendering')"
if [ "$rel" = "$pack" ]; then
    echo "note: $pack is outside the repository root; the device tool carries only paths inside it" >&2
fi
cat <<EOF
== on a GPU machine (the device tool; the pack and .gl must be in the checkout the session started in):
run(command="for f in .gl/*.deb; do dpkg -x \$f /; done; ldconfig; bash $rel/gpu.sh $rel \$OUT/gpu.json",
    carry=[".gl", "$rel"], timeout_s=600)
EOF
