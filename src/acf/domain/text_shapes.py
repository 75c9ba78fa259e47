"""A message's *shape*: what its text says about a next fragment from the same sender
(DESIGN §5; the lexicon behind ``accumulation.decide``'s text rules, issue 23).

Fitted to real chat timing (``python -m acf.replay.fragments`` on the Slack log's fit
half; the figures are in ``accumulation``'s docstring): an **acknowledgement** ("ok",
"thx", "jaja", "👍", ":D") or a **complete** sentence (``?`` ``.`` ``!``, or an emoji at the
end) is rarely followed within seconds; text that **ends unfinished** (``,`` ``:`` ``;``
``-``, or a trailing conjunction or article after another word, emoji aside) is followed
far more often; a **greeting** alone and an ellipsis are ordinary text (``DEFAULT``).
Pure: no clock, no I/O.
"""

import re
import unicodedata
from collections.abc import Sequence
from enum import StrEnum


class Shape(StrEnum):
    """What a message's text says about a next fragment (``shape_of``)."""

    ACKNOWLEDGEMENT = "acknowledgement"
    UNFINISHED = "unfinished"
    GREETING = "greeting"
    COMPLETE = "complete"
    DEFAULT = "default"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_CONJUNCTIONS = _words(
    # en, es, pt, fr, de: a message of two words or more ending in one of these continues in
    # the next. Not en "so", "then", "also", "to", "with", "for": "I think so", "ok then",
    # "if you want to" end a thought (the log agrees); the other languages strand no
    # preposition. Left out, for ending sentences as another word in a listed language
    # (often with its accent dropped): car (en), die (en; de "die" = "those"), an and mit (de
    # particles: "kommt an", "ich komme mit"), das (de "that"), oder (de "..., right?"),
    # meine (de "I mean"), mas and el, mi, la (es más, él, mí; fr là), ou (fr où), mais (pt
    # "more"), para (es, pt "stops"), con (fr "c'est con"), meu, minha (pt "mine").
    "and or but because the a my "
    "y o pero porque "
    "e porque com o a "
    "et parce avec pour le mon ma "
    "und aber weil für der mein"
)
_GREETINGS = _words(
    "hi hello hey heya hiya howdy yo hola buenas oi olá ola bonjour salut coucou hallo moin servus"
)
_GREETING_PHRASES = frozenset(
    [
        *("good morning", "good afternoon", "good evening", "buenos días", "buenos dias"),
        *("buenas tardes", "buenas noches", "bom dia", "boa tarde", "boa noite"),
        *("guten tag", "guten morgen", "guten abend"),
    ]
)
_GREETING_ADDRESSEES = _words("there all everyone everybody guys folks team gente todos")
_ACK_WORDS = _words(
    # Not the lead-ins "bueno", "bon" ("well, ...") nor de "bitte" ("please ...", as often as
    # "you're welcome").
    # en
    "ok okay okey oki k kk kay alright right sure yes yeah yea yeh yep yeap yup ya yah aye "
    "no nope nah thanks thank thx tx ty tnx thnx thanx cheers cool nice great awesome "
    "perfect fine good np yw lol lmao rofl omg wow hmm hm mhm aha gotcha noted agreed agree indeed "
    "true exactly totally definitely same fair bye +1 "
    # es
    "vale va sí si claro gracias perfecto genial dale listo entendido exacto ya nop "
    "bien adiós adios "
    # pt
    "sim não nao obrigado obrigada brigado valeu vlw beleza blz certo tá ta show perfeito "
    "ótimo otimo entendi combinado legal tranquilo tchau "
    # fr
    "oui ouais merci dac d'accord parfait super génial mdr ptdr entendu nickel voilà "
    # de
    "ja jo jap jep nein nö danke dankeschön klar gut genau passt prima stimmt toll "
    "jawohl gerne tschüss"
)
_ACK_PHRASES = frozenset(
    [
        *("thank you", "got it", "sounds good", "makes sense", "no problem", "all good"),
        *("of course", "will do", "i see", "de nada", "muchas gracias"),
        *("mil gracias", "por supuesto", "muy bien", "muito obrigado", "muito obrigada"),
        *("tudo bem", "de rien", "merci beaucoup", "très bien", "ça marche"),
        *("danke schön", "vielen dank", "alles klar", "kein problem"),
    ]
)
_ACK_FILLERS = _words("so very much a lot lots you all oh ah ooh")
"""Words that may ride along an acknowledgement ("thanks a lot", "oh ok"), not be one: a
lone "oh" or "ah" leads into more as often as not in the log."""
_LAUGH = re.compile(r"(?:a?(?:ha|he|hi|ja|je|ji|hu|rs)){2,}h?|k{3,}|lo+l|lmf?a+o+|x+d+")
_EMOTICON = re.compile(
    # No digit for eyes and only ":" before a "3" mouth: "8)", "83", "8p", "=3" are numbers
    # ("see you at 8p"), ":3" is a face.
    r"[:;=][-'^o]?[)(\]\[dpo/\\|*>$@]+|:-?3|[)(]+[-']?[:;=]|x+d+|<3+|\^[_.-]?\^|t_t|"
    r"\\?o/"
)
_SHORTCODE_END = re.compile(r":[\w+-]{1,60}:$")
_PICTOGRAPHS = (
    (0x203C, 0x203C),  # ‼
    (0x2049, 0x2049),  # ⁉
    (0x2300, 0x23FF),  # ⌚ ⌛ ⏩ ⏰: technical symbols
    (0x25A0, 0x25FF),  # ▶ ◀ ◻: geometric shapes
    (0x2600, 0x27BF),  # ☀ ★ ✅ ❤ ➡: symbols and dingbats
    (0x2934, 0x2935),  # ⤴ ⤵
    (0x2B00, 0x2BFF),  # ⬆ ⭐ ⭕
    (0x3030, 0x3030),  # 〰
    (0x303D, 0x303D),  # 〽
    (0x3297, 0x3299),  # ㊗ ㊙
    (0x1F000, 0x1F3FA),  # 🀄 🃏 🇫🇷 (flags: regional indicators) 🌍 🎉 ...
    (0x1F400, 0x1FAFF),  # 🐱 👍 😀 🙏 🤔 🥳 🫠 ... (not the skin tones 1F3FB-1F3FF)
)
"""Code points that are pictographs by themselves: the emoji blocks of Unicode's
Extended_Pictographic. Not the symbols of text: "°", "©", "™", "→"."""
_VS16 = "\ufe0f"
"""Variation selector 16: asks for the emoji presentation of the character before it
("©️", "↔️")."""
_KEYCAP = "\u20e3"
_MODIFIERS = ("Mn", "Me", "Sk", "Cf")
"""What modifies or joins a pictograph (variation selectors, skin tones, the zero-width
joiner, keycaps, tags): part of an emoji only right after one. Alone they are the marks of
text: the accent of a decomposed "é", Thai and Hindi vowel signs."""
_TOKEN = re.compile(r"[\w'+]+", re.UNICODE)
_TERMINAL = ("?", ".", "!", "؟", "。", "\uff1f", "\uff01")  # the last two: full-width ? !
_UNFINISHED_ENDS = (",", ":", ";", "-")
_TRAILING_OFF = ("...", "…")


