#!/usr/bin/env bash
# Shows that the simulator catches each hand-made core bug in tests/sim/mutations/*.patch.
# For each patch: copy the repo's src, tests and config into a temporary directory (the
# working tree is never touched), apply the patch there, build the Raft layer, and run the
# simulator seed after seed until a run fails (at most SKIFF_MUTATION_SEEDS seeds, on 3 and
# on 5 nodes). Prints, per patch and cluster size: found yes/no, the first seed, the invariant;
# when the first failure is the core's own assertion (core-exception) or a liveness miss, also
# the first seed that a safety invariant of the simulator catches.
# Usage: tests/sim/mutations.sh [patch...]      Exit code: 0 iff every mutation was found.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
seeds_max="${SKIFF_MUTATION_SEEDS:-500}"
patches=("$@")
if [ ${#patches[@]} -eq 0 ]; then patches=("$root"/tests/sim/mutations/*.patch); fi

work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-mutation.XXXXXX")"
trap 'rm -rf "$work"' EXIT

missed=0
printf '%-36s %-5s %-5s %-6s %-22s %s\n' patch nodes found seed invariant detail
for patch in "${patches[@]}"; do
  name="$(basename "$patch" .patch)"
  dir="$work/$name"
  mkdir -p "$dir"
  cp -R "$root/src" "$root/tests" "$dir/"
  cp "$root/package.json" "$root/tsconfig.json" "$dir/"
  ln -s "$root/node_modules" "$dir/node_modules"
  (cd "$dir" && patch -p1 --quiet < "$patch")
  # Only the simulator and what it imports (the core): other work in progress must not matter.
  cat > "$dir/tsconfig.mutation.json" <<'JSON'
{ "extends": "./tsconfig.json", "compilerOptions": { "outDir": "dist", "rootDir": ".", "noEmitOnError": true }, "files": ["src/raft/sim/main.ts"], "include": [] }
JSON
  if ! (cd "$dir" && npx --no-install tsc -p tsconfig.mutation.json > "$dir/build.log" 2>&1); then
    echo "$name: build failed:" >&2
    cat "$dir/build.log" >&2
    exit 2
  fi
  for nodes in 3 5; do
    # The first failing seed of any kind, then (if that was the core's own assertion) the
    # first seed that one of the simulator's invariants catches.
    for mode in any checker; do
      if [ "$mode" = any ]; then flag=--until-failure; else flag=--until-failure=checker; fi
      out="$(cd "$dir" && node dist/src/raft/sim/main.js --seeds "$seeds_max" --nodes "$nodes" "$flag" || true)"
      if [ "$mode" = any ]; then
        fail="$(printf '%s\n' "$out" | grep -m1 '^FAIL ' || true)"
      else
        fail="$(printf '%s\n' "$out" | grep '^FAIL ' | grep -v 'invariant=core-exception' | grep -v 'invariant=liveness' | tail -n1 || true)"
      fi
      if [ -n "$fail" ]; then
        seed="$(printf '%s' "$fail" | sed -E 's/.*seed=([0-9]+).*/\1/')"
        invariant="$(printf '%s' "$fail" | sed -E 's/.*invariant=([a-z-]+).*/\1/')"
        detail="$(printf '%s' "$fail" | sed -E 's/^[^:]*: //; s/ \(replay:.*//' | cut -c1-150)"
        printf '%-36s %-5s %-5s %-6s %-22s %s\n' "$name" "$nodes" yes "$seed" "$invariant" "$detail"
      elif [ "$mode" = any ]; then
        printf '%-36s %-5s %-5s %-6s %-22s %s\n' "$name" "$nodes" no - - "no failure in $seeds_max seeds"
        missed=$((missed + 1))
        break
      else
        printf '%-36s %-5s %-5s %-6s %-22s %s\n' "$name" "$nodes" no - - "no safety invariant failed in $seeds_max seeds"
      fi
      # A checker invariant found first: no second search needed.
      case "$fail" in *invariant=core-exception*|*invariant=liveness*) ;; *) break ;; esac
    done
  done
done
exit $((missed > 0 ? 1 : 0))
