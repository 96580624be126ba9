#!/usr/bin/env bash
# Builds moegrad's embedded default multilingual corpus from Debian's manual pages: `manpages`
# and `manpages-dev` (the Linux man-pages project) for English, `manpages-<lang>` and
# `manpages-<lang>-dev` (manpages-l10n) for the translations. Every page is rendered to plain
# UTF-8 text with groff and written as one document per page per language:
#   DIR/<lang>/train/<page>.txt  and  DIR/<lang>/heldout/<page>.txt      (<page>: e.g. open.2)
# The same page in several languages is document-aligned parallel text. Whether a page is held
# out depends only on (seed, page name), so the SAME pages are held out in every language: the
# held-out sets are parallel too, and no translation of a held-out page is ever trained on.
# DIR/manifest.json records package versions, page counts and bytes per language.
#
# The .debs are fetched with `apt-get download` into DIR/.debs and unpacked with dpkg-deb -x,
# not installed (Docker images often drop /usr/share/man through dpkg path-exclude); only
# groff-base is installed when groff is missing (with sudo when not root).
# Safe to run again: a language whose stamp matches (package versions, seed, fraction) is kept;
# any other is rebuilt from scratch in a temporary folder and renamed into place.
#
# Usage: scripts/corpus-manpages.sh [--out DIR] [--languages en,de,...]
#                                   [--heldout-fraction F] [--seed N] [--jobs N]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
self="$repo/scripts/$(basename "$0")"

# Bumped whenever the rendering changes, so that older corpora are rebuilt.
FORMAT=1

out="$repo/corpora/manpages"
languages=en,de,fr,es,ru,pl,cs,uk,nl,it
fraction=0.1
seed=1234
jobs=$(nproc)

usage() {
  sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'
  cat <<EOF
Options (defaults in brackets):
  --out DIR              output folder [$out]
  --languages L1,L2,...  language codes; en is required [$languages]
  --heldout-fraction F   fraction of pages held out, in [0, 1] [$fraction]
  --seed N               seed of the held-out choice [$seed]
  --jobs N               pages rendered in parallel [nproc = $jobs]
EOF
}

die() {
  echo "corpus-manpages: error: $*" >&2
  exit 1
}
warn() { echo "corpus-manpages: warning: $*" >&2; }
log() { echo "corpus-manpages: $*"; }

while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --out | --languages | --heldout-fraction | --seed | --jobs)
      (($# >= 2)) || die "$1 needs a value"
      case "$1" in
        --out) out=$2 ;;
        --languages) languages=$2 ;;
        --heldout-fraction) fraction=$2 ;;
        --seed) seed=$2 ;;
        --jobs) jobs=$2 ;;
      esac
      shift 2 ;;
    --out=* | --languages=* | --heldout-fraction=* | --seed=* | --jobs=*)
      set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done

[[ $seed =~ ^[0-9]+$ ]] || die "--seed must be a non-negative integer, got '$seed'"
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive integer, got '$jobs'"
[[ $fraction =~ ^(0(\.[0-9]*)?|1(\.0*)?|\.[0-9]+)$ ]] ||
  die "--heldout-fraction must be a number in [0, 1], got '$fraction'"
# A page is held out when the first 32 bits of md5("seed:page") fall below this.
threshold=$(awk -v f="$fraction" 'BEGIN { printf "%.0f", f * 4294967296 }')
IFS=, read -r -a langs <<<"$languages"
[[ " ${langs[*]} " == *" en "* ]] || die "--languages must include en (got '$languages')"

SUDO=()
as_root() {
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "not root and sudo is missing; run as root: $*"
    SUDO=(sudo)
  fi
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" "$@"
}

# groff-base provides groff, preconv (UTF-8 input), tbl and the man macros.
groff_works() {
  printf '.TH T 1\n.SH NAME\nt \\- \\(lqok\\(rq\n' |
    groff -K utf-8 -t -mandoc -Tutf8 -P-cbou 2>/dev/null | grep -q '“ok”'
}
if ! command -v groff >/dev/null; then
  log "installing groff-base"
  as_root apt-get update -qq || die "apt-get update failed (no network to the Debian mirrors?)"
  as_root apt-get install -y -qq --no-install-recommends groff-base ||
    die "apt-get install groff-base failed"
fi