def shape_of(text: str) -> Shape:
    """The shape of one message's text (see the module's docstring).

    Emoji and emoticons at the end read as a full stop ("I'll try that :)" is complete: the
    log follows such texts less often than plain ones) unless the text before them ends
    unfinished ("I'll try and 😅"), and text made only of them is an acknowledgement. An
    ellipsis trails off rather than announcing more: the log follows it less often than
    plain text, so it gets the plain window. A one-word message is never unfinished by its
    word: "a", "e", "o", "y" answer a choice, and a lone "and" or "because" says little."""
    tokens, ended_by_emoji = without_emoji(text)
    if not tokens:
        return Shape.ACKNOWLEDGEMENT if ended_by_emoji else Shape.DEFAULT
    stripped = " ".join(tokens)
    conjunction = tokens[-1] in _CONJUNCTIONS  # the raw last token: "`Maybe a`" ends in code
    if stripped.endswith(_UNFINISHED_ENDS) or (conjunction and len(tokens) > 1):
        return Shape.UNFINISHED
    words = _TOKEN.findall(stripped)
    if not stripped.endswith("?") and _is_acknowledgement(words):
        return Shape.ACKNOWLEDGEMENT
    if ended_by_emoji:
        return Shape.DEFAULT if conjunction else Shape.COMPLETE  # "because 🙏": plain
    if _is_greeting(words):
        return Shape.GREETING
    if stripped.endswith(_TERMINAL) and not stripped.endswith(_TRAILING_OFF):
        return Shape.COMPLETE
    return Shape.DEFAULT


