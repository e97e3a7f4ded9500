"""The recorded corpus (tests/corpus/chromium.json) is what Chromium does: runs last, after every scenario."""

from __future__ import annotations

import pytest

from tests.browser import test_cors_browser, test_rules_browser
from tests.harness.corpus import UPDATE_VARIABLE, CorpusSession

pytestmark = pytest.mark.browser


def test_chromium_answers_match_the_corpus(corpus: CorpusSession) -> None:
    """Every scenario this session ran got the answers from Chromium that the corpus records, and the corpus has
    no scenario the suite lost; with CORS_CORPUS_UPDATE=1 the corpus is rewritten from this session instead."""
    known = [*test_cors_browser.corpus_ids(), *test_rules_browser.corpus_ids()]
    problems = corpus.finish(known)
    assert not problems, f"the corpus drifted ({UPDATE_VARIABLE}=1 rewrites it):\n" + "\n".join(problems)