# The packages of a language: the first one must exist, the second (sections 2 and 3) may not.
packages_of() {
  if [[ $1 == en ]]; then echo manpages manpages-dev; else echo "manpages-$1" "manpages-$1-dev"; fi
}
# candidate[pkg]: the version apt would download, for every package apt knows (one apt-cache
# call for all: it is slow to start).
declare -A candidate
load_candidates() {
  local pkg='' line lang pkgs all=(groff-base)
  for lang in "${langs[@]}"; do
    read -r -a pkgs <<<"$(packages_of "$lang")"
    all+=("${pkgs[@]}")
  done
  candidate=()
  while IFS= read -r line; do
    case $line in
      [!\ ]*:) pkg=${line%:} ;;
      "  Candidate: (none)") ;;
      "  Candidate: "*) candidate[$pkg]=${line#  Candidate: } ;;
    esac
  done < <(LC_ALL=C apt-cache policy "${all[@]}" 2>/dev/null)
}
load_candidates
if [[ -z ${candidate[manpages]:-} ]]; then
  log "apt does not know the package manpages: updating the package lists"
  as_root apt-get update -qq ||
    die "apt-get update failed (no network to the Debian mirrors?)"
  load_candidates
  [[ -n ${candidate[manpages]:-} ]] || die "apt cannot find the package manpages after an update"
fi

mkdir -p "$out/.debs"
out=$(cd "$out" && pwd)

# Unpacks the candidate version of package $1 into $out/.debs/<pkg>/root, downloading it only
# when the cached copy is of another version.
fetch() {
  local pkg=$1 version=$2 dir="$out/.debs/$1"
  if [[ -f $dir/version && $(<"$dir/version") == "$version" && -d $dir/root ]]; then return; fi
  rm -rf "$dir" && mkdir -p "$dir/dl"
  # apt-get download writes into the current directory; as root it warns that the _apt user
  # cannot write there, which is harmless.
  (cd "$dir/dl" && apt-get download -qq "$pkg" 2>&1) | grep -v 'unsandboxed as root' >&2 || true
  local deb
  deb=$(find "$dir/dl" -name '*.deb' | head -n 1)
  [[ -n $deb ]] || die "apt-get download $pkg failed (no network to the Debian mirrors?)"
  dpkg-deb -x "$deb" "$dir/root" || die "dpkg-deb -x failed on $deb"
  rm -rf "$dir/dl"
  echo "$version" >"$dir/version"
}

# Slim Docker images drop /usr/share/groff (macros, fonts) through dpkg path-exclude as well:
# groff then runs on those files from the groff-base .deb.
if ! groff_works; then
  [[ -n ${candidate[groff-base]:-} ]] || die "groff cannot render a test page and apt cannot find groff-base"
  log "groff cannot find its macros (dpkg path-exclude?): using those of the groff-base package"
  fetch groff-base "${candidate[groff-base]}"
  share="$out/.debs/groff-base/root/usr/share/groff"
  GROFF_TMAC_PATH=$(printf '%s:' "$share"/[0-9]*/tmac "$share/site-tmac")
  GROFF_FONT_PATH=$(printf '%s' "$share"/[0-9]*/font)
  export GROFF_TMAC_PATH GROFF_FONT_PATH
  groff_works || die "groff cannot render a test page, even with the files of groff-base"
fi