def ends_trailing_off(text: str) -> bool:
    """Whether ``text`` ends in an ellipsis ("well...", "not sure… 🤔"), emoji aside: an
    ellipsis does not lengthen the window (see ``shape_of``)."""
    tokens, _ = without_emoji(text)
    return bool(tokens) and tokens[-1].endswith(_TRAILING_OFF)


def without_emoji(text: str) -> tuple[list[str], bool]:
    """The lower-cased whitespace tokens of ``text`` without the emoji that end it, and
    whether there were any."""
    tokens = text.lower().split()
    ended_by_emoji = False
    while tokens and is_emoji(tokens[-1]):
        tokens.pop()
        ended_by_emoji = True
    if tokens and (glued := _emoji_suffix(tokens[-1])):  # "thanks:+1:", "done✅"
        tokens[-1] = tokens[-1][:-glued]
        ended_by_emoji = True
    return tokens, ended_by_emoji


def is_emoji(token: str) -> bool:
    """A whitespace-free token made only of emoji (pictographs, their modifiers and
    joiners, shortcodes such as ":+1:") or one emoticon. ASCII symbols ("```", "^") are not
    emoji."""
    return bool(token) and (bool(_EMOTICON.fullmatch(token)) or _emoji_suffix(token) == len(token))


def _emoji_suffix(token: str) -> int:
    """How many characters at the end of ``token`` are emoji or shortcodes: pictographs
    with the modifiers and joiners that follow them, scanned from the end (modifiers wait
    for the pictograph they belong to)."""
    end = len(token)  # the emoji suffix found so far is token[end:]
    at = end  # token[at:end]: modifiers waiting for their pictograph
    while at > 0:
        shortcode = None if at < end else _SHORTCODE_END.search(token, max(0, end - 62), end)
        if shortcode is not None:
            end = at = shortcode.start()
        elif ord(token[at - 1]) > 127 and unicodedata.category(token[at - 1]) in _MODIFIERS:
            at -= 1
        elif _is_pictograph(token, at - 1):
            end = at = at - 1
        else:
            break
    return len(token) - end


def _is_pictograph(token: str, index: int) -> bool:
    """Whether ``token[index]`` is a pictograph: an emoji code point, a symbol asked to show
    as an emoji ("©️"), or a keycap's digit ("1️⃣")."""
    char = token[index]
    point = ord(char)
    if any(low <= point <= high for low, high in _PICTOGRAPHS):
        return True
    after = index + 1
    if point > 127 and token.startswith(_VS16, after):
        return True
    return char in "0123456789#*" and (
        token.startswith(_KEYCAP, after) or token.startswith(_VS16 + _KEYCAP, after)
    )


def _collapsed(word: str) -> str:
    """``word`` with letters repeated in a row kept once: "okkk", "yesss", "cooool"."""
    return re.sub(r"(.)\1+", r"\1", word)


_ACK_COLLAPSED = frozenset(_collapsed(w) for w in _ACK_WORDS)


def _is_acknowledgement(words: Sequence[str]) -> bool:
    """Up to five words, each an acknowledgement, a laugh, a filler, or part of an
    acknowledging phrase, at least one not a filler ("ok thanks", "jajaja", "got it"), and
    the last not a conjunction nor "so" ("ok so" goes on)."""
    if not words or len(words) > 5 or words[-1] in _CONJUNCTIONS or words[-1] == "so":
        return False
    acknowledged, i = False, 0
    while i < len(words):
        pair = " ".join(words[i : i + 2])
        if pair in _ACK_PHRASES:
            acknowledged, i = True, i + 2
            continue
        word = words[i]
        if _collapsed(word) in _ACK_COLLAPSED or _LAUGH.fullmatch(word):
            acknowledged = True
        elif word not in _ACK_FILLERS:
            return False
        i += 1
    return acknowledged


def _is_greeting(words: Sequence[str]) -> bool:
    """A greeting alone, perhaps addressed: "hi", "hello there", "buenos días a todos"."""
    rest = list(words)
    if " ".join(rest[:2]) in _GREETING_PHRASES:
        rest = rest[2:]
    elif rest and rest[0] in _GREETINGS:
        rest = rest[1:]
    else:
        return False
    return all(w in _GREETING_ADDRESSEES or w == "a" for w in rest)
