#!/usr/bin/env bash
# Builds, on this CPU machine, everything scripts/gpu/check.sh runs on a lent GPU machine, and
# packs it into .gpu/ (ignored by git) in parts that each fit one device call.
#
#   scripts/gpu/prepare.sh            # then make the calls it prints, one right after the other
#
# The GPU machine reaches no registry and cannot build, and one call carries at most 64 MiB with
# the working tree (~14 MB): the wgpu build of the harness, harness-bench and the fidelity tests,
# the fixtures, the default model (98 MB) and the Vulkan loader's packages go as one xz bundle
# split into numbered parts. Each call stashes its part on the machine; the call with the last
# part joins them (checking the bundle's sha256) and runs the checks. The machine stays warm for
# about 30 s after a call, so the calls must follow each other at once.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
shared=$(cd "$root/../shared" && pwd)
[[ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ]] || scripts/fetch-model.sh

# The fidelity tests of README's "Backends", on wgpu (CI runs them on lavapipe).
tests=(tiny_fixtures smollm2_fixtures wgpu_backend)
echo "building the wgpu binaries and tests (a second build of burn, ~20 minutes on 2 cores)"
cargo build --release -p harness --bins --features model/wgpu
test_args=()
for t in "${tests[@]}"; do test_args+=(--test "$t"); done
executables=$(cargo test --release -p model -p harness --features model/wgpu "${test_args[@]}" \
    --no-run --message-format=json |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])')

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/tests" "$stage/shared" "$stage/models" "$stage/debs"
cp "$CARGO_TARGET_DIR/release/harness" "$CARGO_TARGET_DIR/release/harness-bench" "$stage/bin/"
while read -r name path; do cp "$path" "$stage/tests/$name"; done <<<"$executables"
for t in "${tests[@]}"; do
    [[ -x $stage/tests/$t ]] || { echo "test binary $t was not built"; exit 1; }
done
strip "$stage"/bin/* "$stage"/tests/*
cp -r "$shared/fixtures" "$stage/shared/"
cp models/SmolLM2-135M-Instruct.Q4_1.gguf "$stage/models/"
# The Vulkan loader (the machine's image has NVIDIA's driver and ICD, not always libvulkan).
lists=$(mktemp -d)
apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
mkdir -p "$lists/partial"
apt-get "${apt_opts[@]}" update -qq
(cd "$stage/debs" && apt-get "${apt_opts[@]}" download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
rm -rf "$lists"
# The paths the binaries were built with: tests find the fixtures, the model, the task data and
# the harness binary there, so check.sh recreates them on the GPU machine.
cat >"$stage/paths.env" <<EOF
SOURCE_ROOT=$root
SHARED_DIR=$shared
BIN_DIR=$CARGO_TARGET_DIR/release
EOF

rm -rf .gpu
mkdir -p .gpu
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude
tar -C "$stage" -cf - . | xz -T0 -6 >.gpu/bundle.tar.xz
# A call carries the working tree (tracked and untracked files git does not ignore) and one part:
# each part takes what the tree leaves of 64 MiB, less 2 MB for the tree to grow.
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s | awk '{ s += $1 } END { print s }')
part_bytes=${GPU_PART_BYTES:-$((64 * 1024 * 1024 - tree_bytes - 2000000))}
sha=$(sha256sum .gpu/bundle.tar.xz | cut -d' ' -f1)
split -b "$part_bytes" -d -a 1 .gpu/bundle.tar.xz .gpu/part
rm .gpu/bundle.tar.xz
parts=(.gpu/part*)
n=${#parts[@]}
for i in "${!parts[@]}"; do
    mkdir -p ".gpu/$((i + 1))"
    mv "${parts[$i]}" ".gpu/$((i + 1))/bundle.part"
    echo "$sha $((i + 1)) $n" >".gpu/$((i + 1))/bundle.meta"
done
du -sh .gpu/*
echo
echo "Make these device calls one right after the other (run, carry, timeout_s):"
for i in $(seq 1 "$n"); do
    if ((i < n)); then
        echo "  command: scripts/gpu/check.sh .gpu/$i    carry: [\".gpu/$i\"]  timeout_s: 120"
    else
        echo "  command: scripts/gpu/check.sh .gpu/$i    carry: [\".gpu/$i\"]  timeout_s: 600"
    fi
done
