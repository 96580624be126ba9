#!/usr/bin/env bash
# Builds a small multilingual held-out corpus in many scripts from Debian's iso-codes package:
# its gettext catalogs /usr/share/locale/<lang>/LC_MESSAGES/iso_<domain>.mo translate the names
# of countries (iso_3166-1, former ones iso_3166-3), subdivisions (iso_3166-2), languages
# (iso_639-2, iso_639-3, language families iso_639-5), currencies (iso_4217) and scripts
# (iso_15924) into 100+ languages. One document per language per catalog:
#   DIR/<lang>/heldout/<domain>.txt    (<domain>: e.g. iso_3166-1)
# holds the names that catalog translates, one a line, in the order of their English names;
# entries left untranslated (empty, or equal to the English name) are dropped. English (en) is
# the English names themselves: the msgids of the domain's catalogs in every language. The
# same domain in two languages is parallel text, aligned by document, not by line.
# DIR/manifest.json records the package version and, per language, documents, lines and bytes.
#
# The catalogs are read from /usr/share/locale when the installed iso-codes ships them; else
# (a minimal image, or dpkg path-exclude dropping /usr/share/locale) the .deb is fetched with
# `apt-get download` into DIR/.debs and unpacked with dpkg-deb -x, not installed.
# Languages with less than --min-bytes of text are left out with a warning.
# Safe to run again: a language whose stamp matches (package version, format) is kept; any
# other is rebuilt from scratch in a temporary folder and renamed into place.
#
# Usage: scripts/corpus-iso-codes.sh [--out DIR] [--languages en,de,...] [--min-bytes N]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
self="$repo/scripts/$(basename "$0")"

# Bumped whenever the extraction changes, so that older corpora are rebuilt.
FORMAT=1

out="$repo/corpora/iso-codes"
# 33 languages in 22 scripts: Latin (en de fr es fi tr vi), Cyrillic (ru uk bg sr), Greek,
# Arabic (ar fa), Hebrew, Devanagari (hi mr), Bengali, Tamil, Telugu, Gujarati, Gurmukhi (pa),
# Kannada, Malayalam, Sinhala, Thai, Khmer, Georgian, Armenian, Ethiopic (am), Hangul (ko),
# Japanese kana and kanji, simplified Han (zh_CN).
languages=en,de,fr,es,fi,tr,vi,ru,uk,bg,sr,el,ar,fa,he,hi,mr,bn,ta,te,gu,pa,kn,ml,si,th,km,ka,hy,am,ko,ja,zh_CN
min_bytes=4096

usage() {
  sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//'
  cat <<EOF
Options (defaults in brackets):
  --out DIR              output folder [$out]
  --languages L1,L2,...  locale names of /usr/share/locale (en: the English names)
                         [$languages]
  --min-bytes N          leave out a language with less text than this [$min_bytes]
EOF
}

die() {
  echo "corpus-iso-codes: error: $*" >&2
  exit 1
}
warn() { echo "corpus-iso-codes: warning: $*" >&2; }
log() { echo "corpus-iso-codes: $*"; }

while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --out | --languages | --min-bytes)
      (($# >= 2)) || die "$1 needs a value"
      case "$1" in
        --out) out=$2 ;;
        --languages) languages=$2 ;;
        --min-bytes) min_bytes=$2 ;;
      esac
      shift 2 ;;
    --out=* | --languages=* | --min-bytes=*)
      set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done

