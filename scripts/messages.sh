#!/usr/bin/env bash
# The message catalogue: extract every marked text from the code into texts/tapsense.pot and
# merge it into each language's catalogue. Then translate what is new or fuzzy in
# texts/locale/*/LC_MESSAGES/tapsense.po; tests/test_texts.py fails until every message is.
set -euo pipefail
cd "$(dirname "$0")/.."
sources=$(.venv/bin/python -c 'import texts; print(" ".join(texts.SOURCES))')
.venv/bin/pybabel extract --no-default-keywords -k _ -k ngettext:1,2 --sort-by-file \
    --project Tapsense --copyright-holder "Tapsense developers" -o texts/tapsense.pot $sources
for lang in nl; do
    po="texts/locale/$lang/LC_MESSAGES/tapsense.po"
    if [ -f "$po" ]; then
        .venv/bin/pybabel update --no-wrap -i texts/tapsense.pot -d texts/locale -D tapsense -l "$lang"
    else
        .venv/bin/pybabel init --no-wrap -i texts/tapsense.pot -d texts/locale -D tapsense -l "$lang"
    fi
done
