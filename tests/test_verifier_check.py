"""The verifier-quality check builds labelled claims (true sentence / one entity swapped) and scores verifiers."""

from __future__ import annotations

from flame_bench.scoring.retrieval import KnowledgeSource
from flame_bench.scoring.verifier_check import always_true, build_claims, lexical, measure

PAGES = {
    "Ada Lovelace": ["Ada Lovelace was an English mathematician born in London in 1815. She worked with Charles "
                     "Babbage on the Analytical Engine."],
    "Alan Turing": ["Alan Turing was a British mathematician born in 1912 in London. He worked at Bletchley Park "
                    "during the Second World War."],
    "Marie Curie": ["Marie Curie was a Polish physicist born in Warsaw in 1867. She won the Nobel Prize in 1903 "
                    "and again in 1911."],
    "Ngozi Okonjo-Iweala": ["Ngozi Okonjo-Iweala is a Nigerian economist born in 1954 in Ogwashi-Ukwu. She became "
                            "Director-General of the World Trade Organization in 2021."],
}


def test_claims_pair_true_sentences_with_one_swapped_entity():
    source = KnowledgeSource(PAGES)
    claims = build_claims(source, list(PAGES), n=3, seed=0)
    assert len(claims) == 6 and [c.label for c in claims] == [True, False] * 3
    for true, false in zip(claims[::2], claims[1::2], strict=True):
        assert true.topic == false.topic and true.text != false.text
        assert true.text in " ".join(PAGES[true.topic]) and "->" in false.swapped
    result = measure(source, claims, {"always_true": always_true, "lexical": lexical,
                                      "broken": lambda batch: (_ for _ in ()).throw(ValueError("no template"))})
    assert result["always_true"] == {"accuracy": 0.5, "tpr": 1.0, "tnr": 0.0, "claims": 6}
    assert result["lexical"]["tpr"] == 1.0  # verbatim sentences are always lexically supported
    assert result["broken"] == {"error": "no template"}


HARD_PAGES = {
    "Ada Lovelace": ["Ada Lovelace (born 1815) was an English mathematician who worked in London with Charles "
                     "Babbage. Her father Lord Byron lived in Greece, and she died in London in 1852."],
    "Alan Turing": ["Alan Turing (born 1912) was a British mathematician who worked at Bletchley Park in England. "
                    "In 1936 he wrote a paper, and in 1952 he was prosecuted in Manchester."],
    "Marie Curie": ["Marie Curie (born 1867) was a physicist who worked in Paris with Pierre Curie. She was born in "
                    "Warsaw, Poland, and won the Nobel Prize in 1903 and 1911."],
}


def test_the_harder_set_defeats_word_matching():
    from flame_bench.scoring.verifier_check import build_hard_claims

    source = KnowledgeSource(HARD_PAGES)
    claims = build_hard_claims(source, list(HARD_PAGES), n=2, seed=0)
    assert len(claims) == 4 and [c.label for c in claims] == [True, False] * 2
    for true, false in zip(claims[::2], claims[1::2], strict=True):
        page = " ".join(HARD_PAGES[true.topic])
        assert true.text not in page and "(" not in true.text  # not verbatim: the parenthetical is gone
        assert "same article" in false.swapped and false.text != true.text
    result = measure(source, claims, {"lexical": lexical})
    assert result["lexical"]["tnr"] == 0.0  # every word of a false claim is in its passage