[[ $min_bytes =~ ^[0-9]+$ ]] || die "--min-bytes must be a non-negative integer, got '$min_bytes'"
IFS=, read -r -a langs <<<"$languages"
((${#langs[@]})) || die "--languages is empty"
declare -A seen
for lang in "${langs[@]}"; do
  # The same characters a shard's language code may hold (data/token_shard.cpp).
  [[ $lang =~ ^[A-Za-z0-9_-]+$ ]] || die "invalid language '$lang' in --languages '$languages'"
  [[ -z ${seen[$lang]:-} ]] || die "language '$lang' is given twice in --languages"
  seen[$lang]=1
done
command -v python3 >/dev/null || die "python3 is missing (it reads the .mo catalogs)"

SUDO=()
as_root() {
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "not root and sudo is missing; run as root: $*"
    SUDO=(sudo)
  fi
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" "$@"
}

mkdir -p "$out"
out=$(cd "$out" && pwd)

# The catalogs: those installed when dpkg has iso-codes and its files are really there.
installed=$(dpkg-query -W -f='${db:Status-Status} ${Version}' iso-codes 2>/dev/null || true)
if [[ $installed == installed\ * ]] &&
  compgen -G '/usr/share/locale/*/LC_MESSAGES/iso_3166-1.mo' >/dev/null; then
  version=${installed#installed }
  locale_root=/usr/share/locale
  log "iso-codes $version: catalogs of $locale_root"
else
  candidate() { LC_ALL=C apt-cache policy iso-codes 2>/dev/null | sed -n 's/^  Candidate: //p'; }
  version=$(candidate)
  if [[ -z $version || $version == "(none)" ]]; then
    log "apt does not know the package iso-codes: updating the package lists"
    as_root apt-get update -qq || die "apt-get update failed (no network to the Debian mirrors?)"
    version=$(candidate)
    [[ -n $version && $version != "(none)" ]] || die "apt cannot find the package iso-codes"
  fi
  dir="$out/.debs/iso-codes"
  if [[ ! -f $dir/version || $(<"$dir/version") != "$version" || ! -d $dir/root ]]; then
    log "fetching iso-codes $version"
    rm -rf "$dir" && mkdir -p "$dir/dl"
    # apt-get download writes into the current directory; as root it warns that the _apt user
    # cannot write there, which is harmless.
    (cd "$dir/dl" && apt-get download -qq iso-codes 2>&1) | grep -v 'unsandboxed as root' >&2 || true
    deb=$(find "$dir/dl" -name '*.deb' | head -n 1)
    [[ -n $deb ]] || die "apt-get download iso-codes failed (no network to the Debian mirrors?)"
    dpkg-deb -x "$deb" "$dir/root" || die "dpkg-deb -x failed on $deb"
    rm -rf "$dir/dl"
    echo "$version" >"$dir/version"
  fi
  locale_root="$dir/root/usr/share/locale"
  log "iso-codes $version: catalogs of the .deb in $dir"
fi
[[ -d $locale_root ]] || die "$locale_root is missing"

start=$SECONDS
stamp="format=$FORMAT iso-codes=$version"
todo=()
for lang in "${langs[@]}"; do
  if [[ -f $out/$lang/.complete && $(<"$out/$lang/.complete") == "$stamp" ]]; then
    log "$lang: up to date (iso-codes $version)"
  else
    todo+=("$lang")
  fi
done

# Writes each language of `todo` into OUT/.tmp-<lang> and renames it into place; English needs
# every catalog of the package (its names are their msgids), so all are read in one process.
if ((${#todo[@]})); then
  python3 - "$locale_root" "$out" "$stamp" "$min_bytes" "${todo[@]}" <<'EOF' ||
import gettext, os, shutil, struct, sys

root, out, stamp, min_bytes, langs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]

def catalogs(lang):
    """{domain: {msgid: msgstr}} of a locale; legacy names (iso_3166.mo, ...) are symlinks."""
    d = os.path.join(root, lang, "LC_MESSAGES")
    result = {}
    if not os.path.isdir(d):
        return result
    for f in sorted(os.listdir(d)):
        p = os.path.join(d, f)
        if not (f.startswith("iso_") and f.endswith(".mo")) or os.path.islink(p):
            continue
        try:
            with open(p, "rb") as fh:
                result[f[:-3]] = gettext.GNUTranslations(fh)._catalog
        except (OSError, UnicodeDecodeError, struct.error) as e:
            sys.exit(f"corpus-iso-codes: error: cannot read {p}: {e}")
    return result

def one_line(s):
    return " ".join(s.split())

english = None
if "en" in langs:
    english = {}
    for lang in sorted(os.listdir(root)):
        for domain, cat in catalogs(lang).items():
            english.setdefault(domain, set()).update(k for k in cat if isinstance(k, str) and k)

status = 0
for lang in langs:
    if lang == "en":
        docs = {d: sorted(one_line(k) for k in ids) for d, ids in english.items()}
    else:
        docs = {}
        for domain, cat in catalogs(lang).items():
            # Keys are str (no plural forms in iso-codes); "" is the catalog's header.
            names = [one_line(v) for k, v in sorted(cat.items(), key=lambda kv: str(kv[0]))
                     if isinstance(k, str) and k and v and v.strip() and v != k]
            docs[domain] = names
    docs = {d: n for d, n in docs.items() if n}
    size = sum(len(n.encode()) + 1 for names in docs.values() for n in names)
    if not docs:
        print(f"corpus-iso-codes: warning: iso-codes has no catalog translated into '{lang}':"
              " leaving it out", file=sys.stderr)
        status = 3
        continue
    if size < min_bytes:
        print(f"corpus-iso-codes: warning: '{lang}' has only {size} bytes of translated names"
              f" (--min-bytes {min_bytes}): leaving it out", file=sys.stderr)
        status = 3
        continue
    tmp = os.path.join(out, ".tmp-" + lang)
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "heldout"))
    lines = 0
    for domain, names in docs.items():
        with open(os.path.join(tmp, "heldout", domain + ".txt"), "w", encoding="utf-8") as fh:
            fh.write("".join(n + "\n" for n in names))
        lines += len(names)
    with open(os.path.join(tmp, ".counts"), "w") as fh:
        fh.write(f"{len(docs)}\t{lines}\t{size}\n")
    with open(os.path.join(tmp, ".complete"), "w") as fh:
        fh.write(stamp + "\n")
    dest = os.path.join(out, lang)
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)
    print(f"corpus-iso-codes: {lang}: {len(docs)} documents, {lines} names, {size // 1024} KiB")
sys.exit(status)
EOF
    # 3: some languages were left out (warned above); anything else is an error.
    (($? == 3)) || die "reading the catalogs failed"
fi

# The manifest covers the languages of this run that were built.
built=()
for lang in "${langs[@]}"; do
  if [[ -f $out/$lang/.complete && $(<"$out/$lang/.complete") == "$stamp" ]]; then built+=("$lang"); fi
done
((${#built[@]})) || die "no language was built"
{
  printf '{\n  "source": "Debian iso-codes (gettext catalogs iso_*.mo)",\n'
  printf '  "package": {"iso-codes": "%s"},\n  "languages": {' "$version"
  sep=
  for lang in "${built[@]}"; do
    IFS=$'\t' read -r docs lines bytes <"$out/$lang/.counts"
    printf '%s\n    "%s": {"documents": %s, "lines": %s, "bytes": %s}' \
      "$sep" "$lang" "$docs" "$lines" "$bytes"
    sep=,
  done
  printf '\n  }\n}\n'
} >"$out/manifest.json.tmp"
mv "$out/manifest.json.tmp" "$out/manifest.json"

log "summary ($((SECONDS - start)) s), in $out:"
printf '  %-6s %9s %7s %9s\n' lang documents names KiB
for lang in "${built[@]}"; do
  IFS=$'\t' read -r docs lines bytes <"$out/$lang/.counts"
  printf '  %-6s %9s %7s %9s\n' "$lang" "$docs" "$lines" "$((bytes / 1024))"
done
