"""The recorded corpus (tests/corpus/firefox.json) is what Firefox does: runs last, after every scenario."""

from __future__ import annotations

import pytest

from tests.browser import test_cors_browser
from tests.harness.corpus import UPDATE_VARIABLE, CorpusSession

pytestmark = pytest.mark.browser


def test_firefox_answers_match_the_corpus(firefox_corpus: CorpusSession) -> None:
    """Every scenario this session ran in Firefox got the answers the corpus records, and the corpus has no
    scenario the suite lost; with CORS_CORPUS_UPDATE=1 the corpus is rewritten from this session instead."""
    problems = firefox_corpus.finish(test_cors_browser.corpus_ids())
    assert not problems, f"the Firefox corpus drifted ({UPDATE_VARIABLE}=1 rewrites it):\n" + "\n".join(problems)