# Renders the pages named in its arguments into $MP_DEST/{train,heldout}/<page>.txt and prints
# one status word per page (ok, so, empty) for the summary. Runs in xargs workers.
render_pages() {
  local f name src text hash split
  for f in "$@"; do
    name=${f##*/}
    name=${name%.gz}
    if [[ $f == *.gz ]]; then src=$(zcat -- "$f"); else src=$(cat -- "$f"); fi
    # A page that is only a `.so other-page` redirect would duplicate that page's text.
    if ((${#src} < 1024)) && [[ $(grep -v -E -e '^[.'"'"'][[:space:]]*\\"' -e '^[[:space:]]*$' <<<"$src" |
      head -n 2 | grep -c -v '^\.so ') == 0 ]]; then
      echo so
      continue
    fi
    # .na: ragged right, since justification pads lines with runs of spaces; HY=0: no words
    # split across lines. -P-cbou: no colour, bold, overstrike or underline codes.
    text=$({ printf '.na\n'; printf '%s\n' "$src"; } |
      groff -K utf-8 -t -mandoc -Tutf8 -rHY=0 -P-cbou 2>/dev/null |
      awk '{ sub(/[ \t\r]+$/, "") }
           $0 == "" { blank++; next }
           { if (seen) for (i = 0; i < (blank > 2 ? 2 : blank); i++) print ""
             blank = 0; seen = 1; print }')
    if [[ -z $text ]]; then
      echo empty
      continue
    fi
    hash=$(printf '%s:%s' "$MP_SEED" "$name" | md5sum)
    split=train
    (($((16#${hash:0:8})) < MP_THRESHOLD)) && split=heldout
    printf '%s\n' "$text" >"$MP_DEST/$split/$name.txt"
    echo ok
  done
}
export -f render_pages

# How many of the status words in $status are $1.
count() { awk -v w="$1" '$2 == w { n = $1 } END { print n + 0 }' <<<"$status"; }

start=$SECONDS
built=()
for lang in "${langs[@]}"; do
  read -r -a pkgs <<<"$(packages_of "$lang")"
  present=()
  versions=()
  for pkg in "${pkgs[@]}"; do
    if [[ -n ${candidate[$pkg]:-} ]]; then
      present+=("$pkg")
      versions+=("$pkg=${candidate[$pkg]}")
    fi
  done
  if [[ ${present[0]:-} != "${pkgs[0]}" ]]; then
    [[ $lang == en ]] && die "apt cannot find the package manpages"
    warn "apt cannot find the package ${pkgs[0]}: skipping language '$lang'"
    continue
  fi
  stamp="format=$FORMAT seed=$seed fraction=$fraction packages=${versions[*]}"
  dest="$out/$lang"
  if [[ -f $dest/.complete && $(<"$dest/.complete") == "$stamp" ]]; then
    log "$lang: up to date (${versions[*]})"
    built+=("$lang")
    continue
  fi

  lang_start=$SECONDS
  for i in "${!present[@]}"; do
    fetch "${present[$i]}" "${versions[$i]#*=}"
  done
  tmp="$out/.tmp-$lang"
  rm -rf "$tmp"
  mkdir -p "$tmp/train" "$tmp/heldout"
  # Regular files only: a symlinked page is another name for a page already there. Two
  # packages of a language may ship a page of the same name: the first package's wins.
  list=$(for pkg in "${present[@]}"; do
    root="$out/.debs/$pkg/root/usr/share/man"
    [[ ! -d $root ]] || find "$root" -path '*/man[0-9]*/*' -type f | LC_ALL=C sort
  done | awk '{ n = $0; sub(/.*\//, "", n); sub(/\.gz$/, "", n) } !seen[n]++')
  [[ -n $list ]] || die "$lang: no manual page found in ${present[*]}"
  log "$lang: rendering $(wc -l <<<"$list") pages of ${present[*]} ($jobs jobs)"
  status=$(MP_DEST="$tmp" MP_SEED="$seed" MP_THRESHOLD="$threshold" \
    xargs -d '\n' -P "$jobs" -n 32 bash -c 'render_pages "$@"' _ <<<"$list" | sort | uniq -c)
  n_train=$(find "$tmp/train" -name '*.txt' | wc -l)
  n_heldout=$(find "$tmp/heldout" -name '*.txt' | wc -l)
  ((n_train + n_heldout == $(count ok))) || die "$lang: some pages failed to render"
  bytes=$(find "$tmp/train" "$tmp/heldout" -name '*.txt' -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }')
  printf '%s\t%s\t%s\t%s\n' "${versions[*]}" "$n_train" "$n_heldout" "$bytes" >"$tmp/.counts"
  echo "$stamp" >"$tmp/.complete"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  log "$lang: $n_train train + $n_heldout held-out pages, $((bytes / 1024)) KiB" \
    "(skipped $(count so) .so redirects, $(count empty) empty) in $((SECONDS - lang_start)) s"
  built+=("$lang")
done

# The manifest covers the languages of this run.
{
  printf '{\n  "source": "Debian manual pages (manpages, manpages-dev, manpages-l10n)",\n'
  printf '  "seed": %s,\n  "heldout_fraction": %s,\n  "languages": {' "$seed" "$fraction"
  sep=
  for lang in "${built[@]}"; do
    IFS=$'\t' read -r pv n_train n_heldout bytes <"$out/$lang/.counts"
    printf '%s\n    "%s": {"packages": {' "$sep" "$lang"
    psep=
    for p in $pv; do
      printf '%s"%s": "%s"' "$psep" "${p%%=*}" "${p#*=}"
      psep=", "
    done
    printf '}, "train": %s, "heldout": %s, "bytes": %s}' "$n_train" "$n_heldout" "$bytes"
    sep=,
  done
  printf '\n  }\n}\n'
} >"$out/manifest.json.tmp"
mv "$out/manifest.json.tmp" "$out/manifest.json"

log "summary ($((SECONDS - start)) s), in $out:"
printf '  %-6s %7s %7s %9s\n' lang train heldout MiB
for lang in "${built[@]}"; do
  IFS=$'\t' read -r pv n_train n_heldout bytes <"$out/$lang/.counts"
  printf '  %-6s %7s %7s %9s\n' "$lang" "$n_train" "$n_heldout" \
    "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"
done
