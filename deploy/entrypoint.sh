#!/bin/sh
# Container entrypoint: seed the shipped prompts into the registry volume, then run the command.
#
# A shipped task is copied into the registry on the first start that finds it there neither now nor
# before: seeded names are recorded in .shipped-seeded, so a shipped task that a user deleted stays
# deleted, a task a user uploaded under the same name is never overwritten, and tasks new in a later
# image reach an existing volume. The copy goes through a .new-* staging directory, which the
# registry removes at start if a crash left one half-copied.
set -eu

registry=${PROMPTSERVE_PROMPTS_DIR:-/var/lib/promptserve/prompts}
shipped=${SHIPPED_PROMPTS_DIR:-/opt/promptserve/shipped-prompts}
seeded=$registry/.shipped-seeded

say() { echo "entrypoint: $*" >&2; }

seed_task() {  # seed_task SOURCE_DIR TASK
  if [ -e "$registry/$2" ]; then
    say "task $2 is already in the registry: kept as it is"
  else
    staging=$registry/.new-seed-$2
    rm -rf "$staging"
    cp -R "$1" "$staging"
    sync
    mv "$staging" "$registry/$2"
    say "seeded shipped task $2"
  fi
  echo "$2" >>"$seeded"
}

mkdir -p "$registry" 2>/dev/null || true
if [ ! -d "$registry" ] || [ ! -w "$registry" ]; then
  say "the registry directory $registry is not writable by uid $(id -u): chown it to that user"
  exit 1
fi
touch "$seeded"
for source in "$shipped"/*/; do
  [ -d "$source" ] || continue
  task=$(basename "$source")
  grep -qxF -- "$task" "$seeded" || seed_task "$source" "$task"
done

exec "$@"
