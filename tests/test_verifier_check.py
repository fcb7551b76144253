"""The verifier-quality check builds labelled claims (true sentence / one entity swapped) and scores verifiers."""

from __future__ import annotations

from flame_bench.scoring.retrieval import KnowledgeSource
from flame_bench.verifier_check import always_true, build_claims, lexical, measure

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
