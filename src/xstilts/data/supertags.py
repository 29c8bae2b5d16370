"""UD supertags, the public stand-in for CCG supertags: relation, head side and head distance.
Tag = deprel minus subtype + `>` (head right) or `<` (head left) + 1|2|3-5|6+; the root: `root`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from xstilts.data.records import TaggedSentence

if TYPE_CHECKING:
    from xstilts.data.conllu import ConlluSentence

ROOT_TAG = "root"

SUPERTAG_DEFINITION = """\
UD supertag of word i (1-based position among the sentence's syntactic words; multiword-token
ranges and empty nodes are not words) with basic head h and relation r:
  * h == 0 (the root): the tag is "root".
  * otherwise: base(r) + arrow + bucket(|h - i|), where
      base(r)   = r up to its first ':' (subtypes dropped: nmod:poss -> nmod, aux:pass -> aux,
                  obl:tmod -> obl), so tags use only the universal relations of every UD language;
      arrow     = ">" when the head lies to the right of the word (h > i),
                  "<" when the head lies to the left (h < i): the arrow points at the head;
      bucket(d) = "1", "2", "3-5" or "6+" for the distance d in words.
Examples: in "The cat sleeps ." The = det>1, cat = nsubj>1, sleeps = root, . = punct<1.
Like a CCG category, a tag says what a word attaches to (relation) and where (side, distance);
it does not encode the word's own dependents. UD English EWT train (12,544 sentences) has
221 distinct tags, 177 of them seen 10+ times (294 if subtypes were kept)."""

_BUCKETS = ((1, "1"), (2, "2"), (5, "3-5"))


def distance_bucket(distance: int) -> str:
    """The bucket name of a head distance >= 1: "1", "2", "3-5" or "6+"."""
    if distance < 1:
        raise ValueError(f"a head distance is at least 1, got {distance}")
    for upper, name in _BUCKETS:
        if distance <= upper:
            return name
    return "6+"


def ud_supertags(heads: Sequence[int], deprels: Sequence[str]) -> list[str]:
    """The UD supertag of every word (see SUPERTAG_DEFINITION).

    heads[i] is the 1-based head of the word at position i + 1 (0 for the root); deprels[i] its
    relation. Raises ValueError on unequal lengths, a head outside 0..n or equal to the word's
    own position, an empty relation, or a root whose relation is not `root` (and vice versa)."""
    if len(heads) != len(deprels):
        raise ValueError(f"{len(heads)} heads but {len(deprels)} relations")
    n_words = len(heads)
    tags: list[str] = []
    for index, (head, deprel) in enumerate(zip(heads, deprels, strict=True)):
        position = index + 1
        base = deprel.split(":", 1)[0]
        if not base or base == "_":
            raise ValueError(f"word {position}: missing relation {deprel!r}")
        if not 0 <= head <= n_words or head == position:
            raise ValueError(f"word {position}: head {head} is not another word of {n_words}")
        if (head == 0) != (base == ROOT_TAG):
            raise ValueError(f"word {position}: head {head} with relation {deprel!r}")
        if head == 0:
            tags.append(ROOT_TAG)
        else:
            arrow = ">" if head > position else "<"
            tags.append(f"{base}{arrow}{distance_bucket(abs(head - position))}")
    return tags


def ud_supertag_sentence(sentence: ConlluSentence) -> TaggedSentence:
    """A CoNLL-U sentence as words tagged with their UD supertags."""
    tags = ud_supertags(
        [token.head for token in sentence.tokens], [token.deprel for token in sentence.tokens]
    )
    return TaggedSentence(sentence.sent_id, sentence.words, tuple(tags))
